"""Features, catalogue/split and the spectrogram cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import MIR1K, needs_mir1k, write_clip

from hourglass_sep import cli
from hourglass_sep.data.cache import SpectrogramCache, write_cache
from hourglass_sep.data.catalogue import build_catalogue, pick_test_subset, select, split_of
from hourglass_sep.data.features import HOP, N_BINS, N_FFT, SR, clip_features, istft, stft
from hourglass_sep.errors import UserError


def _librosa_features(stereo, sr):
    import librosa

    mix = librosa.resample(stereo.mean(axis=0), orig_sr=sr, target_sr=SR, res_type="soxr_hq")
    spec = librosa.stft(
        mix, n_fft=N_FFT, hop_length=HOP, window="hann", center=True, pad_mode="constant"
    )
    return spec[:N_BINS], mix


def test_features_equal_direct_librosa(tmp_path):
    path = write_clip(tmp_path / "x_1_01.wav", seconds=3.3)
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    stereo = data.T
    f = clip_features(stereo, sr)
    ref, _ = _librosa_features(stereo, sr)
    assert f.mix_stft.shape == ref.shape == (N_BINS, ref.shape[1])
    np.testing.assert_allclose(
        np.abs(f.mix_stft), np.abs(ref), rtol=1e-4, atol=1e-4 * np.abs(ref).max()
    )
    scale = np.abs(ref).max()
    assert f.scale == pytest.approx(scale, rel=1e-5)
    np.testing.assert_allclose(f.mixture, np.abs(ref) / scale, atol=1e-5)
    assert f.mixture.max() == pytest.approx(1.0)
    # sources are normalised by the *mixture's* max
    import librosa

    voice8 = librosa.resample(stereo[1], orig_sr=sr, target_sr=SR, res_type="soxr_hq")
    vref = np.abs(
        librosa.stft(voice8, n_fft=N_FFT, hop_length=HOP, center=True, pad_mode="constant")
    )[:N_BINS]
    np.testing.assert_allclose(f.voice, vref / scale, atol=1e-5)


def test_istft_of_cached_features_restores_mixture(small_corpus, tmp_path):
    df = build_catalogue(small_corpus)
    out = tmp_path / "all.npz"
    write_cache(select(df, "all"), out, progress=False)
    cache = SpectrogramCache(out)
    for i, clip in enumerate(cache.clips):
        data, sr = sf.read(df.set_index("clip").loc[clip, "path"], dtype="float32", always_2d=True)
        _, mix8 = _librosa_features(data.T, sr)
        rec = istft(cache.mix_stft(i), int(cache.samples_8k[i]), cache.mix_nyquist(i)).numpy()
        assert rec.shape == mix8.shape
        rel = np.linalg.norm(rec - mix8) / np.linalg.norm(mix8)
        assert rel < 1e-4, (clip, rel)


def test_stft_roundtrip_random():
    x = np.random.default_rng(0).standard_normal(8000 * 3 + 17).astype(np.float32)
    spec = stft(x)
    assert spec.shape == (N_BINS, 1 + x.size // HOP)
    full = stft(x, keep_nyquist=True)
    assert full.shape == (N_BINS + 1, spec.shape[1])
    rec = istft(full, x.size).numpy()
    assert np.linalg.norm(rec - x) / np.linalg.norm(x) < 1e-5
    rec2 = istft(spec, x.size, full[N_BINS]).numpy()
    np.testing.assert_allclose(rec2, rec, atol=1e-6)


def test_catalogue_and_split(small_corpus):
    df = build_catalogue(small_corpus)
    assert list(df["clip"]) == sorted(df["clip"])
    assert set(df[df.split == "train"]["singer"]) == {"abjones", "amy"}
    assert (df.split == "test").sum() == 3
    assert (df["samples"] > 0).all() and (df["sr"] == 16000).all()
    assert build_catalogue(small_corpus / "Wavfile").equals(df)


def test_test_subset_deterministic_and_stratified():
    rows = [
        dict(clip=f"{s}_{k // 10}_{k % 10:02d}", singer=s, split=split_of(s))
        for s in ["abjones", "amy", "ann", "bob", "cat"]
        for k in range(30 if s != "cat" else 10)
    ]
    df = pd.DataFrame(rows)
    a = pick_test_subset(df, 14, seed=3)
    b = pick_test_subset(df, 14, seed=3)
    assert list(a["clip"]) == list(b["clip"]) and len(a) == 14
    assert a.groupby("singer").size().to_dict() == {"ann": 6, "bob": 6, "cat": 2}
    assert list(pick_test_subset(df, 14, seed=4)["clip"]) != list(a["clip"])
    assert len(pick_test_subset(df, None)) == 70


def test_bad_corpus_messages(tmp_path):
    with pytest.raises(UserError, match="no MIR-1K clips found"):
        build_catalogue(tmp_path)
    (tmp_path / "Wavfile").mkdir()
    (tmp_path / "Wavfile" / "notaclipname.wav").write_bytes(b"RIFF")
    with pytest.raises(UserError, match="notaclipname.wav: name is not"):
        build_catalogue(tmp_path)
    (tmp_path / "Wavfile" / "notaclipname.wav").unlink()
    (tmp_path / "Wavfile" / "ann_1_01.wav").write_bytes(b"garbage")
    with pytest.raises(UserError, match="ann_1_01.wav: unreadable audio"):
        build_catalogue(tmp_path)


def test_cache_cli_and_reader(small_corpus, tmp_path, capsys):
    cat = tmp_path / "catalogue.tsv"
    assert cli.main(["catalogue", str(small_corpus), "-o", str(cat), "--test-clips", "2"]) == 0
    df = pd.read_csv(cat, sep="\t")
    assert df["evaluate"].sum() == 2 and not df[df.split == "train"]["evaluate"].any()
    train = tmp_path / "train.npz"
    assert (
        cli.main(
            [
                "cache",
                "--catalogue",
                str(cat),
                "--split",
                "train",
                "-o",
                str(train),
                "--no-progress",
            ]
        )
        == 0
    )
    c = SpectrogramCache(train)
    assert c.clips == ["abjones_1_01", "amy_2_01"]
    mix, voice, acc = c.patch(1, 3, 16)
    assert mix.shape == voice.shape == acc.shape == (N_BINS, 16) and mix.dtype == np.float32
    full = c.clip(1)[0]
    assert full.max() == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_array_equal(mix, full[:, 3:19])
    test = tmp_path / "test.npz"
    assert (
        cli.main(
            ["cache", "--catalogue", str(cat), "--split", "test", "-o", str(test), "--no-progress"]
        )
        == 0
    )
    assert len(SpectrogramCache(test)) == 2
    assert not list(tmp_path.glob(".*part*")), "temporary files left behind"


def test_cache_refuses_mono_and_keeps_old_file(small_corpus, tmp_path, capsys):
    cat = tmp_path / "catalogue.tsv"
    cli.main(["catalogue", str(small_corpus), "-o", str(cat)])
    out = tmp_path / "train.npz"
    cli.main(
        ["cache", "--catalogue", str(cat), "--split", "train", "-o", str(out), "--no-progress"]
    )
    before = out.read_bytes()
    mono = small_corpus / "Wavfile" / "amy_2_01.wav"
    sf.write(str(mono), np.zeros(16000, dtype=np.float32), 16000, subtype="PCM_16")
    assert (
        cli.main(
            ["cache", "--catalogue", str(cat), "--split", "train", "-o", str(out), "--no-progress"]
        )
        == 2
    )
    assert "amy_2_01.wav: has 1 channel(s)" in capsys.readouterr().err
    assert out.read_bytes() == before  # nothing already computed was lost
    assert not list(tmp_path.glob(".*part*"))


def test_cache_reader_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        SpectrogramCache(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="corrupt or truncated"):
        SpectrogramCache(bad)


def test_split_counts_on_full_manifest():
    manifest = MIR1K / "manifest.tsv"
    if not manifest.exists():
        pytest.skip(f"{manifest} not present (shared data lives beside the checkout)")
    m = pd.read_csv(manifest, sep="\t")
    splits = m["singer"].map(split_of)
    assert (splits == "train").sum() == 175 and (splits == "test").sum() == 825
    assert (splits == m["split"]).all()


@needs_mir1k()
def test_real_clips_catalogue():
    df = build_catalogue(MIR1K)
    assert (df.split == "train").sum() == 175 and (df.split == "test").sum() == 415
    assert (df.sr == 16000).all()
    sub = pick_test_subset(df, 100, seed=0)
    assert len(sub) == 100 and sub["singer"].nunique() == df[df.split == "test"]["singer"].nunique()

"""The synthetic MIR-1K-format corpus: determinism, format, split, realism, errors, CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hourglass_sep.cli import main
from hourglass_sep.data import synth
from hourglass_sep.data.catalogue import CLIP_RE, build_catalogue
from hourglass_sep.errors import UserError

SMALL = dict(seed=3, singers=3, songs=2, clips=2, min_seconds=4.0, max_seconds=6.0, progress=False)


def md5s(root: Path) -> dict[str, str]:
    return {
        p.name: hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted((root / "Wavfile").glob("*.wav"))
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return synth.generate_corpus(tmp_path_factory.mktemp("synth") / "corpus", **SMALL)


def test_same_seed_is_byte_identical_whatever_the_jobs(corpus, tmp_path):
    again = synth.generate_corpus(tmp_path / "again", **{**SMALL, "jobs": 2})
    assert md5s(again) == md5s(corpus)
    assert (again / "synth.json").read_bytes() == (corpus / "synth.json").read_bytes()


def test_other_seed_differs(corpus, tmp_path):
    other = synth.generate_corpus(tmp_path / "other", **{**SMALL, "seed": 4})
    a, b = md5s(corpus), md5s(other)
    assert a.keys() == b.keys()
    assert all(a[k] != b[k] for k in a)


def test_names_and_format(corpus):
    files = sorted((corpus / "Wavfile").glob("*.wav"))
    assert len(files) == 3 * 2 * 2
    assert [p.stem for p in files][:4] == [
        "abjones_1_01",
        "abjones_1_02",
        "abjones_2_01",
        "abjones_2_02",
    ]
    for p in files:
        assert CLIP_RE.match(p.stem) and p.stem.split("_")[0].isalnum() and p.stem.islower()
        info = sf.info(str(p))
        assert (info.samplerate, info.channels, info.subtype, info.format) == (
            16000,
            2,
            "PCM_16",
            "WAV",
        )
        assert 4.0 <= info.duration <= 6.0
    meta = json.loads((corpus / "synth.json").read_text())
    assert meta["params"]["seed"] == 3 and meta["params"]["singers"] == 3
    assert [c["clip"] for c in meta["clips"]] == [p.stem for p in files]
    assert not list(corpus.rglob("*.part*"))


def test_default_durations_and_singer_names():
    specs = synth.corpus_layout(0, 30, 3, 5, 4.0, 13.0)
    secs = np.array([s.seconds for s in specs])
    assert secs.min() >= 4.0 and secs.max() <= 13.0 and secs.std() > 1.5
    names = synth.singer_names(30)
    assert names[:2] == ["abjones", "amy"] and len(set(names)) == 30
    assert all(n.isalnum() and n.islower() for n in names)
    # clip k of a song does not depend on how many clips are asked for
    assert (
        synth.clip_windows(0, "amy", "1", 2, 4, 13)
        == synth.clip_windows(0, "amy", "1", 5, 4, 13)[:2]
    )


def test_split_trains_on_abjones_and_amy(corpus):
    df = build_catalogue(corpus)
    train = df[df["split"] == "train"]
    assert set(train["singer"]) == {"abjones", "amy"}
    assert len(train) == 2 * 2 * 2 and len(df) - len(train) == 1 * 2 * 2
    assert (df["sr"] == 16000).all()


def _stereo(path: Path) -> np.ndarray:
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    assert sr == 16000
    return x.T


def test_voice_and_accompaniment_are_real_and_distinct(corpus):
    for p in sorted((corpus / "Wavfile").glob("*.wav")):
        acc, voice = _stereo(p)
        rv, ra = np.sqrt(np.mean(voice**2)), np.sqrt(np.mean(acc**2))
        assert rv > 0.01 and ra > 0.01, p.name
        assert abs(20 * np.log10(rv / ra)) <= 5.5, p.name  # comparable levels (+-5 dB)
        assert abs(np.corrcoef(acc, voice)[0, 1]) < 0.2, p.name
        assert max(np.abs(acc).max(), np.abs(voice).max()) <= 0.91  # no clipping


def test_it_is_a_real_separation_problem(corpus):
    """Overlapping spectra, mixture-as-estimate near 0 dB, ideal ratio mask far from perfect."""
    torch = pytest.importorskip("torch")
    from hourglass_sep.data.audio import resample
    from hourglass_sep.data.features import SR, clip_features, istft

    overlap, mix_sdr, irm_sdr = [], [], []
    for p in sorted((corpus / "Wavfile").glob("*.wav")):
        x = _stereo(p)
        f = clip_features(x, 16000)
        v, a = f.voice.astype(np.float64), f.accompaniment.astype(np.float64)
        power = f.mixture.astype(np.float64) ** 2
        active = power > power.max() * 1e-4
        close = np.abs(20 * np.log10((v + 1e-9) / (a + 1e-9))) < 10
        overlap.append(power[active & close].sum() / power[active].sum())
        ref = resample(x[1], 16000, SR) / 2  # the voice inside the mixture (mean of the channels)
        mix = resample(x.mean(axis=0), 16000, SR)
        mask = v**2 / (v**2 + a**2 + 1e-12)
        est = istft(torch.as_tensor(f.mix_stft * mask.astype(np.float32)), len(ref)).numpy()

        def sdr(e, ref=ref):
            return 10 * np.log10(np.sum(ref**2) / np.sum((ref - e) ** 2))

        mix_sdr.append(sdr(mix))
        irm_sdr.append(sdr(est))
    # real MIR-1K: about 0.1 of the energy where both are within 10 dB
    assert np.mean(overlap) > 0.04
    assert -6 < np.mean(mix_sdr) < 6
    assert 6 < np.mean(irm_sdr) < 25  # real MIR-1K: about 15 dB


def test_rerun_is_a_no_op_and_a_smaller_corpus_replaces_stale_clips(tmp_path):
    args = dict(SMALL, songs=1, clips=2, max_seconds=4.5)
    dest = synth.generate_corpus(tmp_path / "c", **args)
    before = {p.name: p.stat().st_mtime_ns for p in (dest / "Wavfile").iterdir()}
    synth.generate_corpus(dest, **args)
    assert {p.name: p.stat().st_mtime_ns for p in (dest / "Wavfile").iterdir()} == before
    synth.generate_corpus(dest, **{**args, "clips": 1})
    assert sorted(p.stem for p in (dest / "Wavfile").glob("*.wav")) == [
        "abjones_1_01",
        "amy_1_01",
        "dalia_1_01",
    ]
    assert json.loads((dest / "synth.json").read_text())["params"]["clips"] == 1


def test_refuses_audio_it_did_not_write(tmp_path):
    wav = tmp_path / "real" / "Wavfile" / "abjones_1_01.wav"
    wav.parent.mkdir(parents=True)
    sf.write(str(wav), np.zeros((1600, 2), dtype=np.float32), 16000)
    with pytest.raises(UserError, match="not written by `hourglass-sep synth`"):
        synth.generate_corpus(tmp_path / "real", **SMALL)
    assert wav.exists() and not (tmp_path / "real" / "synth.json").exists()
    mir = tmp_path / "mir" / "MIR-1K" / "Wavfile" / "amy_1_01.wav"
    mir.parent.mkdir(parents=True)
    sf.write(str(mir), np.zeros((1600, 2), dtype=np.float32), 16000)
    with pytest.raises(UserError, match="not part of a synthetic corpus"):
        synth.generate_corpus(tmp_path / "mir", **SMALL)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(singers=2), "at least 3"),
        (dict(min_seconds=9.0, max_seconds=5.0), "above --max-seconds"),
        (dict(seed=-1), "non-negative"),
        (dict(clips=0), "at least 1 clip"),
        (dict(min_seconds=0.5), "at least 1 s"),
    ],
)
def test_bad_arguments(tmp_path, change, message):
    with pytest.raises(UserError, match=message):
        synth.generate_corpus(tmp_path / "x", **{**SMALL, **change})
    assert not (tmp_path / "x").exists()


def test_cli(tmp_path, capsys):
    dest = tmp_path / "cli"
    argv = [
        "synth",
        "--dest",
        str(dest),
        "--seed",
        "1",
        "--singers",
        "3",
        "--songs",
        "1",
        "--clips",
        "1",
        "--min-seconds",
        "4",
        "--max-seconds",
        "4.5",
        "--no-progress",
    ]
    assert main(argv) == 0
    assert "3 clips (2 train, 1 test)" in capsys.readouterr().out
    assert (dest / "synth.json").exists() and len(list((dest / "Wavfile").glob("*.wav"))) == 3
    assert main(["synth", "--dest", str(tmp_path / "bad"), "--singers", "2"]) == 2
    assert "--singers 2: need at least 3" in capsys.readouterr().err

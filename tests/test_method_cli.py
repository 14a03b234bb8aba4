"""``hourglass-sep separate --method``: song mode without a model, workflow shards, and the
errors (unknown method, bad setting, oracle on a song, --method with --model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from hourglass_sep.cli import main


def _run(capsys, *args) -> tuple[int, str]:
    rc = main(["separate", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out + out.err


@pytest.fixture
def song(tmp_path):
    """A 3 s stereo song at 22.05 kHz: a repeated chord loop and a sparse tone."""
    sr, n = 22050, 3 * 22050
    t = np.arange(n) / sr
    loop = np.sin(2 * np.pi * 220 * t) * np.exp(-6 * (t % 0.25))
    voice = 0.3 * np.sin(2 * np.pi * 523 * t) * ((t > 1.0) & (t < 1.8))
    path = tmp_path / "song.wav"
    sf.write(str(path), np.stack([0.3 * loop + voice, 0.25 * loop + voice], axis=1), sr)
    return path, sr, n


@pytest.mark.parametrize(
    "method,settings", [("repet-sim", None), ("rpca", "mask=ratio,max_iter=60")]
)
def test_song_mode_needs_no_model(tmp_path, capsys, song, method, settings):
    path, sr, n = song
    extra = ["--method-settings", settings] if settings else []
    rc, text = _run(capsys, "--method", method, *extra, path, "-o", tmp_path / "out")
    assert rc == 0, text
    for stem in ("voice", "accompaniment"):
        info = sf.info(str(tmp_path / "out" / "song" / f"{stem}.wav"))
        assert info.frames == n and info.samplerate == sr and info.channels == 1


def test_song_mode_full_band_masks(tmp_path, capsys, song):
    path, sr, n = song
    out = tmp_path / "out"
    rc, text = _run(
        capsys, "--method", "rpca", "--method-settings", '{"band": "full"}', path, "-o", out
    )
    assert rc == 0, text
    v, v_sr = sf.read(str(out / "song" / "voice.wav"), dtype="float32")
    a, _ = sf.read(str(out / "song" / "accompaniment.wav"), dtype="float32")
    mono = sf.read(str(path), dtype="float32")[0].mean(axis=1)
    assert v_sr == sr and v.shape == a.shape == (n,)
    # complementary masks on the song's own STFT: the stems add up to the mixture
    assert np.abs(v + a - mono).max() < 2e-3


def test_workflow_mode_writes_the_estimates_file(tmp_path, capsys, small_corpus):
    from hourglass_sep.data.catalogue import build_catalogue, write_table

    df = build_catalogue(small_corpus)
    cat = tmp_path / "catalogue.tsv"
    write_table(df, cat)
    test = df[df["split"] == "test"].sort_values("clip")
    est = tmp_path / "est.npz"
    rc, text = _run(
        capsys, "--method", "oracle-irm", "--method-settings", '{"power": 2.0, "band": "full"}',
        "--catalogue", cat, "--shard", "0/1", "--estimates", est, "--no-progress",
    )  # fmt: skip
    assert rc == 0, text
    with np.load(est, allow_pickle=False) as z:
        assert [str(c) for c in z["clips"]] == list(test["clip"])
        meta = json.loads(str(z["meta"]))
        for row in test.itertuples():
            for src in ("voice", "accompaniment"):
                a = z[f"{src}__{row.clip}"]
                assert a.dtype == np.float32 and a.shape == (row.samples,)
            mix = sf.read(row.path, dtype="float32")[0].mean(axis=1)
            total = z[f"voice__{row.clip}"] + z[f"accompaniment__{row.clip}"]
            assert np.abs(total - mix).max() < 1e-4  # IRM masks sum to one, every bin
    assert meta["method"] == "oracle-irm" and meta["oracle"] is True
    assert meta["settings"] == {"power": 2.0, "band": "full"}
    assert meta["clips"] == len(test) and meta["shard"] == "0/1"
    assert {"seconds", "audio_seconds", "device", "threads", "torch"} <= set(meta)
    # the default band (the report's 8 kHz protocol), a blind method, one shard of two
    rc, text = _run(
        capsys, "--method", "repet-sim", "--catalogue", cat, "--shard", "1/2",
        "--estimates", est, "--no-progress",
    )  # fmt: skip
    assert rc == 0, text
    with np.load(est, allow_pickle=False) as z:
        assert [str(c) for c in z["clips"]] == list(test["clip"])[1::2]
        for row in test.iloc[1::2].itertuples():
            assert z[f"voice__{row.clip}"].shape == (row.samples,)
        assert json.loads(str(z["meta"]))["settings"]["band"] == "protocol"


def test_errors_name_the_problem(tmp_path, capsys, song):
    path = song[0]
    out = tmp_path / "out"
    rc, text = _run(capsys, "--method", "nmf", path, "-o", out)
    assert rc == 2 and "oracle-ibm, oracle-irm, repet-sim, rpca" in text
    rc, text = _run(
        capsys, "--method", "repet-sim", "--method-settings", "widht=3", path, "-o", out
    )
    assert rc == 2 and "--method-settings.widht" in text
    rc, text = _run(capsys, "--method", "rpca", "--method-settings", "gain=loud", path, "-o", out)
    assert rc == 2 and "--method-settings.gain: 'loud': expected a number" in text
    rc, text = _run(capsys, "--method", "rpca", "--method-settings", "{bad json", path, "-o", out)
    assert rc == 2 and "not a JSON object" in text
    rc, text = _run(capsys, "--method", "oracle-ibm", path, "-o", out)
    assert rc == 2 and "oracles need the true sources" in text and "repet-sim" in text
    rc, text = _run(capsys, "--method", "rpca", "--model", "m.pt", path, "-o", out)
    assert rc == 2 and "--method and --model exclude each other" in text
    rc, text = _run(capsys, "--method-settings", "gain=2", path, "-o", out)
    assert rc == 2 and "--method-settings needs --method" in text
    assert not out.exists()

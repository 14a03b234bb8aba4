"""Song input and output: formats, folders, naming, bad files, resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import write_clip

from hourglass_sep.cli import main
from hourglass_sep.data.audio import resample
from hourglass_sep.errors import UserError
from hourglass_sep.nets.inference import MODEL_FORMAT
from hourglass_sep.nets.model import build_model
from hourglass_sep.nets.settings import ArchConfig
from hourglass_sep.separation import songio

ARCH = ArchConfig(stacks=1, channels=4, growth=4, stem=(4,), poolings=3)
HAS_MP3 = "MP3" in sf.available_formats()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("m") / "model.pt"
    state = build_model(ARCH).state_dict()
    torch.save({"format": MODEL_FORMAT, "arch": ARCH.to_dict(), "state_dict": state}, path)
    return path


def _run(capsys, *argv) -> tuple[int, str]:
    rc = main(["separate", *map(str, argv), "--no-progress", "--threads", "1"])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def test_resample_is_librosas_soxr_hq():
    librosa = pytest.importorskip("librosa")
    x = np.random.default_rng(0).standard_normal((2, 16001)).astype(np.float32)
    for a, b in [(16000, 8000), (8000, 44100), (44100, 8000)]:
        ref = librosa.resample(x, orig_sr=a, target_sr=b, res_type="soxr_hq")
        assert np.array_equal(resample(x, a, b), ref)


def test_read_mixture_averages_channels_in_blocks(tmp_path, monkeypatch):
    path = write_clip(tmp_path / "a.wav", seconds=1.0)
    stereo, sr = sf.read(str(path), dtype="float32")
    monkeypatch.setattr(songio, "READ_BLOCK", 1000)  # several blocks
    mono, rate, channels = songio.read_mixture(path)
    assert (rate, channels, mono.shape) == (sr, 2, (len(stereo),))
    assert np.allclose(mono, stereo.mean(axis=1), atol=1e-7)


@pytest.mark.skipif(not HAS_MP3, reason="this libsndfile reads no MP3")
def test_mp3_input(tmp_path):
    x = np.random.default_rng(0).standard_normal((44100, 2)).astype(np.float32) * 0.1
    sf.write(str(tmp_path / "s.mp3"), x, 44100, format="MP3", subtype="MPEG_LAYER_III")
    mono, sr, ch = songio.read_mixture(tmp_path / "s.mp3")
    assert (sr, ch) == (44100, 2) and abs(len(mono) - 44100) < 2000


def test_bad_inputs_name_the_file(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match="empty.wav: the file is empty"):
        songio.check_input(empty)
    junk = tmp_path / "junk.flac"
    junk.write_bytes(b"not audio at all" * 100)
    with pytest.raises(UserError, match="junk.flac: cannot read as audio"):
        songio.check_input(junk)
    nan = tmp_path / "nan.wav"
    x = np.zeros((16000, 2), np.float32)
    x[12000, 1] = np.nan
    sf.write(str(nan), x, 16000, subtype="FLOAT")
    with pytest.raises(
        UserError, match=r"nan.wav: holds NaN or infinite samples \(first at 0.750 s"
    ):
        songio.read_mixture(nan)
    truncated = tmp_path / "cut.flac"
    sf.write(str(truncated), np.random.default_rng(0).standard_normal((80000, 2)) * 0.1, 16000)
    truncated.write_bytes(truncated.read_bytes()[:30000])
    try:
        songio.read_mixture(truncated)  # libsndfile may decode what is there
    except UserError as exc:
        assert "cut.flac" in str(exc)


def test_folders_and_naming(tmp_path):
    folder = tmp_path / "songs"
    write_clip(folder / "b.flac")
    write_clip(folder / "a.wav")
    (folder / "notes.txt").write_text("x")
    (tmp_path / "none").mkdir()
    files, problems = songio.expand_inputs([folder, tmp_path / "none", tmp_path / "gone.wav"])
    assert [f.name for f in files] == ["a.wav", "b.flac"]
    assert any("none: folder holds no audio files" in p for p in problems)
    assert any("gone.wav: no such file" in p for p in problems)
    plan = songio.plan_outputs(files, tmp_path / "out", ("voice",), "flac")
    assert plan[files[0]] == {"voice": tmp_path / "out" / "a" / "voice.flac"}
    write_clip(tmp_path / "other" / "a.wav")
    with pytest.raises(UserError, match="same name 'a'"):
        songio.plan_outputs(
            [*files, tmp_path / "other" / "a.wav"], tmp_path / "out", ("voice",), "wav"
        )
    assert songio.parse_stems("accompaniment, voice") == ("accompaniment", "voice")
    with pytest.raises(UserError, match="--stems 'drums'"):
        songio.parse_stems("drums")
    with pytest.raises(UserError, match="flac stores integers"):
        songio.output_subtype("flac", "float")


def test_write_stems_is_atomic(tmp_path):
    paths = {s: tmp_path / "song" / f"{s}.wav" for s in songio.STEMS}

    def blocks():
        yield np.zeros((2, 100), np.float32)
        raise UserError("boom")

    with pytest.raises(UserError, match="boom"):
        songio.write_stems(paths, 16000, "PCM_16", blocks())
    assert not list((tmp_path / "song").iterdir())
    samples, peak = songio.write_stems(
        paths, 16000, "PCM_24", iter([np.full((2, 50), 1.5, np.float32)])
    )
    v, sr = sf.read(str(paths["voice"]))
    assert (samples, peak) == (50, 1.5) and sr == 16000 and v.max() == pytest.approx(1.0, abs=1e-6)
    assert sf.info(str(paths["voice"])).subtype == "PCM_24"


def test_cli_many_inputs_one_bad(tmp_path, capsys, model_file):
    folder = tmp_path / "songs"
    write_clip(folder / "one.wav", seconds=1.0)
    write_clip(folder / "two.flac", seconds=1.5, seed=1)
    bad = tmp_path / "bad.wav"
    x = np.zeros((8000, 2), np.float32)
    x[100, 0] = np.inf
    sf.write(str(bad), x, 16000, subtype="FLOAT")
    extra = [tmp_path / "missing.ogg"]
    if HAS_MP3:
        y = np.random.default_rng(2).standard_normal((22050, 2)).astype(np.float32) * 0.1
        sf.write(str(tmp_path / "three.mp3"), y, 22050, format="MP3", subtype="MPEG_LAYER_III")
        extra.append(tmp_path / "three.mp3")
    out = tmp_path / "out"
    rc, text = _run(
        capsys,
        folder,
        bad,
        *extra,
        "--model",
        model_file,
        "-o",
        out,
        "--stems",
        "voice",
        "--format",
        "flac",
        "--bit-depth",
        "24",
    )
    assert rc == 2
    assert "bad.wav: holds NaN or infinite samples" in text and "missing.ogg: no such file" in text
    assert "2 of" in text  # two inputs failed, the others were written
    for name, rate in [("one", 16000), ("two", 16000)] + ([("three", 22050)] if HAS_MP3 else []):
        info = sf.info(str(out / name / "voice.flac"))
        assert (info.samplerate, info.subtype) == (rate, "PCM_24")
        assert not (out / name / "accompaniment.flac").exists()
    assert not (out / "bad").exists() or not list((out / "bad").iterdir())


def test_cli_full_band_flags(tmp_path, capsys, model_file):
    song = write_clip(tmp_path / "s.wav", seconds=1.0)
    rc, text = _run(
        capsys, song, "--model", model_file, "-o", tmp_path / "o", "--no-full-band", "--float"
    )
    assert rc == 0, text
    assert sf.info(str(tmp_path / "o" / "s" / "voice.wav")).subtype == "FLOAT"
    rc, text = _run(
        capsys,
        "--model",
        model_file,
        "--catalogue",
        tmp_path / "c.tsv",
        "--estimates",
        tmp_path / "e.npz",
        "--full-band",
    )
    assert rc == 2 and "workflow mode" in text

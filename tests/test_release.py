"""The shipped model: exporting a model.pt to release.pt + release.json, checking, loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import write_clip

from hourglass_sep.cli import main
from hourglass_sep.errors import UserError
from hourglass_sep.nets import release, shipped
from hourglass_sep.nets.inference import MODEL_FORMAT, load_model, read_model_file
from hourglass_sep.nets.model import build_model
from hourglass_sep.nets.settings import ArchConfig
from hourglass_sep.separation.separate import separate_waveform

ARCH = ArchConfig(stacks=2, channels=6, growth=4, stem=(6, 8), poolings=3)


@pytest.fixture(scope="module")
def model_pt(tmp_path_factory) -> Path:
    """A random network with non-trivial BatchNorm statistics, saved as `train` does."""
    torch.manual_seed(0)
    net = build_model(ARCH)
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    with torch.no_grad():  # masks around 0.5 (a random head's ReLU is often all zero)
        net.heads[-1][1].bias.fill_(0.5)
    path = tmp_path_factory.mktemp("m") / "model.pt"
    record = {"format": MODEL_FORMAT, "arch": ARCH.to_dict(), "state_dict": net.state_dict()}
    record.update(step=1234, wall_seconds=5.0, device="cpu", train={"lr": 0.002, "seed": 0})
    torch.save(record, path)
    return path


@pytest.fixture()
def exported(tmp_path, model_pt) -> Path:
    release.export_release(model_pt, tmp_path / "res", summary={"gnsdr_db": 1.0})
    return tmp_path / "res"


def test_export_is_compact_and_faithful(exported, model_pt):
    pt, js = exported / "release.pt", exported / "release.json"
    record = json.loads(js.read_text())
    assert record["md5"] == shipped.file_md5(pt) and record["bytes"] == pt.stat().st_size
    assert record["arch"] == ARCH.to_dict() and record["training"]["step"] == 1234
    assert record["train_config"] == {"lr": 0.002, "seed": 0}
    assert record["summary"] == {"gnsdr_db": 1.0} and record["dtype"] == "float16"
    assert record["prediction_change_fp16"] < 1e-2
    data = torch.load(pt, weights_only=True)
    assert {v.dtype for v in data["state_dict"].values()} <= {torch.float16, torch.int64}
    arch, _, _ = read_model_file(pt)
    assert arch == ARCH
    audio = np.random.default_rng(0).standard_normal((2, 16000)).astype(np.float32) * 0.1
    ref = separate_waveform(load_model(model_pt, "cpu", "fp32"), audio, 16000)
    est = separate_waveform(load_model(pt, "cpu", "fp32"), audio, 16000)
    for r, e in zip(ref, est):
        assert np.linalg.norm(e - r) / np.linalg.norm(r) < 1e-2


def test_shipped_model_checks(exported):
    assert shipped.shipped_model_path(exported) == exported / "release.pt"
    pt = exported / "release.pt"
    raw = bytearray(pt.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    pt.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="release.pt: md5 .* differs .* damaged or was replaced"):
        shipped.shipped_model_path(exported)
    (exported / "release.json").write_text("{broken")
    with pytest.raises(UserError, match="release.json: unreadable release record"):
        shipped.shipped_model_path(exported)
    pt.unlink()
    with pytest.raises(UserError, match="release.pt: the shipped model is missing.*--model"):
        shipped.shipped_model_path(exported)


def test_cli_default_model(tmp_path, capsys, exported, monkeypatch):
    monkeypatch.setattr(shipped, "RESOURCES", exported)
    song = write_clip(tmp_path / "song.wav", seconds=1.0)
    rc = main(["separate", str(song), "-o", str(tmp_path / "out"), "--no-progress"])
    text = capsys.readouterr()
    assert rc == 0, text
    assert sf.info(str(tmp_path / "out" / "song" / "voice.wav")).frames == 16000
    (exported / "release.pt").unlink()
    rc = main(["separate", str(song), "-o", str(tmp_path / "out2"), "--no-progress"])
    assert rc == 2 and "shipped model is missing" in capsys.readouterr().err


def test_export_refuses_bad_models(tmp_path):
    with pytest.raises(UserError, match="model file not found"):
        release.export_release(tmp_path / "nope.pt", tmp_path)
    rc = main(["export-release", str(tmp_path / "nope.pt"), str(tmp_path)])
    assert rc == 2


@pytest.mark.skipif(
    not (shipped.RESOURCES / "release.pt").exists(), reason="no shipped model in this checkout"
)
def test_the_shipped_model():
    """The file in the package: md5 as recorded, loads, separates a second of noise."""
    pt = shipped.shipped_model_path()
    record = json.loads((shipped.RESOURCES / "release.json").read_text())
    arch, state, _ = read_model_file(pt)
    assert arch.to_dict() == record["arch"]
    assert all(v.dtype in (torch.float16, torch.float32, torch.int64) for v in state.values())
    bundle = load_model(None, "cpu", "fp32")
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    v, a = separate_waveform(bundle, audio, 16000)
    assert v.shape == a.shape == (16000,) and np.isfinite(v).all() and np.abs(v).max() > 0


def test_the_export_record_names_its_source_relative_to_the_working_directory(
    tmp_path, model_pt, monkeypatch
):
    """A record shipped in the package must not carry the exporting machine's folders."""
    import shutil

    work = tmp_path / "work"
    (work / "models").mkdir(parents=True)
    shutil.copy(model_pt, work / "models" / "model.pt")
    monkeypatch.chdir(work)
    release.export_release((work / "models" / "model.pt").resolve(), work / "res")
    record = json.loads((work / "res" / "release.json").read_text())
    assert record["source"]["path"] == "models/model.pt"
    record = json.loads((shipped.RESOURCES / "release.json").read_text())
    assert not Path(record["source"]["path"]).is_absolute()

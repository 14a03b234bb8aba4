"""Network shapes, parameter counts (the report's table) and architecture validation."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from hourglass_sep.nets import kinds
from hourglass_sep.nets.kind_record import NetworkKind, network_kind, network_kinds
from hourglass_sep.nets.model import (
    ParkStackedHourglass,
    StackedHourglass,
    build_model,
    count_parameters,
)
from hourglass_sep.nets.settings import TARGETS, ArchConfig, setting_fields
from hourglass_sep.plan.model_info import conv_macs, model_info, peak_activation_bytes

pytestmark = pytest.mark.usefixtures("one_thread")


def _params_meta(cfg: ArchConfig) -> int:
    with torch.device("meta"):  # shapes only: counts the 42.8 M network without allocating it
        return count_parameters(build_model(cfg))


# (stacks, F, growth, target) -> parameters, from seed-method.md (the report's result.xlsx)
REPORT_TABLE = [
    (4, 64, 64, "masks", 34_689_752),  # "Ours"
    (4, 256, 0, "masks", 42_752_792),  # "Park's" (the report's PyTorch version)
    (1, 64, 64, "masks", 8_868_038),
    (2, 64, 64, "masks", 17_475_276),
    (3, 64, 64, "masks", 26_082_514),
    (2, 64, 0, "masks", 1_608_396),
    (4, 64, 0, "masks", 2_955_992),
    (1, 64, 64, "voice", 8_867_459),  # one-mask variants
    (1, 64, 64, "accompaniment", 8_867_459),
]


@pytest.mark.parametrize("stacks,channels,growth,target,expected", REPORT_TABLE)
def test_report_parameter_counts(stacks, channels, growth, target, expected):
    cfg = ArchConfig(stacks=stacks, channels=channels, growth=growth, target=target)
    assert _params_meta(cfg) == expected


def test_park_original_parameter_count():
    cfg = ArchConfig(
        kind="park-original", channels=256, growth=0, stem=(64, 128, 128, 128), poolings=4
    )
    assert _params_meta(cfg) == 34_176_776


def test_model_info_counts_match_and_real_run_agrees():
    info = model_info(ArchConfig())
    assert info["parameters"] == 34_689_752
    # 44.56 GMAC per 512x64 window -> 89.1 GFLOP; x 31.25/64 -> 43.5 GFLOP per second of audio
    assert info["gflop_per_window"] == pytest.approx(89.12, abs=0.01)
    assert info["gflop_per_second"] == pytest.approx(43.52, abs=0.01)
    # the meta-device figures equal a real (tiny) forward pass's
    cfg = ArchConfig(stacks=2, channels=8, growth=4, stem=(8, 8), poolings=3)
    small = model_info(cfg)
    net = build_model(cfg).eval()
    x = torch.rand(1, 1, 512, 64)
    assert conv_macs(net, x) * 2 / 1e9 == pytest.approx(small["gflop_per_window"])
    assert peak_activation_bytes(net, x) == small["peak_activation_bytes"]
    # fully convolutional: per-frame cost independent of the window length
    assert model_info(cfg, window_frames=128)["macs_per_frame"] == pytest.approx(
        small["macs_per_frame"]
    )


def test_model_info_cli(capsys):
    from hourglass_sep.cli import main

    assert (
        main(
            [
                "model-info",
                "--stacks",
                "1",
                "--channels",
                "8",
                "--growth",
                "8",
                "--stem",
                "8,8",
                "--json",
            ]
        )
        == 0
    )
    import json

    info = json.loads(capsys.readouterr().out)
    assert info["arch"]["stacks"] == 1 and info["arch"]["stem"] == [8, 8]
    assert info["parameters"] == _params_meta(
        ArchConfig(stacks=1, channels=8, growth=8, stem=(8, 8))
    )


def test_model_info_from_config(tmp_path, capsys):
    from hourglass_sep.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "variants:\n  small: {arch: {stacks: 1, channels: 8, growth: 0, stem: [8, 8]}}\n"
        "  noarch: {note: x}\n"
    )
    assert main(["model-info", "--variant", "small", "--config", str(cfg), "--json"]) == 0
    assert '"stacks": 1' in capsys.readouterr().out
    assert main(["model-info", "--variant", "noarch", "--config", str(cfg)]) == 2
    assert "no `arch:` mapping" in capsys.readouterr().err
    assert main(["model-info", "--variant", "other", "--config", str(cfg)]) == 2
    assert "no variant 'other'" in capsys.readouterr().err
    assert main(["model-info", "--stacks", "0"]) == 2
    assert "stacks=0" in capsys.readouterr().err


def test_model_info_reads_the_workflow_config(capsys):
    from pathlib import Path

    from hourglass_sep.cli import main

    cfg = Path(__file__).resolve().parents[1] / "config.yaml"
    if not cfg.exists() or "\n  ours:" not in cfg.read_text():
        pytest.skip(f"{cfg} has no variant 'ours'")
    assert (
        main(["model-info", "--variant", "ours", "--config", str(cfg), "--paper-scale", "--json"])
        == 0
    )
    import json

    assert json.loads(capsys.readouterr().out)["parameters"] == 34_689_752


@pytest.mark.parametrize("kind", ["hourglass", "park-original"])
@pytest.mark.parametrize("frames", [8, 40])
def test_forward_shapes(kind, frames):
    stem = (4, 8) if kind == "hourglass" else (4, 8, 8)
    cfg = ArchConfig(
        kind=kind,
        stacks=2,
        channels=8,
        growth=4 if kind == "hourglass" else 0,
        stem=stem,
        poolings=3,
    )
    net = build_model(cfg).eval()
    with torch.no_grad():
        preds = net(torch.rand(2, 1, 512, frames))
    assert len(preds) == 2
    assert all(p.shape == (2, 2, 512, frames) for p in preds)


def test_whole_clip_padding_handles_any_length():
    from hourglass_sep.nets.inference import prepare_model
    from hourglass_sep.separation.windowing import predict_whole, predict_windowed

    cfg = ArchConfig(stacks=1, channels=4, growth=4, stem=(4,), poolings=5, target="voice")
    bundle = prepare_model(build_model(cfg), cfg, "cpu", "fp32")
    lengths = [1, 7, 31, 33, 63, 65, 100]
    mags = [np.random.default_rng(t).random((512, t)).astype(np.float32) for t in lengths]
    for pad in ("reflect", "zero"):
        preds = predict_whole(bundle, mags, pad_mode=pad)
        for t, pred in zip(lengths, preds):
            assert pred.shape == (1, 512, t) and np.isfinite(pred).all()
    for t in (1, 65, 100):
        assert predict_windowed(bundle, mags[lengths.index(t)]).shape == (1, 512, t)


def test_arch_validation_errors():
    bad = [
        (dict(kind="wavenet"), "kind='wavenet'"),
        (dict(target="mask"), "target='mask'"),
        (dict(stacks=0), "stacks=0"),
        (dict(channels=0), "channels=0"),
        (dict(poolings=0), "poolings=0"),
        (dict(growth=-1), "growth=-1"),
        (dict(stem=()), "stem=()"),
        (dict(stem=(64, 0)), "stem=(64, 0)"),
        (dict(kind="park-original", growth=64), "growth must be 0"),
        (dict(kind="park-original", growth=0, target="voice"), "target=masks only"),
    ]
    for kwargs, needle in bad:
        with pytest.raises(ValueError, match="invalid architecture") as exc:
            ArchConfig(**kwargs)
        assert needle in str(exc.value), (kwargs, str(exc.value))
    with pytest.raises(ValueError, match="unknown architecture keys"):
        ArchConfig.from_dict({"stacks": 2, "width": 3})
    assert ArchConfig.from_dict(ArchConfig(stem=[8, 8]).to_dict()) == ArchConfig(stem=(8, 8))
    assert ArchConfig(poolings=4).time_multiple == 16


# ------------------------------------------------------------------ the network-kind registry
def _small(kind: NetworkKind) -> ArchConfig:
    """A small valid network of ``kind``: its pinned fields, its first target."""
    target = kind.targets[0] if kind.targets else "masks"
    values = dict(stacks=2, channels=4, growth=4, stem=(4, 4), poolings=2, target=target)
    return ArchConfig(**{**values, **kind.requires, "kind": kind.name})


def test_every_kind_module_is_registered_once():
    import pkgutil

    modules = [m.name for m in pkgutil.iter_modules(kinds.__path__)]
    assert len(modules) == len(network_kinds())
    arch_fields = {f.name for f in setting_fields(ArchConfig)} - {"kind"}
    for name, rec in network_kinds().items():
        assert rec.name == name and rec.description and callable(rec.build)
        assert set(rec.uses) | set(rec.requires) <= arch_fields, name
        assert set(rec.uses).isdisjoint(rec.requires), name
        assert rec.targets is None or set(rec.targets) <= set(TARGETS), name
        assert name in ArchConfig.__dataclass_fields__["kind"].metadata["help"]
    assert network_kind("seed").name == "hourglass"  # an old name
    with pytest.raises(ValueError, match="unknown network kind 'wavenet'.*park-original"):
        network_kind("wavenet")


@pytest.mark.parametrize("name", list(network_kinds()))
def test_every_kind_builds_and_predicts_per_stack(name):
    """A kind's record builds a network that predicts ``outputs`` maps at every stack."""
    kind = network_kind(name)
    cfg = _small(kind)
    net = build_model(cfg).eval()
    assert type(net) is type(kind.build(cfg)) and count_parameters(net) > 0
    x = torch.rand(1, 1, 512, 2 * cfg.time_multiple)
    with torch.no_grad():
        preds = net(x)
    assert len(preds) == cfg.stacks
    assert all(p.shape == (1, cfg.outputs, 512, x.shape[-1]) for p in preds)
    for field_name, value in kind.requires.items():  # the pinned fields are checked
        other = (*value, 1) if isinstance(value, tuple) else 1 + int(value)
        msg = re.escape(f"{field_name} must be {value} for kind={name}")
        with pytest.raises(ValueError, match=msg):
            ArchConfig(**{**cfg.to_dict(), field_name: other})


def test_the_kinds_build_the_networks_they_always_built():
    """The registry changed where a kind is defined, not what it builds (parameter counts above;
    the classes, hence the state_dict keys, here)."""
    assert type(build_model(ArchConfig(stacks=1, channels=4, growth=4))) is StackedHourglass
    park = ArchConfig(kind="park-original", stacks=1, channels=4, growth=0, poolings=2)
    assert type(build_model(park)) is ParkStackedHourglass
    assert type(build_model({**park.to_dict(), "kind": "park-original"})) is ParkStackedHourglass


def test_kind_records_load_without_torch():
    """The Snakefile reads the records in a dry run: no kind module imports torch at the top."""
    import subprocess
    import sys

    code = (
        "import sys; from hourglass_sep.nets.kind_record import network_kinds; "
        "import hourglass_sep.plan.experiments; network_kinds(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

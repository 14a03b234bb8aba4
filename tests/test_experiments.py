"""Variant resolution: how a scale preset turns the paper-scale entries into runs."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO

from hourglass_sep.experiments import ConfigError, resolve, resolve_variant, train_flags

OURS = {
    "arch": {"stacks": 4, "channels": 64, "growth": 64},
    "train": {"iterations": 30000, "lr": 0.01},
    "evaluate": [
        {"step": 15000, "report_row": 15, "reported": {"voice": [10.284, 15.74, 12.254]}},
        {"step": 30000, "report_row": 14},
    ],
}


def test_paper_scale_keeps_the_entry():
    v = resolve_variant("ours", OURS, {})
    assert (v.arch["channels"], v.arch["growth"], v.arch["stem"]) == (64, 64, [64, 128, 128])
    assert v.train["iterations"] == 30000 and v.train["precise_bn"] == 0
    assert [e.step for e in v.evaluations] == [15000, 30000]
    assert v.evaluations[0].reported["voice"] == {"gnsdr": 10.284, "gsir": 15.74, "gsar": 12.254}


def test_scale_shrinks_widths_iterations_and_keeps_evaluation_fractions():
    scale = {
        "width_divisor": 5.3333,
        "stem": [12, 24, 24],
        "iterations": 0.04,
        "min_iterations": 100,
        "precise_bn": 50,
    }
    v = resolve_variant("ours", OURS, scale)
    assert (v.arch["channels"], v.arch["growth"], v.arch["stem"]) == (12, 12, [12, 24, 24])
    assert v.train["iterations"] == 1200 and [e.step for e in v.evaluations] == [600, 1200]
    assert [e.paper_step for e in v.evaluations] == [15000, 30000]
    assert v.train["precise_bn"] == 50 and "--precise-bn 50" in train_flags(
        v.train, v.snapshot_steps
    )
    short = resolve_variant("short", {"train": {"iterations": 1000, "lr": 0.1}}, scale)
    assert short.train["iterations"] == 100  # the floor
    own = resolve_variant("own", {"train": {"iterations": 1000, "precise_bn": 0}}, scale)
    assert own.train["precise_bn"] == 0  # a variant's own setting wins over the scale's


def test_park_original_stem_keeps_its_extra_conv():
    spec = {
        "arch": {
            "kind": "park-original",
            "channels": 256,
            "growth": 0,
            "stem": [64, 128, 128, 128],
            "poolings": 4,
        }
    }
    v = resolve_variant("po", spec, {"stem": [12, 24, 24], "width_divisor": 5.3333})
    assert v.arch["stem"] == [12, 24, 24, 24] and v.arch["channels"] == 48


@pytest.mark.parametrize(
    "spec, scale, key",
    [
        ({"arch": {"widht": 3}}, {}, "variants.bad.arch"),
        ({"train": {"lr_decay": 3}}, {}, "variants.bad.train"),
        (
            {"train": {"iterations": 100}, "evaluate": [{"step": 200}]},
            {},
            r"variants.bad.evaluate\[0\].step",
        ),
        (
            {"train": {"iterations": 1000}, "evaluate": [{"step": 999}, {"step": 1000}]},
            {"iterations": 0.001},
            "variants.bad.evaluate: two evaluations",
        ),
        (
            {"evaluate": [{"reported": {"voice": [1, 2]}}]},
            {},
            r"variants.bad.evaluate\[0\].reported.voice",
        ),
    ],
)
def test_errors_name_the_key(spec, scale, key):
    with pytest.raises(ConfigError, match=key):
        resolve_variant("bad", spec, scale)


def test_every_preset_resolves_every_variant():
    """The shipped config + each preset: every variant resolves, and the preset changes no variant
    entry, only the scale (widths, iterations, BN statistics)."""
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    paper = resolve(base)
    for preset in ("cpu", "demo", "tiny"):
        over = yaml.safe_load((REPO / "configs" / f"{preset}.yaml").read_text())
        assert "variants" not in over, preset
        cfg = {**base, **over}
        runs = resolve(cfg)
        assert set(runs) <= set(paper)
        for name, v in runs.items():
            assert (
                v.train["lr"] == paper[name].train["lr"]
                and v.train["sampling"] == paper[name].train["sampling"]
            )
            assert v.train["iterations"] <= paper[name].train["iterations"]


def test_weight_average_from_the_scale_and_its_precise_bn_requirement():
    scale = {"precise_bn": 50, "weight_average": 0.99}
    v = resolve_variant("ours", OURS, scale)
    assert v.train["weight_average"] == 0.99
    assert "--weight-average 0.99" in train_flags(v.train, v.snapshot_steps)
    # without precise BN the averaged weights would be evaluated with the raw weights' BN statistics
    with pytest.raises(
        ConfigError, match=r"variants\.own\.train: .*weight_average 0\.99 needs precise_bn > 0"
    ):
        resolve_variant("own", {"train": {"precise_bn": 0}}, scale)


def test_longest_training_gets_the_highest_priority():
    from hourglass_sep.experiments import training_priorities

    variants = {
        "big": resolve_variant(
            "big", {"arch": {"channels": 256, "growth": 0}, "train": {"iterations": 1000}}, {}
        ),
        "small": resolve_variant(
            "small", {"arch": {"channels": 8, "growth": 8}, "train": {"iterations": 1000}}, {}
        ),
        "long": resolve_variant(
            "long", {"arch": {"channels": 8, "growth": 8}, "train": {"iterations": 5000}}, {}
        ),
    }
    assert training_priorities(variants) == {"small": 1, "long": 2, "big": 3}

"""Variant resolution: how a scale preset turns the paper-scale entries into runs."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO

from hourglass_sep.nets.settings import ArchConfig, TrainConfig
from hourglass_sep.plan.experiments import (
    ConfigError,
    Variant,
    experiment_rows,
    resolve,
    resolve_variant,
    train_flags,
)

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
    assert (v.arch.channels, v.arch.growth, v.arch.stem) == (64, 64, (64, 128, 128))
    assert v.train.iterations == 30000 and v.train.precise_bn == 0
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
    assert (v.arch.channels, v.arch.growth, v.arch.stem) == (12, 12, (12, 24, 24))
    assert v.train.iterations == 1200 and [e.step for e in v.evaluations] == [600, 1200]
    assert [e.paper_step for e in v.evaluations] == [15000, 30000]
    assert v.train.precise_bn == 50 and "--precise-bn 50" in train_flags(v.train, v.snapshot_steps)
    short = resolve_variant("short", {"train": {"iterations": 1000, "lr": 0.1}}, scale)
    assert short.train.iterations == 100  # the floor
    own = resolve_variant("own", {"train": {"iterations": 1000, "precise_bn": 0}}, scale)
    assert own.train.precise_bn == 0  # a variant's own setting wins over the scale's


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
    assert v.arch.stem == (12, 24, 24, 24) and v.arch.channels == 48


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
        assert {v.base_variant for v in runs.values()} <= set(paper)
        cap = (over.get("scale") or {}).get("max_lr") or float("inf")
        for v in runs.values():
            ref = paper[v.base_variant]
            if v.free:  # a training-free method: nothing to scale
                assert v.train is None and v.settings == ref.settings and v.kind == ref.kind
                continue
            assert v.train.lr == min(ref.train.lr, cap)  # a preset may only cap the lr
            assert v.train.sampling == ref.train.sampling
            assert v.train.iterations <= ref.train.iterations


def test_weight_average_from_the_scale_and_its_precise_bn_requirement():
    scale = {"precise_bn": 50, "weight_average": 0.99}
    v = resolve_variant("ours", OURS, scale)
    assert v.train.weight_average == 0.99
    assert "--weight-average 0.99" in train_flags(v.train, v.snapshot_steps)
    # without precise BN the averaged weights would be evaluated with the raw weights' BN statistics
    with pytest.raises(
        ConfigError, match=r"variants\.own\.train: .*weight_average 0\.99 needs precise_bn > 0"
    ):
        resolve_variant("own", {"train": {"precise_bn": 0}}, scale)


def test_longest_training_gets_the_highest_priority():
    from hourglass_sep.plan.experiments import training_priorities

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


# ----------------------------------------------------------------- replicates, evaluation variants
def _config(**top):
    return {
        "variants": {
            "ours": OURS,
            "ours-100": {"model": "ours", "evaluation": {"test_clips": 100}},
            "ours-1win": {
                "model": "ours",
                "evaluation": {"windows_per_batch": 1, "backend": "mir_eval"},
                "evaluate": [{"step": 15000, "report_row": 1}],
            },
        },
        **top,
    }


def test_replicates_are_runs_with_their_own_seeds():
    runs = resolve(_config(replicates=3))
    trained = {n: v.train.seed for n, v in runs.items() if v.trains}
    assert trained == {"ours": 0, "ours.s1": 1, "ours.s2": 2}
    assert [e.report_row for e in runs["ours"].evaluations] == [15, 14]
    assert [e.report_row for e in runs["ours.s1"].evaluations] == [None, None]
    assert runs["ours.s2"].base_variant == "ours" and runs["ours.s2"].replicate == 2


def test_listed_seeds_and_a_replicate_only_entry():
    spec = {**OURS, "seeds": [5, 9]}
    spec["evaluate"] = [*OURS["evaluate"], {"step": 15000, "replicate": 1, "report_row": 13}]
    runs = resolve({"variants": {"ours": spec}})
    assert {n: v.train.seed for n, v in runs.items()} == {"ours": 5, "ours.s9": 9}
    assert [e.report_row for e in runs["ours.s9"].evaluations] == [13, None]


def test_evaluation_variants_use_the_models_snapshots_and_replicates():
    runs = resolve(_config(replicates=2))
    v = runs["ours-1win"]
    assert not v.trains and v.model == "ours" and v.evaluation["backend"] == "mir_eval"
    assert [e.step for e in v.evaluations] == [15000] and v.evaluations[0].report_row == 1
    assert runs["ours-1win.s1"].model == "ours.s1"
    assert runs["ours-100"].subset == 100
    assert [e.step for e in runs["ours-100"].evaluations] == [30000]  # the model's last


def test_evaluation_variant_errors_name_the_key():
    cfg = _config()
    cfg["variants"]["ours-100"]["arch"] = {"stacks": 2}
    with pytest.raises(ConfigError, match=r"variants\.ours-100: \['arch'\] belong to"):
        resolve(cfg)
    cfg = _config()
    cfg["variants"]["ours-100"]["evaluation"]["backend"] = "museval"
    with pytest.raises(ConfigError, match=r"ours-100\.evaluation: test_clips .* cannot be"):
        resolve(cfg)
    cfg = _config()
    cfg["variants"]["ours-1win"]["model"] = "nope"
    with pytest.raises(ConfigError, match=r"variants\.ours-1win\.model: 'nope' is not a trained"):
        resolve(cfg)


def test_paper_config_has_every_row_of_the_report():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    rows = {e.report_row for v in resolve(config).values() for e in v.evaluations}
    assert set(range(1, 20)) <= rows  # all 19 rows of the report's experiment log


def test_runs_hold_settings_objects_and_are_built_by_keyword():
    """A run's arch/train are the checked dataclasses (the job's flags and experiments.json are
    made from their fields); a Variant takes keyword arguments only."""
    v = resolve(_config(replicates=2))["ours.s1"]
    assert isinstance(v.arch, ArchConfig) and isinstance(v.train, TrainConfig)
    assert v.train.seed == 1 and v.train.iterations == 30000
    with pytest.raises(TypeError):
        Variant("x", "", v.arch, v.train)  # positional: refused
    assert Variant(name="x", note="", arch=v.arch, train=v.train).model == "x"


def test_experiment_rows_come_from_the_resolved_runs():
    """experiments.json's rows are made from the runs of the DAG, without torch: one per
    evaluation, settings as config.yaml writes them, the parameter count left to the job."""
    runs = resolve(_config(replicates=2))
    rows = experiment_rows(runs, "results/x", "paper")
    assert [(r["variant"], r["step"]) for r in rows] == [
        (v.name, e.step) for v in runs.values() for e in v.evaluations
    ]
    row = next(r for r in rows if r["variant"] == "ours-1win.s1")
    assert row["model"] == "ours.s1" and row["seed"] == 1 and row["parameters"] is None
    assert row["arch"]["stem"] == [64, 128, 128] and row["train"]["seed"] == 1
    assert "device" not in row["train"] and "precision" not in row["train"]  # job settings
    assert row["train_info"] == "results/x/models/ours.s1/train.json"

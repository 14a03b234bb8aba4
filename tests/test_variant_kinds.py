"""Variant kinds: a config entry's ``kind`` makes it a network (the report's hourglass, a
learned peer) or a training-free method (one deterministic run at step 0), and the Methods
table's rows are resolved against the runs (plan.experiments, plan.methods)."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import REPO

from hourglass_sep.methods.record import method_kinds
from hourglass_sep.nets.kind_record import UNUSED_STEM
from hourglass_sep.plan.experiments import (
    ConfigError,
    _kind_of,
    _network_spec,
    experiment_rows,
    experiments_table,
    resolve,
    resolve_bases,
    resolve_free,
    training_priorities,
)
from hourglass_sep.plan.methods import methods_oracle, methods_rows

TRAINED = {"arch": {"channels": 8, "growth": 8}, "train": {"iterations": 100}}
UNET = {"kind": "unet", "arch": {"channels": 30, "poolings": 6}, "train": {"iterations": 100}}
SCALE = {"width_divisor": 5.3333, "stem": [12, 24, 24]}


def shipped() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def _cfg(extra: dict | None = None, **top) -> dict:
    return {"variants": {"ours": copy.deepcopy(TRAINED), **(extra or {})}, **top}


# ---------------------------------------------------------------- training-free entries
def test_a_training_free_entry_is_one_run_at_step_0_even_with_replicates():
    runs = resolve(_cfg({"repet": {"kind": "repet-sim"}}, replicates=3))
    assert sorted(runs) == ["ours", "ours.s1", "ours.s2", "repet"]  # one run, no repet.s1
    v = runs["repet"]
    assert v.free and not v.trains and v.family == "training-free"
    assert v.arch is None and v.train is None and v.kind == "repet-sim"
    assert [(e.step, e.paper_step) for e in v.evaluations] == [(0, 0)]
    assert v.settings == method_kinds()["repet-sim"].resolved({})
    assert v.settings["width_seconds"] == 2.0 and v.settings["band"] == "protocol"
    assert v.note == method_kinds()["repet-sim"].description  # the default note
    assert v.replicate == 0 and v.base_variant == "repet" and v.model == "repet"


def test_an_oracle_entry_takes_its_method_settings():
    bases = resolve_bases(_cfg({"irm": {"kind": "oracle-irm", "method": {"band": "full"}}}))
    v = bases["irm"]
    assert v.free and v.family == "oracle" and v.kind == "oracle-irm"
    assert v.settings["band"] == "full"
    assert v.settings == method_kinds()["oracle-irm"].resolved({"band": "full"})


def test_resolve_free_checks_and_fills_the_settings():
    v = resolve_free("r", {"kind": "repet-sim", "method": {"power": 1}, "label": "R"})
    assert v.settings["power"] == 1.0 and isinstance(v.settings["power"], float)
    assert v.label == "R" and v.trains is False
    v = resolve_free("r", {"kind": "rpca", "evaluate": [{"report_row": 3, "reported": None}]})
    assert v.evaluations[0].step == 0 and v.evaluations[0].report_row == 3


@pytest.mark.parametrize(
    "spec, key",
    [
        ({"kind": "repet-sim", "method": {"widht": 3}}, r"variants\.x\.method\.widht: "),
        (
            {"kind": "repet-sim", "method": {"width_seconds": -1}},
            r"variants\.x\.method\.width_seconds: -1",
        ),
        ({"kind": "repet-sim", "arch": {"channels": 3}}, r"variants\.x: \['arch'\] do not apply"),
        ({"kind": "rpca", "train": {"iterations": 3}}, r"variants\.x: \['train'\] do not apply"),
        ({"kind": "rpca", "replicates": 3}, r"variants\.x: \['replicates'\] do not apply"),
        ({"kind": "oracle-ibm", "seeds": [1, 2]}, r"variants\.x: \['seeds'\] do not apply"),
        (
            {"kind": "repet-sim", "evaluate": [{"step": 5}]},
            r"variants\.x\.evaluate: a training-free method is evaluated once, at step 0",
        ),
        ({"kind": "repet-sim", "evaluate": [{}, {}]}, r"variants\.x\.evaluate: "),
        ({"kind": "repet-sim", "evaluate": [{"replicate": 1}]}, r"variants\.x\.evaluate: "),
        ({"kind": "unet", "arch": {"kind": "hourglass"}}, r"variants\.x: kind 'unet' and arch"),
        ({"kind": "unet", "method": {"band": "full"}}, r"variants\.x\.method: method settings"),
        ({"method": {"band": "full"}}, r"variants\.x\.method: "),  # the hourglass, no kind
    ],
)
def test_errors_name_the_key(spec, key):
    with pytest.raises(ConfigError, match=key):
        resolve(_cfg({"x": spec}))


def test_an_unknown_kind_lists_the_networks_and_the_methods():
    with pytest.raises(ConfigError, match=r"variants\.x\.kind: unknown kind 'wavenet'") as exc:
        resolve(_cfg({"x": {"kind": "wavenet"}}))
    msg = str(exc.value)
    for name in ("hourglass", "park-original", "unet", "open-unmix"):
        assert name in msg.split("training-free methods:")[0]
    for name in ("repet-sim", "rpca", "oracle-irm", "oracle-ibm"):
        assert name in msg.split("training-free methods:")[1]
    with pytest.raises(ConfigError, match=r"variants\.y\.kind: unknown kind 'wavenet'"):
        _kind_of("y", {"arch": {"kind": "wavenet"}})  # arch.kind is read too


def test_kind_of_reads_kind_then_arch_kind_then_the_default():
    assert _kind_of("x", {}) == "hourglass"
    assert _kind_of("x", {"arch": {"kind": "unet"}}) == "unet"
    assert _kind_of("x", {"kind": "rpca"}) == "rpca"
    assert _kind_of("x", {"kind": "seed"}) == "seed"  # an old name of a network kind


def test_an_evaluation_variant_of_a_training_free_run_is_refused():
    cfg = _cfg({"r": {"kind": "rpca"}, "e": {"model": "r", "evaluation": {"test_clips": 3}}})
    with pytest.raises(ConfigError, match=r"variants\.e\.model: 'r' is not a trained variant"):
        resolve(cfg)


def test_a_method_named_as_arch_kind_is_a_config_error():
    with pytest.raises(
        ConfigError, match=r"variants\.x\.arch\.kind: .repet-sim. is a training-free method"
    ):
        resolve(_cfg({"x": {"arch": {"kind": "repet-sim"}}}))


# ---------------------------------------------------------------- network kinds
def test_network_spec_moves_kind_into_arch():
    assert _network_spec("x", {"kind": "unet", "arch": {"channels": 3}})["arch"] == {
        "channels": 3,
        "kind": "unet",
    }
    same = {"arch": {"channels": 3}}
    assert _network_spec("x", same) is same  # no kind: unchanged
    assert _network_spec("x", {"kind": "unet", "arch": {"kind": "unet"}})["arch"]["kind"] == "unet"


def test_a_unet_entry_gets_its_kinds_pins_as_defaults():
    v = resolve(_cfg({"unet": UNET}, replicates=2))["unet"]
    assert v.arch.kind == "unet" and v.kind == "unet" and v.family == "learned peer"
    assert (v.arch.channels, v.arch.poolings) == (30, 6)
    assert (v.arch.stacks, v.arch.growth, v.arch.stem) == (1, 0, UNUSED_STEM)
    assert v.trains and not v.free and v.settings == {}


def test_a_scale_stem_leaves_the_peers_stems_at_their_pin():
    """A kind that pins ``stem`` has none: a preset's stem leaves the pin (no hook needed)."""
    umx = {"kind": "open-unmix", "arch": {"channels": 1280, "poolings": 3}}
    scaled = resolve(
        _cfg({"unet": UNET, "umx": {**umx, "train": {"iterations": 100}}}, scale=SCALE)
    )
    u, x, ours = scaled["unet"], scaled["umx"], scaled["ours"]
    assert u.arch.stem == UNUSED_STEM and u.arch.channels == 6  # 30 / 5.3333
    assert x.arch.stem == UNUSED_STEM and x.arch.channels == 240  # 1280 / 5.3333
    assert u.arch.growth == 0 and u.arch.stacks == 1
    assert ours.arch.stem == (12, 24, 24)  # the hourglass takes the preset's stem


def test_hourglass_entries_with_or_without_kind_are_the_hourglass_family():
    runs = resolve(
        _cfg({"h": {"kind": "hourglass", **TRAINED}, "old": {"kind": "seed", **TRAINED}})
    )
    for name in ("ours", "h", "old"):
        assert runs[name].family == "hourglass" and runs[name].kind == "hourglass", name


def test_the_shipped_config_has_every_family():
    runs = resolve({**shipped(), "replicates": 3})
    fam = {n: v.family for n, v in runs.items() if v.replicate == 0}
    assert fam["ours"] == fam["park-original"] == "hourglass"
    assert fam["unet"] == fam["open-unmix"] == "learned peer"
    assert fam["repet-sim"] == fam["rpca"] == "training-free"
    assert fam["oracle-irm"] == fam["oracle-ibm"] == fam["oracle-irm-full"] == "oracle"
    assert runs["oracle-irm-full"].settings["band"] == "full"
    free = {"repet-sim", "rpca", "oracle-irm", "oracle-ibm", "oracle-irm-full"}
    assert {n for n, v in runs.items() if v.free} == free  # one run each, no .s1 / .s2
    assert {"unet.s1", "unet.s2", "open-unmix.s2"} <= set(runs)


# ---------------------------------------------------------------- experiments.json rows
def test_experiment_rows_of_a_training_free_run():
    runs = resolve(
        _cfg({"e": {"model": "ours", "evaluation": {"test_clips": 3}}, "r": {"kind": "rpca"}})
    )
    rows = {r["variant"]: r for r in experiment_rows(runs, "results/x", "paper")}
    r = rows["r"]
    assert (r["step"], r["paper_step"], r["model"], r["replicate"]) == (0, 0, "r", 0)
    for key in ("arch", "train", "seed", "train_info", "history", "parameters"):
        assert r[key] is None, key
    assert (r["method"], r["method_family"], r["trains"]) == ("rpca", "training-free", False)
    assert r["method_settings"] == method_kinds()["rpca"].resolved({})
    o = rows["ours"]
    assert (o["method"], o["method_family"], o["trains"]) == ("hourglass", "hourglass", True)
    assert o["method_settings"] is None and o["seed"] == 0
    assert o["train_info"] == "results/x/models/ours/train.json"
    # an evaluation variant has seeds: not deterministic (claims.experiments_io.mark_deterministic)
    assert rows["e"]["trains"] is True and rows["e"]["method"] == "hourglass"


def test_experiments_table_gives_a_training_free_run_no_parameters():
    runs = resolve(
        _cfg({"r": {"kind": "rpca"}, "i": {"kind": "oracle-irm"}}, run_variants=["r", "i"])
    )
    rows = experiment_rows(runs, "results/x", "paper")
    table = experiments_table(rows, {"preset": "paper"})
    assert table["meta"] == {"preset": "paper"}
    assert [(r["variant"], r["parameters"]) for r in table["rows"]] == [("r", 0), ("i", 0)]
    assert all(r["parameters"] is None for r in rows)  # the input rows are left unchanged


def test_training_priorities_rank_only_trained_runs():
    cfg = _cfg(
        {
            "unet": UNET,
            "r": {"kind": "repet-sim"},
            "i": {"kind": "oracle-ibm"},
            "e": {"model": "ours", "evaluation": {"test_clips": 3}},
        },
        replicates=2,
    )
    runs = resolve(cfg)
    prio = training_priorities(runs)
    assert set(prio) == {"ours", "ours.s1", "unet", "unet.s1"}
    assert sorted(prio.values()) == [1, 2, 3, 4]


# ---------------------------------------------------------------- the Methods table's rows
def test_methods_rows_follow_the_config_at_the_runs_scale():
    cfg = {**shipped(), "scale": {**SCALE, "iterations": 0.04, "min_iterations": 100}}
    cfg["run_variants"] = ["ours", "unet", "repet-sim", "oracle-irm"]
    runs = resolve(cfg)
    rows, skipped = methods_rows(cfg, runs)
    assert rows == [
        {"variant": "ours", "step": 600},  # {variant: ours, step: 15000} at x 0.04
        {"variant": "unet", "step": 600},  # its last (only) step
        {"variant": "repet-sim", "step": 0},
        {"variant": "oracle-irm", "step": 0},
    ]
    assert skipped == ["parks", "open-unmix", "rpca", "oracle-ibm", "oracle-irm-full"]
    assert methods_oracle(cfg) == "oracle-irm"


def test_a_plain_name_is_the_variants_last_step():
    cfg = shipped()
    cfg["methods_table"] = {"rows": ["ours", {"variant": "ours", "step": 15000}, "rpca"]}
    rows, skipped = methods_rows(cfg, resolve(cfg))
    assert rows == [
        {"variant": "ours", "step": 30000},
        {"variant": "ours", "step": 15000},
        {"variant": "rpca", "step": 0},
    ]
    assert skipped == []


@pytest.mark.parametrize(
    "rows, key",
    [
        (["ours", "nope"], r"methods_table\.rows\[1\]: 'nope' is not a variant"),
        ([{"variant": "ours", "step": 20000}], r"methods_table\.rows\[0\]\.step: 'ours' is not"),
        (["ours", {"variant": "rpca", "step": 5}], r"methods_table\.rows\[1\]\.step: "),
    ],
)
def test_methods_rows_errors_name_the_row(rows, key):
    cfg = shipped()
    cfg["methods_table"] = {"rows": rows}
    with pytest.raises(ConfigError, match=key):
        methods_rows(cfg, resolve(cfg))


def test_methods_oracle_must_be_a_variant():
    cfg = shipped()
    cfg["methods_table"] = {"oracle": "oracle-xyz", "rows": []}
    with pytest.raises(ConfigError, match=r"methods_table\.oracle: 'oracle-xyz' is not a variant"):
        methods_oracle(cfg)
    assert methods_oracle({"variants": {"a": {}}}) is None  # no table: no oracle
    assert methods_rows({"variants": {"a": {}}}, {}) == ([], [])


def test_one_row_makes_no_methods_table():
    """The tiny preset runs Ours alone of the table's rows: one method compares nothing, so
    no table (and no Methods figure); the row is listed among those left out."""
    cfg = shipped()
    cfg["run_variants"] = ["ours", "voice-mask"]
    rows, skipped = methods_rows(cfg, resolve(cfg))
    assert rows == [] and "ours" in skipped and "unet" in skipped

"""The report's claims encoded faithfully: the config's claims carry the report's sentences
(verbatim), rows and family; claims on several parts (sources, metrics) get a claim-level
intersection-union row; the all-metrics and trains kinds on constructed data with known
answers."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, SHARED
from test_claims import KNOWN, claim, evaluate, noisy, run_scores

from hourglass_sep.claims.kinds.trains import history_paths, loss_fall
from hourglass_sep.claims.runs import known_runs_from_config
from hourglass_sep.claims.spec import validate_claims
from hourglass_sep.claims.tables import (
    COLUMNS,
    ONE_SEED,
    claim_verdict,
    effects_table,
    verdict_counts,
)
from hourglass_sep.errors import UserError

SEED_TEXT = SHARED / "seeds" / "000_b38763a98ec19e0e.txt"
N = 240
SIX = [(s, m) for s in ("voice", "accompaniment") for m in ("gnsdr", "gsir", "gsar")]


def config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.fixture(scope="module")
def claims_by_id() -> dict:
    return {c["id"]: c for c in config()["claims"]}


@pytest.fixture(scope="module")
def base():
    return np.random.default_rng(11).normal(9, 3, N)


# ---------------------------------------------------------------- the config's claims
def test_config_claims_validate_and_carry_words_rows_and_family():
    cfg = config()
    checked = validate_claims(cfg["claims"], known_runs_from_config(cfg))
    assert len(checked) == len(cfg["claims"]) >= 25
    for c in checked:
        assert c["family"] in ("confirmatory", "exploratory"), c["id"]
        assert c["sentence_en"].strip(), c["id"]
        assert all(1 <= r <= 19 for r in c["rows"]), c["id"]  # the log has 19 rows
        if c["family"] == "confirmatory":
            assert c["sentence_zh"].strip(), f"{c['id']}: the report states it, so quote it"


@pytest.mark.skipif(not SEED_TEXT.is_file(), reason=f"seed text not found at {SEED_TEXT}")
def test_every_chinese_sentence_is_the_reports_verbatim():
    seed = SEED_TEXT.read_text(encoding="utf-8")
    for c in config()["claims"]:
        if c["sentence_zh"]:
            assert c["sentence_zh"] in seed, c["id"]


def test_claims_are_encoded_as_the_report_words_them(claims_by_id):
    ours = claims_by_id["ours-vs-parks"]  # "comparable or even better": non-inferiority
    assert (ours["expect"], ours["margin"], ours["source"]) == ("not-less", 0.5, "both")
    assert ours["rows"] == [15, 16] and "0.37" in ours["note"]
    for cid, b in (("stacks-4-beat-1", "grow-1stack"), ("stacks-4-beat-2", "grow-2stack")):
        c = claims_by_id[cid]
        assert (c["family"], c["expect"], c["compare"]) == (
            "confirmatory",
            "greater",
            {"a": "grow-4stack", "b": b},
        )
    assert "chain" in claims_by_id["stacks-order"]["compare"]
    six = claims_by_id["uniform-lr-beats-ours"]
    assert six["expect"] == "greater-all" and six["family"] == "confirmatory"
    park = claims_by_id["best-beats-park-paper"]
    assert park["expect"] == "above-all" and park["threshold_source"] == "Park's paper"
    assert park["compare"]["threshold"]["voice"] == {"gnsdr": 10.51, "gsir": 16.01, "gsar": 12.53}
    ours_reading = [
        "grow-vs-const-2stack", "grow-vs-const-4stack", "longer-training-no-gain",
        "lr-alone-beats-ours", "sampling-alone-beats-ours", "softplus-trains",
        "softplus-voice-above-mixture", "relu-head-silent-at-softplus-lr", "stacks-order",
        "windows-same-metrics", "museval-same-metrics",
    ]  # fmt: skip
    assert all(claims_by_id[i]["family"] == "exploratory" for i in ours_reading)
    assert claims_by_id["softplus-trains"]["expect"] == "trains"


def test_the_relu_control_differs_from_softplus_only_in_its_head():
    cfg = config()
    relu, soft = cfg["variants"]["end-to-end-lr1e-3"], cfg["variants"]["end-to-end-softplus"]
    assert relu["train"] == soft["train"]  # same lr, same steps
    assert relu["arch"] == {**soft["arch"], "target": "end-to-end"}
    assert relu["evaluate"][0]["step"] == soft["evaluate"][0]["step"]
    cpu = yaml.safe_load((REPO / "configs" / "cpu.yaml").read_text())
    assert {"end-to-end-lr1e-3", "end-to-end-softplus"} <= set(cpu["run_variants"])


# ---------------------------------------------------------------- claim-level rows
@pytest.mark.parametrize(
    "parts, want",
    [
        (["holds", "holds"], "holds"),
        (["holds", "contradicted"], "contradicted"),
        (["holds", "inconclusive"], "inconclusive"),
        (["no data", "contradicted"], "contradicted"),
        (["holds", "no data"], "no data"),
        (["holds", ONE_SEED], ONE_SEED),
        (["identical", "identical"], "identical"),
        (["identical", "differs"], "differs"),
        (["identical", "no data"], "no data"),
    ],
)
def test_claim_verdict_is_the_intersection_union_of_its_parts(parts, want):
    assert claim_verdict(parts) == want


def _pair(base, shift_a, voice_sar=None):
    """Ours shifted by ``shift_a`` dB on every metric, except its voice SAR when
    ``voice_sar`` gives its per-clip difference from Park's."""
    a, b = run_scores("ours", 75, noisy(base, shift_a, 1)), run_scores("parks", 75, base)
    if voice_sar is not None:
        a["voice_sar"] = b["voice_sar"].to_numpy() + voice_sar
    return pd.concat([a, b])


def _no_change(samples) -> np.ndarray:
    """Per-clip differences of +-0.5 dB whose length-weighted mean is exactly 0."""
    d = np.where(np.arange(len(samples)) % 2, 0.5, -0.5)
    return d - np.average(d, weights=samples)


def test_a_claim_on_two_sources_has_a_claim_row_over_its_parts(base):
    df = _pair(base, 1.0)
    c = claim("both", compare={"a": "ours@15000", "b": "parks"}, expect="greater")
    c.update(sentence_zh="句子", sentence_en="a sentence", rows=[15, 16])
    out = evaluate([c], df, parts=False)
    assert list(out.columns) == COLUMNS
    assert list(out["level"]) == ["claim", "part", "part"]
    assert list(out["source"]) == ["both", "voice", "accompaniment"]
    assert (out["verdict"] == "holds").all() and (out["rows"] == "15, 16").all()
    assert (out["sentence_zh"] == "句子").all() and (out["family"] == "exploratory").all()
    head, parts = out.iloc[0], out.iloc[1:]
    assert head["p_value"] == parts["p_value"].max()  # intersection-union p
    assert head["p_method"].startswith("intersection-union: max of 2 parts' p")
    assert head["lo"] == parts["lo"].min()  # the part nearest to failing
    assert head["pairs"] == "" and "2 of 2 parts hold" in head["detail"]
    assert verdict_counts(out) == {"holds": 1}  # one claim
    assert len(effects_table(out)) == 2  # the parts are drawn, the claim row is not
    one = evaluate([dict(c, source="voice")], df, parts=False)
    assert list(one["level"]) == ["claim"] and one["source"][0] == "voice"


def test_the_claim_row_propagates_contradiction_one_seed_and_paper_scale(base):
    c = claim(compare={"a": "ours@15000", "b": "parks"}, expect="greater")
    mixed = _pair(base, 1.0)
    mixed.loc[mixed["variant"] == "ours", "accompaniment_nsdr"] -= 3.0  # accompaniment worse
    out = evaluate([c], mixed, parts=False)
    assert list(out["verdict"]) == ["contradicted", "holds", "contradicted"]
    assert "rests on accompaniment gnsdr" in out["detail"][0]
    assert out["effect"][0] == out["effect"][2]  # the contradicting part's numbers
    seedless = evaluate([c], _pair(base, 1.0), parts=False, seed_sd_prior=None)
    assert (seedless["verdict"] == ONE_SEED).all()
    small = evaluate([dict(c, needs="paper-scale")], _pair(base, 1.0), parts=False, preset="demo")
    assert (small["verdict"] == "needs paper scale").all()
    assert small["detail"][0].startswith("at this scale: holds")


def test_identity_checks_get_a_claim_row_too(base):
    c = claim(compare={"a": "s1", "b": "s2"}, expect="identical")
    df = pd.concat([run_scores("s1", 40, base), run_scores("s2", 40, base)])
    assert list(evaluate([c], df, parts=False)["verdict"]) == ["identical"] * 3
    off = df.copy()
    off.loc[(off["variant"] == "s2") & (off["clip"] == off["clip"].iloc[5]), "voice_nsdr"] += 0.1
    assert list(evaluate([c], off, parts=False)["verdict"]) == ["differs", "differs", "identical"]


# ---------------------------------------------------------------- all six metrics
def _six(df, **kw):
    c = claim("six", compare={"a": "ours@15000", "b": "parks"}, expect="greater-all", **kw)
    return evaluate([c], df, parts=False)


def test_greater_all_holds_only_when_all_six_metrics_hold(base):
    out = _six(_pair(base, 1.0))
    assert list(out["level"]) == ["claim"] + ["part"] * 6
    assert list(zip(out["source"][1:], out["metric"][1:])) == SIX
    assert out["metric"][0] == "gnsdr, gsir, gsar" and (out["verdict"] == "holds").all()
    assert "6 of 6 parts hold" in out["detail"][0]
    labels = effects_table(out)["label"]
    assert len(labels) == 6 and labels.str.contains(r"\[voice gsar\]").any()
    worse = _six(_pair(base, 1.0, voice_sar=np.full(N, -2.0)))  # voice GSAR clearly worse
    assert worse["verdict"][0] == "contradicted"
    part = worse[(worse["source"] == "voice") & (worse["metric"] == "gsar")].iloc[0]
    assert part["verdict"] == "contradicted" and part["hi"] < 0
    samples = run_scores("parks", 75, base)["samples"].to_numpy(float)
    unclear = _six(_pair(base, 1.0, voice_sar=_no_change(samples)))  # voice GSAR: exactly +0
    assert unclear["verdict"][0] == "inconclusive"
    assert (unclear["verdict"][1:] == "holds").sum() == 5
    two = _six(_pair(base, 1.0), metrics=["gnsdr", "gsar"])
    assert len(two) == 5 and set(two["metric"][1:]) == {"gnsdr", "gsar"}


def _above_all(df, thresholds, preset="paper"):
    c = claim(
        "park",
        compare={"a": "s1", "threshold": thresholds},
        expect="above-all",
        threshold_source="Park's paper",
    )
    return evaluate([c], df, parts=False, preset=preset)


def test_above_all_reads_one_threshold_per_source_and_metric(base):
    df = run_scores("s1", 40, noisy(base, 0, 5))
    value = {"gnsdr": 0.0, "gsir": 6.0, "gsar": 3.0}  # run_scores' offsets of the metrics
    w = df["samples"].to_numpy(float)
    g = float(np.average(df["voice_nsdr"], weights=w))
    thr = {
        s: {m: g + off + (0.0 if s == "voice" else -1.0) - 1.0 for m, off in value.items()}
        for s in ("voice", "accompaniment")
    }
    out = _above_all(df, thr)
    assert (out["verdict"] == "holds").all() and len(out) == 7
    assert out["detail"].str.contains("Park's paper: one training, no seed variance").all()
    assert out["effect"][1:].to_numpy() == pytest.approx(1.0)  # each metric 1 dB above
    above = copy.deepcopy(thr)
    above["accompaniment"]["gsir"] += 2.0  # one metric now 1 dB below its threshold
    out = _above_all(df, above)
    assert out["verdict"][0] == "contradicted" and (out["verdict"] == "holds").sum() == 5


def test_per_metric_thresholds_are_checked():
    per_metric = {"voice": {"gnsdr": 1.0}, "accompaniment": {"gnsdr": 1.0}}
    with pytest.raises(UserError, match=r"claims\[t\]\.compare\.threshold: one number per metric"):
        validate_claims([claim("t", compare={"a": "s1", "threshold": per_metric},
                               expect="above")], KNOWN)  # fmt: skip
    with pytest.raises(UserError, match=r"claims\[t\]\.compare\.threshold\.voice: no value"):
        validate_claims([claim("t", compare={"a": "s1", "threshold": per_metric},
                               expect="above-all")], KNOWN)  # fmt: skip
    with pytest.raises(UserError, match=r"claims\[t\]\.compare: expect greater-all needs"):
        validate_claims([claim("t", compare={"a": "s1", "threshold": per_metric},
                               expect="greater-all")], KNOWN)  # fmt: skip
    with pytest.raises(UserError, match=r"claims\[t\]\.metrics: used only with expect"):
        validate_claims([claim("t", compare={"a": "s1", "b": "s2"}, expect="greater",
                               metrics=["gsir"])], KNOWN)  # fmt: skip


def test_family_is_required_and_spelled():
    ab = {"a": "s1", "b": "s2"}
    bare = {k: v for k, v in claim("f", compare=ab, expect="greater").items() if k != "family"}
    with pytest.raises(UserError, match=r"claims\[f\]: 'family' is a required property"):
        validate_claims([bare], KNOWN)
    with pytest.raises(UserError, match=r"claims\[f\]\.family: 'main' is not one of"):
        validate_claims([dict(bare, family="main")], KNOWN)


# ---------------------------------------------------------------- the trains kind
def history(losses, every=10):
    steps = [every * (i + 1) for i in range(len(losses))]
    return pd.DataFrame({"step": steps, "loss": losses, "lr": 1e-3, "seconds": 1.0})


def _trains(base, histories, status="ok", replicates=1, **kw):
    df = pd.concat(
        [run_scores("e2e", 40, base, replicate=r, status=status) for r in range(replicates)]
    )
    c = claim("tr", compare={"a": "e2e"}, expect="trains", **kw)
    return evaluate([c], df, parts=False, histories={"e2e": histories}).iloc[0]


def test_trains_holds_when_the_loss_falls_and_the_estimates_sound(base):
    falls = history([1.0, 0.6, 0.4, 0.3, 5.0])  # step 50 is past the run
    row = _trains(base, {0: falls, 1: falls}, replicates=2)
    assert row["verdict"] == "holds" and row["effect"] == 1.0 and row["level"] == "claim"
    assert row["unit"] == "share of trainings" and row["source"] == "-"
    assert "loss 1 -> 0.3 (x0.30)" in row["detail"] and f"{N}/{N} clips non-silent" in row["detail"]
    assert math.isnan(row["lo"]) and math.isnan(row["p_value"])  # a criterion, no interval
    one = _trains(base, {0: falls})  # one training is no verdict
    assert one["verdict"] == ONE_SEED and "(x0.30): trained" in one["detail"]


def test_trains_is_contradicted_by_a_flat_loss_or_silent_estimates(base):
    two = {"replicates": 2}
    flat_loss = history([1.0, 0.98, 0.97, 0.95])
    flat = _trains(base, {0: flat_loss, 1: flat_loss}, **two)
    assert flat["verdict"] == "contradicted" and "(x0.95): not trained" in flat["detail"]
    falls = history([1.0, 0.2])
    dead = _trains(base, {0: falls, 1: falls}, status="silent estimate (all zeros): voice", **two)
    assert dead["verdict"] == "contradicted" and f"0/{N} clips non-silent" in dead["detail"]
    slow = history([1.0, 0.6, 0.4, 0.3])
    strict = _trains(base, {0: slow, 1: slow}, max_loss_ratio=0.2, **two)
    assert strict["verdict"] == "contradicted"


def test_trains_with_replicates_short_or_missing_histories(base):
    mixed = _trains(base, {0: history([1.0, 0.3]), 1: history([1.0, 1.0])}, replicates=2)
    assert mixed["verdict"] == "inconclusive" and mixed["effect"] == 0.5
    assert mixed["n_replicates"] == 2
    short = _trains(base, {0: history([1.0]), 1: history([1.0])}, replicates=2)
    assert short["verdict"] == "inconclusive" and "fewer than 2 rows" in short["detail"]
    missing = _trains(base, {})
    assert missing["verdict"] == "no data" and "no loss history" in missing["detail"]
    none_scored = evaluate(
        [claim("tr", compare={"a": "e2e"}, expect="trains")], run_scores("s1", 40, base)
    )
    assert none_scored["verdict"][0] == "no data"


def test_trains_reads_history_files_named_by_experiments_rows(base, tmp_path):
    path = tmp_path / "history.csv"
    history([2.0, 1.0, 0.5]).to_csv(path, index=False)
    rows = [
        {"variant": "e2e", "base_variant": "e2e", "replicate": 0, "history": str(path)},
        {"variant": "e2e.s1", "base_variant": "e2e", "replicate": 1, "history": "gone.csv"},
        {"variant": "other", "step": 1},
    ]
    paths = history_paths(rows)
    assert paths == {"e2e": {0: str(path), 1: "gone.csv"}}
    read = _trains(base, paths["e2e"])  # replicate 1 is not scored: one training
    assert read["verdict"] == ONE_SEED and "loss 2 -> 0.5 (x0.25)" in read["detail"]
    assert loss_fall(history([2.0, 1.0, 0.5]), 20) == (2.0, 1.0)  # up to the run's step

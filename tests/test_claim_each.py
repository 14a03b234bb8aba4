"""The compare form ``{a, each: [B1, B2, ...]}``: A against each B, every pair must hold
(claims.spec, claims.kinds.record / pairs / difference)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO
from test_claims import claim, noisy, run_scores

from hourglass_sep.claims.runs import known_runs_from_config
from hourglass_sep.claims.spec import FORMS, claims_for_runs, validate_claims
from hourglass_sep.claims.tables import effects_table
from hourglass_sep.claims.verdicts import evaluate_claims
from hourglass_sep.errors import UserError

N = 200
KNOWN = {"ours": [(75, 15000)], "unet": [(75, 15000)], "repet": [(0, 0)], "rpca": [(0, 0)]}
EACH = {"a": "ours", "each": ["unet", "repet"]}


@pytest.fixture(scope="module")
def base():
    return np.random.default_rng(17).normal(9, 3, N)


def each_claim(cid="c", compare=None, **kw):
    kw.setdefault("expect", "greater")
    return claim(cid, compare=dict(compare or EACH), **kw)


def _scores(base, unet_shift, repet_shift):
    """ours at 0 dB; unet and repet ``*_shift`` dB from it (one replicate each)."""
    return pd.concat(
        [
            run_scores("ours", 75, noisy(base, 0.0, 1)),
            run_scores("unet", 75, noisy(base, unet_shift, 2)),
            run_scores("repet", 0, noisy(base, repet_shift, 3)),
        ]
    )


def _evaluate(claims, df):
    # one replicate each: a seed sd of 0 dB states that only the clips are judged here
    # (seeds and deterministic runs: tests/test_deterministic_runs.py)
    return evaluate_claims(
        claims, df, known_runs=KNOWN, n_perm=500, n_boot=500, seed_sd_prior=0.0
    ).set_index("source")


# ---------------------------------------------------------------- validation
def test_validation_accepts_each_for_a_difference():
    assert FORMS["each"] == "{a, each}"
    (c,) = validate_claims([each_claim()], KNOWN)
    assert c["runs"] == {"a": ("ours", 75), "each": [("unet", 75), ("repet", 0)]}
    (c,) = validate_claims([each_claim(compare={"a": "ours@15000", "each": ["unet@15000"]})], KNOWN)
    assert c["runs"] == {"a": ("ours", 75), "each": [("unet", 75)]}
    (c,) = validate_claims([each_claim(expect="less")], KNOWN)
    assert c["runs"]["each"] == [("unet", 75), ("repet", 0)]


@pytest.mark.parametrize(
    "compare, kw, message",
    [
        (
            {"a": "ours", "b": "unet", "each": ["repet"]},
            {},
            r"claims\[c\]\.compare: give either b or each, not both",
        ),
        ({"each": ["unet"]}, {}, r"claims\[c\]\.compare\.a: missing"),
        (
            {"a": "ours", "each": ["unet", "nope"]},
            {},
            r"claims\[c\]\.compare\.each\[1\]: run 'nope' is not a variant",
        ),
        (
            {"a": "ours", "each": ["unet@20000"]},
            {},
            r"claims\[c\]\.compare\.each\[0\]: step 20000 is not evaluated for 'unet'",
        ),
        (EACH, {"expect": "equivalent", "margin": 0.5}, r"expect equivalent needs \{a, b\}"),
        (EACH, {"expect": "not-less", "margin": 0.5}, r"expect not-less needs \{a, b\}"),
        ({**EACH, "clips": "own"}, {}, r"claims\[c\]\.compare\.clips: 'own' compares two runs"),
        ({"a": "ours", "each": []}, {}, r"claims\[c\]\.compare\.each"),  # schema: minItems 1
    ],
)
def test_validation_refuses(compare, kw, message):
    with pytest.raises(UserError, match=message):
        validate_claims([each_claim(compare=compare, **kw)], KNOWN)


def test_claims_for_runs_drops_a_claim_whose_each_names_a_run_not_run():
    claims = [
        each_claim("both-run"),
        each_claim("rpca-not-run", compare={"a": "ours@15000", "each": ["unet", "rpca"]}),
        each_claim("a-not-run", compare={"a": "rpca", "each": ["unet"]}),
    ]
    kept, dropped = claims_for_runs(claims, ["ours", "unet", "repet"])
    assert [c["id"] for c in kept] == ["both-run"] and dropped == ["rpca-not-run", "a-not-run"]


def test_the_configs_each_claims_resolve_and_follow_the_presets_runs():
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    ids = ("hourglass-beats-learned-peers", "hourglass-beats-training-free")
    mine = [c for c in cfg["claims"] if c["id"] in ids]
    checked = {c["id"]: c for c in validate_claims(mine, known_runs_from_config(cfg))}
    assert checked[ids[0]]["runs"]["each"] == [("unet", 15000), ("open-unmix", 15000)]
    assert checked[ids[1]]["runs"]["each"] == [("repet-sim", 0), ("rpca", 0)]
    assert checked[ids[1]]["runs"]["a"] == ("ours", 15000)
    kept, dropped = claims_for_runs(mine, ["ours", "unet", "repet-sim", "rpca"])
    assert [c["id"] for c in kept] == [ids[1]] and dropped == [ids[0]]  # no open-unmix


# ---------------------------------------------------------------- verdicts
def test_beating_one_but_not_the_other_is_not_holds(base):
    t = _evaluate([each_claim()], _scores(base, unet_shift=0.0, repet_shift=-2.0))
    assert (t["verdict"] == "inconclusive").all()  # ours - repet holds, ours - unet does not
    for source in ("voice", "accompaniment"):
        pairs = {p["b"]: p for p in json.loads(t.loc[source, "pairs"])}
        assert pairs["repet@0"]["verdict"] == "holds"
        assert pairs["repet@0"]["effect"] == pytest.approx(2.0, abs=0.3)
        assert pairs["unet@75"]["verdict"] == "inconclusive"
        assert "ours@75 - unet@75" in t.loc[source, "detail"]  # the weakest pair
        assert t.loc[source, "effect"] == pytest.approx(pairs["unet@75"]["effect"])
    # losing to one of them by a lot contradicts the claim, whatever the other says
    t = _evaluate([each_claim()], _scores(base, unet_shift=2.0, repet_shift=-2.0))
    assert (t["verdict"] == "contradicted").all()


def test_beating_each_holds_and_lists_both_pairs(base):
    t = _evaluate([each_claim()], _scores(base, unet_shift=-1.5, repet_shift=-3.0))
    assert (t["verdict"] == "holds").all()
    claim_row = t[t["level"] == "claim"]
    assert (
        len(claim_row) == 1 and claim_row["compare"].iloc[0] == "ours@75 - each of unet@75, repet@0"
    )
    for source in ("voice", "accompaniment"):
        row = t.loc[source]
        assert row["level"] == "part" and row["compare"] == "ours@75 - each of unet@75, repet@0"
        pairs = json.loads(row["pairs"])
        assert [(p["a"], p["b"]) for p in pairs] == [("ours@75", "unet@75"), ("ours@75", "repet@0")]
        assert [p["verdict"] for p in pairs] == ["holds", "holds"]
        assert pairs[0]["effect"] == pytest.approx(1.5, abs=0.3)
        assert pairs[1]["effect"] == pytest.approx(3.0, abs=0.3)
        assert row["effect"] == pytest.approx(pairs[0]["effect"])  # the weaker: nearer 0
        assert row["detail"].startswith("weakest of 2 pairs: ours@75 - unet@75")
    effects = effects_table(t.reset_index())
    assert len(effects) == 4  # two pairs per source, for the forest plot
    assert effects["label"].str.endswith("ours@75 - repet@0").sum() == 2


def test_less_is_the_mirror_image(base):
    t = _evaluate([each_claim(expect="less")], _scores(base, unet_shift=1.5, repet_shift=3.0))
    assert (t["verdict"] == "holds").all()
    row = t.loc["voice"]
    assert row["effect"] == pytest.approx(json.loads(row["pairs"])[0]["effect"])  # ours - unet


def test_a_b_without_scores_is_no_data(base):
    df = pd.concat(
        [run_scores("ours", 75, noisy(base, 0.0, 1)), run_scores("repet", 0, noisy(base, -3, 3))]
    )
    t = _evaluate([each_claim()], df)
    assert (t["verdict"] == "no data").all()
    pairs = json.loads(t.loc["voice", "pairs"])
    assert [p["verdict"] for p in pairs] == ["no data", "holds"]


def _diverged(base):
    """ours; unet with 3 replicates, replicate 2 a dead mask (-11 dB); repet."""
    unet = [run_scores("unet", 75, noisy(base, -2.0 - 18.0 * (r == 2), 10 + r), replicate=r)
            for r in range(3)]  # fmt: skip
    ours = [run_scores("ours", 75, noisy(base, 0.0, 20 + r), replicate=r) for r in range(3)]
    return pd.concat([*ours, *unet, run_scores("repet", 0, noisy(base, -3, 3))])


def test_a_diverged_seed_of_b_is_noted_with_b(base):
    pair = each_claim("pair", compare={"a": "ours", "b": "unet"})
    t = evaluate_claims([pair], _diverged(base), known_runs=KNOWN, n_perm=300, n_boot=300)
    assert t["detail"].str.contains("1 of 3 seeds diverged").all()


def test_a_diverged_seed_of_an_each_run_is_noted(base):
    t = evaluate_claims([each_claim()], _diverged(base), known_runs=KNOWN, n_perm=300, n_boot=300)
    assert t["detail"].str.contains("1 of 3 seeds diverged").all()

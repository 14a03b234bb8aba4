"""Holm's step-down over the confirmatory claims, on hand-made p-values and verdict tables
with known answers (hourglass_sep/claims/multiplicity.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.multiplicity import (
    HOLM_INCONCLUSIVE,
    adjust,
    holm,
    interval_p,
    side_level,
)
from hourglass_sep.claims.tables import ONE_SEED

Z = float(sps.norm.ppf(0.975))


def test_holm_matches_a_hand_computation():
    # sorted: 0.01 x 4 = 0.04 <= 0.05 rejected; 0.03 x 3 = 0.09 > 0.05: stop there.
    # adjusted: running max of (0.04, 0.09, 0.04 -> 0.09, 0.2)
    adjusted, rejected, levels = holm([0.01, 0.04, 0.03, 0.2], 0.05)
    np.testing.assert_allclose(adjusted, [0.04, 0.09, 0.09, 0.2])
    assert rejected.tolist() == [True, False, False, False]
    np.testing.assert_allclose(levels, [0.05 / 4, 0.05 / 2, 0.05 / 3, 0.05])


def test_holm_steps_down_where_bonferroni_stops():
    # Bonferroni (0.05 / 3 each) rejects only 0.01; Holm compares 0.02 with 0.05 / 2 and
    # 0.03 with 0.05, rejecting all three
    adjusted, rejected, _ = holm([0.03, 0.01, 0.02], 0.05)
    assert rejected.all()
    np.testing.assert_allclose(adjusted, [0.04, 0.03, 0.04])
    assert (np.minimum(1, 3 * np.array([0.03, 0.01, 0.02])) <= 0.05).sum() == 1


def test_holm_caps_at_one_and_handles_one_p():
    adjusted, rejected, _ = holm([0.6, 0.7], 0.05)
    np.testing.assert_allclose(adjusted, [1.0, 1.0])
    assert not rejected.any()
    adjusted, rejected, levels = holm([0.02], 0.025)
    assert adjusted.tolist() == [0.02] and rejected.tolist() == [True] and levels[0] == 0.025


def test_interval_p_known_values():
    # greater: effect 1, se 0.4 (normal): p = P(Z > 2.5)
    assert interval_p(1.0, 1 - Z * 0.4, 1 + Z * 0.4, "greater") == pytest.approx(sps.norm.sf(2.5))
    # less is the mirror image of greater
    assert interval_p(-1.0, -1 - Z * 0.4, -1 + Z * 0.4, "less") == pytest.approx(sps.norm.sf(2.5))
    # not-less, margin 1: H0 effect <= -1; effect -0.5, se 0.25: z = 2
    p = interval_p(-0.5, -0.5 - Z * 0.25, -0.5 + Z * 0.25, "not-less", 1.0)
    assert p == pytest.approx(sps.norm.sf(2.0))
    # equivalent, margin 0.5: TOST, the larger one-sided p: z = (0.5 - 0.1) / 0.1 = 4
    p = interval_p(0.1, 0.1 - Z * 0.1, 0.1 + Z * 0.1, "equivalent", 0.5)
    assert p == pytest.approx(sps.norm.sf(4.0))
    # a t interval on 4 df is read with t quantiles: p is the t test's one-sided p
    q = sps.t.ppf(0.975, 4)
    assert interval_p(1.0, 1 - q * 0.4, 1 + q * 0.4, "above", df=4) == pytest.approx(
        sps.t.sf(2.5, 4)
    )
    assert math.isnan(interval_p(0.3, 0.1, 0.5, "silent"))
    assert math.isnan(interval_p(math.nan, 0.1, 0.5, "greater"))


@pytest.mark.parametrize("expect", st.DIRECTIONS)
def test_p_below_the_side_level_exactly_when_the_raw_verdict_holds(expect):
    """p of the claim is the interval inverted: it agrees with stats.decide even for skewed
    percentile intervals and t intervals."""
    rng = np.random.default_rng(7)
    for _ in range(400):
        effect = rng.normal(0, 1)
        lo, hi = effect - rng.uniform(0.01, 1.5), effect + rng.uniform(0.01, 1.5)
        margin, df = rng.uniform(0.1, 1.0), rng.choice([math.inf, 3.0, 12.0])
        p = interval_p(effect, lo, hi, expect, margin, st.CONFIDENCE, df)
        holds = st.decide(lo, hi, expect, margin) == "holds"
        assert (p < side_level()) == holds, (expect, effect, lo, hi, margin, df, p)


def _row(id_, p, expect="greater", family="confirmatory", level="claim", verdict=None):
    """A row with a symmetric normal interval whose one-sided p of "holds" is ``p``."""
    se = 0.1
    effect = float(sps.norm.isf(p)) * se
    lo, hi = effect - Z * se, effect + Z * se
    return {
        "id": id_,
        "family": family,
        "level": level,
        "expect": expect,
        "verdict": verdict or st.decide(lo, hi, expect, 0.0),
        "effect": effect,
        "lo": lo,
        "hi": hi,
        "margin": 0.0,
        "pairs": "",
    }


def test_a_raw_holds_that_fails_holm_becomes_inconclusive():
    table = pd.DataFrame([_row(f"c{i}", p) for i, p in enumerate([0.001, 0.02, 0.015, 0.3])])
    assert table["verdict"].tolist() == ["holds", "holds", "holds", "inconclusive"]
    out = adjust(table)  # alpha = 0.025, one-sided
    # by hand: 0.001 x 4 = 0.004 <= 0.025; 0.015 x 3 = 0.045 > 0.025 stops the step-down;
    # adjusted p: 0.004, max(0.045, 0.02 x 2) = 0.045, 0.045, 0.3
    np.testing.assert_allclose(out["p_claim"], [0.001, 0.02, 0.015, 0.3], rtol=1e-9)
    np.testing.assert_allclose(out["p_adjusted"], [0.004, 0.045, 0.045, 0.3], rtol=1e-9)
    assert out["adjusted_verdict"].tolist() == [
        "holds",
        HOLM_INCONCLUSIVE,
        HOLM_INCONCLUSIVE,
        "inconclusive",
    ]
    assert set(out["adjustment"]) == {"Holm over 4 confirmatory claims, one-sided 0.025"}
    # a looser family-wise level lets 0.015 (adjusted 0.045) and 0.02 through
    assert adjust(table, alpha=0.05)["adjusted_verdict"].tolist()[:3] == ["holds"] * 3


def test_contradicted_stays_and_exploratory_rows_are_left_out():
    rows = [_row("a", 0.001), _row("b", 0.02), _row("x", 0.005, family="exploratory")]
    rows.append(_row("c", 0.9999))
    table = pd.DataFrame(rows)
    assert table["verdict"].tolist() == ["holds", "holds", "holds", "contradicted"]
    out = adjust(table).set_index("id")
    assert out.loc["c", "adjusted_verdict"] == "contradicted"
    # the exploratory row keeps its raw verdict and does not enlarge the family (m = 3)
    assert out.loc["x", "adjusted_verdict"] == "holds"
    assert out.loc["x", "adjustment"] == "exploratory: none"
    assert math.isnan(out.loc["x", "p_adjusted"])
    assert out.loc["a", "p_adjusted"] == pytest.approx(0.003)
    assert out.loc["b", "adjusted_verdict"] == HOLM_INCONCLUSIVE  # 0.02 x 2 = 0.04


def _pair(effect, se, verdict, df=math.inf):
    """A pair record as the ``pairs`` JSON holds it (df null for a normal interval)."""
    q = float(sps.t.ppf(0.975, df))
    lo, hi = effect - q * se, effect + q * se
    df = None if math.isinf(df) else df
    return {"a": "A", "b": "B", "effect": effect, "lo": lo, "hi": hi, "df": df, "verdict": verdict}


def test_claim_rows_take_the_largest_p_of_their_parts_and_chains_of_their_links():
    parts = [
        _row("both", 0.004, level="part"),
        _row("both", 0.010, level="part"),
    ]
    head = {**_row("both", 0.004), "verdict": "holds"}  # the claim row: numbers of one part
    chain = _row("chain", 0.5)
    links = [_pair(0.5, 0.1, "holds"), _pair(0.3, 0.1, "holds", df=5.0)]
    chain["pairs"] = json.dumps(links)
    out = adjust(pd.DataFrame([head, *parts, chain]))
    assert out.loc[0, "p_claim"] == pytest.approx(0.010)
    assert out["adjustment"].tolist()[1:3] == ["part: Holm at the claim row"] * 2
    assert out[out["level"] == "part"]["p_adjusted"].isna().all()
    # the chain: the weaker link's t p (0.3 / 0.1 on 5 df), not the row's own numbers
    assert out.loc[3, "p_claim"] == pytest.approx(sps.t.sf(3.0, 5))
    assert out["adjustment"].iloc[0] == "Holm over 2 confirmatory claims, one-sided 0.025"
    # a part without numbers leaves its claim without a p (max over all parts or none)
    gap = [_row("gap", 0.004), _row("gap", 0.004, level="part")]
    gap.append({**_row("gap", 0.004, level="part"), "effect": math.nan})
    assert math.isnan(adjust(pd.DataFrame(gap))["p_claim"].iloc[0])


def test_rows_without_a_test_stay_out_of_the_family():
    rows = [
        _row("ok", 0.001),
        _row("nd", 0.001, verdict="no data"),
        _row("ps", 0.001, verdict="needs paper scale"),
        _row("one", 0.001, verdict=ONE_SEED),
        _row("id", 0.001, expect="identical", verdict="identical"),
        _row("sil", 0.001, expect="silent", verdict="holds"),
    ]
    out = adjust(pd.DataFrame(rows)).set_index("id")
    assert out.loc["ok", "p_adjusted"] == pytest.approx(0.001)  # a family of one
    assert out.loc["nd", "adjustment"] == "not tested: no data"
    assert out.loc["ps", "adjustment"] == "not tested: needs paper scale"
    assert out.loc["one", "adjustment"] == f"not tested: {ONE_SEED}"
    assert out.loc["id", "adjustment"] == "check: not a test"
    assert out.loc["sil", "adjustment"] == "not adjusted: no interval p for expect silent"
    assert (out.drop(index="ok")["adjusted_verdict"] == out.drop(index="ok")["verdict"]).all()


def test_a_table_without_family_or_level_counts_every_row_as_a_confirmatory_claim():
    rows = [_row("a", 0.004), _row("a", 0.02), _row("b", 0.2)]
    table = pd.DataFrame(rows).drop(columns=["family", "level"])
    out = adjust(table)
    assert out["adjustment"].tolist() == ["Holm over 3 confirmatory claims, one-sided 0.025"] * 3
    np.testing.assert_allclose(out["p_adjusted"], [0.012, 0.04, 0.2])
    assert out["adjusted_verdict"].tolist() == ["holds", HOLM_INCONCLUSIVE, "inconclusive"]


def test_the_all_metrics_kinds_are_judged_by_the_direction_they_carry():
    row = _row("all", 0.001, expect="greater-all", verdict="holds")
    assert adjust(pd.DataFrame([row]))["p_claim"].iloc[0] == pytest.approx(0.001)

"""Holm's step-down over the confirmatory claims: which "holds" survive a family-wise error
rate of alpha when ~10 of the report's statements are tested at once.

Each row's raw verdict is at its own level (a 95 % interval: one-sided 2.5 % for "holds").
A referee who asks "is any of the claims you call true in fact false?" wants that error
controlled over the family, not per row; Holm does so for any dependence between the claims
(they share runs, so they are correlated) and is uniformly more powerful than Bonferroni.
Benjamini-Hochberg would control the share of false "holds" instead, which suits hundreds of
exploratory rows, not a short list of stated conclusions.  Reasoning: docs/statistics.md.

The p-value of "the claim holds" is read off each compared pair's interval, so that it agrees
with the raw verdict (:func:`pair_p`); a claim-level row over several parts (sources, chain
links) is an intersection-union test and takes the largest of its parts' p.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.tables import CHECK_VERDICTS

CONFIRMATORY, EXPLORATORY = "confirmatory", "exploratory"
CLAIM, PART = "claim", "part"
HOLM_INCONCLUSIVE = "inconclusive (Holm)"
TESTED = ("holds", "contradicted", "inconclusive")  # verdicts of a test actually decided here
NEEDED = ["id", "expect", "verdict", "effect", "lo", "hi", "margin"]
COLUMNS = ["p_claim", "p_adjusted", "holm_level", "adjusted_verdict", "adjustment"]


def side_level(confidence: float = st.CONFIDENCE) -> float:
    """The one-sided level of a raw "holds": a ``confidence`` interval excluding the null on
    the claimed side is a one-sided test at (1 - confidence) / 2 (2.5 % for 95 %)."""
    return (1 - confidence) / 2


def holm(p_values, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Holm's step-down: (adjusted p, rejected, level each p had to meet).

    Sorted ascending, the i-th p (1-based) is compared with alpha / (m - i + 1) until one
    fails; the adjusted p is the running maximum of (m - i + 1) p_(i), capped at 1, so
    "adjusted p <= alpha" is the same decision."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    steps = p.size - np.arange(p.size)
    adjusted, levels = np.empty(p.size), np.empty(p.size)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps * p[order]))
    levels[order] = alpha / steps
    return adjusted, adjusted <= alpha, levels


def interval_rule(expect: str) -> str | None:
    """The ``stats.decide`` rule a row's interval is judged by: its ``expect``, or for a kind
    over several metrics (``greater-all``, ``above-all``) the direction its name carries,
    which each part is judged by; None for kinds without an interval rule (silent, trains,
    faster, wins-most-clips: their p is not on this scale, so they stay out of Holm)."""
    expect = str(expect)
    for rule in (expect, expect.removesuffix("-all")):
        if rule in st.DIRECTIONS:
            return rule
    return None


def _tail(distance: float, se: float, df: float) -> float:
    """P(T >= distance / se) for T ~ t(df) (normal when df is inf); se 0 is a sure result."""
    if se > 0:
        return float(sps.t.sf(distance / se, df))
    return 0.0 if distance > 0 else 1.0


def _side_se(estimate: float, bound: float, width: float, q: float) -> float:
    """The se behind one half of an interval: |estimate - bound| / q.  Using the half on the
    tested side makes the p agree with the interval's verdict even when a percentile interval
    is skewed; a half of zero length (estimate on the bound) falls back to the whole width."""
    half = abs(estimate - bound)
    return (half if half > 0 else width / 2) / q


def interval_p(
    effect: float,
    lo: float,
    hi: float,
    expect: str,
    margin: float = 0.0,
    confidence: float = st.CONFIDENCE,
    df: float = math.inf,
) -> float:
    """One-sided p of "the claim holds" from an effect and its interval (``stats.decide``'s
    rules): greater/above H0 effect <= 0; not-less H0 effect <= -margin; equivalent the TOST,
    the larger of its two one-sided p; less/below/not-greater their mirrors.

    The interval is read as effect +- t(df) se (normal for df inf: the percentile bootstrap),
    so p < (1 - confidence) / 2 exactly when the raw verdict is "holds".  NaN when the
    numbers are missing or ``expect`` is not an interval rule."""
    expect = interval_rule(expect)
    if expect is None or not all(map(math.isfinite, (effect, lo, hi))):
        return math.nan
    margin = 0.0 if not math.isfinite(margin) else margin
    if expect in ("less", "below", "not-greater"):
        effect, lo, hi = -effect, -hi, -lo
    q = float(sps.t.ppf(0.5 + confidence / 2, df))
    width = hi - lo
    if expect in ("less", "below", "greater", "above"):
        return _tail(effect, _side_se(effect, lo, width, q), df)
    lower = _tail(effect + margin, _side_se(effect, lo, width, q), df)
    if expect in ("not-less", "not-greater"):
        return lower
    upper = _tail(margin - effect, _side_se(effect, hi, width, q), df)
    return max(lower, upper)


def number(x, default: float = math.nan) -> float:
    """A table cell as a float; ``default`` for a missing, non-numeric or NaN cell."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(x) else x


def pair_records(row) -> list[dict]:
    """The compared pairs of a verdict row (the ``pairs`` JSON), those with data only; [] when
    the row has none (other kinds, old tables)."""
    text = row.get("pairs")
    if not isinstance(text, str) or not text.strip():
        return []
    try:
        pairs = json.loads(text)
    except json.JSONDecodeError:
        return []
    return [p for p in pairs if isinstance(p, dict) and p.get("verdict") != "no data"]


def pair_p(rec: dict, expect: str, margin: float, confidence: float = st.CONFIDENCE) -> float:
    """:func:`interval_p` of one compared pair, on its own interval and degrees of freedom."""
    return interval_p(
        number(rec.get("effect")),
        number(rec.get("lo")),
        number(rec.get("hi")),
        expect,
        number(rec.get("margin"), margin),
        confidence,
        number(rec.get("df"), math.inf),
    )


def row_p(row, confidence: float = st.CONFIDENCE) -> float:
    """p of "the claim holds" for one row: the largest over its pairs (a chain holds only when
    every link does: an intersection-union test), else from the row's own interval."""
    expect, margin = row.get("expect"), number(row.get("margin"), 0.0)
    pairs = pair_records(row)
    if pairs:
        ps = [pair_p(p, expect, margin, confidence) for p in pairs]
        return math.nan if any(math.isnan(x) for x in ps) else max(ps)
    return interval_p(
        number(row.get("effect")),
        number(row.get("lo")),
        number(row.get("hi")),
        expect,
        margin,
        confidence,
    )


def families(verdicts: pd.DataFrame) -> pd.Series:
    """Each row's family.  A table without a ``family`` column (written before families
    existed) counts every row as confirmatory: the largest family, so the strictest Holm --
    mislabelling costs power, never error control."""
    if "family" not in verdicts.columns:
        return pd.Series(CONFIRMATORY, index=verdicts.index)
    family = verdicts["family"].fillna("").astype(str).str.strip().str.lower()
    return family.where(family != "", CONFIRMATORY)


def levels(verdicts: pd.DataFrame) -> pd.Series:
    """Each row's level; without a ``level`` column every row is its own claim."""
    if "level" not in verdicts.columns:
        return pd.Series(CLAIM, index=verdicts.index)
    level = verdicts["level"].fillna("").astype(str).str.strip().str.lower()
    return level.where(level != "", CLAIM)


def claim_p_values(verdicts: pd.DataFrame, confidence: float = st.CONFIDENCE) -> pd.Series:
    """``p_claim`` of every row: its own for parts and single rows; for a claim row with
    parts (same id, level "part") the largest of the parts' (intersection-union)."""
    rows = verdicts.to_dict("records")
    own = pd.Series([row_p(r, confidence) for r in rows], index=verdicts.index, dtype=float)
    lev = levels(verdicts)
    by_id = own[lev == PART].groupby(verdicts.loc[lev == PART, "id"])
    parts = by_id.agg(lambda p: p.max() if p.notna().all() else math.nan)  # all parts or none
    has_parts = (lev == CLAIM) & verdicts["id"].isin(parts.index)
    own[has_parts] = verdicts.loc[has_parts, "id"].map(parts)
    return own


def _why_not_tested(verdict: str, expect: str, p: float) -> str:
    """The ``adjustment`` of a confirmatory claim row left out of Holm's family."""
    if verdict in CHECK_VERDICTS:
        return "check: not a test"
    if verdict not in TESTED:
        return f"not tested: {verdict}"
    return f"not adjusted: no interval p for expect {expect}" if math.isnan(p) else ""


def adjust(verdicts: pd.DataFrame, alpha: float | None = None, confidence=st.CONFIDENCE):
    """The table with ``COLUMNS`` added: p_claim (one-sided p of "the claim holds"),
    p_adjusted (Holm, confirmatory claim rows only), holm_level (the level that row's p met or
    missed in the step-down), adjusted_verdict and adjustment (what was done, in words).

    ``alpha``: the family-wise one-sided level (default the raw rows' own, (1 - confidence)
    / 2).  A raw "holds" whose adjusted p exceeds alpha becomes "inconclusive (Holm)";
    "contradicted" and "inconclusive" stay (contradictions are reported at their raw level:
    docs/statistics.md)."""
    alpha = side_level(confidence) if alpha is None else alpha
    out = verdicts.copy()
    out["p_claim"] = claim_p_values(out, confidence)
    fam, lev = families(out), levels(out)
    out["p_adjusted"], out["holm_level"] = math.nan, math.nan
    out["adjusted_verdict"] = out["verdict"]
    out["adjustment"] = np.where(fam == EXPLORATORY, "exploratory: none", "")
    out.loc[(fam != EXPLORATORY) & (lev == PART), "adjustment"] = "part: Holm at the claim row"
    head = (fam != EXPLORATORY) & (lev != PART)
    why = [_why_not_tested(*r) for r in out.loc[head, ["verdict", "expect", "p_claim"]].values]
    out.loc[head, "adjustment"] = why
    family = head & (out["adjustment"] == "")
    if family.any():
        adjusted, rejected, level = holm(out.loc[family, "p_claim"], alpha)
        out.loc[family, "p_adjusted"], out.loc[family, "holm_level"] = adjusted, level
        lost = family & (out["verdict"] == "holds")
        lost[family] = lost[family] & ~rejected
        out.loc[lost, "adjusted_verdict"] = HOLM_INCONCLUSIVE
        n = int(family.sum())
        out.loc[family, "adjustment"] = f"Holm over {n} confirmatory claims, one-sided {alpha:g}"
    return out

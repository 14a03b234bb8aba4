"""A beats B on most clips (``expect: wins-most-clips``): the share of the common clips on
which A's per-clip metric exceeds B's (each clip's value averaged over the replicates; ties
are not wins; clips unweighted), with a Clopper-Pearson interval.  holds when the interval
lies above 1/2, contradicted when below, else inconclusive.

Unlike a mean difference, a few clips with large gains cannot carry this claim: it says how
often A is the better choice for a clip, not by how much on average."""

from __future__ import annotations

import math

from scipy import stats as sps

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.kinds.record import Inputs, Kind
from hourglass_sep.claims.runs import run_name
from hourglass_sep.errors import UserError


def _row(claim: dict, source: str, inputs: Inputs) -> dict:
    a, b = claim["runs"]["a"], claim["runs"]["b"]
    base = {"variance": "clips", "margin": math.nan}
    column = st.metric_column(claim["metric"], source)
    try:
        al = st.align_runs(inputs.scores, [a, b], column, inputs.opts.get("unit", "clip"))
    except UserError as exc:
        return {**base, "verdict": "no data", "detail": str(exc)}
    ya, yb = (v.mean(axis=0) for v in al.values)
    k, n = int((ya > yb).sum()), int(ya.size)
    test = sps.binomtest(k, n, 0.5)
    ci = test.proportion_ci(inputs.opts.get("confidence", st.CONFIDENCE))
    lo, hi = float(ci.low), float(ci.high)
    verdict = "holds" if lo > 0.5 else "contradicted" if hi < 0.5 else "inconclusive"
    detail = f"{run_name(a)} beats {run_name(b)} on {k} of {n} clips"
    if al.n_dropped:
        detail += f"; {al.n_dropped} clip(s) not ok in every run dropped from the pairing"
    return {
        **base,
        "effect": k / n,
        "lo": lo,
        "hi": hi,
        "verdict": verdict,
        "p_value": float(test.pvalue),
        "p_method": "binomial (sign test)",
        "n_clips": n,
        "n_dropped": al.n_dropped,
        "n_replicates": min(v.shape[0] for v in al.values),
        "detail": detail,
    }


def _text(claim: dict, source: str) -> str:
    runs = claim["runs"]
    return f"{run_name(runs['a'])} > {run_name(runs['b'])} on most clips"


KIND = Kind(
    name="wins-most-clips",
    expects=("wins-most-clips",),
    summary="wins-most-clips: A's per-clip metric exceeds B's on more than half of the clips",
    forms=("b",),
    row=_row,
    compare_text=_text,
    unit="share of clips",
)

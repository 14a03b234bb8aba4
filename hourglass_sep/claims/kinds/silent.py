"""A run's estimates are silent (all zeros): the share of its clip scores (all replicates)
whose estimate of the source is silent, with a Clopper-Pearson interval.  holds: every clip
silent; contradicted: fewer than half; else inconclusive."""

from __future__ import annotations

import math

from scipy import stats as sps

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.divergence import run_note
from hourglass_sep.claims.kinds.record import Inputs, Kind
from hourglass_sep.claims.runs import run_name
from hourglass_sep.scoring.clip_status import is_silent


def _row(claim: dict, source: str, inputs: Inputs) -> dict:
    a, scores = claim["runs"]["a"], inputs.every_seed
    base = {"variance": "clips", "margin": math.nan}
    if not ((scores["variant"] == a[0]) & (scores["step"] == a[1])).any():
        return {**base, "verdict": "no data", "detail": f"no scores for run {run_name(a)}"}
    rows = st.run_rows(scores, a)
    k, n = int(is_silent(rows["status"], source).sum()), len(rows)
    ci = sps.binomtest(k, n).proportion_ci(inputs.opts.get("confidence", st.CONFIDENCE))
    verdict = "holds" if k == n else "contradicted" if 2 * k < n else "inconclusive"
    return {
        **base,
        "effect": k / n,
        "lo": float(ci.low),
        "hi": float(ci.high),
        "verdict": verdict,
        "n_clips": n,
        "n_replicates": int(rows["replicate"].nunique()),
        "detail": "; ".join(
            x
            for x in (
                f"{k} of {n} clip scores have a silent {source} estimate",
                run_note(scores, a),
            )
            if x
        ),
    }


KIND = Kind(
    name="silent",
    expects=("silent",),
    summary="silent: A's estimates are all zeros",
    forms=("a",),
    row=_row,
    compare_text=lambda claim, source: run_name(claim["runs"]["a"]),
    unit="share of clips",
    metric="status",
)

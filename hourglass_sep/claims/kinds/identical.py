"""Identity checks (``expect: identical``): two evaluations that should give the same numbers
(4 windows per pass vs 1, museval vs mir_eval) are compared clip by clip, replicate by
replicate, and the largest absolute difference is reported.

Only a software difference can make such a check fail, so it is a check, not a statistical
verdict: the verdict is ``identical`` or ``differs`` (never ``holds``), no interval is drawn,
and the report counts it apart from the statistical verdicts.  ``margin`` (dB) is the
tolerance; without it, 1e-6 dB (rounding of the scorers' float64 arithmetic).
"""

from __future__ import annotations

import math

import numpy as np

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.kinds.pairs import two_runs_text
from hourglass_sep.claims.kinds.record import Inputs, Kind
from hourglass_sep.errors import UserError

TOLERANCE_DB = 1e-6


def _row(claim: dict, source: str, inputs: Inputs) -> dict:
    a, b = claim["runs"]["a"], claim["runs"]["b"]
    tol = float(claim.get("margin") or TOLERANCE_DB)
    base = {"variance": "none (a check)", "margin": tol}
    column = st.metric_column(claim["metric"], source)
    try:
        al = st.align_runs(inputs.scores, [a, b], column, inputs.opts.get("unit", "clip"))
    except UserError as exc:
        return {**base, "verdict": "no data", "detail": str(exc)}
    va, vb = al.values
    reps = min(va.shape[0], vb.shape[0])  # replicate r of A against replicate r of B
    diff = float(np.max(np.abs(va[:reps] - vb[:reps]))) if va.size and vb.size else math.nan
    verdict = "identical" if diff <= tol else "differs"
    detail = (
        f"{verdict} (max |Δ| = {diff:.3g} dB over {al.clips.size} clips x {reps} replicate(s);"
        f" tolerance {tol:g} dB)"
    )
    if al.n_dropped:
        detail += f"; {al.n_dropped} clip(s) not ok in both runs left out"
    return {
        **base,
        "effect": diff,
        "verdict": verdict,
        "n_clips": int(al.clips.size),
        "n_dropped": al.n_dropped,
        "n_replicates": reps,
        "detail": detail,
    }


KIND = Kind(
    name="identical",
    expects=("identical",),
    summary=(
        "identical: A and B give the same per-clip metric (max |A - B| <= margin, default "
        "1e-6 dB); a check, reported as identical / differs"
    ),
    forms=("b",),
    row=_row,
    compare_text=two_runs_text,
    unit="max |Δ| dB",
    keys={"margin": ("identical",)},
)

"""A's scoring is faster than B's, read from the scores' per-clip seconds (``expect: faster``
with ``timing: scoring``): the speed-up of two runs' scoring, paired on their clips, with a
bootstrap interval over the clips.

That is one timing per clip and side, taken by two scoring jobs at different times (possibly
beside other jobs): the machine's drift between the jobs is in the ratio and not in the
interval.  So the verdict is inconclusive, with the reason and what the clips alone would say
(against the factor and the zone of indifference, claims/kinds/speedup.py).  A verdict needs
interleaved repeats: the speed table's ``score clips: museval`` / ``score clips: mir_eval``
rows time both backends on the same clips, A B A B (``timing: speed-table``)."""

from __future__ import annotations

import math

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.kinds import speedup as su
from hourglass_sep.claims.kinds.record import Inputs, Kind
from hourglass_sep.claims.runs import run_name
from hourglass_sep.errors import UserError
from hourglass_sep.results.timing import INDIFFERENCE

NOT_INTERLEAVED = (
    "per-clip seconds of two scoring jobs: one timing per clip and side, not interleaved "
    "(time it in the speed table: timing: speed-table)"
)


def _row(claim: dict, source: str, inputs: Inputs) -> dict:
    a, b = claim["runs"]["a"], claim["runs"]["b"]
    factor = float(claim.get("factor", 1.0))
    base = {"variance": "clips (one timing per side)", "margin": INDIFFERENCE}
    kw = {k: v for k, v in inputs.opts.items() if k in ("unit", "n_boot", "seed", "confidence")}
    try:
        r = st.speed_up(inputs.scores, a, b, **kw)
    except UserError as exc:
        return {**base, "margin": math.nan, "verdict": "no data", "detail": str(exc)}
    ta, tb = r.pop("seconds")
    res = su.judged(r, NOT_INTERLEAVED, factor, INDIFFERENCE, basis="the clips")
    why = res.pop("why")
    scoring = f"scoring {ta:.3g} s vs {tb:.3g} s over {r['n_clips']} clips"
    detail = "; ".join((why, scoring, su.describe(res, factor, INDIFFERENCE)))
    return {**base, **res, "detail": detail}


def _text(claim: dict, source: str) -> str:
    runs = claim["runs"]
    return f"scoring {run_name(runs['a'])} vs {run_name(runs['b'])}"


KIND = Kind(
    name="scoring-speed",
    expects=("faster",),
    summary="faster with timing: scoring: A's per-clip scoring seconds against B's",
    forms=("b",),
    row=_row,
    compare_text=_text,
    unit="speed-up (x)",
    keys={"factor": ("faster",), "timing": ("faster",)},
    per_source=False,
    metric="seconds",
    applies=lambda claim: claim.get("timing") == "scoring",
    check=su.check_factor,
)

"""A's scoring is faster than B's (``expect: faster`` with ``timing: scoring``): speed-up of
the per-clip scoring seconds of two runs' scores, paired on their clips, with a bootstrap
interval over the clips: holds when it lies above ``factor`` (1 by default), contradicted
when below, inconclusive when it straddles."""

from __future__ import annotations

import math

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.kinds.record import Inputs, Kind
from hourglass_sep.claims.runs import run_name
from hourglass_sep.errors import UserError


def _row(claim: dict, source: str, inputs: Inputs) -> dict:
    a, b = claim["runs"]["a"], claim["runs"]["b"]
    factor = float(claim.get("factor", 1.0))
    base = {"variance": "clips", "margin": math.nan}
    kw = {k: v for k, v in inputs.opts.items() if k in ("unit", "n_boot", "seed", "confidence")}
    try:
        r = st.speed_up(inputs.scores, a, b, **kw)
    except UserError as exc:
        return {**base, "verdict": "no data", "detail": str(exc)}
    verdict = st.decide(r["lo"] - factor, r["hi"] - factor, "greater")
    ta, tb = r.pop("seconds")
    detail = f"scoring {ta:.3g} s vs {tb:.3g} s over {r['n_clips']} clips; needs x{factor:g}"
    return {**base, **r, "verdict": verdict, "detail": detail}


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
)

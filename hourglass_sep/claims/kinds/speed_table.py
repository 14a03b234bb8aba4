"""A is faster than B in the speed table (``expect: faster``, ``timing: speed-table``, the
default): A and B are ``what`` rows timed in the same interleaved rounds (A B A B ...); the
speed-up of a round is seconds(B) / seconds(A), its interval a t interval over the rounds'
log ratios.  holds when the interval lies above the claimed factor (1 by default) less the
zone of indifference (5 %) and above the zone around 1, i.e. above max(0.95 factor, 1.05);
contradicted when it lies below; else inconclusive.  Fewer than 5 rounds, or rows not timed
in the same rounds, are inconclusive with the reason.  ``needs: gpu``: "needs GPU" unless
both rows ran on a GPU.  Rules: claims/kinds/speedup.py."""

from __future__ import annotations

import math

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.kinds import speedup as su
from hourglass_sep.claims.kinds.record import Inputs, Kind
from hourglass_sep.errors import UserError


def _row(claim: dict, source: str, inputs: Inputs) -> dict:
    a, b = claim["runs"]["a"], claim["runs"]["b"]
    factor = float(claim.get("factor", 1.0))
    try:
        ra, rb = su.row_of(inputs.speed, a), su.row_of(inputs.speed, b)
    except UserError as exc:
        return {"variance": "", "margin": math.nan, "verdict": "no data", "detail": str(exc)}
    zone = su.indifference_of(ra, rb)
    logs, unpaired = su.paired_logs(ra, rb)
    stats = su.log_interval(logs, inputs.opts.get("confidence", st.CONFIDENCE))
    if unpaired:  # no rounds to pair: the ratio of the two rows' seconds, no interval
        stats["effect"] = float(rb["seconds"]) / float(ra["seconds"])
    res = su.judged(stats, unpaired or su.repeats_reason(len(logs)), factor, zone)
    seconds = f"{float(ra['seconds']):.3g} s vs {float(rb['seconds']):.3g} s (medians)"
    detail = "; ".join(x for x in (res.pop("why"), seconds, su.describe(res, factor, zone)) if x)
    row = {
        **res,
        "p_method": su.P_METHOD if len(logs) > 1 else "",
        "margin": zone,
        "variance": f"interleaved repeats ({len(logs)} rounds)" if len(logs) else "single timing",
        "detail": detail,
    }
    return su.gpu_guard(row, claim, ra, rb)


def _resolve(claim: dict, known, speed_whats, where: str) -> dict:
    """The compared names are ``what`` rows of speed.tsv, checked when it is given."""
    cmp = claim["compare"]
    for key in ("a", "b"):
        if speed_whats is not None and cmp[key] not in speed_whats:
            raise UserError(
                f"{where}.compare.{key}: {cmp[key]!r} is not a row of the speed table "
                f"(known: {sorted(speed_whats)})"
            )
    return {"a": cmp["a"], "b": cmp["b"]}


KIND = Kind(
    name="speed-table",
    expects=("faster",),
    summary=(
        "faster: A takes fewer seconds than B (by the factor, beyond a zone of indifference), "
        "in interleaved repeats of the speed table (timing: speed-table) or in the per-clip "
        "scoring seconds of two runs (timing: scoring)"
    ),
    forms=("b",),
    row=_row,
    compare_text=lambda claim, source: f"{claim['runs']['a']} vs {claim['runs']['b']}",
    unit="speed-up (x)",
    keys={"factor": ("faster",), "timing": ("faster",)},
    per_source=False,
    metric="seconds",
    on_runs=False,
    applies=lambda claim: claim.get("timing") != "scoring",
    check=su.check_factor,
    resolve=_resolve,
)

"""A separates faster than real time (``expect: real-time``, ``compare: {a: WHAT}``): a row of
the speed table whose ``audio_seconds`` of audio took ``seconds``.  The speed-up over real time
of a repeat is audio seconds / seconds; its interval is a t interval over the repeats' logs.
holds when the interval lies above max(0.95 factor, 1.05) (factor 1: real time; the zone of
indifference, claims/kinds/speedup.py), contradicted when below, else inconclusive; fewer
than 5 repeats are inconclusive with the reason.  ``needs: gpu``: "needs GPU" unless the row
ran on a GPU.  The course report: "a 64-s song in 6 s on one GTX 1060: real-time
separation"."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.kinds import speedup as su
from hourglass_sep.claims.kinds.record import Inputs, Kind
from hourglass_sep.errors import UserError
from hourglass_sep.results.timing import parse_times


def _row(claim: dict, source: str, inputs: Inputs) -> dict:
    what, factor = claim["runs"]["a"], float(claim.get("factor", 1.0))
    try:
        ra = su.row_of(inputs.speed, what)
    except UserError as exc:
        return {"variance": "", "margin": math.nan, "verdict": "no data", "detail": str(exc)}
    audio = float(ra["audio_seconds"]) if pd.notna(ra.get("audio_seconds")) else math.nan
    times = [t for t in parse_times(ra.get("times")) if t > 0]
    if not audio > 0 or not times:
        why = "the row records no audio length" if not audio > 0 else "the row has no repeats"
        return {"variance": "", "margin": math.nan, "verdict": "no data", "detail": why}
    zone = su.indifference_of(ra)
    logs = np.log(audio / np.asarray(times))
    stats = su.log_interval(logs, inputs.opts.get("confidence", st.CONFIDENCE))
    res = su.judged(stats, su.repeats_reason(len(logs)), factor, zone)
    seconds = f"{audio:.1f} s of audio in {float(ra['seconds']):.3g} s (median)"
    detail = "; ".join(x for x in (res.pop("why"), seconds, su.describe(res, factor, zone)) if x)
    row = {
        **res,
        "p_method": su.P_METHOD_ONE if len(logs) > 1 else "",
        "margin": zone,
        "variance": f"repeats ({len(logs)})",
        "detail": detail,
    }
    return su.gpu_guard(row, claim, ra)


def _resolve(claim: dict, known, speed_whats, where: str) -> dict:
    """The named row of speed.tsv, checked when the table is given."""
    what = claim["compare"]["a"]
    if speed_whats is not None and what not in speed_whats:
        raise UserError(
            f"{where}.compare.a: {what!r} is not a row of the speed table "
            f"(known: {sorted(speed_whats)})"
        )
    return {"a": what}


KIND = Kind(
    name="real-time",
    expects=("real-time",),
    summary=(
        "real-time: the speed table's row A processes its audio faster than it plays (by the "
        "factor, beyond a zone of indifference), over interleaved repeats"
    ),
    forms=("a",),
    row=_row,
    compare_text=lambda claim, source: f"{claim['runs']['a']} vs real time",
    unit="speed-up (x)",
    keys={"factor": ("real-time",)},
    per_source=False,
    metric="seconds",
    on_runs=False,
    check=su.check_factor,
    resolve=_resolve,
)

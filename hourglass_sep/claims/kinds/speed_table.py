"""A is faster than B in the speed table (``expect: faster``, ``timing: speed-table``, the
default): speed-up = seconds(B) / seconds(A), the median of each ``what``'s rows.  holds when
it reaches ``factor`` (1 by default), contradicted otherwise; one timing per name, so there
is no interval."""

from __future__ import annotations

import math

import pandas as pd

from hourglass_sep.claims.kinds.record import Inputs, Kind
from hourglass_sep.errors import UserError


def _row(claim: dict, source: str, inputs: Inputs) -> dict:
    a, b, speed = claim["runs"]["a"], claim["runs"]["b"], inputs.speed
    base = {"variance": "single timing", "margin": math.nan}
    if speed is None:
        return {**base, "verdict": "no data", "detail": "no speed table given"}
    secs = pd.to_numeric(speed["seconds"], errors="coerce").groupby(speed["what"]).median()
    if a not in secs.index or b not in secs.index:
        return {**base, "verdict": "no data", "detail": f"speed table lacks {a!r} or {b!r}"}
    ratio = float(secs[b] / secs[a])
    factor = float(claim.get("factor", 1.0))
    verdict = "holds" if ratio >= factor else "contradicted"
    detail = f"{secs[a]:.3g} s vs {secs[b]:.3g} s; needs x{factor:g}"
    return {**base, "effect": ratio, "verdict": verdict, "detail": detail}


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
        "faster: A takes fewer seconds than B (by the factor), in the speed table (timing: "
        "speed-table) or in the per-clip scoring seconds of two runs (timing: scoring)"
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
    resolve=_resolve,
)

"""A differs from B in a direction: ``greater`` (A > B) or ``less`` (A < B), for two runs, each
link of a chain R1 > R2 > ... or A against each run of ``each``; holds when the interval of
A - B excludes 0 on the claimed side, contradicted when it excludes 0 on the other (every link
must hold)."""

from __future__ import annotations

from hourglass_sep.claims.kinds.pairs import pairs_row, run_pairs, two_runs_text
from hourglass_sep.claims.kinds.record import Inputs, Kind
from hourglass_sep.claims.runs import run_name


def _row(claim: dict, source: str, inputs: Inputs) -> dict:
    return pairs_row(claim, run_pairs(claim, source, inputs), claim["expect"] == "less")


def _text(claim: dict, source: str) -> str:
    if "chain" in claim["runs"]:
        sign = " < " if claim["expect"] == "less" else " > "
        return sign.join(run_name(r) for r in claim["runs"]["chain"])
    return two_runs_text(claim, source)


KIND = Kind(
    name="difference",
    expects=("greater", "less"),
    summary="greater/less: A > B / A < B (for a chain, each link)",
    forms=("b", "chain", "each"),
    row=_row,
    compare_text=_text,
    unit="dB",
    own_clips=True,
)

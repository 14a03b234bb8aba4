"""A and B within a margin (dB): ``equivalent`` (|A - B| < margin), ``not-greater`` (A does
not beat B by more than margin) and its mirror ``not-less``; the interval of A - B decides
against the margin (:func:`hourglass_sep.claims.stats.decide`)."""

from __future__ import annotations

from hourglass_sep.claims.kinds.pairs import pairs_row, run_pairs, two_runs_text
from hourglass_sep.claims.kinds.record import Inputs, Kind
from hourglass_sep.errors import UserError

EXPECTS = ("equivalent", "not-greater", "not-less")


def _row(claim: dict, source: str, inputs: Inputs) -> dict:
    return pairs_row(claim, run_pairs(claim, source, inputs), claim["expect"] == "not-less")


def _check(claim: dict, where: str) -> None:
    if claim["expect"] == "equivalent" and not claim.get("margin"):
        raise UserError(f"{where}.margin: expect equivalent needs a margin > 0 (dB)")


KIND = Kind(
    name="margin",
    expects=EXPECTS,
    summary=(
        "equivalent: |A - B| < margin; not-greater: A - B < margin (A does not beat B by "
        "more than margin), not-less its mirror"
    ),
    forms=("b",),
    row=_row,
    compare_text=two_runs_text,
    unit="dB",
    keys={"margin": EXPECTS},
    own_clips=True,
    check=_check,
)

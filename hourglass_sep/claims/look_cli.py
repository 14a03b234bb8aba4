"""``hourglass-sep claims-look``: one look of a sequential design -- the confirmatory claims
judged at every look so far, and the replicates (and steps) to train before the next look, as
JSON for the workflow's checkpoint ``sequential_look`` (docs/statistics.md, "Sequential
replicates")."""

from __future__ import annotations

import argparse
import json

from hourglass_sep.claims import sequential as sq
from hourglass_sep.claims.cli import add_input_arguments, load_inputs
from hourglass_sep.claims.kinds.registry import kind_of
from hourglass_sep.claims.looks import run_look
from hourglass_sep.claims.verdicts import evaluate_claims
from hourglass_sep.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_input_arguments(p)
    p.add_argument("--look", type=int, required=True, help="this look (0 = the first)")
    p.add_argument("--looks", type=int, required=True, help="looks of the design")
    p.add_argument("--max-replicates", type=int, required=True, help="seeds per run at most")
    p.add_argument("--start", type=int, required=True, help="seeds per run at the first look")
    p.add_argument("--boundary", choices=sq.BOUNDARIES, default=sq.SequentialDesign.boundary)
    p.add_argument(
        "--alpha",
        type=float,
        default=sq.SequentialDesign.alpha,
        help="two-sided level of the design",
    )
    p.add_argument(
        "--futility-power",
        type=float,
        default=sq.FUTILITY_POWER,
        help="a claim stops as 'inconclusive (budget)' when the seeds it needs for this power "
        "exceed --max-replicates",
    )
    p.add_argument(
        "--no-futility",
        dest="futility",
        action="store_false",
        help="no futility stop: undecided claims get seeds until the last look",
    )
    p.add_argument("-o", "--output", required=True, help="the look's plan (JSON) to write")


def _design(args: argparse.Namespace) -> sq.SequentialDesign:
    try:
        design = sq.SequentialDesign(
            max_replicates=args.max_replicates,
            looks=args.looks,
            alpha=args.alpha,
            boundary=args.boundary,
            start=args.start,
            power=args.futility_power,
            futility=args.futility,
        )
    except ValueError as exc:
        raise UserError(f"claims-look: {exc}") from None
    if not 0 <= args.look < design.looks:
        raise UserError(f"--look {args.look}: give 0 .. {design.looks - 1}")
    return design


def _decidable(claim: dict) -> bool:
    """A claim more seeds can decide: confirmatory, an interval in dB on runs, and not one
    that needs another scale or device."""
    return (
        claim.get("family") == "confirmatory"
        and not claim.get("needs")
        and kind_of(claim).unit == "dB"
    )


def run(args: argparse.Namespace) -> int:
    from hourglass_sep.data.audio import atomic_path

    design = _design(args)
    claims, scores, kwargs = load_inputs(args)
    decidable = [c for c in claims if _decidable(c)]

    def evaluate(part):
        return evaluate_claims(decidable, part, **kwargs)

    plan = run_look(evaluate, scores, design, args.look, kwargs["models"])
    with atomic_path(args.output) as tmp:
        tmp.write_text(json.dumps(plan, indent=1, default=str))
    wanted = ", ".join(f"{v}: {n}" for v, n in plan["replicates"].items()) or "none"
    print(
        f"{args.output}: look {args.look + 1} of {design.looks} at "
        f"{design.replicates[args.look]} seeds per run; next seeds: {wanted}"
    )
    return 0

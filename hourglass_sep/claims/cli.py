"""``hourglass-sep claims``: read the claims file, the scores, experiments.json and the speed
table, and write the verdict, effects and interval tables and the forest plot.

``hourglass-sep claims-plan``: read a verdicts table back and print, per claim, its verdict
after Holm's adjustment, its minimum detectable effect and the seeds per run it needs
(:mod:`hourglass_sep.claims.power`)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.evidence import reported_from_experiments
from hourglass_sep.claims.experiments_io import (
    as_replicates,
    known_runs_from_experiments,
    mark_deterministic,
    model_of_variants,
    parameters_of_variants,
    replicate_map,
)
from hourglass_sep.claims.kinds.trains import history_paths
from hourglass_sep.claims.multiplicity import NEEDED, levels
from hourglass_sep.claims.power import MAX_SEEDS, POWER, annotate
from hourglass_sep.claims.runs import known_runs_from_scores
from hourglass_sep.claims.spec import load_claims
from hourglass_sep.claims.tables import effects_table, verdict_counts
from hourglass_sep.claims.verdicts import evaluate_claims
from hourglass_sep.errors import UserError


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    """The files and resampling options :func:`load_inputs` reads (``claims``,
    ``claims-look``)."""
    p.add_argument(
        "--claims", required=True, help="claims YAML (workflow/schemas/claims.schema.yaml)"
    )
    p.add_argument("--scores", required=True, nargs="+", help="per-clip score TSVs")
    p.add_argument(
        "--experiments",
        nargs="+",
        help="experiments.json: the configured runs and the scale (a sequential design's "
        "added runs: a second file)",
    )
    p.add_argument("--speed", help="speed.tsv, for claims with expect: faster")
    p.add_argument(
        "--preset", help="preset name (default: from experiments.json; paper = full scale)"
    )
    p.add_argument("--resamples", type=int, default=st.N_BOOT, help="bootstrap resamples")
    p.add_argument("--permutations", type=int, default=st.N_PERM, help="sign flips of the test")
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    p.add_argument(
        "--unit",
        choices=st.UNITS,
        default=st.DEFAULT_UNIT,
        help="resampling unit (default %(default)s; fewer than 5 in the compared clips: the "
        "next finer one; docs/statistics.md)",
    )
    p.add_argument(
        "--seed-sd-prior",
        type=float,
        default=None,
        metavar="DB",
        help="seed-to-seed sd (dB) of a run's global metric, measured at this scale, assumed "
        "for comparisons of runs with too few replicates to measure it; without it such a "
        "comparison is 'inconclusive (one seed)' (config: claims_seed_sd_prior)",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_input_arguments(p)
    p.add_argument(
        "--sequential",
        metavar="JSON",
        help="the last look of a sequential design (`hourglass-sep claims-look`): its "
        "verdicts replace the confirmatory claims' fixed-design ones",
    )
    p.add_argument("-o", "--output", required=True, help="verdicts TSV to write")
    p.add_argument("--effects", help="effects TSV to write (one row per compared pair)")
    p.add_argument("--figure", help="forest plot PNG to write")
    p.add_argument(
        "--intervals",
        help="TSV to write: every run's GNSDR/GSIR/GSAR with its 95 %% interval over clips "
        "(per replicate) and across replicates",
    )


def load_inputs(args: argparse.Namespace) -> tuple[list, pd.DataFrame, dict]:
    """(claims, scores as replicates, the keyword arguments of ``evaluate_claims``) from the
    verb's files; shared by ``claims`` and ``claims-look``."""
    from hourglass_sep.results.aggregate import read_scores
    from hourglass_sep.results.run_inputs import load_experiments, load_speed, scale_info

    if args.seed_sd_prior is not None and not args.seed_sd_prior >= 0:
        raise UserError(
            f"--seed-sd-prior {args.seed_sd_prior}: give the seed-to-seed sd in dB (>= 0), "
            "measured with replicates at this scale, or leave it out"
        )
    meta, rows = {}, []
    for path in args.experiments or []:  # the configured runs, then a design's added ones
        more_meta, more_rows = load_experiments(path)
        meta, rows = meta or more_meta, rows + more_rows
    known = known_runs_from_experiments(rows) if rows else {}
    preset = args.preset or meta.get("preset") or "unknown"  # unknown: not paper scale
    paper = None if args.preset or not rows else not scale_info(meta, rows)["reduced"]
    speed = load_speed(args.speed)
    # one file at a time: replicates of a run share (variant, step, clip) across files
    scores = pd.concat([read_scores([p]) for p in args.scores], ignore_index=True)
    scores = mark_deterministic(as_replicates(scores, replicate_map(rows)), rows)
    claims = load_claims(
        args.claims,
        {**known_runs_from_scores(scores), **known},
        None if speed is None else speed["what"].astype(str),
    )
    kwargs = dict(
        preset=preset,
        known_runs=known,
        speed=speed,
        paper_scale=paper,
        n_boot=args.resamples,
        n_perm=args.permutations,
        seed=args.seed,
        unit=args.unit,
        models=model_of_variants(rows),
        parameters=parameters_of_variants(rows),
        seed_sd_prior=args.seed_sd_prior,
        histories=history_paths(rows),
        reported=reported_from_experiments(rows) if rows else None,
    )
    return claims, scores, kwargs


def run(args: argparse.Namespace) -> int:
    from hourglass_sep.data.catalogue import write_table

    claims, scores, kwargs = load_inputs(args)
    table = evaluate_claims(claims, scores, **kwargs)
    if args.sequential:  # the design's verdicts for the confirmatory claims it judged
        from hourglass_sep.claims.looks import apply_sequential, load_plan

        table = apply_sequential(table, load_plan(args.sequential))
    if set(NEEDED) <= set(table.columns):  # Holm's adjustment and the seeds each claim needs
        table = annotate(table)
    write_table(table, args.output)
    if args.intervals:
        write_table(st.interval_table(scores, args.resamples, args.seed), args.intervals)
    effects = effects_table(table)
    if args.effects:
        write_table(effects, args.effects)
    if args.figure:
        from hourglass_sep.claims.forest import forest_plot

        forest_plot(effects, args.figure)
    counts = ", ".join(f"{n} {v}" for v, n in verdict_counts(table).items())
    print(f"{args.output}: {len(table)} verdicts ({counts})")
    return 0


# --------------------------------------------------------------------------- claims-plan


def add_claims_plan_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "results",
        nargs="?",
        metavar="RESULTS",
        help="results folder of a workflow run (reads RESULTS/claims/verdicts.tsv)",
    )
    p.add_argument(
        "--verdicts", metavar="TSV", help="verdicts TSV of `hourglass-sep claims` (not RESULTS)"
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="one-sided family-wise level of Holm's adjustment; None: (1 - confidence) / 2, "
        "the holds side of the table's intervals",
    )
    p.add_argument(
        "--confidence", type=float, default=st.CONFIDENCE, help="level of the table's intervals"
    )
    p.add_argument("--power", type=float, default=POWER, help="power behind the seeds needed")
    p.add_argument(
        "--max-seeds", type=int, default=MAX_SEEDS, help="more seeds per run than this: '>N'"
    )
    p.add_argument("--parts", action="store_true", help="also print each claim's parts")
    p.add_argument("-o", "--output", help="also write the annotated verdicts TSV here")


def _verdicts_path(args: argparse.Namespace) -> Path:
    if bool(args.results) == bool(args.verdicts):
        raise UserError("give a results folder or --verdicts PATH (one of them)")
    if args.verdicts:
        return Path(args.verdicts)
    return Path(args.results) / "claims" / "verdicts.tsv"


def _check_levels(args: argparse.Namespace) -> None:
    for name in ("confidence", "power"):
        if not 0 < getattr(args, name) < 1:
            raise UserError(f"--{name} {getattr(args, name)}: give a number between 0 and 1")
    if args.alpha is not None and not 0 < args.alpha < 1:
        raise UserError(f"--alpha {args.alpha}: give a number between 0 and 1")
    if args.max_seeds < 2:
        raise UserError(f"--max-seeds {args.max_seeds}: give at least 2")


def _fmt(x, spec: str = ".3g") -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(x) else format(x, spec)


def seeds_line(seeds) -> str:
    """The plan's sentence for a ``seeds_needed`` cell."""
    text = str(seeds)
    if text == "decided":
        return "decided: no more seeds needed"
    if text.startswith(">"):
        return f"needs more than {text[1:]} seeds per run"
    if text.isdigit():
        return f"needs ≈ {text} seeds per run"
    return "seeds needed: n/a"


def _plan_lines(row: dict, indent: str = "") -> list[str]:
    """One claim (or part) of the plan: verdicts, effect and interval, MDE and seeds."""
    unit = row.get("unit") if isinstance(row.get("unit"), str) else ""
    where = " ".join(x for x in (str(row.get("source", "")), str(row.get("metric", ""))) if x)
    head = f"{indent}{row['id']} [{where}] ({row.get('family') or 'confirmatory'}): "
    head += f"{row['verdict']} -> {row['adjusted_verdict']}"
    effect = (
        f"{indent}  effect {_fmt(row.get('effect'))} {unit} "
        f"[{_fmt(row.get('lo'))}, {_fmt(row.get('hi'))}], "
        f"{_fmt(row.get('n_replicates'), 'g')} replicates per run (fewest), "
        f"p(claim) {_fmt(row.get('p_claim'))}, "
        f"Holm p {_fmt(row.get('p_adjusted'))}"
    )
    plan = f"{indent}  MDE {_fmt(row.get('mde'))} {unit}; {seeds_line(row['seeds_needed'])}"
    note = row.get("power_note")
    lines = [head, effect, plan]
    if isinstance(note, str) and note:
        lines.append(f"{indent}  ({note})")
    return lines


def run_claims_plan(args: argparse.Namespace) -> int:
    from hourglass_sep.results.run_inputs import read_tsv

    _check_levels(args)
    path = _verdicts_path(args)
    hint = "run the workflow's rule claims (or `hourglass-sep claims`) first"
    table = read_tsv(path, "verdicts table", NEEDED, hint)
    try:
        out = annotate(table, args.alpha, args.confidence, args.power, args.max_seeds)
    except (TypeError, ValueError, KeyError) as exc:
        raise UserError(f"{path}: malformed verdicts table ({exc})") from None
    family = out["adjustment"].astype(str).str.startswith("Holm over")
    alpha = args.alpha if args.alpha is not None else (1 - args.confidence) / 2
    print(f"claims plan: {path}")
    print(
        f"Holm over {int(family.sum())} confirmatory claims at one-sided {alpha:g}; "
        f"MDE and seeds needed at {args.power:.0%} power"
    )
    lev = levels(out)
    for row, level in zip(out.to_dict("records"), lev):
        if level == "part" and not args.parts:
            continue
        print("\n".join(_plan_lines(row, "    " if level == "part" else "")))
    if args.output:
        from hourglass_sep.data.catalogue import write_table

        write_table(out, args.output)
    return 0

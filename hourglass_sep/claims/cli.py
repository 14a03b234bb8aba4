"""``hourglass-sep claims``: read the claims file, the scores, experiments.json and the speed
table, and write the verdict, effects and interval tables and the forest plot."""

from __future__ import annotations

import argparse

import pandas as pd

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.experiments_io import (
    as_replicates,
    known_runs_from_experiments,
    model_of_variants,
    parameters_of_variants,
    replicate_map,
)
from hourglass_sep.claims.runs import known_runs_from_scores
from hourglass_sep.claims.spec import load_claims
from hourglass_sep.claims.tables import effects_table, verdict_counts
from hourglass_sep.claims.verdicts import evaluate_claims
from hourglass_sep.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--claims", required=True, help="claims YAML (workflow/schemas/claims.schema.yaml)"
    )
    p.add_argument("--scores", required=True, nargs="+", help="per-clip score TSVs")
    p.add_argument("--experiments", help="experiments.json: the configured runs and the scale")
    p.add_argument("--speed", help="speed.tsv, for claims with expect: faster")
    p.add_argument(
        "--preset", help="preset name (default: from experiments.json; paper = full scale)"
    )
    p.add_argument("--resamples", type=int, default=st.N_BOOT, help="bootstrap resamples")
    p.add_argument("--permutations", type=int, default=st.N_PERM, help="sign flips of the test")
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    p.add_argument("--unit", choices=st.UNITS, default="clip", help="resampling unit")
    p.add_argument(
        "--seed-sd-prior",
        type=float,
        default=None,
        metavar="DB",
        help="seed-to-seed sd (dB) of a run's global metric, measured at this scale, assumed "
        "for comparisons of runs with too few replicates to measure it; without it such a "
        "comparison is 'inconclusive (one seed)' (config: claims_seed_sd_prior)",
    )
    p.add_argument("-o", "--output", required=True, help="verdicts TSV to write")
    p.add_argument("--effects", help="effects TSV to write (one row per compared pair)")
    p.add_argument("--figure", help="forest plot PNG to write")
    p.add_argument(
        "--intervals",
        help="TSV to write: every run's GNSDR/GSIR/GSAR with its 95 %% interval over clips "
        "(per replicate) and across replicates",
    )


def run(args: argparse.Namespace) -> int:
    from hourglass_sep.data.catalogue import write_table
    from hourglass_sep.results.aggregate import read_scores
    from hourglass_sep.results.run_inputs import load_experiments, load_speed, scale_info

    if args.seed_sd_prior is not None and not args.seed_sd_prior >= 0:
        raise UserError(
            f"--seed-sd-prior {args.seed_sd_prior}: give the seed-to-seed sd in dB (>= 0), "
            "measured with replicates at this scale, or leave it out"
        )
    meta, rows, known = {}, [], {}
    if args.experiments:
        meta, rows = load_experiments(args.experiments)
        known = known_runs_from_experiments(rows)
    runs = replicate_map(rows)
    preset = args.preset or meta.get("preset") or "unknown"  # unknown: not paper scale
    paper = None if args.preset or not rows else not scale_info(meta, rows)["reduced"]
    speed = load_speed(args.speed)
    # one file at a time: replicates of a run share (variant, step, clip) across files
    scores = pd.concat([read_scores([p]) for p in args.scores], ignore_index=True)
    scores = as_replicates(scores, runs)
    claims = load_claims(
        args.claims,
        {**known_runs_from_scores(scores), **known},
        None if speed is None else speed["what"].astype(str),
    )
    table = evaluate_claims(
        claims,
        scores,
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
    )
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

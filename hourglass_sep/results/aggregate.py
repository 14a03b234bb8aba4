"""Length-weighted GNSDR / GSIR / GSAR per (variant, step) from per-clip score tables.

The MIR-1K convention (Hsu & Jang; Park et al.; the course report): the global scores are means
over the test clips weighted by clip length,

    GNSDR = sum_k w_k NSDR_k / sum_k w_k,   w_k = samples scored in clip k,

likewise GSIR, GSAR and GSDR.  Only clips whose ``status`` is ``ok`` enter the means; the
others are counted in ``failed``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hourglass_sep.errors import UserError
from hourglass_sep.scoring.clip_status import main_failure, screen, usable

SOURCES = ("voice", "accompaniment")
# summary column suffix -> per-clip column suffix
GLOBAL = {"gnsdr": "nsdr", "gsir": "sir", "gsar": "sar", "gsdr": "sdr"}
REQUIRED = ["variant", "step", "clip", "samples", "status"] + [
    f"{s}_{m}" for s in SOURCES for m in ("sdr", "sir", "sar", "nsdr")
]
SUMMARY_COLUMNS = (
    ["variant", "step", "clips", "failed", "total_samples"]
    + [f"{s}_{g}" for s in SOURCES for g in GLOBAL]
    + ["scorer", "failure"]
)


def _step_sort_key(step) -> tuple:
    try:
        return (0, float(step), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(step))


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, step): ``clips`` (ok clips, the ones averaged), ``failed``,
    ``total_samples`` (of the ok clips), ``{src}_gnsdr/gsir/gsar/gsdr`` (length-weighted
    means over ok clips; NaN when no clip is ok), ``scorer`` (backends used) and ``failure``
    (the most common reason of the failed clips, empty when none failed)."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise UserError(
            f"not a scores table (missing columns {missing}); write it with `hourglass-sep score`"
        )
    rows = []
    if df.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    df = screen(df.reset_index(drop=True))  # once: read_scores screens, callers may not
    df["variant"] = df["variant"].fillna("").astype(str)
    groups = df.groupby(["variant", "step"], sort=False, dropna=False)
    for (variant, step), g in groups:
        ok = g[usable(g)]
        w = pd.to_numeric(ok["samples"], errors="coerce").to_numpy(dtype=float)
        row = {
            "variant": variant,
            "step": step,
            "clips": int(len(ok)),
            "failed": int(len(g) - len(ok)),
            "total_samples": int(np.nansum(w)) if len(ok) else 0,
        }
        for s in SOURCES:
            for gname, col in GLOBAL.items():
                x = pd.to_numeric(ok[f"{s}_{col}"], errors="coerce").to_numpy(dtype=float)
                total = w.sum() if len(w) else 0.0
                row[f"{s}_{gname}"] = float(np.sum(w * x) / total) if total > 0 else float("nan")
        scorers = sorted({str(x) for x in g["scorer"].dropna()}) if "scorer" in g.columns else []
        row["scorer"] = " + ".join(scorers)
        row["failure"] = main_failure(g["status"])
        rows.append(row)
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    order = sorted(
        range(len(out)),
        key=lambda i: (str(out["variant"].iloc[i]), _step_sort_key(out["step"].iloc[i])),
    )
    return out.iloc[order].reset_index(drop=True)


def read_scores(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Concatenate per-clip score tables, checking each is one; a clip scored twice for the
    same (variant, step) is an error."""
    frames = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise UserError(f"{p}: scores table not found; write it with `hourglass-sep score`")
        if p.is_dir():
            raise UserError(
                f"{p}: is a directory; --scores expects TSV files written by `hourglass-sep score`"
            )
        try:
            df = pd.read_csv(p, sep="\t")
        except Exception as exc:
            raise UserError(
                f"{p}: cannot read as a TSV table ({type(exc).__name__}: {exc}); "
                "expected a per-clip scores table written by `hourglass-sep score`"
            ) from None
        missing = [c for c in REQUIRED if c not in df.columns]
        if missing:
            raise UserError(
                f"{p}: not a scores table (missing columns {missing}); "
                "expected the per-clip TSV written by `hourglass-sep score`"
            )
        frames.append(df)
    if not frames:
        raise UserError("no scores tables given; pass --scores S1.tsv [S2.tsv ...]")
    df = pd.concat(frames, ignore_index=True)
    # one step column type: integers when every step is an integer
    steps = pd.to_numeric(df["step"], errors="coerce")
    if steps.notna().all() and (steps == steps.round()).all():
        df["step"] = steps.astype("int64")
    else:
        df["step"] = df["step"].astype(str)
    dup = df.duplicated(subset=["variant", "step", "clip"])
    if dup.any():
        first = df[dup].iloc[0]
        raise UserError(
            f"clip {first['clip']!r} of variant {first['variant']!r} step {first['step']} is "
            "scored in more "
            f"than one of the tables ({int(dup.sum())} duplicates); pass each shard's scores once"
        )
    return screen(df)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scores", required=True, nargs="+", help="per-clip score TSVs (hourglass-sep score)"
    )
    p.add_argument("-o", "--output", required=True, help="summary TSV to write")


def run(args: argparse.Namespace) -> int:
    from hourglass_sep.data.catalogue import write_table

    df = read_scores(args.scores)
    out = aggregate(df)
    write_table(out, args.output)
    print(f"{args.output}: {len(out)} (variant, step) rows from {len(df)} clip scores")
    for r in out.itertuples(index=False):
        head = f"  {r.variant} @ {r.step}: {r.clips} clips ({r.failed} failed"
        head += f": {r.failure})" if r.failed else ")"
        if not r.clips:
            print(f"{head}, no GNSDR: no usable clip")
            continue
        print(
            f"{head}, GNSDR voice {r.voice_gnsdr:.3f} dB, "
            f"accompaniment {r.accompaniment_gnsdr:.3f} dB"
        )
    return 0


MIN_SUBSET = 5  # a scaled-down subset keeps at least this many clips


def subset_size(n: int, scored: int, of: int | None = None) -> int:
    """Clips in a test subset of ``n`` clips "of ``of``": with fewer than ``of`` clips scored
    (a reduced test set), the same fraction of the scored clips, at least MIN_SUBSET; else
    ``n``.  The report's 100-clip subset of the 825 test clips is 7 of a 60-clip test set."""
    if of and scored < of:
        return min(scored, max(MIN_SUBSET, round(n * scored / of)))
    return min(n, scored)


def subset_scores(
    scores: pd.DataFrame, catalogue: pd.DataFrame, n: int, seed: int, of: int | None = None
) -> pd.DataFrame:
    """The rows of ``scores`` whose clip is in a fixed stratified subset of the scored clips
    (:func:`subset_size` of them; catalogue.pick_test_subset: by singer, seeded), so that a
    test-subset evaluation needs no separation of its own."""
    from hourglass_sep.data.catalogue import pick_test_subset

    scored = catalogue[catalogue["clip"].isin(set(scores["clip"]))].copy()
    missing = sorted(set(scores["clip"]) - set(scored["clip"]))
    if missing:
        raise UserError(f"clip {missing[0]!r} of the scores is not in the catalogue")
    scored["split"] = "test"
    n = subset_size(n, len(scored), of)
    chosen = set(pick_test_subset(scored, n, seed)["clip"])
    return scores[scores["clip"].isin(chosen)].reset_index(drop=True)


def add_subset_scores_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scores", required=True, nargs="+", help="the model's per-clip score TSVs")
    p.add_argument("--catalogue", required=True, help="catalogue.tsv (singer of each clip)")
    p.add_argument("--clips", type=int, required=True, help="clips in the subset")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset (dataset.subset_seed)")
    p.add_argument(
        "--of",
        type=int,
        default=None,
        help="--clips is a subset of this many clips (the workflow: MIR-1K's 825 test clips); "
        "a reduced test set gets the same fraction (at least 5)",
    )
    p.add_argument("--variant", required=True, help="run name written in the variant column")
    p.add_argument("-o", "--output", required=True, help="scores TSV to write")


def run_subset_scores(args: argparse.Namespace) -> int:
    from hourglass_sep.data.catalogue import read_catalogue, write_table

    if args.clips < 1:
        raise UserError(f"--clips {args.clips}: give at least 1 clip")
    if args.of is not None and args.of < args.clips:
        raise UserError(
            f"--of {args.of}: the full test set the subset is drawn from must hold at least "
            f"--clips ({args.clips}) clips; omit --of to take --clips of the scored clips"
        )
    df = read_scores(args.scores)
    out = subset_scores(df, read_catalogue(args.catalogue), args.clips, args.seed, args.of)
    out["variant"] = args.variant
    write_table(out, args.output)
    print(
        f"{args.output}: {out['clip'].nunique()} of {df['clip'].nunique()} clips "
        f"(stratified by singer, seed {args.seed}) as {args.variant}"
    )
    return 0

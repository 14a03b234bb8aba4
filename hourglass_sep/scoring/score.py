"""BSS Eval v3 scoring of separated estimates (the MIR-1K protocol) and the NSDR baseline.

Protocol (see ``docs/scoring.md``):

* references are the original channels of each test clip (voice = right, accompaniment =
  left) at the clip's own rate (16 kHz for MIR-1K); the mixture is their mean;
* the estimate of each source is scored against the references truncated to the estimate's
  length with BSS Eval v3 ``bss_eval_sources`` on the whole clip (512-tap distortion
  filters), estimate *i* against reference *i* (fixed order, no permutation search);
* NSDR = SDR(estimate) - SDR(mixture used as the estimate).  The mixture's scores depend
  only on the clip, so ``hourglass-sep baseline`` computes them once per dataset and every
  ``hourglass-sep score`` reuses them.

Three interchangeable backends give the same numbers (to ~1e-6 dB on MIR-1K clips):
``museval`` (the course report's choice, default), ``fast_bss_eval`` (about twice as fast) and
``cached`` (``hourglass_sep.scoring.bss_eval``: the references' Gram matrix factorised once per
clip,
read from the reference cache of ``hourglass_sep.scoring.reference_cache`` when one is given, each
estimate then costing block FFTs and triangular solves; about 10x faster than museval).
Neither museval nor fast_bss_eval is imported through its package ``__init__``:
``import museval`` pulls in musdb -> stempeg, which refuses to import without the
``ffmpeg`` binary, and ``import fast_bss_eval`` imports torch (seconds per worker process).
We load their numpy code (``museval/metrics.py``, ``fast_bss_eval/numpy/``)
from the installed files.

Two verbs live here: ``baseline`` (``add_baseline_arguments`` / ``run_baseline``) and
``score`` (``add_score_arguments`` / ``run_score``).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from hourglass_sep.data.catalogue import (  # one sharding rule for separate/baseline/score
    evaluated_clips,
    parse_shard,
)
from hourglass_sep.errors import UserError
from hourglass_sep.scoring.backends import (
    BACKENDS,
    DEFAULT_BACKEND,
    REGISTRY,
    bss_eval_sources,
    mixture_scores,
    mixture_scores_from_factors,
    scorer,
    scorer_name,
)
from hourglass_sep.scoring.clip_io import (
    EstimatesIndex,
    check_paths,
    close_npz_cache,
    load_catalogue,
    read_baselines,
    read_estimates,
    read_references,
)
from hourglass_sep.scoring.clip_status import METRIC_COLUMNS, non_finite_status
from hourglass_sep.scoring.signals import (
    BASELINE_COLUMNS,
    DEFAULT_MAX_SHORTFALL_S,
    METRICS,
    MIX_COLUMNS,
    SCORE_COLUMNS,
    SOURCES,
    ClipError,
    as_sources,
    check_signals,
)
from hourglass_sep.scoring.workers import default_workers, run_tasks

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- backends


# --------------------------------------------------------------------------- metrics


def _empty_score_row(samples: int = 0, status: str = "ok") -> dict[str, Any]:
    row: dict[str, Any] = {"samples": int(samples), "status": status, "mix_from": ""}
    for s in SOURCES:
        for k in ("sdr", "sir", "sar", "nsdr", "mix_sdr", "mix_sir", "mix_sar"):
            row[f"{s}_{k}"] = math.nan
    return row


def score_clip(
    refs: np.ndarray,
    ests: np.ndarray,
    backend: str = DEFAULT_BACKEND,
    baseline: dict[str, float] | None = None,
    baseline_samples: int | None = None,
    max_shortfall: int | None = None,
    factors=None,
) -> dict[str, Any]:
    """Score one clip; never raises for bad data (the reason goes to ``status``).

    ``refs``: ``(2, n)`` original (voice, accompaniment); ``ests``: ``(2, m)`` estimates,
    ``m <= n``.  The references are truncated to ``m`` samples.  ``baseline``: the
    mixture's ``{src}_mix_{sdr,sir,sar}`` computed on ``baseline_samples`` samples; it is
    reused when those are the ``m`` samples scored, otherwise the mixture is rescored on
    the truncated clip.  ``max_shortfall``: the most samples an estimate may lack.
    ``factors``: the full-length references' factors for the ``cached`` backend (unused
    when the estimate is shorter: the truncated references are factorised here).

    Returns ``samples``, ``status`` ("ok" or a reason), ``mix_from`` and, per source,
    ``sdr sir sar nsdr mix_sdr mix_sir mix_sar`` (``NaN`` where unknown).
    """
    row = _empty_score_row()
    try:
        refs = as_sources(refs, "references")
        ests = as_sources(ests, "estimates")
        n, m = refs.shape[1], ests.shape[1]
        row["samples"] = m
        if m > n:
            raise ClipError(f"length mismatch: estimate has {m} samples, reference {n}")
        if max_shortfall is not None and n - m > max_shortfall:
            raise ClipError(
                f"length mismatch: estimate has {m} samples, reference {n} "
                f"(more than {max_shortfall} short)"
            )
        refs = refs[:, :m]
        check_signals(refs, ests)
        if (
            baseline is not None
            and baseline_samples == m
            and not any(math.isnan(float(baseline.get(c, math.nan))) for c in MIX_COLUMNS)
        ):
            mix = {c: float(baseline[c]) for c in MIX_COLUMNS}
            row["mix_from"] = "baseline"
        else:
            mix = mixture_scores(refs, backend, factors)
            row["mix_from"] = "recomputed"
        scores = bss_eval_sources(refs, ests, backend, factors)
        for i, s in enumerate(SOURCES):
            for k in METRICS:
                row[f"{s}_{k}"] = float(scores[k][i])
            for k in METRICS:
                row[f"{s}_mix_{k}"] = mix[f"{s}_mix_{k}"]
            row[f"{s}_nsdr"] = row[f"{s}_sdr"] - row[f"{s}_mix_sdr"]
        bad = non_finite_status(row)
        if bad:  # never a mean's -inf: the clip fails with the metrics named
            for c in METRIC_COLUMNS:
                row[c] = math.nan
            raise ClipError(bad)
    except ClipError as exc:
        row["status"] = str(exc)
    except UserError:
        raise
    except Exception as exc:  # a numerical failure must not stop a long job
        row["status"] = f"scorer error: {type(exc).__name__}: {exc}"
    return row


# --------------------------------------------------------------------------- clips and files


# --------------------------------------------------------------------------- tasks (run in workers)


def _baseline_task(task: dict) -> dict:
    t0 = time.perf_counter()
    row = {
        "clip": task["clip"],
        "singer": task["singer"],
        "samples": task["samples"],
        "status": "ok",
    }
    row.update({c: math.nan for c in MIX_COLUMNS})
    try:
        factors = _cached_factors(task)
        if factors is not None:  # the reference cache has it all: no audio to read
            row["samples"] = factors.samples
            row.update(mixture_scores_from_factors(factors))
        else:
            refs, _sr = read_references(task["path"])
            row["samples"] = refs.shape[1]
            row.update(mixture_scores(refs, task["backend"]))
    except ClipError as exc:
        row["status"] = str(exc)
    except UserError:
        raise
    except Exception as exc:  # never stop a long job half way
        row["status"] = f"scorer error: {type(exc).__name__}: {exc}"
    row["seconds"] = time.perf_counter() - t0
    return row


def _cached_factors(task: dict):
    """The clip's factors from the reference cache named in ``task`` (``None``: none)."""
    entry = task.get("references")
    if entry is None or not scorer(task["backend"]).reads_reference_factors:
        return None
    from hourglass_sep.scoring.reference_cache import load_factors

    return load_factors(entry["path"], task["clip"], entry["samples"])


def _score_task(task: dict) -> dict:
    t0 = time.perf_counter()
    base = {"clip": task["clip"], "singer": task["singer"]}
    try:
        if task["estimates"] is None:
            raise ClipError("missing from estimates")
        ests = read_estimates(task["estimates"], task["clip"])
        refs, sr = read_references(task["path"])
        factors = _cached_factors(task)
        if factors is not None:
            from hourglass_sep.scoring.reference_cache import check_matches

            check_matches(factors, refs, f"{task['references']['path']} ({task['clip']})")
        shortfall = (
            None if task["max_shortfall_s"] is None else int(round(task["max_shortfall_s"] * sr))
        )
        row = score_clip(
            refs,
            ests,
            task["backend"],
            task["baseline"],
            task["baseline_samples"],
            shortfall,
            factors,
        )
    except ClipError as exc:
        row = _empty_score_row(task["samples"], str(exc))
    except UserError:
        raise
    except Exception as exc:  # never stop a long job half way
        row = _empty_score_row(task["samples"], f"scorer error: {type(exc).__name__}: {exc}")
    row.update(base)
    row["seconds"] = time.perf_counter() - t0
    return row


# --------------------------------------------------------------------------- parallel map


# --------------------------------------------------------------------------- tables


def reference_entries(clips, references, backend: str) -> dict[str, dict | None]:
    """clip -> where its cached factors are (``None``: compute them) for catalogue rows
    ``clips`` and the reference cache files ``references`` (``None``: no cache)."""
    names = clips["clip"].astype(str).tolist()
    if not references:
        return dict.fromkeys(names)
    if not scorer(backend).reads_reference_factors:
        readers = " / ".join(n for n, r in REGISTRY.items() if r.reads_reference_factors)
        log.warning("--references is read by the %s backend only; ignored (%s)", readers, backend)
        return dict.fromkeys(names)
    from hourglass_sep.scoring.reference_cache import ReferenceCache

    if isinstance(references, (str, os.PathLike)):
        references = [references]
    cache = ReferenceCache(references)
    missing = cache.missing(names)
    if missing:
        raise UserError(
            f"the reference caches lack {len(missing)} of the {len(names)} clips "
            f"(e.g. {', '.join(missing[:3])}); pass every shard file of the cache to "
            "--references (or omit --references to factorise here)"
        )
    stale = [c for c, n in zip(names, clips["samples"]) if cache.where[c][1] != int(n)]
    if stale:
        raise UserError(
            f"{cache.where[stale[0]][0]}: {len(stale)} clips (e.g. {stale[0]}) have another "
            "length in the reference cache than in the catalogue; the cache is stale: rebuild it"
        )
    return {c: cache.entry(c) for c in names}


def mixture_baseline(
    clips,
    backend: str = DEFAULT_BACKEND,
    workers: int = 1,
    progress: bool = False,
    references=None,
):
    """The mixture's SDR/SIR/SAR per clip (catalogue rows ``clips``) -> baseline DataFrame.

    ``references``: reference cache file(s) read by the ``cached`` backend (the mixture is
    then scored from the cached correlations alone)."""
    import pandas as pd

    entries = reference_entries(clips, references, backend)
    tasks = [
        {
            "clip": str(r.clip),
            "singer": str(r.singer),
            "path": str(r.path),
            "samples": int(r.samples),
            "backend": backend,
            "references": entries[str(r.clip)],
        }
        for r in clips.itertuples(index=False)
    ]
    rows = run_tasks(_baseline_task, tasks, workers, backend, progress, desc="baseline")
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=BASELINE_COLUMNS)
    df["scorer"] = scorer_name(backend)
    return df[BASELINE_COLUMNS].sort_values("clip", kind="stable").reset_index(drop=True)


def _indexed_baseline(baseline, clips):
    """The baseline table indexed by clip, checked to cover every clip to score.

    A partial baseline (some shard files forgotten) would silently rescore mixtures; a
    clear error names the fix instead.
    """
    baseline = baseline.set_index(baseline["clip"].astype(str), drop=False)
    missing = [c for c in clips["clip"].astype(str) if c not in baseline.index]
    if missing:
        raise UserError(
            f"the baseline tables lack {len(missing)} of the {len(clips)} clips to score "
            f"(e.g. {', '.join(missing[:3])}); pass every shard file of "
            "`hourglass-sep baseline` to --baseline "
            "(or omit --baseline to score the mixture here)"
        )
    return baseline


def _score_tasks(
    clips, index, baseline, entries: dict, backend: str, max_shortfall_s: float | None
) -> list[dict]:
    """One picklable task per clip for the worker pool (estimates may be absent: ``None``)."""
    tasks = []
    for r in clips.itertuples(index=False):
        clip = str(r.clip)
        b = bs = None
        if baseline is not None:
            brow = baseline.loc[clip]
            if str(brow["status"]) == "ok":  # a failed baseline row: the mixture is rescored here
                b = {c: float(brow[c]) for c in MIX_COLUMNS}
                bs = int(brow["samples"])
        tasks.append(
            {
                "clip": clip,
                "singer": str(r.singer),
                "path": str(r.path),
                "samples": int(r.samples),
                "estimates": index.where.get(clip),
                "backend": backend,
                "baseline": b,
                "baseline_samples": bs,
                "max_shortfall_s": max_shortfall_s,
                "references": entries[clip],
            }
        )
    return tasks


def _log_extra_estimates(index, clips) -> None:
    """Say when the estimates hold clips that are not scored (e.g. a wider split)."""
    expected = set(clips["clip"].astype(str))
    extra = [c for c in index.where if c not in expected]
    if extra:
        log.info(
            "%d clips in the estimates are not among the clips to score (e.g. %s); ignored",
            len(extra),
            extra[0],
        )


def _log_missing_estimates(tasks: list[dict]) -> None:
    """Warn up front: clips without estimates become failure rows, not a crash."""
    n_missing = sum(t["estimates"] is None for t in tasks)
    if n_missing:
        log.warning(
            "%d of %d clips are missing from the estimates; recorded as failures",
            n_missing,
            len(tasks),
        )


def score_estimates(
    clips,
    estimates: str | os.PathLike | Sequence[str | os.PathLike],
    baseline=None,
    backend: str = DEFAULT_BACKEND,
    workers: int = 1,
    variant: str = "",
    step: Any = "",
    max_shortfall_s: float | None = DEFAULT_MAX_SHORTFALL_S,
    progress: bool = False,
    references=None,
):
    """Score the estimates of catalogue rows ``clips`` -> per-clip scores DataFrame.

    ``estimates``: one or several npz files (``clips``, ``voice__<clip>``,
    ``accompaniment__<clip>``).  ``baseline``: a DataFrame from ``mixture_baseline`` /
    ``read_baselines`` (index or column ``clip``) or ``None`` to score the mixture of every
    clip here.  Clips absent from the estimates get status ``missing from estimates``.
    ``references``: reference cache file(s) read by the ``cached`` backend.
    """
    import pandas as pd

    if isinstance(estimates, (str, os.PathLike)):
        estimates = [estimates]
    index = EstimatesIndex(estimates)
    if baseline is not None:
        baseline = _indexed_baseline(baseline, clips)
    entries = reference_entries(clips, references, backend)
    _log_extra_estimates(index, clips)
    tasks = _score_tasks(clips, index, baseline, entries, backend, max_shortfall_s)
    _log_missing_estimates(tasks)
    try:
        rows = run_tasks(_score_task, tasks, workers, backend, progress, desc="score")
    finally:
        close_npz_cache()
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=SCORE_COLUMNS)
    df["variant"] = variant
    df["step"] = step
    df["scorer"] = scorer_name(backend)
    return df[SCORE_COLUMNS].sort_values("clip", kind="stable").reset_index(drop=True)


def write_table(df, path: str | os.PathLike) -> None:
    from hourglass_sep.data.catalogue import write_table as _write

    _write(df, path)


# --------------------------------------------------------------------------- CLI


def _common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--catalogue", required=True, help="catalogue TSV (hourglass-sep catalogue)")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=DEFAULT_BACKEND,
        help="BSS Eval implementation (same numbers to ~1e-6 dB; fast_bss_eval is ~2x, "
        "cached ~10x faster than museval)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (one BLAS thread each); default: $OMP_NUM_THREADS "
        "(Snakemake's threads) or the number of CPUs",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--references",
        nargs="+",
        default=None,
        help="reference cache .npz file(s) (hourglass-sep references), read by "
        "--backend cached; omitted: the references are factorised here",
    )


def add_baseline_arguments(p: argparse.ArgumentParser) -> None:
    _common_arguments(p)
    p.add_argument("--shard", default="0/1", help="shard I/N (0-based) of the evaluated test clips")
    p.add_argument("-o", "--output", required=True, help="baseline TSV to write")


def add_score_arguments(p: argparse.ArgumentParser) -> None:
    _common_arguments(p)
    p.add_argument(
        "--estimates",
        required=True,
        nargs="+",
        help="estimates .npz written by `hourglass-sep separate --estimates` (several: shards)",
    )
    p.add_argument(
        "--baseline",
        nargs="+",
        default=None,
        help="baseline TSV(s) from `hourglass-sep baseline` (all shards); "
        "omitted: the mixture is scored here for every clip",
    )
    p.add_argument(
        "--shard", default="0/1", help="score shard I/N (0-based) of the evaluated test clips"
    )
    p.add_argument("--variant", required=True, help="variant name written in the table")
    p.add_argument(
        "--step", required=True, help="training step of the model (written in the table)"
    )
    p.add_argument(
        "--max-shortfall",
        type=float,
        default=DEFAULT_MAX_SHORTFALL_S,
        help="seconds an estimate may be shorter than its reference before the clip is "
        "recorded as a length mismatch",
    )
    p.add_argument("-o", "--output", required=True, help="per-clip scores TSV to write")


def _workers(args) -> int:
    n = default_workers() if args.workers is None else args.workers
    if n < 1:
        raise UserError(f"--workers {n}: need at least 1")
    return n


def _step_value(step: str):
    try:
        return int(step)
    except ValueError:
        return step


def run_baseline(args: argparse.Namespace) -> int:
    shard = parse_shard(args.shard)
    clips = evaluated_clips(load_catalogue(args.catalogue), shard)
    if clips.empty:
        log.warning("%s: no evaluated test clips in shard %s", args.catalogue, args.shard)
    check_paths(clips, args.catalogue)
    t0 = time.perf_counter()
    df = mixture_baseline(
        clips,
        args.backend,
        _workers(args),
        progress=not args.no_progress,
        references=args.references,
    )
    write_table(df, args.output)
    ok = int((df["status"] == "ok").sum())
    print(
        f"{args.output}: mixture baseline of {len(df)} clips ({ok} ok, {len(df) - ok} failed), "
        f"{args.backend}, {time.perf_counter() - t0:.1f} s"
    )
    return 0


def run_score(args: argparse.Namespace) -> int:
    shard = parse_shard(args.shard)
    clips = evaluated_clips(load_catalogue(args.catalogue), shard)
    if clips.empty:
        log.warning("%s: no evaluated test clips in shard %s", args.catalogue, args.shard)
    check_paths(clips, args.catalogue)
    baseline = read_baselines(args.baseline) if args.baseline else None
    if baseline is not None and "scorer" in baseline.columns:
        other = sorted(
            {str(s) for s in baseline["scorer"] if not str(s).startswith(args.backend + " ")}
        )
        if other:
            log.info(
                "baseline scored with %s, estimates with %s (the backends agree to ~1e-6 dB)",
                ", ".join(other),
                args.backend,
            )
    t0 = time.perf_counter()
    df = score_estimates(
        clips,
        args.estimates,
        baseline,
        args.backend,
        _workers(args),
        args.variant,
        _step_value(args.step),
        max_shortfall_s=args.max_shortfall,
        progress=not args.no_progress,
        references=args.references,
    )
    write_table(df, args.output)
    ok = df["status"] == "ok"
    msg = (
        f"{args.output}: {len(df)} clips ({int(ok.sum())} ok, {int((~ok).sum())} failed), "
        f"{args.backend}, {time.perf_counter() - t0:.1f} s"
    )
    if ok.any():
        w = df.loc[ok, "samples"].astype(float)
        msg += "; GNSDR voice {:.3f} dB, accompaniment {:.3f} dB".format(
            float(np.average(df.loc[ok, "voice_nsdr"], weights=w)),
            float(np.average(df.loc[ok, "accompaniment_nsdr"], weights=w)),
        )
    print(msg)
    if (~ok).any():
        reasons = df.loc[~ok, "status"].value_counts()
        for reason, count in reasons.head(5).items():
            log.warning("%d clip(s): %s", count, reason)
    return 0

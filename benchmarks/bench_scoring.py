"""Benchmark the scoring step on the real MIR-1K test clips at hand.

Scores every real test clip in ``shared/data/mir1k/Wavfile`` (415 of the 825 MIR-1K test
clips; ``shared`` beside the repository root, or $HOURGLASS_SEP_SHARED) against a fixed,
deterministic, non-trivial estimate (source + leak of the other source + a small non-linear
artefact), both sources:

1. builds the reference cache (``hourglass_sep.scoring.reference_cache``), ``--workers`` processes;
2. per backend (``cached`` reading that cache, ``fast_bss_eval``, ``museval``): the mixture
   baseline once, then one model's ``score`` step, ``--workers`` processes (one BLAS thread
   each) -- the work of ``hourglass-sep baseline`` / ``score``, estimates read from an npz;
3. the report's way: ``museval.metrics.bss_eval_sources`` per clip in one process, the
   mixture rescored for every variant (2 evaluations per clip);
4. where the cached backend's time goes: each stage timed per clip in one process.

Prints wall and CPU seconds for each, the largest difference between the backends' numbers,
the extrapolation to the 825-clip protocol (x 825 / clips measured) and the ratio to the
report's way.  Exit status 1 when a backend differs from museval by more than 1e-3 dB.

    python benchmarks/bench_scoring.py [--clips N] [--workers 2] [--seed-clips N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

from hourglass_sep.data.catalogue import evaluated_clips
from hourglass_sep.scoring.backends import get_backend
from hourglass_sep.scoring.clip_io import close_npz_cache, read_estimates, read_references
from hourglass_sep.scoring.scorers.museval_v4 import load_museval_metrics
from hourglass_sep.scoring.signals import SCORE_COLUMNS, check_signals
from hourglass_sep.scoring.workers import _limit_blas_here

REPO = Path(__file__).resolve().parents[1]
# the project's reference data beside the checkout, or where HOURGLASS_SEP_SHARED points
DATA = Path(os.environ.get("HOURGLASS_SEP_SHARED") or REPO.parent / "shared") / "data" / "mir1k"
FULL_TEST_CLIPS = 825
TOL_DB = 1e-3
BACKENDS = ("cached", "fast_bss_eval", "museval")


def cpu_now() -> float:
    """CPU seconds of this process and its finished children (the pools' workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Timer:
    """Wall and CPU seconds of a ``with`` block."""

    def __enter__(self):
        self.t0, self.c0 = time.perf_counter(), cpu_now()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        self.cpu = cpu_now() - self.c0


def fixed_estimates(refs):
    """Deterministic estimate: 0.9 source + leak of the other + a small tanh artefact."""
    import numpy as np

    v, a = refs
    voice = 0.9 * v + 0.2 * a + 0.05 * np.tanh(4 * v)
    acc = 0.9 * a + 0.15 * v + 0.05 * np.tanh(4 * a)
    return np.stack([voice, acc]).astype(np.float32)


def write_estimates(clips, path: Path) -> None:
    import numpy as np

    arrays = {"clips": np.array(clips["clip"].tolist())}
    for r in clips.itertuples(index=False):
        refs, _ = read_references(r.path)
        e = fixed_estimates(refs)
        arrays[f"voice__{r.clip}"] = e[0]
        arrays[f"accompaniment__{r.clip}"] = e[1]
    arrays["meta"] = np.array(json.dumps({"what": "bench_scoring fixed estimate"}))
    np.savez(path, **arrays)


def time_backends(clips, est_path, refs_path, workers):
    """Baseline + one model's scores per backend -> (tables, figures)."""
    from hourglass_sep.scoring import score as S

    tables, figures = {}, {}
    for backend in BACKENDS:
        get_backend(backend)
        refs = [refs_path] if backend == "cached" else None
        with Timer() as tb:
            base = S.mixture_baseline(clips, backend, workers=workers, references=refs)
        with Timer() as ts:
            scores = S.score_estimates(
                clips, est_path, base, backend, workers, "bench", 0, references=refs
            )
        bad = scores[scores["status"] != "ok"]
        if len(bad):
            print(f"  {backend}: {len(bad)} clips not ok, e.g. {bad['clip'].iloc[0]}: ", end="")
            print(bad["status"].iloc[0])
        tables[backend] = scores
        figures[backend] = {
            "baseline_s": tb.wall,
            "baseline_cpu_s": tb.cpu,
            "score_s": ts.wall,
            "score_cpu_s": ts.cpu,
        }
        print(
            f"  {backend:14s} baseline {tb.wall:6.1f} s wall ({tb.cpu:6.1f} s CPU)   "
            f"score {ts.wall:6.1f} s wall ({ts.cpu:6.1f} s CPU)"
        )
    return tables, figures


def time_report_way(clips, est_path):
    """museval's bss_eval_sources per clip, one process, the mixture rescored per variant."""
    import numpy as np
    import pandas as pd

    mm = load_museval_metrics()
    rows = []
    with _limit_blas_here(), warnings.catch_warnings(), Timer() as t:
        warnings.simplefilter("ignore")
        z = np.load(est_path)
        for r in clips.itertuples(index=False):
            refs, _ = read_references(r.path)
            ests = np.stack([z[f"voice__{r.clip}"], z[f"accompaniment__{r.clip}"]])
            ests = ests.astype(np.float64)
            refs = refs[:, : ests.shape[1]]
            sdr, _, _, _ = mm.bss_eval_sources(refs, ests)
            msdr, _, _, _ = mm.bss_eval_sources(refs, np.stack([refs.mean(0)] * 2))
            rows.append(
                {
                    "clip": r.clip,
                    "voice_sdr": sdr[0, 0],
                    "accompaniment_sdr": sdr[1, 0],
                    "voice_nsdr": sdr[0, 0] - msdr[0, 0],
                    "accompaniment_nsdr": sdr[1, 0] - msdr[1, 0],
                }
            )
    return pd.DataFrame(rows).set_index("clip"), t


def breakdown(clips, est_path, refs_path):
    """Wall and CPU seconds per stage of the cached backend's score step, one process
    (summed over clips; CPU is what a loaded machine does not inflate)."""
    import numpy as np

    from hourglass_sep.scoring import bss_eval as B
    from hourglass_sep.scoring import reference_cache as RC
    from hourglass_sep.scoring import score as S

    entries = S.reference_entries(clips, [refs_path], "cached")
    names = ["read estimates", "read references (audio)", "read cached factors", "checks"]
    names += ["correlations (block FFT)", "triangular solves + dB"]
    wall, cpu = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0.0)

    def mark():
        return time.perf_counter(), time.process_time()

    with _limit_blas_here():
        for r in clips.itertuples(index=False):
            marks = [mark()]
            ests = read_estimates(str(est_path), r.clip)
            marks.append(mark())
            refs, _ = read_references(r.path)
            marks.append(mark())
            e = entries[r.clip]
            f = RC.load_factors(e["path"], r.clip, e["samples"])
            marks.append(mark())
            check_signals(refs, ests)
            RC.check_matches(f, refs, str(refs_path))
            marks.append(mark())
            d = B.correlations(refs, ests)
            marks.append(mark())
            B._criteria(f, d, np.einsum("jt,jt->j", ests, ests), np.arange(2))
            marks.append(mark())
            for k, name in enumerate(names):
                wall[name] += marks[k + 1][0] - marks[k][0]
                cpu[name] += marks[k + 1][1] - marks[k][1]
    close_npz_cache()
    return wall, cpu


def agreement(tables, report):
    """Largest |backend - museval| over all clips and numbers (the mixture's SAR excepted:
    +inf in theory, numerical noise in practice) and |museval - report's way| (SDR, NSDR)."""

    cols = [
        c
        for c in SCORE_COLUMNS
        if c.endswith(("_sdr", "_sir", "_sar", "_nsdr")) and not c.endswith("mix_sar")
    ]
    ref = tables["museval"].set_index("clip")
    out = {}
    for backend in ("cached", "fast_bss_eval"):
        other = tables[backend].set_index("clip")
        ok = (ref["status"] == "ok") & (other["status"] == "ok")
        diff = (ref.loc[ok, cols] - other.loc[ok, cols]).abs()
        out[backend] = float(diff.to_numpy().max())
        print(
            f"max |museval - {backend}| over {int(ok.sum())} clips x {len(cols)} numbers: "
            f"{out[backend]:.2e} dB (largest in {diff.max().idxmax()}); "
            f"{'OK' if out[backend] <= TOL_DB else 'FAIL'} (<= {TOL_DB:g} dB)"
        )
    out["report_way"] = float((ref.loc[report.index, report.columns] - report).abs().max().max())
    print(f"max |museval (ours) - report's way| (SDR, NSDR): {out['report_way']:.2e} dB")
    return out


def extrapolate(figures, t_cache, t_report, n, workers):
    scale = FULL_TEST_CLIPS / n
    print(
        f"extrapolated to the 825 MIR-1K test clips (x {FULL_TEST_CLIPS}/{n} = {scale:.3f}, "
        f"by clip count), {workers} workers, one model, baseline and cache shared:"
    )
    ext = {"scale": scale, "reference_cache_s": t_cache.wall * scale}
    print(f"  reference cache, once per dataset: {ext['reference_cache_s']:6.1f} s wall")
    targets = {"cached": 20.0, "fast_bss_eval": 60.0, "museval": 60.0}
    for backend in BACKENDS:
        f = figures[backend]
        ext[backend] = f["score_s"] * scale
        ext[backend + "_cpu_per_core"] = f["score_cpu_s"] * scale / workers
        ext[backend + "_baseline_once"] = f["baseline_s"] * scale
        print(
            f"  {backend:14s} score {ext[backend]:6.1f} s wall per model "
            f"(CPU/{workers}: {ext[backend + '_cpu_per_core']:6.1f} s; "
            f"target <= {targets[backend]:g} s: "
            f"{'OK' if ext[backend] <= targets[backend] else 'over'}); "
            f"baseline once {ext[backend + '_baseline_once']:6.1f} s"
        )
    ext["report_way"] = t_report.wall * scale
    print(
        f"  {'report way':14s} {ext['report_way']:6.1f} s wall per model (1 process, "
        f"mixture rescored); cached backend is {ext['report_way'] / ext['cached']:.0f}x faster, "
        f"museval backend {ext['report_way'] / ext['museval']:.1f}x"
    )
    return ext


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default=str(DATA), help="MIR-1K folder holding Wavfile/")
    ap.add_argument("--clips", type=int, default=None, help="score only the first N test clips")
    ap.add_argument("--workers", type=int, default=2, help="worker processes of the parallel runs")
    ap.add_argument(
        "--seed-clips",
        type=int,
        default=None,
        help="time the report's way on the first N clips only (scaled to all by clip count)",
    )
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    data = Path(args.data)
    if not (data / "Wavfile").is_dir():
        print(f"SKIP: {data}/Wavfile not found (the real MIR-1K clips); nothing to benchmark")
        return 0

    import numpy as np

    from hourglass_sep.data.catalogue import build_catalogue
    from hourglass_sep.scoring import reference_cache as RC

    cat = build_catalogue(data)
    cat["evaluate"] = cat["split"] == "test"
    clips = evaluated_clips(cat)
    if args.clips:
        clips = clips.iloc[: args.clips].reset_index(drop=True)
    n = len(clips)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{n} test clips, {int(clips['samples'].sum()) / 16000:.0f} s of audio, "
        f"{args.workers} workers, {os.cpu_count()} CPUs, load average {load:.1f} at start, "
        f"numpy {np.__version__}, python {platform.python_version()}"
    )
    results = {"clips": n, "workers": args.workers, "load_at_start": load}
    with tempfile.TemporaryDirectory() as tmp:
        est_path, refs_path = Path(tmp) / "estimates.npz", Path(tmp) / "references.npz"
        write_estimates(clips, est_path)
        with Timer() as t_cache:
            RC.build_cache(clips, refs_path, args.workers)
        size = refs_path.stat().st_size / 2**20
        print(
            f"  reference cache build: {t_cache.wall:.1f} s wall ({t_cache.cpu:.1f} s CPU), "
            f"{size:.0f} MiB"
        )
        results["reference_cache"] = {"s": t_cache.wall, "cpu_s": t_cache.cpu, "mib": size}
        tables, results["backends"] = time_backends(clips, est_path, refs_path, args.workers)
        seed_clips = clips if not args.seed_clips else clips.iloc[: args.seed_clips]
        report, t_report = time_report_way(seed_clips, est_path)
        t_report.wall *= n / len(seed_clips)
        print(
            f"  report's way (museval per clip, mixture rescored, 1 process): "
            f"{t_report.wall:.1f} s wall"
            + (f" (scaled from {len(seed_clips)} clips)" if len(seed_clips) < n else "")
        )
        wall, cpu = breakdown(clips, est_path, refs_path)
    total = sum(cpu.values())
    print(
        f"where the cached backend's score time goes (1 process, {n} clips, "
        f"{sum(wall.values()):.1f} s wall, {total:.1f} s CPU):"
    )
    for name in wall:
        print(
            f"  {name:26s} wall {1e3 * wall[name] / n:6.2f} ms/clip   "
            f"CPU {1e3 * cpu[name] / n:6.2f} ms/clip  {100 * cpu[name] / total:4.0f} % of CPU"
        )
    results["breakdown_s"] = {"wall": wall, "cpu": cpu}
    results["max_abs_diff_db"] = agreement(tables, report)
    results["extrapolated_825_s"] = extrapolate(
        results["backends"], t_cache, t_report, n, args.workers
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    worst = max(results["max_abs_diff_db"][b] for b in ("cached", "fast_bss_eval"))
    return 0 if worst <= TOL_DB else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark the scoring step on the real MIR-1K test clips at hand.

Scores every real test clip in ``../shared/data/mir1k/Wavfile`` (415 of the 825 MIR-1K test
clips; relative to the repository root) against a fixed, deterministic, non-trivial estimate
(source + leak of the other source + a small non-linear artefact), both sources, three ways:

1. ``museval`` backend, ``--workers`` processes (one BLAS thread each), mixture baseline shared;
2. ``fast_bss_eval`` backend, same;
3. the seed's way: ``museval.metrics.bss_eval_sources`` per clip in one process, the mixture
   rescored for every variant (2 evaluations per clip).

Prints seconds for each, the largest difference between the backends' numbers and the
extrapolated time of the full 825-clip protocol for one variant (the baseline is computed
once per dataset, so a variant costs only its ``score`` step).

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

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / ".." / "shared" / "data" / "mir1k").resolve()
FULL_TEST_CLIPS = 825


def children_cpu() -> float:
    """CPU seconds of the finished child processes (the pools' workers, once shut down)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def fixed_estimates(refs):
    """Deterministic estimate: 0.9 source + leak of the other + a small tanh artefact."""
    import numpy as np

    v, a = refs
    voice = 0.9 * v + 0.2 * a + 0.05 * np.tanh(4 * v)
    acc = 0.9 * a + 0.15 * v + 0.05 * np.tanh(4 * a)
    return np.stack([voice, acc]).astype(np.float32)


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
        help="time the seed's way on the first N clips only (extrapolated to all)",
    )
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    data = Path(args.data)
    if not (data / "Wavfile").is_dir():
        print(f"SKIP: {data}/Wavfile not found (the real MIR-1K clips); nothing to benchmark")
        return 0

    import numpy as np
    import pandas as pd

    from hourglass_sep import scoring as S
    from hourglass_sep.catalogue import build_catalogue

    cat = build_catalogue(data)
    cat["evaluate"] = cat["split"] == "test"
    clips = S.evaluated_clips(cat)
    if args.clips:
        clips = clips.iloc[: args.clips].reset_index(drop=True)
    n = len(clips)
    n_samples = int(clips["samples"].sum())
    print(
        f"{n} test clips, {n_samples / 16000:.0f} s of audio, {args.workers} workers, "
        f"{os.cpu_count()} CPUs, numpy {np.__version__}, python {platform.python_version()}"
    )

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        est_path = tmp / "estimates.npz"
        arrays = {"clips": np.array(clips["clip"].tolist())}
        for r in clips.itertuples(index=False):
            refs, _ = S.read_references(r.path)
            e = fixed_estimates(refs)
            arrays[f"voice__{r.clip}"] = e[0]
            arrays[f"accompaniment__{r.clip}"] = e[1]
        arrays["meta"] = np.array(json.dumps({"what": "bench_scoring fixed estimate"}))
        np.savez(est_path, **arrays)
        del arrays

        tables = {}
        for backend in S.BACKENDS:
            S.get_backend(backend)
            c0, t0 = children_cpu(), time.perf_counter()
            base = S.mixture_baseline(clips, backend, workers=args.workers)
            t_base, cpu_base = time.perf_counter() - t0, children_cpu() - c0
            c0, t0 = children_cpu(), time.perf_counter()
            scores = S.score_estimates(
                clips, est_path, base, backend, workers=args.workers, variant="bench", step=0
            )
            t_score, cpu_score = time.perf_counter() - t0, children_cpu() - c0
            bad = scores[scores["status"] != "ok"]
            if len(bad):
                print(
                    f"  {backend}: {len(bad)} clips not ok, e.g. {bad['clip'].iloc[0]}: {bad['status'].iloc[0]}"
                )
            tables[backend] = scores
            results[backend] = {
                "baseline_s": t_base,
                "score_s": t_score,
                "baseline_cpu_s": cpu_base,
                "score_cpu_s": cpu_score,
                "score_clip_seconds_sum": float(scores["seconds"].sum()),
            }
            print(
                f"  {backend:14s} baseline {t_base:7.1f} s   score {t_score:7.1f} s wall   "
                f"(workers' CPU: baseline {cpu_base:.1f} s, score {cpu_score:.1f} s, incl. start-up)"
            )

        # the seed's way: museval's bss_eval_sources (permutation search, framewise code path)
        # per clip, one process, the mixture rescored with every variant
        mm = S.load_museval_metrics()
        seed_clips = clips if not args.seed_clips else clips.iloc[: args.seed_clips]
        report_rows = []
        with S._limit_blas_here(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            z = np.load(est_path)
            t0, c0 = time.perf_counter(), time.process_time()
            for r in seed_clips.itertuples(index=False):
                refs, _ = S.read_references(r.path)
                ests = np.stack([z[f"voice__{r.clip}"], z[f"accompaniment__{r.clip}"]]).astype(
                    np.float64
                )
                refs = refs[:, : ests.shape[1]]
                sdr, sir, sar, _ = mm.bss_eval_sources(refs, ests)
                mix = np.stack([refs.mean(0)] * 2)
                msdr, _, _, _ = mm.bss_eval_sources(refs, mix)
                report_rows.append(
                    {
                        "clip": r.clip,
                        "voice_sdr": sdr[0, 0],
                        "accompaniment_sdr": sdr[1, 0],
                        "voice_nsdr": sdr[0, 0] - msdr[0, 0],
                        "accompaniment_nsdr": sdr[1, 0] - msdr[1, 0],
                    }
                )
            t_seed, cpu_seed = time.perf_counter() - t0, time.process_time() - c0
        frac = n_samples / max(1, int(seed_clips["samples"].sum()))
        t_seed_all, cpu_seed_all = t_seed * frac, cpu_seed * frac
        results["seed_way"] = {
            "clips_timed": len(seed_clips),
            "seconds": t_seed,
            "seconds_all_clips": t_seed_all,
            "cpu_s_all_clips": cpu_seed_all,
        }
        print(
            f"  {'seed (museval, 1 process, mixture rescored)':s}: {t_seed:.1f} s wall, {cpu_seed:.1f} s CPU "
            f"on {len(seed_clips)} clips"
            + (f" -> {t_seed_all:.1f} s for all {n}" if len(seed_clips) < n else "")
        )

    # agreement between backends (every number except the mixture's SAR, which is +inf in
    # theory and numerical noise in practice: see docs/scoring.md)
    a, b = tables["museval"].set_index("clip"), tables["fast_bss_eval"].set_index("clip")
    cols = [
        c
        for c in S.SCORE_COLUMNS
        if c.endswith(("_sdr", "_sir", "_sar", "_nsdr")) and not c.endswith("mix_sar")
    ]
    ok = (a["status"] == "ok") & (b["status"] == "ok")
    diff = (a.loc[ok, cols] - b.loc[ok, cols]).abs()
    max_diff = float(diff.to_numpy().max())
    worst = diff.max().idxmax()
    seed = pd.DataFrame(report_rows).set_index("clip")
    seed_diff = float((a.loc[seed.index, seed.columns] - seed).abs().to_numpy().max())
    results["max_abs_diff_db"] = max_diff
    results["max_abs_diff_vs_seed_way_db"] = seed_diff
    print(
        f"max |museval - fast_bss_eval| over {int(ok.sum())} clips x {len(cols)} numbers: {max_diff:.2e} dB "
        f"(largest in {worst}); {'OK' if max_diff <= 1e-3 else 'FAIL'} (<= 1e-3 dB)"
    )
    print(f"max |museval (ours) - seed's way| (SDR, NSDR): {seed_diff:.2e} dB")

    w = a.loc[ok, "samples"].astype(float)
    for src in ("voice", "accompaniment"):
        print(
            f"  {src}: GNSDR {np.average(a.loc[ok, f'{src}_nsdr'], weights=w):.3f} dB, "
            f"GSIR {np.average(a.loc[ok, f'{src}_sir'], weights=w):.3f}, GSAR {np.average(a.loc[ok, f'{src}_sar'], weights=w):.3f}"
        )

    # extrapolate to the 825 MIR-1K test clips (by audio length when the manifest is at hand)
    manifest = data / "manifest.tsv"
    if manifest.exists():
        m = pd.read_csv(manifest, sep="\t")
        full_samples = int(m.loc[m["split"] == "test", "frames_16k"].sum())
        scale = full_samples / n_samples
        how = f"by audio length ({full_samples / 16000:.0f} s in the 825 clips)"
    else:
        scale = FULL_TEST_CLIPS / n
        how = "by clip count"
    print(f"extrapolated to the full 825-clip protocol ({how}), one variant, baseline shared:")
    print(
        f"  (wall: as measured, {args.workers} workers; CPU/{args.workers}: the workers' CPU time shared "
        f"by {args.workers} cores, i.e. the wall time on an otherwise idle machine)"
    )
    ext = {}
    for backend in S.BACKENDS:
        ext[backend] = results[backend]["score_s"] * scale
        ext[backend + "_cpu_per_core"] = results[backend]["score_cpu_s"] * scale / args.workers
        ext[backend + "_baseline_once"] = results[backend]["baseline_s"] * scale
        best = min(ext[backend], ext[backend + "_cpu_per_core"])
        print(
            f"  {backend:14s} wall {ext[backend]:6.1f} s, CPU/{args.workers} {ext[backend + '_cpu_per_core']:6.1f} s "
            f"per variant (+ {ext[backend + '_baseline_once']:.1f} s wall once for the baseline)  "
            f"target <= 60 s: {'OK' if best <= 60 else 'over'}"
        )
    ext["seed_way"] = t_seed_all * scale
    ext["seed_way_cpu"] = cpu_seed_all * scale
    print(
        f"  {'seed way':14s} wall {ext['seed_way']:6.1f} s, CPU {ext['seed_way_cpu']:6.1f} s per variant (1 process)"
    )
    results["extrapolated_825_s"] = ext
    results["clips"] = n
    results["workers"] = args.workers
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if max_diff <= 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())

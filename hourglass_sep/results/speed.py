"""The speed sheet: the report's speed claims, measured in the run itself.

Rows of ``speed.tsv`` (columns what, device, seconds, detail):
* separating one ~64-s song (the evaluated test clips joined end to end, like the course report's
  ``annar_4``) with our path (whole clip, BatchNorm folded, channels_last, bf16 where
  supported), with the course report's scheme (64-frame windows, 4 per forward pass, fp32) and with
  the report's first row (the same, one window per forward pass);
* wall times of the workflow's own jobs, read from Snakemake's ``benchmark:`` files:
  training per variant, separation and scoring per evaluated model, the shared baseline.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hourglass_sep.data import catalogue as cat
from hourglass_sep.data.audio import atomic_path, read_audio
from hourglass_sep.errors import UserError

COLUMNS = ["what", "device", "seconds", "detail"]
# the separation timings' ``what`` (claims name them: config.yaml, expect faster)
OUR_PATH = "separate song: whole clip, folded BN, channels_last, auto precision"
REPORT_SCHEME = "separate song: seed's scheme (64-frame windows x4, fp32)"
REPORT_ONE_WINDOW = "separate song: seed's scheme, one window per forward pass (fp32)"


def song_from_clips(paths: list[str], seconds: float = 64.0) -> tuple[np.ndarray, int]:
    """Join clips end to end until ``seconds`` of audio (all at the first clip's rate)."""
    from hourglass_sep.data.audio import resample

    parts, sr, total = [], None, 0
    for p in paths:
        audio, rate = read_audio(p)
        sr = sr or rate
        parts.append(resample(audio, rate, sr) if rate != sr else audio)
        total += parts[-1].shape[1]
        if total >= seconds * sr:
            break
    if not parts:
        raise UserError("no clips to build a song from (the catalogue has no evaluated test clips)")
    song = np.concatenate(parts, axis=1)
    return song[:, : int(seconds * sr)], sr


def time_separation(
    model_path: str, audio: np.ndarray, sr: int, device: str = "auto", repeats: int = 2
) -> list[dict]:
    """Seconds to separate ``audio`` with our path and with the course report's windowed fp32 scheme."""
    from hourglass_sep.nets.inference import load_model
    from hourglass_sep.separation.separate import separate_waveform

    rows = []
    report_way = dict(precision="fp32", fold=False, channels_last=False)
    setups = [  # what, load options, schedule, windows per forward pass
        (OUR_PATH, dict(precision="auto"), "whole", 4),
        (REPORT_SCHEME, report_way, "windowed", 4),
        (REPORT_ONE_WINDOW, report_way, "windowed", 1),
    ]
    estimates = {}
    for what, opts, schedule, per_pass in setups:
        bundle = load_model(model_path, device=device, **opts)
        separate_waveform(bundle, audio[:, : sr * 2], sr, schedule=schedule)  # warm-up
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            est = separate_waveform(
                bundle, audio, sr, schedule=schedule, windows_per_batch=per_pass
            )
            best = min(best, time.perf_counter() - t0)
        estimates.setdefault(schedule, est)
        rows.append(
            dict(
                what=what,
                device=f"{bundle.device} {bundle.precision}",
                seconds=best,
                detail=f"{audio.shape[1] / sr:.1f} s of audio, best of {repeats}",
            )
        )
    v_whole, v_win = estimates["whole"][0], estimates["windowed"][0]
    diff = 10 * np.log10(np.sum(v_win**2) / max(np.sum((v_whole - v_win) ** 2), 1e-20))
    rows.append(
        dict(
            what="speed-up of our path over the seed's scheme",
            device="",
            seconds=rows[1]["seconds"] / rows[0]["seconds"],
            detail=f"ratio (not seconds); voice SNR whole vs windowed {diff:.1f} dB",
        )
    )
    return rows


def is_ratio(row) -> bool:
    """Speed-table rows whose ``seconds`` column holds a ratio (the speed-up), not a time."""
    return str(row.get("detail") or "").startswith("ratio")


_JOB = re.compile(r"^(?P<rule>train|separate|score|baseline|cache)_(?P<rest>.+)\.tsv$")


def job_times(bench_dir: str | Path) -> list[dict]:
    """Wall seconds of the workflow's jobs from Snakemake ``benchmark:`` files, grouped."""
    groups: dict[tuple[str, str], list[float]] = {}
    for f in sorted(Path(bench_dir).glob("*.tsv")):
        m = _JOB.match(f.name)
        if not m:
            continue
        try:
            s = float(pd.read_csv(f, sep="\t")["s"].iloc[-1])
        except (KeyError, IndexError, ValueError, pd.errors.ParserError):
            continue
        rule, rest = m["rule"], m["rest"]
        key = (
            rest.rsplit("_", 1)[0]
            if rule in ("separate", "score")
            else (rest if rule == "train" else "")
        )
        if rule == "baseline":
            key = "all shards"
        groups.setdefault((rule, key), []).append(s)
    rows = []
    names = {
        "train": "train",
        "separate": "separate test clips",
        "score": "score test clips",
        "baseline": "mixture baseline SDR (shared by all variants)",
        "cache": "spectrogram cache",
    }
    for (rule, key), secs in groups.items():
        rows.append(
            dict(
                what=f"{names[rule]}: {key}".rstrip(": "),
                device="job",
                seconds=float(np.sum(secs)),
                detail=f"{len(secs)} job(s), summed wall time",
            )
        )
    return rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model.pt to time separation with")
    p.add_argument(
        "--catalogue", required=True, help="catalogue TSV; evaluated test clips form the song"
    )
    p.add_argument("--song", help="time this audio file instead of joined test clips")
    p.add_argument("--seconds", type=float, default=64.0, help="length of the joined song")
    p.add_argument("--benchmarks", help="folder of Snakemake benchmark TSVs to summarise")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("-o", "--output", required=True)


def run(args: argparse.Namespace) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.song:
        audio, sr = read_audio(args.song)
    else:
        df = cat.select(cat.read_catalogue(args.catalogue), "test")
        audio, sr = song_from_clips(list(df["path"]), args.seconds)
    rows = time_separation(args.model, audio, sr, device=args.device)
    if args.benchmarks:
        rows += job_times(args.benchmarks)
    out = pd.DataFrame(rows, columns=COLUMNS)
    with atomic_path(args.output) as tmp:
        out.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    print(out.to_string(index=False))
    return 0

"""The speed sheet: the report's speed claims, measured in the run itself.

Every comparison is timed in interleaved rounds (``results/timing.py``: a warm-up, then
A B A B ..., ``--repeats`` rounds), so that a timing claim gets a speed-up per round and an
interval over the rounds instead of one timing per side.  Rows of ``speed.tsv`` (columns:
``timing.COLUMNS``):

* group ``song``: separating one ~64-s song (the evaluated test clips joined end to end, like
  the course report's ``annar_4``) with our path (whole clip, BatchNorm folded, channels_last,
  bf16 where supported), with the course report's scheme (64-frame windows, 4 per forward
  pass, fp32) and with the report's first row (the same, one window per forward pass);
* group ``test run``: the report's whole test process on a few evaluated test clips,
  separation + scoring (mixture rescored per clip, as the course report's code did): 4 windows
  per pass + museval against one window per pass + mir_eval, and the two parts of each
  (separating the clips, scoring them with either backend: the same clips, interleaved);
* wall times of the workflow's own jobs, read from Snakemake's ``benchmark:`` files:
  training per variant, separation and scoring per evaluated model, the shared baseline
  (one timing each, no group: no timing claim can rest on them).

``device`` says where the network ran (``cuda... (GPU name)`` or ``cpu``, and the precision):
a claim made on a GPU is "needs GPU" when it did not run on one (claims/kinds/speedup.py).
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
from hourglass_sep.results.timing import (
    COLUMNS,
    INDIFFERENCE,
    REPEATS,
    WARMUP,
    Setup,
    interleave,
    round_order,
    timing_rows,
)

# the timings' ``what`` (claims name them: config.yaml, expect faster / real-time)
OUR_PATH = "separate song: whole clip, folded BN, channels_last, auto precision"
REPORT_SCHEME = "separate song: seed's scheme (64-frame windows x4, fp32)"
REPORT_ONE_WINDOW = "separate song: seed's scheme, one window per forward pass (fp32)"
TEST_RUN_NEW = "test run: 4 windows per pass + museval"
TEST_RUN_OLD = "test run: one window per pass + mir_eval"
SEPARATE_CLIPS = {
    4: "separate clips: 4 windows per pass (fp32)",
    1: "separate clips: one window per pass (fp32)",
}
SCORE_CLIPS = {"museval": "score clips: museval", "mir_eval": "score clips: mir_eval"}
CLIPS = 2  # test clips separated and scored in each round of the test-run timing
REPORT_WAY = dict(precision="fp32", fold=False, channels_last=False)


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


def device_text(bundle) -> str:
    """Where and how the network ran: ``cpu fp32``, ``cuda bf16 (NVIDIA ...)``; a GPU row
    starts with ``cuda``, which is what a claim needing a GPU looks for."""
    import torch

    text = f"{bundle.device} {bundle.precision}"
    if bundle.device.type == "cuda":
        text += f" ({torch.cuda.get_device_name(bundle.device)})"
    return text


def _song_setup(bundle, audio, sr, what, schedule, per_pass, keep: dict) -> Setup:
    """Separating the whole song with one setup; its last estimate goes to ``keep``."""
    from hourglass_sep.separation.separate import separate_waveform

    def run() -> None:
        keep[schedule] = separate_waveform(
            bundle, audio, sr, schedule=schedule, windows_per_batch=per_pass
        )

    def warm() -> None:
        separate_waveform(bundle, audio[:, : sr * 2], sr, schedule=schedule)

    return Setup(what, run, warm)


def time_separation(
    model_path: str,
    audio: np.ndarray,
    sr: int,
    device: str = "auto",
    repeats: int = REPEATS,
    warmup: int = WARMUP,
    indifference: float = INDIFFERENCE,
) -> list[dict]:
    """Seconds to separate ``audio`` with our path, the course report's windowed fp32 scheme
    and its one-window first row, interleaved; then the speed-up of our path (a ratio row)."""
    from hourglass_sep.nets.inference import load_model

    plan = [  # what, load options, schedule, windows per forward pass
        (OUR_PATH, dict(precision="auto"), "whole", 4),
        (REPORT_SCHEME, REPORT_WAY, "windowed", 4),
        (REPORT_ONE_WINDOW, REPORT_WAY, "windowed", 1),
    ]
    setups, devices, keep = [], {}, {}
    for what, opts, schedule, per_pass in plan:
        bundle = load_model(model_path, device=device, **opts)
        setups.append(_song_setup(bundle, audio, sr, what, schedule, per_pass, keep))
        devices[what] = device_text(bundle)
    times = interleave(setups, repeats, warmup)
    seconds = audio.shape[1] / sr
    protocol = dict(
        warmup=warmup, indifference=indifference, audio_seconds=dict.fromkeys(times, seconds)
    )
    details = dict.fromkeys(times, f"{seconds:.1f} s of audio")
    rows = timing_rows(times, "song", round_order(setups), devices, details, protocol)
    return rows + [_ratio_row(times[REPORT_SCHEME], times[OUR_PATH], keep)]


def _ratio_row(slow: list[float], fast: list[float], keep: dict) -> dict:
    """Our path's speed-up over the report's scheme (geometric mean of the per-round
    ratios) and how far apart their voice estimates are."""
    v_whole, v_win = keep["whole"][0], keep["windowed"][0]
    diff = 10 * np.log10(np.sum(v_win**2) / max(np.sum((v_whole - v_win) ** 2), 1e-20))
    ratio = float(np.exp(np.mean(np.log(np.divide(slow, fast))))) if fast else float("nan")
    return dict(
        what="speed-up of our path over the seed's scheme",
        device="",
        seconds=ratio,
        detail=f"ratio (not seconds; geometric mean over {len(fast)} rounds); "
        f"voice SNR whole vs windowed {diff:.1f} dB",
    )


def _score_timed(refs: np.ndarray, est: np.ndarray, backend: str, unusable: set, key) -> None:
    """Score one clip as the test process does; an estimate the scorer refuses (a silent
    mask of a small model) is scored again with the mixture as the estimate, so that the
    timing still holds a full scoring (``unusable`` collects such clips for the detail)."""
    from hourglass_sep.scoring.score import score_clip

    if score_clip(refs, est, backend)["status"] != "ok":
        unusable.add(key)
        score_clip(refs, np.stack([refs.mean(axis=0)] * len(refs)), backend)


def _test_run_setup(
    bundle, items: list, what: str, per_pass: int, backend: str, unusable: set
) -> Setup:
    """The report's test process on ``items`` ((audio, rate, references) per clip):
    separate every clip (``per_pass`` windows per forward pass), then score each with
    ``backend``, the mixture rescored per clip as the course report's code did."""
    from hourglass_sep.separation.separate import separate_many

    sep_name, score_name = SEPARATE_CLIPS[per_pass], SCORE_CLIPS[backend]

    def once(clips: list) -> dict[str, float]:
        t0 = time.perf_counter()
        ests = separate_many(
            bundle, [(a, sr) for a, sr, _ in clips], schedule="windowed", windows_per_batch=per_pass
        )
        t1 = time.perf_counter()
        for k, ((_, _, refs), est) in enumerate(zip(clips, ests)):
            _score_timed(refs, np.stack(est), backend, unusable, k)
        return {sep_name: t1 - t0, score_name: time.perf_counter() - t1}

    return Setup(what, lambda: once(items), lambda: once(items[:1]), (sep_name, score_name))


def time_test_run(
    model_path: str,
    clip_paths: list[str],
    device: str = "auto",
    repeats: int = REPEATS,
    warmup: int = WARMUP,
    indifference: float = INDIFFERENCE,
) -> list[dict]:
    """The whole test process on ``clip_paths``, interleaved: 4 windows per pass + museval
    (the report's) against one window per pass + mir_eval (its first row), with the parts."""
    from hourglass_sep.nets.inference import load_model
    from hourglass_sep.scoring.clip_io import read_references

    if not clip_paths:
        raise UserError(
            "no clips to time a test run on (the catalogue has no evaluated test clips)"
        )
    bundle = load_model(model_path, device=device, **REPORT_WAY)
    items = [(*read_audio(p), read_references(p)[0]) for p in clip_paths]
    unusable: set = set()
    setups = [
        _test_run_setup(bundle, items, TEST_RUN_NEW, 4, "museval", unusable),
        _test_run_setup(bundle, items, TEST_RUN_OLD, 1, "mir_eval", unusable),
    ]
    times = interleave(setups, repeats, warmup)
    seconds = sum(a.shape[1] / sr for a, sr, _ in items)
    devices = {w: "cpu" if w in SCORE_CLIPS.values() else device_text(bundle) for w in times}
    note = f"{len(items)} test clips, {seconds:.1f} s of audio"
    scored = f"{note}; scored on the cpu, the mixture rescored per clip"
    if unusable:
        scored += f"; {len(unusable)} clip(s) refused by the scorer, timed with the mixture"
    details = {w: note if w in SEPARATE_CLIPS.values() else scored for w in times}
    protocol = dict(
        warmup=warmup, indifference=indifference, audio_seconds=dict.fromkeys(times, seconds)
    )
    return timing_rows(times, "test run", round_order(setups), devices, details, protocol)


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
    p.add_argument(
        "--repeats",
        type=int,
        default=REPEATS,
        help=f"interleaved timed rounds (A B A B ...); a timing verdict needs >= {REPEATS}",
    )
    p.add_argument("--warmup", type=int, default=WARMUP, help="untimed runs of each setup first")
    p.add_argument(
        "--indifference",
        type=float,
        default=INDIFFERENCE,
        help="zone of indifference recorded for the claims: a speed-up within 1 +- this is "
        "no difference",
    )
    p.add_argument(
        "--clips", type=int, default=CLIPS, help="test clips separated and scored per test run"
    )
    p.add_argument("-o", "--output", required=True)


def _check(args: argparse.Namespace) -> None:
    if args.repeats < 1 or args.warmup < 0 or args.clips < 1:
        raise UserError("speed: --repeats and --clips must be >= 1, --warmup >= 0")
    if not 0 <= args.indifference < 1:
        raise UserError(f"speed: --indifference {args.indifference}: give a fraction in [0, 1)")


def run(args: argparse.Namespace) -> int:
    import torch

    _check(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    clips = list(cat.select(cat.read_catalogue(args.catalogue), "test")["path"])
    if args.song:
        audio, sr = read_audio(args.song)
    else:
        audio, sr = song_from_clips(clips, args.seconds)
    protocol = dict(repeats=args.repeats, warmup=args.warmup, indifference=args.indifference)
    rows = time_separation(args.model, audio, sr, device=args.device, **protocol)
    rows += time_test_run(args.model, clips[: args.clips], device=args.device, **protocol)
    if args.benchmarks:
        rows += job_times(args.benchmarks)
    out = pd.DataFrame(rows, columns=COLUMNS)
    out[["order", "repeats"]] = out[["order", "repeats"]].astype("Int64")  # blank for job rows
    with atomic_path(args.output) as tmp:
        out.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    print(out.drop(columns=["times"]).to_string(index=False))
    return 0

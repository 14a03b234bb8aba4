"""The ``hourglass-sep separate`` command: song files (default) or workflow shards.

Song mode: ``hourglass-sep separate song.mp3 folder/ -o out/`` writes
``out/<song>/<stem>.<ext>`` for every input, with the shipped model unless ``--model``.
A bad input is reported (naming the file) and skipped; the others are separated; the
exit status is non-zero when any input failed.  Workflow mode (``--catalogue``) is the
report's protocol and keeps its 8 kHz output.

``--method NAME`` separates without a model, by a training-free method (``methods/kinds/``:
``repet-sim``, ``rpca``; the oracles ``oracle-irm``/``oracle-ibm`` in workflow mode only), in
either mode (``separation/method_separate.py``): ``hourglass-sep separate --method repet-sim
song.wav -o out/`` works on any song without a model.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from hourglass_sep.errors import UserError
from hourglass_sep.nets.settings import PRECISIONS

log = logging.getLogger("hourglass_sep.separation.separate")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The separate verb's options: inputs and outputs, the schedule, the execution."""
    _io_arguments(p)
    _method_arguments(p)
    _schedule_arguments(p)
    _execution_arguments(p)


def _io_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="IN",
        help="songs or folders of songs (wav, flac, ogg, mp3, aiff; any channels and rate)",
    )
    p.add_argument(
        "--model", help="model.pt written by `hourglass-sep train` (default: the shipped model)"
    )
    p.add_argument("-o", "--output", help="output folder: writes OUT/<song>/<stem>.<ext>")
    p.add_argument("--stems", default="voice,accompaniment", help="stems to write, comma-separated")
    p.add_argument("--format", default="wav", help="output format: wav or flac")
    p.add_argument("--bit-depth", default="16", help="16, 24 or float (wav only)")
    p.add_argument("--float", dest="float_out", action="store_true", help="= --bit-depth float")
    p.add_argument(
        "--full-band",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the content above 4 kHz (song files: on; workflow mode: off, 8 kHz protocol)",
    )
    p.add_argument("--catalogue", help="workflow mode: clip catalogue TSV (evaluated test clips)")
    p.add_argument(
        "--shard", default="0/1", help="workflow mode: I/N, separate the clips k with k %% N == I"
    )
    p.add_argument("--estimates", help="workflow mode: the .npz to write")


def _method_arguments(p: argparse.ArgumentParser) -> None:
    from hourglass_sep.methods.record import method_kinds

    kinds = method_kinds()
    lines = "; ".join(rec.usage() for rec in kinds.values())
    p.add_argument(
        "--method",
        metavar="NAME",
        help="separate without a model, by a training-free method (not with --model): "
        f"{lines}. Oracles read the true sources: workflow mode only",
    )
    p.add_argument(
        "--method-settings",
        metavar="SETTINGS",
        help="the method's settings: a JSON object or key=value,key=value (e.g. "
        "width_seconds=3,band=full); unset keys keep their defaults",
    )


def _schedule_arguments(p: argparse.ArgumentParser) -> None:
    from hourglass_sep.separation.windowing import (
        DEFAULT_CHUNK,
        DEFAULT_MAX_BATCH_FRAMES,
        DEFAULT_OVERLAP,
        PAD_MODES,
        SCHEDULES,
    )

    p.add_argument(
        "--chunk-frames",
        type=int,
        default=DEFAULT_CHUNK,
        help="song files: most STFT frames per network pass (31.25 per second; a multiple of "
        "2**poolings); longer songs go in overlapping segments",
    )
    p.add_argument(
        "--overlap-frames",
        type=int,
        default=DEFAULT_OVERLAP,
        help="song files: frames shared by neighbouring segments, half of them cross-faded "
        "(default: 256, at most half of --chunk-frames)",
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="whole",
        help="whole: whole clips (songs: segments); windowed: the report's 64-frame windows",
    )
    p.add_argument(
        "--windows-per-batch", type=int, default=4, help="windows per pass (windowed schedule)"
    )
    p.add_argument(
        "--pad", choices=PAD_MODES, default="reflect", help="time padding before the network"
    )
    p.add_argument(
        "--max-batch-frames",
        type=int,
        default=DEFAULT_MAX_BATCH_FRAMES,
        help="workflow mode: most frames per pass when clips of equal length are batched",
    )


def _execution_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: bf16 on GPUs with bf16 and CPUs with AVX512-BF16/AMX, else fp32",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: OMP_NUM_THREADS or all)"
    )
    p.add_argument("--no-fold", action="store_true", help="keep BatchNorm layers (comparisons)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _report(message: str) -> None:
    print(f"hourglass-sep separate: error: {message}", file=sys.stderr)


def _song_settings(args) -> tuple[tuple[str, ...], str, str]:
    """(stems, libsndfile subtype, file suffix) of the song-mode output options."""
    from hourglass_sep.separation.songio import output_subtype, parse_stems

    depth = "float" if args.float_out else str(args.bit_depth)
    fmt = str(args.format).lower()
    return parse_stems(args.stems), output_subtype(fmt, depth), fmt


def _usable_inputs(args) -> tuple[list[Path], list[str]]:
    """(inputs that look readable, problems naming the others)."""
    from hourglass_sep.separation.songio import check_input, expand_inputs

    files, problems = expand_inputs(args.inputs)
    good = []
    for f in files:
        try:
            check_input(f)
            good.append(f)
        except UserError as exc:
            problems.append(str(exc))
    return good, problems


def _model_blocks(args, bundle):
    """The song-mode separator of a model: (mixture function, rate, path) -> stem blocks."""
    from hourglass_sep.separation.separate import song_blocks

    def blocks(mixture, sr: int, path: Path):
        return song_blocks(
            bundle,
            mixture,
            sr,
            full_band=True if args.full_band is None else bool(args.full_band),
            chunk=args.chunk_frames,
            overlap=args.overlap_frames,
            pad_mode=args.pad,
            progress=False if args.no_progress else path.name,
            windows_per_batch=args.windows_per_batch if args.schedule == "windowed" else None,
        )

    return blocks


def _method_blocks(args, rec, settings: dict):
    """The song-mode separator of a training-free method (full band unless --no-full-band)."""
    from hourglass_sep.separation.method_separate import song_blocks

    full_band = True if args.full_band is None else bool(args.full_band)
    return lambda mixture, sr, path: song_blocks(rec, settings, mixture(), sr, full_band)


def _separate_one(blocks_for, path: Path, outputs: dict, subtype: str) -> None:
    from hourglass_sep.separation.songio import read_mixture, write_stems

    t0 = time.perf_counter()
    first, sr, _ = read_mixture(path)
    held = [first]
    del first

    def mixture():  # the read array once, then read again (see song_blocks)
        return held.pop() if held else read_mixture(path)[0]

    blocks = blocks_for(mixture, sr, path)
    samples, peak = write_stems(outputs, sr, subtype, blocks)
    if peak > 1.0 and subtype.startswith("PCM"):
        log.warning("%s: the estimates peak at %.2f and were clipped to [-1, 1]", path, peak)
    first_out = next(iter(outputs.values()))
    names = ",".join(p.stem for p in outputs.values())
    print(
        f"{path} -> {first_out.parent}/{{{names}}}{first_out.suffix} "
        f"({samples / sr:.1f} s of audio in {time.perf_counter() - t0:.2f} s)"
    )


def run_songs(args, load) -> int:
    """Song mode: every usable input separated; failures reported, the exit status says so.

    ``load()`` returns the separator: (mixture function, rate, path) -> stem blocks."""
    from hourglass_sep.separation.songio import plan_outputs

    if not args.output:
        raise UserError(
            "give an output folder with -o DIR (or use --catalogue/--estimates for workflow mode)"
        )
    stems, subtype, ext = _song_settings(args)
    good, problems = _usable_inputs(args)
    plan = plan_outputs(good, Path(args.output), stems, ext)
    for msg in problems:
        _report(msg)
    failed = len(problems)
    if good:
        blocks_for = load()
        for path in good:
            try:
                _separate_one(blocks_for, path, plan[path], subtype)
            except (UserError, OSError, RuntimeError, MemoryError) as exc:
                failed += 1
                _report(str(exc) if isinstance(exc, UserError) else f"{path}: {exc!r}")
    if failed:
        total = len(good) + len(problems)
        raise UserError(
            f"{failed} of {total} input(s) failed (reported above); "
            f"{total - failed} separated into {args.output}"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    from hourglass_sep.nets.hardware import set_threads
    from hourglass_sep.nets.inference import load_model, reuse_freed_memory
    from hourglass_sep.separation.separate import run_shard

    threads = set_threads(args.threads)
    if reuse_freed_memory():
        log.debug("glibc malloc: large blocks from the heap, freed memory kept for reuse")
    workflow = args.catalogue is not None or args.estimates is not None
    if workflow and not args.catalogue:
        raise UserError("--estimates needs --catalogue catalogue.tsv (workflow mode)")
    if not workflow and not args.inputs:
        raise UserError(
            "give songs to separate (IN ...) and -o DIR, or --catalogue/--shard/--estimates"
        )

    if args.method is not None:
        return _run_method(args, workflow, threads)
    if args.method_settings is not None:
        raise UserError("--method-settings needs --method NAME")

    def load():
        bundle = load_model(
            args.model, device=args.device, precision=args.precision, fold=not args.no_fold
        )
        log.info("%s, %d thread(s)", bundle.describe(), threads)
        return bundle

    if not workflow:
        return run_songs(args, lambda: _model_blocks(args, load()))
    if args.full_band:
        raise UserError(
            "--full-band is for song files; workflow mode (--catalogue) keeps the report's "
            "8 kHz protocol"
        )
    if args.model is None:
        raise UserError("workflow mode needs --model (the snapshot to evaluate)")
    return run_shard(args, load(), threads)


def parse_method_settings(text: str | None, rec) -> dict:
    """``--method-settings``: a JSON object or ``key=value,...`` (values read as the type of
    the key's default) -> settings; ``UserError`` naming each bad key."""
    if text is None or not text.strip():
        return {}
    t = text.strip()
    if t.startswith("{"):
        try:
            given = json.loads(t)
        except json.JSONDecodeError as exc:
            raise UserError(f"--method-settings {text!r}: not a JSON object ({exc})") from None
    else:
        given = {}
        for item in filter(None, (i.strip() for i in t.split(","))):
            key, sep, raw = item.partition("=")
            if not sep or not key.strip():
                raise UserError(f"--method-settings {item!r}: expected key=value")
            given[key.strip()] = _typed(raw.strip(), rec.settings.get(key.strip()))
    problems = rec.check_settings(given, "--method-settings")
    if problems:
        raise UserError("; ".join(problems))
    return given


def _typed(raw: str, default: object) -> object:
    """``raw`` as the type of ``default`` where it reads as one (else the text, refused later)."""
    if isinstance(default, bool):
        return {"true": True, "false": False}.get(raw.lower(), raw)
    for kind in (int, float):
        if isinstance(default, kind):
            try:
                return kind(raw)
            except ValueError:
                return raw
    return raw


def _run_method(args, workflow: bool, threads: int) -> int:
    """``--method``: a training-free method instead of a model, in either mode."""
    from hourglass_sep.methods.record import method_kind
    from hourglass_sep.separation.method_separate import run_method_shard

    if args.model is not None:
        raise UserError(
            "--method and --model exclude each other: a training-free method separates "
            "without a model; give one of them"
        )
    rec = method_kind(args.method)
    settings = parse_method_settings(args.method_settings, rec)
    log.info("%s, settings %s", rec.name, rec.resolved(settings))
    if workflow:
        if args.full_band:
            raise UserError(
                "--full-band is for song files; in workflow mode a method's band is its "
                "setting (--method-settings band=full)"
            )
        return run_method_shard(args, rec, settings, threads)
    rec.refuse_without_sources()
    return run_songs(args, lambda: _method_blocks(args, rec, settings))

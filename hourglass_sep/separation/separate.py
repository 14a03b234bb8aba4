"""Separate songs into voice and accompaniment with a trained stacked-hourglass network.

Pipeline::

    audio (channels, n) at any rate
      -> mixture = mean of the channels (mono passes through), resampled to 8 kHz
      -> STFT 1024/256 Hann, bins 0..511 (``hourglass_sep.data.features.stft``)
      -> magnitude / clip max  (the network's input)
      -> network (``schedules``: whole clip, the report's windows, or overlapping
         segments for songs of any length) -> last stack's prediction
      -> masks (``model.sources_from_prediction``'s estimates / the mixture)
      -> workflow clips and ``full_band=False``: x the 8 kHz mixture STFT -> inverse
         STFT -> resampled to the input rate (the report's protocol)
      -> songs (``full_band=True``, the CLI's default for song files): x the STFT of the
         mixture at its own rate, masks extended above 4 kHz (``hourglass_sep.separation.fullband``)
      -> trimmed / zero-padded to the input length

Modules: ``inference`` (loading a model, BatchNorm folding, bf16), ``schedules``
(spectrogram -> network passes), ``fullband`` (masks -> waveforms at any rate, in
blocks), ``songio`` (input files, stems on disk), ``release`` (the shipped model).
The names below stay importable from here.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from hourglass_sep.data import features
from hourglass_sep.data.audio import atomic_path, read_audio, resample
from hourglass_sep.errors import UserError
from hourglass_sep.nets.inference import (
    ModelBundle,
    forward,
)
from hourglass_sep.nets.model import sources_from_prediction
from hourglass_sep.separation import fullband as fb
from hourglass_sep.separation.windowing import (
    DEFAULT_CHUNK,
    DEFAULT_MAX_BATCH_FRAMES,
    DEFAULT_OVERLAP,
    SCHEDULES,
    predict_chunked,
    predict_whole,
    predict_windowed,
)

log = logging.getLogger(__name__)

_forward = forward  # the old private name
LAYOUTS = ("auto", "channels-first", "channels-last")
MAX_CHANNELS = 32  # "auto" layout: the channel axis is the short one, at most this long


# ------------------------------------------------------------- waveforms
def as_channels(audio: np.ndarray, layout: str = "auto", name: str = "audio") -> np.ndarray:
    """``audio`` as float32 ``(channels, samples)``; ``(samples,)`` is one channel.

    ``layout``: ``channels-first`` (``(channels, samples)``, this package's layout),
    ``channels-last`` (``(samples, channels)``, what ``soundfile.read`` returns) or
    ``auto``: the axis of at most ``MAX_CHANNELS`` entries when the other one is longer;
    an array where that is ambiguous (both axes short, or both long) is refused.
    """
    a = np.asarray(audio, dtype=np.float32)
    if layout not in LAYOUTS:
        raise UserError(f"layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    if a.ndim == 1:
        a = a[None]
    elif a.ndim == 2 and layout == "channels-last":
        a = a.T
    elif a.ndim == 2 and layout == "auto":
        a = _auto_layout(a, name)
    if a.ndim != 2 or a.shape[0] < 1:
        raise UserError(
            f"{name}: expected (channels, samples), (samples, channels) or (samples,), "
            f"got shape {a.shape}"
        )
    if a.shape[1] == 0:
        raise UserError(f"{name}: holds no samples")
    if not np.all(np.isfinite(a)):
        raise UserError(f"{name}: holds NaN or infinite samples")
    return np.ascontiguousarray(a)


def _auto_layout(a: np.ndarray, name: str) -> np.ndarray:
    rows, cols = a.shape
    if rows <= MAX_CHANNELS < cols:
        return a
    if cols <= MAX_CHANNELS < rows:
        return a.T
    raise UserError(
        f"{name}: cannot tell channels from samples in shape {a.shape}; pass "
        "layout='channels-first' for (channels, samples) or layout='channels-last' for "
        "(samples, channels) as soundfile.read returns"
    )


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    if x.shape[-1] >= n:
        return np.ascontiguousarray(x[..., :n], dtype=np.float32)
    return np.pad(x, (0, n - x.shape[-1])).astype(np.float32)


def _waveforms(
    bundle: ModelBundle, feats: features.ClipFeatures, pred: np.ndarray, sr: int, n: int
):
    """(voice, accompaniment) waveforms at ``sr``, length ``n``, the report's 8 kHz protocol."""
    mix = torch.from_numpy(feats.mixture)[None, None]
    v, a = sources_from_prediction(torch.from_numpy(pred)[None], mix, bundle.arch.target)
    spec = torch.from_numpy(feats.mix_stft)
    phase = torch.polar(torch.ones_like(spec.real), spec.angle())
    mags = torch.cat([v, a], 1)[0] * feats.scale  # (2, 512, T)
    waves = features.istft(mags * phase, length=feats.samples_8k).numpy()
    waves = resample(waves, features.SR, sr)
    return _fit_length(waves[0], n), _fit_length(waves[1], n)


def song_masks(
    bundle: ModelBundle,
    x8: np.ndarray,
    chunk: int | None = DEFAULT_CHUNK,
    overlap: int | None = DEFAULT_OVERLAP,
    pad_mode: str = "reflect",
    progress: bool | str = False,
    windows_per_batch: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(normalised 8 kHz magnitude (512, T), masks (2, 512, T)) of an 8 kHz mono mixture.

    The network runs in segments of ``chunk`` frames (``None``: one pass, unbounded
    memory), or the report's windows with ``windows_per_batch``.  ``progress``: a tqdm bar
    over the audio's seconds for songs longer than one segment.
    """
    mag = fb.magnitude(x8, fb.Grid.matching(features.SR))
    mag /= max(float(mag.max(initial=0.0)), features.EPS)
    T, seconds = mag.shape[-1], len(x8) / features.SR
    bar = None
    if progress and chunk is not None and T > chunk and windows_per_batch is None:
        from tqdm import tqdm

        desc = progress if isinstance(progress, str) else "separate"
        fmt = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]"
        bar = tqdm(total=seconds, desc=desc, leave=False, bar_format=fmt)
    try:
        if windows_per_batch is not None:
            pred = predict_windowed(bundle, mag, windows_per_batch, pad_mode)
        elif chunk is None:
            pred = predict_whole(bundle, [mag], pad_mode)[0]
        else:
            step = (lambda k: bar.update(k * seconds / T)) if bar else None
            pred = predict_chunked(bundle, mag, chunk, overlap, pad_mode, step)
    finally:
        if bar is not None:
            bar.close()
    return mag, fb.source_masks(pred, mag, bundle.arch.target, inplace=True)


def song_blocks(
    bundle: ModelBundle,
    mono: np.ndarray | Callable[[], np.ndarray],
    sr: int,
    full_band: bool = True,
    chunk: int | None = DEFAULT_CHUNK,
    overlap: int | None = DEFAULT_OVERLAP,
    pad_mode: str = "reflect",
    progress: bool | str = False,
    windows_per_batch: int | None = None,
) -> Iterator[np.ndarray]:
    """(2, m) float32 blocks of (voice, accompaniment) at ``sr`` for a mono mixture ``(n,)``.

    ``mono`` may be a function returning the mixture: it is then dropped while the network
    runs and fetched again for the full-band output (a 30-minute song at 44.1 kHz: 318 MB
    less at the peak).  The waveforms come out block by block
    (:mod:`hourglass_sep.separation.fullband`);
    see :func:`song_masks` for the other options.
    """
    load = mono if callable(mono) else None
    mix = load() if load else np.asarray(mono, np.float32)
    n = len(mix)
    x8 = resample(mix, sr, features.SR)
    if load:
        del mix
    mag, masks = song_masks(bundle, x8, chunk, overlap, pad_mode, progress, windows_per_batch)
    blocks = fb.song_blocks(masks, mag, x8, load if load else mix, sr, n, full_band)
    del masks, mag, x8  # the blocks free them once their lookup is built
    yield from blocks


def separate_waveform(
    bundle: ModelBundle,
    audio: np.ndarray,
    sr: int,
    schedule: str = "whole",
    windows_per_batch: int = 4,
    pad_mode: str = "reflect",
    *,
    full_band: bool = False,
    chunk_frames: int | None = DEFAULT_CHUNK,
    overlap_frames: int | None = DEFAULT_OVERLAP,
    layout: str = "auto",
    progress: bool | str = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(voice, accompaniment) float32 ``(n,)`` at ``sr`` for ``audio`` of ``n`` samples.

    ``audio``: ``(channels, n)``, ``(n, channels)`` (``soundfile.read``'s layout) or
    ``(n,)``; see :func:`as_channels` for ``layout``.  The ``whole`` schedule runs the
    network on segments of ``chunk_frames`` (a song up to that length — 65 s by default —
    in one pass, the workflow's network pass; ``None``: always one pass).
    ``full_band=True`` keeps the content above 4 kHz (:mod:`hourglass_sep.separation.fullband`).
    """
    a = as_channels(audio, layout)
    if schedule not in SCHEDULES:
        raise UserError(f"schedule {schedule!r}: choose one of {', '.join(SCHEDULES)}")
    mono = a.mean(axis=0) if a.shape[0] > 1 else a[0]
    windows = windows_per_batch if schedule == "windowed" else None
    blocks = song_blocks(
        bundle, mono, sr, full_band, chunk_frames, overlap_frames, pad_mode, progress, windows
    )
    out = np.concatenate(list(blocks), axis=1)
    return out[0], out[1]


def separate_many(
    bundle: ModelBundle,
    clips: Sequence,
    sr: int | Sequence[int] | None = None,
    schedule: str = "whole",
    windows_per_batch: int = 4,
    pad_mode: str = "reflect",
    max_batch_frames: int = DEFAULT_MAX_BATCH_FRAMES,
    progress: bool | str = False,
    names: Sequence[str] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Separate many clips the report's way (8 kHz); one (voice, accompaniment) pair per clip.

    ``clips``: a list of ``(audio, sr)`` pairs, or of arrays with ``sr`` given (one
    rate for all or one per clip); each array ``(channels, n)`` or ``(n,)``.  Whole-clip
    schedule: clips of the same padded length share forward passes (see
    :func:`predict_whole`), each clip in one pass.  ``progress``: a tqdm bar over clips
    (a string is used as its description); ``names`` name the clips in error messages.
    The workflow's ``--catalogue`` mode.
    """
    if schedule not in SCHEDULES:
        raise UserError(f"schedule {schedule!r}: choose one of {', '.join(SCHEDULES)}")
    items = list(clips)
    if sr is None:
        try:
            pairs = [(a, int(r)) for a, r in items]
        except (TypeError, ValueError):
            raise UserError("separate_many: give (audio, sr) pairs or pass sr=") from None
    else:
        rates = [int(sr)] * len(items) if np.isscalar(sr) else [int(r) for r in sr]
        if len(rates) != len(items):
            raise UserError(f"separate_many: {len(items)} clips but {len(rates)} sample rates")
        pairs = list(zip(items, rates))
    names = list(names) if names is not None else [f"clip {i}" for i in range(len(pairs))]
    audios = [(as_channels(a, "channels-first", n), r) for n, (a, r) in zip(names, pairs)]
    feats = [features.clip_features(a, r, with_sources=False) for a, r in audios]
    bar = None
    if progress:
        from tqdm import tqdm

        desc = progress if isinstance(progress, str) else "separate"
        bar = tqdm(total=len(feats), unit="clip", desc=desc)
    try:
        results: list = [None] * len(feats)

        def finish(i: int, pred: np.ndarray) -> None:
            a, r = audios[i]
            results[i] = _waveforms(bundle, feats[i], pred, r, a.shape[1])
            if bar is not None:
                bar.update(1)

        if schedule == "whole":
            mags = [f.mixture for f in feats]
            predict_whole(bundle, mags, pad_mode, max_batch_frames, on_done=finish)
        else:
            for i, f in enumerate(feats):
                finish(i, predict_windowed(bundle, f.mixture, windows_per_batch, pad_mode))
    finally:
        if bar is not None:
            bar.close()
    return results


def shard_clips(catalogue_path: str | os.PathLike, shard: str):
    """The rows of the evaluated test clips in shard ``I/N`` (see catalogue.evaluated_clips)."""
    from hourglass_sep.data import catalogue as cat

    return cat.evaluated_clips(cat.read_catalogue(catalogue_path), cat.parse_shard(shard))


def check_workflow_args(args) -> None:
    """Workflow mode (``--catalogue``) writes ``--estimates`` and reads no song files."""
    if args.inputs or args.output:
        raise UserError(
            "workflow mode (--catalogue) takes no input files and no -o; the results go to "
            "--estimates"
        )
    if not args.estimates:
        raise UserError("workflow mode needs --estimates E.npz (the file to write)")


def write_estimates(path, estimates: dict, meta: dict) -> None:
    """The estimates ``.npz`` every scorer reads: ``clips``, ``voice__<clip>``,
    ``accompaniment__<clip>`` (float32) and ``meta`` (JSON), written atomically.
    ``estimates``: clip -> (voice, accompaniment)."""
    arrays: dict[str, np.ndarray] = {"clips": np.array(list(estimates), dtype=str)}
    for c, (v, a) in estimates.items():
        arrays[f"voice__{c}"] = np.asarray(v, np.float32)
        arrays[f"accompaniment__{c}"] = np.asarray(a, np.float32)
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def run_shard(args, bundle: ModelBundle, threads: int) -> int:
    """Workflow mode: the evaluated test clips of one shard -> the estimates ``.npz``."""
    check_workflow_args(args)
    rows = shard_clips(args.catalogue, args.shard)
    t0 = time.perf_counter()
    clips, audios, paths = [], [], []
    for row in rows.itertuples():
        audio, sr = read_audio(row.path)
        clips.append(str(row.clip))
        audios.append((audio, sr))
        paths.append(str(row.path))
    results = separate_many(
        bundle,
        audios,
        schedule=args.schedule,
        windows_per_batch=args.windows_per_batch,
        pad_mode=args.pad,
        max_batch_frames=args.max_batch_frames,
        progress=False if args.no_progress else f"separate {args.shard}",
        names=paths,
    )
    seconds = time.perf_counter() - t0
    meta = dict(
        seconds=seconds,
        device=str(bundle.device),
        schedule=args.schedule,
        precision=bundle.precision,
        clips=len(clips),
        shard=args.shard,
        model=str(args.model),
        folded=bundle.folded,
        threads=threads,
        windows_per_batch=args.windows_per_batch,
        pad=args.pad,
        audio_seconds=float(sum(a.shape[1] / r for a, r in audios)),
        torch=str(torch.__version__),
    )
    write_estimates(args.estimates, dict(zip(clips, results)), meta)
    print(
        f"{args.estimates}: {len(clips)} clip(s) of shard {args.shard} in {seconds:.1f} s "
        f"({bundle.device}, {bundle.precision}, {args.schedule})"
    )
    return 0

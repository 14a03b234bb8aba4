"""Schedules: how a spectrogram of any length becomes network passes.

``windowed`` (the report's)
    64-frame windows, hop 32.  The first window fills frames 0-63, each later
    one only its middle frames [16:48] (overwriting the previous window's edge),
    and a final window over the last 64 frames fills whatever is left.  ``k``
    windows go through the network per forward pass (the report's "4 windows").
    A clip shorter than 64 frames is padded to 64 (see below) and cropped.

``whole`` (default)
    The whole clip in one pass: the spectrogram is padded *on the right* to a
    multiple of ``arch.time_multiple`` (32 for 5 poolings) and the prediction is
    cropped back.  The padding is a **reflection** of the clip's last frames by
    default (``pad_mode="reflect"``; the network sees music continue rather than a
    hard cut to silence; frames are reflected repeatedly when the pad is longer than
    the clip) or zeros (``pad_mode="zero"``).  The padded frames' predictions are
    discarded; only the receptive field near the end of the clip sees them.
    Many clips (:func:`predict_whole`) are grouped by padded length, so every clip
    gets exactly the prediction it would get alone (no cross-clip padding), and a
    group is split into batches of at most ``max_batch_frames`` frames.

``chunked`` (songs of any length, :func:`predict_chunked`)
    Clips up to ``chunk`` frames go through in one whole pass (the same numbers as
    ``whole``).  Longer ones are cut into ``chunk``-frame segments that overlap by at
    least ``overlap`` frames and start on multiples of ``arch.time_multiple`` (the
    pooling grid of a one-pass run); the last segment ends at the clip's end, padded
    like a whole clip.  In each
    overlap the first and last quarter are context only and the middle half is a
    raised-cosine cross-fade of the two segments' predictions (weights sin² and cos²,
    summing to one; the masks are cross-faded, before they meet the mixture), so the
    memory of a pass is bounded by ``chunk`` whatever the length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hourglass_sep.errors import UserError
from hourglass_sep.nets.inference import ModelBundle, forward

SCHEDULES = ("whole", "windowed")
PAD_MODES = ("reflect", "zero")
WINDOW = 64  # frames per window (windowed schedule)
WINDOW_HOP = 32
WINDOW_KEEP = (16, 48)  # the frames a later window writes
DEFAULT_MAX_BATCH_FRAMES = 2048  # ~2 GB of bf16 activations for the 4-stack network
DEFAULT_CHUNK = 2048  # frames (65.5 s at 8 kHz, hop 256): ~1.5 GB of bf16 activations for Ours
DEFAULT_OVERLAP = None  # min(256, chunk // 2): 8.2 s, 2 s of context around a 4-s fade
OVERLAP_FRAMES = 256  # segments vs one pass on annar_4: 65-68 dB SDR with 256, 47 dB with 128


def _pad_time(mag: np.ndarray, total: int, pad_mode: str) -> np.ndarray:
    """Pad (512, T) to (512, total) on the right: reflected frames or zeros."""
    pad = total - mag.shape[-1]
    if pad <= 0:
        return mag
    if pad_mode == "reflect" and mag.shape[-1] > 1:
        return np.pad(mag, ((0, 0), (0, pad)), mode="reflect")
    return np.pad(mag, ((0, 0), (0, pad)))


def _check_pad_mode(pad_mode: str) -> None:
    if pad_mode not in PAD_MODES:
        raise UserError(f"pad mode {pad_mode!r}: choose one of {', '.join(PAD_MODES)}")


def window_plan(frames: int) -> list[tuple[int, int, int]]:
    """The windowed schedule for ``frames`` (>= 64): (window start, first, end) frames to write.

    The first window writes [0, 64); a window at ``s`` (hop 32) writes [s+16, s+48);
    a final window at ``frames - 64`` writes what is left.  Later entries overwrite
    earlier ones where they overlap.
    """
    if frames < WINDOW:
        raise ValueError(f"window_plan needs >= {WINDOW} frames, got {frames}")
    plan = [(0, 0, WINDOW)]
    s = WINDOW_HOP
    while s + WINDOW <= frames:
        plan.append((s, s + WINDOW_KEEP[0], s + WINDOW_KEEP[1]))
        s += WINDOW_HOP
    filled = plan[-1][2]
    if filled < frames:
        plan.append((frames - WINDOW, filled, frames))
    return plan


def predict_windowed(
    bundle: ModelBundle, mag: np.ndarray, windows_per_batch: int = 4, pad_mode: str = "reflect"
) -> np.ndarray:
    """Prediction (outputs, 512, T) of one normalised magnitude (512, T), the report's windows."""
    _check_pad_mode(pad_mode)
    if windows_per_batch < 1:
        raise UserError(f"--windows-per-batch {windows_per_batch}: must be >= 1")
    T = mag.shape[-1]
    padded = _pad_time(mag, max(T, WINDOW), pad_mode)
    plan = window_plan(padded.shape[-1])
    x = torch.from_numpy(np.ascontiguousarray(padded, dtype=np.float32))
    out = torch.zeros(bundle.arch.outputs, padded.shape[0], padded.shape[-1])
    for i in range(0, len(plan), windows_per_batch):
        chunk = plan[i : i + windows_per_batch]
        batch = torch.stack([x[:, s : s + WINDOW] for s, _, _ in chunk])[:, None]
        pred = forward(bundle, batch)
        for (s, a, b), p in zip(chunk, pred):
            out[:, :, a:b] = p[:, :, a - s : b - s]
    return out[:, :, :T].numpy()


def padded_frames(frames: int, multiple: int) -> int:
    return max(multiple, -(-frames // multiple) * multiple)


def predict_whole(
    bundle: ModelBundle,
    mags: Sequence[np.ndarray],
    pad_mode: str = "reflect",
    max_batch_frames: int = DEFAULT_MAX_BATCH_FRAMES,
    on_done=None,
) -> list[np.ndarray]:
    """Predictions (outputs, 512, T_i) of normalised magnitudes (512, T_i), whole clips.

    Clips are grouped by padded length (a multiple of ``arch.time_multiple``) so no
    clip is padded beyond its own multiple; each group goes through the network in
    batches of at most ``max_batch_frames`` frames (at least one clip per batch).
    ``on_done(i, prediction)`` is called as soon as clip ``i``'s prediction is ready.
    """
    _check_pad_mode(pad_mode)
    mult = bundle.arch.time_multiple
    groups: dict[int, list[int]] = {}
    for i, m in enumerate(mags):
        groups.setdefault(padded_frames(m.shape[-1], mult), []).append(i)
    out: list[np.ndarray | None] = [None] * len(mags)
    for total in sorted(groups):
        idx = groups[total]
        per_batch = max(1, int(max_batch_frames) // total)
        for j in range(0, len(idx), per_batch):
            part = idx[j : j + per_batch]
            batch = np.stack(
                [_pad_time(np.asarray(mags[i], np.float32), total, pad_mode) for i in part]
            )
            pred = forward(bundle, torch.from_numpy(batch)[:, None])
            for k, i in enumerate(part):
                out[i] = pred[k, :, :, : mags[i].shape[-1]].numpy()
                if on_done is not None:
                    on_done(i, out[i])
    return out  # type: ignore[return-value]


def check_chunking(chunk: int, overlap: int | None, multiple: int) -> int:
    """The overlap to use (``None``: 256 frames, at most half a chunk); refuses settings the network
    cannot take or that leave no room to cross-fade."""
    if chunk < 2 * multiple or chunk % multiple:
        raise UserError(
            f"--chunk-frames {chunk}: must be a multiple of the network's time multiple "
            f"{multiple} (2 ** poolings), at least {2 * multiple}"
        )
    overlap = min(OVERLAP_FRAMES, chunk // 2) if overlap is None else int(overlap)
    if overlap < 4 or overlap > chunk - multiple:
        raise UserError(
            f"--overlap-frames {overlap}: must be between 4 and --chunk-frames minus "
            f"{multiple} ({chunk - multiple})"
        )
    return overlap


def chunk_plan(frames: int, chunk: int, overlap: int, multiple: int = 1) -> list[tuple[int, int]]:
    """(start, stop) of the segments covering ``frames`` frames: one when it fits in ``chunk``.

    Segments of ``chunk`` frames start every ``hop`` frames — the largest multiple of
    ``multiple`` that leaves neighbours ``overlap`` frames in common — so every segment
    pools on the same grid as a one-pass run (the network is only shift-invariant by
    ``2 ** poolings`` frames); the last one ends at the clip's end and may be shorter.
    """
    if frames <= chunk:
        return [(0, frames)]
    hop = max(multiple, (chunk - overlap) // multiple * multiple)
    n = 1 + -(-(frames - chunk) // hop)
    return [(k * hop, min(k * hop + chunk, frames)) for k in range(n)]


def _ramp(frames: int, start: float, width: float) -> np.ndarray:
    """Raised-cosine ramp over ``frames``: 0 before ``start``, sin² rising to 1 over ``width``."""
    t = (np.arange(frames) + 0.5 - start) / width
    return np.sin(0.5 * np.pi * np.clip(t, 0.0, 1.0)) ** 2


def chunk_weights(plan: list[tuple[int, int]]) -> list[np.ndarray]:
    """Per-segment frame weights (length stop - start) that sum to one over every frame.

    Two neighbours cross-fade over the middle half of the frames they share, so the
    quarter at each segment edge (where the network saw a hard cut) gets weight zero.
    """
    weights = [np.ones(b - a) for a, b in plan]
    for k in range(len(plan) - 1):
        a0, a1 = plan[k]
        b0 = plan[k + 1][0]
        shared = a1 - b0
        rise = _ramp(shared, shared / 4, shared / 2)  # over the shared frames [b0, a1)
        weights[k][b0 - a0 :] *= 1.0 - rise
        weights[k + 1][:shared] *= rise
    return weights


def predict_chunked(
    bundle: ModelBundle,
    mag: np.ndarray,
    chunk: int = DEFAULT_CHUNK,
    overlap: int | None = DEFAULT_OVERLAP,
    pad_mode: str = "reflect",
    progress=None,
) -> np.ndarray:
    """Prediction (outputs, 512, T) of a normalised magnitude (512, T) of any length.

    At most ``chunk`` frames go through the network at once (see the module's notes);
    a clip that fits is one whole pass, the same numbers as :func:`predict_whole`.
    ``progress(frames)`` is called after each segment with the frames it newly covered.
    """
    overlap = check_chunking(chunk, overlap, bundle.arch.time_multiple)
    T = mag.shape[-1]
    plan = chunk_plan(T, chunk, overlap, bundle.arch.time_multiple)
    if len(plan) == 1:
        pred = predict_whole(bundle, [mag], pad_mode)[0]
        if progress is not None:
            progress(T)
        return pred
    out = np.zeros((bundle.arch.outputs, mag.shape[0], T), np.float32)
    covered = 0
    for (a, b), w in zip(plan, chunk_weights(plan)):
        pred = predict_whole(bundle, [mag[:, a:b]], pad_mode)[0]  # the last one: padded
        out[:, :, a:b] += pred * w.astype(np.float32)
        if progress is not None:
            progress(b - covered)  # frames newly covered
        covered = b
    return out

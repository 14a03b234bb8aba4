"""Separate songs into voice and accompaniment with a trained stacked-hourglass network.

Pipeline (the seed's, step by step)::

    audio (channels, n) at any rate
      -> mixture = mean of the channels (mono passes through), resampled to 8 kHz
      -> STFT 1024/256 Hann, bins 0..511 (``hourglass_sep.features.stft``)
      -> magnitude / clip max  (the network's input)
      -> network -> last stack's prediction
      -> ``model.sources_from_prediction`` (masks clipped at 0; single-mask and
         end-to-end targets handled there) -> x clip max
      -> mixture phase -> inverse STFT (8 kHz length) -> resample to the input rate
      -> trim / zero-pad to the input length

Two schedules turn a spectrogram of any length into network passes:

``windowed`` (the seed's)
    64-frame windows, hop 32.  The first window fills frames 0-63, each later
    one only its middle frames [16:48] (overwriting the previous window's edge),
    and a final window over the last 64 frames fills whatever is left.  ``k``
    windows go through the network per forward pass (the seed's "4 windows").
    A clip shorter than 64 frames is padded to 64 (see below) and cropped.

``whole`` (default)
    The whole clip in one pass: the spectrogram is padded *on the right* to a
    multiple of ``arch.time_multiple`` (32 for 5 poolings) and the prediction is
    cropped back.  The padding is a **reflection** of the clip's last frames by
    default (``pad_mode="reflect"``; the network sees music continue rather than a
    hard cut to silence; frames are reflected repeatedly when the pad is longer than
    the clip) or zeros (``pad_mode="zero"``).  The padded frames' predictions are
    discarded; only the receptive field near the end of the clip sees them.
    Many clips (:func:`separate_many`) are grouped by padded length, so every clip
    gets exactly the prediction it would get alone (no cross-clip padding), and a
    group is split into batches of at most ``max_batch_frames`` frames.

Speed (see ``docs/benchmarks.md``): the network is put in inference mode with every
BatchNorm folded into the convolution before it (:func:`fold_batchnorm`), the skip +
upsample additions done in place (:func:`use_inplace_forward`), stored ``channels_last``
and, with ``precision="bf16"``, converted to bfloat16 weights (GPUs with bf16 support and
CPUs with native AVX512-BF16/AMX; ``precision="auto"`` picks it there).  On the CPU, the
``separate`` command also calls :func:`reuse_freed_memory`: glibc hands every block over
32 MiB back to the kernel when it is freed, so each of the whole-clip pass's large
activations (100+ MiB for a 1-minute song) is page-faulted and zeroed afresh — about
1.6 million page faults and a sixth of the run time per pass; keeping freed memory in
the heap removes that cost.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import features
from .audio import AUDIO_SUFFIXES, atomic_path, read_audio, resample, write_audio
from .errors import UserError
from .model import (
    ArchConfig,
    Hourglass,
    StackedHourglass,
    build_model,
    sources_from_prediction,
)

log = logging.getLogger(__name__)

MODEL_FORMAT = "hourglass-sep-model/1"
CHECKPOINT_FORMAT = "hourglass-sep-checkpoint/1"
SCHEDULES = ("whole", "windowed")
PRECISIONS = ("auto", "fp32", "bf16")

PAD_MODES = ("reflect", "zero")
WINDOW = 64  # frames per window (windowed schedule)
WINDOW_HOP = 32
WINDOW_KEEP = (16, 48)  # the frames a later window writes
DEFAULT_MAX_BATCH_FRAMES = 2048  # ~2 GB of bf16 activations for the 4-stack network


# ------------------------------------------------------------------ hardware
from .hardware import (  # noqa: E402,F401  (re-exported)
    DEVICES,
    bf16_support,
    cpu_bf16_usable,
    cpu_has_native_bf16,
    resolve_device,
    set_threads,
)


def resolve_precision(requested: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for ``requested`` in ``auto|fp32|bf16`` on ``device``."""
    if requested not in PRECISIONS:
        raise UserError(f"--precision {requested!r}: choose one of {', '.join(PRECISIONS)}")
    if requested == "fp32":
        return "fp32"
    ok, native, where = bf16_support(device)
    if requested == "bf16":
        if not ok:
            raise UserError(
                f"--precision bf16: {where} does not support bfloat16; use --precision fp32"
            )
        return "bf16"
    return "bf16" if native else "fp32"


_ALLOCATOR_TUNED: bool | None = None


def reuse_freed_memory(keep_bytes: int = 2**31 - 1) -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the kernel.

    glibc's ``malloc`` serves every block larger than its mmap threshold (at most
    32 MiB) with a fresh ``mmap`` and unmaps it on ``free``.  PyTorch's CPU allocator
    has no cache, so each large activation of a whole-clip pass (a 64-s song: tensors
    of 130-260 MiB) is page-faulted and zeroed by the kernel again on every layer —
    1.6 million page faults per pass of the 4-stack network, 15-20 % of its run time
    on a 2-core machine.  ``mallopt(M_MMAP_MAX, 0)`` serves large blocks from the heap
    and ``mallopt(M_TRIM_THRESHOLD, keep_bytes)`` keeps up to ``keep_bytes`` of freed
    heap memory mapped, so later layers reuse pages already faulted in.

    Process-wide and irreversible: the process keeps its peak heap size (at most
    ``keep_bytes`` more) until it exits.  The ``separate`` command calls it; library
    users opt in.  Returns True when applied (Linux with glibc), False elsewhere.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED is not None:
        return _ALLOCATOR_TUNED
    ok = False
    try:
        import ctypes
        import ctypes.util
        import platform

        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
            ok = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(
                libc.mallopt(M_TRIM_THRESHOLD, int(keep_bytes))
            )
    except Exception:  # pragma: no cover - exotic platforms
        ok = False
    _ALLOCATOR_TUNED = ok
    return ok


# ------------------------------------------------------------ model surgery
def fold_batchnorm(model: nn.Module) -> int:
    """Fold every ``BatchNorm2d`` that directly follows a ``Conv2d`` in an ``nn.Sequential``.

    In eval mode ``BN(conv(x)) = s * (W x + b - mean) + beta`` with
    ``s = gamma / sqrt(var + eps)``, i.e. a convolution with weights ``s * W`` and
    bias ``s * (b - mean) + beta``.  The convolution is rewritten in place (in
    float64, then cast back) and the BatchNorm replaced by ``nn.Identity``.  The
    seed network's units are ``Sequential(Conv2d, BatchNorm2d, ReLU)``.  Only valid
    for inference (running statistics); returns the number of folded layers.
    """
    folded = 0
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            conv, bn = module[i], module[i + 1]
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            if bn.running_mean is None or bn.running_var is None:
                continue  # no running statistics: BN normalises by batch statistics, cannot fold
            with torch.no_grad():
                w = conv.weight.detach().double()
                mean, var = bn.running_mean.double(), bn.running_var.double()
                gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(mean)
                beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(mean)
                b = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(mean)
                s = gamma / torch.sqrt(var + bn.eps)
                shape = (-1,) + (1,) * (w.dim() - 1)
                conv.weight = nn.Parameter(
                    (w * s.view(shape)).to(conv.weight.dtype), requires_grad=False
                )
                conv.bias = nn.Parameter(
                    ((b - mean) * s + beta).to(conv.weight.dtype), requires_grad=False
                )
            module[i + 1] = nn.Identity()
            folded += 1
    return folded


def add_upsampled_(skip: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """``skip += nearest_upsample_x2(low)`` in place, without materialising the upsampled tensor.

    ``skip`` (B, C, H, W) is viewed as (B, H/2, 2, W/2, 2, C) (channels_last) or
    (B, C, H/2, 2, W/2, 2) and ``low`` broadcast over the two size-2 axes: the same
    numbers as ``skip + F.interpolate(low, scale_factor=2)`` with a third of the
    memory traffic and no new allocations.  Falls back to that expression when the
    shapes are not exactly 2x or the strides are unusual.
    """
    B, C, H, W = skip.shape
    if low.shape != (B, C, H // 2, W // 2) or H % 2 or W % 2:
        return skip + F.interpolate(low, size=(H, W), mode="nearest")
    if skip.is_contiguous(memory_format=torch.channels_last) and skip.dim() == 4 and C > 1:
        s = skip.permute(0, 2, 3, 1).view(B, H // 2, 2, W // 2, 2, C)
        s.add_(low.permute(0, 2, 3, 1)[:, :, None, :, None, :])
    elif skip.is_contiguous():
        skip.view(B, C, H // 2, 2, W // 2, 2).add_(low[:, :, :, None, :, None])
    else:
        return skip + F.interpolate(low, scale_factor=2, mode="nearest")
    return skip


class _InferenceHourglass(Hourglass):
    """``Hourglass`` whose forward adds the upsampled branch in place (inference only)."""

    def forward(self, x):
        low = self.up(self.inner(self.down(F.max_pool2d(x, 2))))
        return add_upsampled_(self.skip(x), low)


class _InferenceStackedHourglass(StackedHourglass):
    """``StackedHourglass`` whose stack merge adds in place (inference only)."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        preds = []
        for i in range(self.cfg.stacks):
            feat = self.features[i](self.hourglasses[i](x))
            pred = self.heads[i](feat)
            preds.append(pred)
            if i < self.cfg.stacks - 1:
                x = self.merge_feat[i](feat)
                x += self.merge_pred[i](pred)
        return preds


def use_inplace_forward(model: nn.Module) -> int:
    """Switch the seed network's modules to their in-place inference forwards.

    Same parameters, same arithmetic (the additions happen in a different buffer);
    only for inference (in-place updates break autograd).  Returns the number of
    modules switched; networks of other classes are left alone.
    """
    n = 0
    for m in model.modules():
        if type(m) is Hourglass:
            m.__class__ = _InferenceHourglass
            n += 1
        elif type(m) is StackedHourglass:
            m.__class__ = _InferenceStackedHourglass
            n += 1
    return n


@dataclass
class ModelBundle:
    """A network ready for inference, with what is needed to feed it.

    ``dtype`` is the dtype of the weights and inputs (float32 or bfloat16);
    ``precision`` its name.
    """

    model: nn.Module
    arch: ArchConfig
    device: torch.device
    dtype: torch.dtype
    precision: str
    folded: bool = True
    channels_last: bool = True
    source: str = "<memory>"
    info: dict = field(default_factory=dict)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def describe(self) -> str:
        return (
            f"{self.source}: {self.arch.kind} {self.arch.stacks}x{self.arch.channels}+{self.arch.growth} "
            f"({self.arch.target}) on {self.device} {self.precision}, "
            f"BN {'folded' if self.folded else 'kept'}, {'channels_last' if self.channels_last else 'NCHW'}"
        )


def prepare_model(
    model: nn.Module,
    arch: ArchConfig,
    device: str | torch.device = "auto",
    precision: str = "auto",
    fold: bool = True,
    channels_last: bool = True,
    copy_model: bool = True,
    source: str = "<memory>",
    info: dict | None = None,
    inplace: bool = True,
) -> ModelBundle:
    """Turn a network into an inference bundle (eval mode, no gradients, optimised).

    ``fold``: fold BatchNorm into the convolutions; ``channels_last``: NHWC storage;
    ``precision``: auto|fp32|bf16 (bf16 =
    weights and activations in bfloat16, the output returned as float32).
    ``inplace``: the seed network's in-place inference forwards (:func:`use_inplace_forward`).
    ``copy_model=False`` modifies ``model`` in place.
    """
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    prec = resolve_precision(precision, dev)
    net = copy.deepcopy(model) if copy_model else model
    net.eval()
    net.requires_grad_(False)
    n_folded = fold_batchnorm(net) if fold else 0
    n_inplace = use_inplace_forward(net) if inplace else 0
    dtype = torch.bfloat16 if prec == "bf16" else torch.float32
    net = net.to(device=dev, dtype=dtype)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    net.eval()
    info = dict(info or {})
    info["folded_batchnorm"] = n_folded
    info["inplace_modules"] = n_inplace
    return ModelBundle(net, arch, dev, dtype, prec, bool(fold), bool(channels_last), source, info)


def read_model_file(path: str | os.PathLike) -> tuple[ArchConfig, dict, dict]:
    """(architecture, state_dict, other fields) of a ``model.pt`` (or a training checkpoint).

    Raises ``UserError`` for a missing, unreadable, corrupt or foreign file.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(
            f"{path}: model file not found; train one with `hourglass-sep train -o {path.name}`"
        )
    if path.is_dir():
        raise UserError(
            f"{path}: is a directory; --model expects the model.pt written by `hourglass-sep train`"
        )
    if path.stat().st_size == 0:
        raise UserError(
            f"{path}: model file is empty (0 bytes; an interrupted copy?); re-create it with `hourglass-sep train`"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(
            f"{path}: cannot read as a model file ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            "the file is corrupt, truncated or not a torch.save file — re-create it with `hourglass-sep train`"
        ) from None
    if not isinstance(data, dict):
        raise UserError(
            f"{path}: not an hourglass-sep model (holds a {type(data).__name__}, expected a dict "
            f"with 'arch' and 'state_dict'; format {MODEL_FORMAT})"
        )
    fmt = data.get("format")
    if fmt == CHECKPOINT_FORMAT and "model" in data:
        state = data["model"]
    else:
        state = data.get("state_dict")
    if (
        fmt not in (None, MODEL_FORMAT, CHECKPOINT_FORMAT)
        or "arch" not in data
        or not isinstance(state, dict)
    ):
        have = sorted(map(str, data))[:8]
        raise UserError(
            f"{path}: not an hourglass-sep model (format {fmt!r}, keys {have}); expected a dict with "
            f"'arch' and 'state_dict' (format {MODEL_FORMAT}) as written by `hourglass-sep train`"
        )
    try:
        arch = ArchConfig.from_dict(dict(data["arch"]))
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: bad architecture record ({exc})") from None
    rest = {k: v for k, v in data.items() if k not in ("state_dict", "model", "optimizer")}
    return arch, state, rest


def load_model(
    path: str | os.PathLike,
    device: str | torch.device = "auto",
    precision: str = "auto",
    fold: bool = True,
    channels_last: bool = True,
) -> ModelBundle:
    """Load a ``model.pt`` (``torch.load(weights_only=True)``) and prepare it for inference.

    See :func:`prepare_model` for the options.  Errors (missing, corrupt or foreign
    file, weights that do not fit the recorded architecture) raise ``UserError``.
    """
    arch, state, rest = read_model_file(path)
    model = build_model(arch)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        raise UserError(
            f"{path}: the weights do not fit the recorded architecture {arch.to_dict()} "
            f"({' '.join(first[:2])[:300]}); the file is damaged or was edited"
        ) from None
    info = {k: rest[k] for k in ("step", "wall_seconds", "device", "format") if k in rest}
    return prepare_model(
        model,
        arch,
        device,
        precision,
        fold,
        channels_last,
        copy_model=False,
        source=str(path),
        info=info,
    )


# ------------------------------------------------------------------ forward
def _forward(bundle: ModelBundle, x: torch.Tensor) -> torch.Tensor:
    """Last stack's prediction (B, outputs, 512, T) float32 on the CPU for input (B, 1, 512, T)."""
    x = x.to(device=bundle.device, dtype=bundle.dtype)
    if bundle.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        pred = bundle.model(x)[-1]
        return pred.float().cpu().contiguous()


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
    """Prediction (outputs, 512, T) of one normalised magnitude (512, T), the seed's windowed way."""
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
        pred = _forward(bundle, batch)
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
            pred = _forward(bundle, torch.from_numpy(batch)[:, None])
            for k, i in enumerate(part):
                out[i] = pred[k, :, :, : mags[i].shape[-1]].numpy()
                if on_done is not None:
                    on_done(i, out[i])
    return out  # type: ignore[return-value]


# ------------------------------------------------------------- waveforms
def _as_channels(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[0] < 1:
        raise UserError(f"audio must be (channels, samples) or (samples,), got shape {a.shape}")
    if a.shape[1] == 0:
        raise UserError("audio holds no samples")
    if not np.all(np.isfinite(a)):
        raise UserError("audio holds NaN or infinite samples")
    return a


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    if x.shape[-1] >= n:
        return np.ascontiguousarray(x[..., :n], dtype=np.float32)
    return np.pad(x, (0, n - x.shape[-1])).astype(np.float32)


def _waveforms(
    bundle: ModelBundle, feats: features.ClipFeatures, pred: np.ndarray, sr: int, n: int
):
    """(voice, accompaniment) waveforms at ``sr``, length ``n``, from one clip's prediction."""
    mix = torch.from_numpy(feats.mixture)[None, None]
    v, a = sources_from_prediction(torch.from_numpy(pred)[None], mix, bundle.arch.target)
    spec = torch.from_numpy(feats.mix_stft)
    phase = torch.polar(torch.ones_like(spec.real), spec.angle())
    mags = torch.cat([v, a], 1)[0] * feats.scale  # (2, 512, T)
    waves = features.istft(mags * phase, length=feats.samples_8k).numpy()
    waves = resample(waves, features.SR, sr)
    return _fit_length(waves[0], n), _fit_length(waves[1], n)


def separate_waveform(
    bundle: ModelBundle,
    audio: np.ndarray,
    sr: int,
    schedule: str = "whole",
    windows_per_batch: int = 4,
    pad_mode: str = "reflect",
) -> tuple[np.ndarray, np.ndarray]:
    """(voice, accompaniment) float32 ``(n,)`` at ``sr`` for ``audio`` ``(channels, n)`` or ``(n,)``."""
    return separate_many(
        bundle,
        [(audio, sr)],
        schedule=schedule,
        windows_per_batch=windows_per_batch,
        pad_mode=pad_mode,
    )[0]


def separate_many(
    bundle: ModelBundle,
    clips: Sequence,
    sr: int | Sequence[int] | None = None,
    schedule: str = "whole",
    windows_per_batch: int = 4,
    pad_mode: str = "reflect",
    max_batch_frames: int = DEFAULT_MAX_BATCH_FRAMES,
    progress: bool | str = False,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Separate many clips; returns one (voice, accompaniment) pair per clip, in order.

    ``clips``: a list of ``(audio, sr)`` pairs, or of arrays with ``sr`` given (one
    rate for all or one per clip).  Whole-clip schedule: clips of the same padded
    length share forward passes (see :func:`predict_whole`); the result for each
    clip is the one :func:`separate_waveform` gives.  ``progress``: a tqdm bar over
    clips (a string is used as its description).
    """
    if schedule not in SCHEDULES:
        raise UserError(f"schedule {schedule!r}: choose one of {', '.join(SCHEDULES)}")
    _check_pad_mode(pad_mode)
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
    audios = [(_as_channels(a), r) for a, r in pairs]
    feats = [features.clip_features(a, r, with_sources=False) for a, r in audios]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=len(feats),
            unit="clip",
            desc=progress if isinstance(progress, str) else "separate",
        )
    try:
        results: list = [None] * len(feats)

        def finish(i: int, pred: np.ndarray) -> None:
            a, r = audios[i]
            results[i] = _waveforms(bundle, feats[i], pred, r, a.shape[1])
            if bar is not None:
                bar.update(1)

        if schedule == "whole":
            predict_whole(
                bundle, [f.mixture for f in feats], pad_mode, max_batch_frames, on_done=finish
            )
        else:
            for i, f in enumerate(feats):
                finish(i, predict_windowed(bundle, f.mixture, windows_per_batch, pad_mode))
    finally:
        if bar is not None:
            bar.close()
    return results


# ------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="IN",
        help="songs to separate (wav, flac or ogg; mono or multi-channel; any rate)",
    )
    p.add_argument("--model", required=True, help="model.pt written by `hourglass-sep train`")
    p.add_argument(
        "-o",
        "--output",
        help="output folder: writes OUT/<input stem>/voice.wav and accompaniment.wav",
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="whole",
        help="whole: one pass per clip (padded to the network's time multiple); windowed: the seed's 64-frame windows",
    )
    p.add_argument(
        "--windows-per-batch",
        type=int,
        default=4,
        help="windows per forward pass (windowed schedule)",
    )
    p.add_argument(
        "--pad",
        choices=PAD_MODES,
        default="reflect",
        help="how a clip is padded in time before the network",
    )
    p.add_argument(
        "--max-batch-frames",
        type=int,
        default=DEFAULT_MAX_BATCH_FRAMES,
        help="whole schedule: most frames per forward pass when clips of equal padded length are batched",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: bf16 on GPUs with bf16 and CPUs with AVX512-BF16/AMX, else fp32",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default: OMP_NUM_THREADS, else torch's default)",
    )
    p.add_argument("--no-fold", action="store_true", help="keep BatchNorm layers (for comparisons)")
    p.add_argument(
        "--float",
        dest="float_out",
        action="store_true",
        help="write 32-bit float wav instead of 16-bit PCM",
    )
    p.add_argument(
        "--catalogue", help="workflow mode: clip catalogue TSV (separates evaluated test clips)"
    )
    p.add_argument(
        "--shard", default="0/1", help="workflow mode: I/N, separate the clips k with k %% N == I"
    )
    p.add_argument("--estimates", help="workflow mode: the .npz to write")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def shard_clips(catalogue_path: str | os.PathLike, shard: str):
    """The rows of the evaluated test clips in shard ``I/N`` (see catalogue.evaluated_clips)."""
    from . import catalogue as cat

    return cat.evaluated_clips(cat.read_catalogue(catalogue_path), cat.parse_shard(shard))


def _check_input(path: Path) -> None:
    """Refuse a missing, empty, unreadable or sample-less input before any work starts."""
    import soundfile as sf

    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(
            f"{path}: is a directory, expected an audio file ({', '.join(AUDIO_SUFFIXES)})"
        )
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty (0 bytes); expected a wav, flac or ogg file")
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise UserError(
            f"{path}: cannot read as audio ({str(exc).strip()[:200]}); expected a wav, flac or ogg file"
        ) from None
    if info.frames == 0:
        raise UserError(f"{path}: the file holds no samples")


def _run_files(args, bundle: ModelBundle) -> int:
    if not args.output:
        raise UserError(
            "give an output folder with -o DIR (or use --catalogue/--estimates for workflow mode)"
        )
    out_dir = Path(args.output)
    inputs = [Path(p) for p in args.inputs]
    for p in inputs:
        _check_input(p)
    in_resolved = {p.resolve(): p for p in inputs}
    targets: dict[Path, Path] = {}
    for p in inputs:
        for name in ("voice.wav", "accompaniment.wav"):
            t = (out_dir / p.stem / name).resolve()
            if t in in_resolved:
                raise UserError(
                    f"{t}: output would overwrite the input {in_resolved[t]}; choose another -o folder or rename the input"
                )
            if t in targets and targets[t] != p:
                raise UserError(
                    f"{targets[t]} and {p} have the same stem {p.stem!r}: their outputs would overwrite each other; "
                    "separate them into different -o folders or rename one"
                )
            targets[t] = p
    subtype = "FLOAT" if args.float_out else "PCM_16"
    from tqdm import tqdm

    t0 = time.perf_counter()
    for p in tqdm(
        inputs, unit="song", desc="separate", disable=args.no_progress or len(inputs) < 2
    ):
        audio, sr = read_audio(p)
        t1 = time.perf_counter()
        voice, acc = separate_waveform(
            bundle, audio, sr, args.schedule, args.windows_per_batch, args.pad
        )
        dt = time.perf_counter() - t1
        dest = out_dir / p.stem
        write_audio(dest / "voice.wav", voice, sr, subtype)
        write_audio(dest / "accompaniment.wav", acc, sr, subtype)
        print(
            f"{p} -> {dest}/{{voice,accompaniment}}.wav ({audio.shape[1] / sr:.1f} s of audio in {dt:.2f} s)"
        )
    log.info("separated %d file(s) in %.1f s", len(inputs), time.perf_counter() - t0)
    return 0


def _run_shard(args, bundle: ModelBundle, threads: int) -> int:
    if args.inputs or args.output:
        raise UserError(
            "workflow mode (--catalogue) takes no input files and no -o; the results go to --estimates"
        )
    if not args.estimates:
        raise UserError("workflow mode needs --estimates E.npz (the file to write)")
    rows = shard_clips(args.catalogue, args.shard)
    t0 = time.perf_counter()
    clips, audios = [], []
    for row in rows.itertuples():
        audio, sr = read_audio(row.path)
        clips.append(str(row.clip))
        audios.append((audio, sr))
    results = separate_many(
        bundle,
        audios,
        schedule=args.schedule,
        windows_per_batch=args.windows_per_batch,
        pad_mode=args.pad,
        max_batch_frames=args.max_batch_frames,
        progress=False if args.no_progress else f"separate {args.shard}",
    )
    seconds = time.perf_counter() - t0
    arrays: dict[str, np.ndarray] = {"clips": np.array(clips, dtype=str)}
    for c, (v, a) in zip(clips, results):
        arrays[f"voice__{c}"] = np.asarray(v, np.float32)
        arrays[f"accompaniment__{c}"] = np.asarray(a, np.float32)
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
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_path(args.estimates, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    print(
        f"{args.estimates}: {len(clips)} clip(s) of shard {args.shard} in {seconds:.1f} s "
        f"({bundle.device}, {bundle.precision}, {args.schedule})"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    threads = set_threads(args.threads)
    logging.getLogger("numba").setLevel(logging.WARNING)  # librosa's JIT floods -v output otherwise
    if reuse_freed_memory():
        log.debug("glibc malloc: large blocks from the heap, freed memory kept for reuse")
    workflow = args.catalogue is not None or args.estimates is not None
    if workflow and not args.catalogue:
        raise UserError("--estimates needs --catalogue catalogue.tsv (workflow mode)")
    if not workflow and not args.inputs:
        raise UserError(
            "give songs to separate (IN ...) and -o DIR, or --catalogue/--shard/--estimates"
        )
    if not workflow:  # refuse bad inputs before loading the model
        for p in args.inputs:
            _check_input(Path(p))
    bundle = load_model(
        args.model, device=args.device, precision=args.precision, fold=not args.no_fold
    )
    log.info("%s, %d thread(s)", bundle.describe(), threads)
    return _run_shard(args, bundle, threads) if workflow else _run_files(args, bundle)

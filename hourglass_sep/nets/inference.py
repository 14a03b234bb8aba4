"""A trained network made ready for inference: loading, BatchNorm folding, in-place adds, bf16.

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

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hourglass_sep.errors import UserError
from hourglass_sep.nets.hardware import (
    bf16_support,
    resolve_device,
)
from hourglass_sep.nets.model import Hourglass, StackedHourglass, build_model
from hourglass_sep.nets.settings import PRECISIONS, ArchConfig
from hourglass_sep.nets.shipped import shipped_model_path

MODEL_FORMAT = "hourglass-sep-model/1"
CHECKPOINT_FORMAT = "hourglass-sep-checkpoint/1"
RELEASE_FORMAT = "hourglass-sep-release/1"  # compact fp16 weights shipped in the package


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
                w = conv.weight.detach()  # promoted to float64 by s below, not copied first
                mean, var = bn.running_mean.double(), bn.running_var.double()
                gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(mean)
                beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(mean)
                b = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(mean)
                s = gamma / torch.sqrt(var + bn.eps)
                shape = (-1,) + (1,) * (w.dim() - 1)
                conv.weight = nn.Parameter((w * s.view(shape)).to(w.dtype), requires_grad=False)
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

    def merge(self, i: int, feat: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        x = self.merge_feat[i](feat)
        x += self.merge_pred[i](pred)
        return x


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
        a = self.arch
        layout = "channels_last" if self.channels_last else "NCHW"
        return (
            f"{self.source}: {a.kind} {a.stacks}x{a.channels}+{a.growth} ({a.target}) "
            f"on {self.device} {self.precision}, BN {'folded' if self.folded else 'kept'}, {layout}"
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


def _torch_load(path: Path) -> dict:
    """``torch.load(weights_only=True)`` of a model file, every failure a ``UserError``."""
    remedy = "re-create it with `hourglass-sep train`"
    if not path.exists():
        raise UserError(
            f"{path}: model file not found; train one with `hourglass-sep train -o {path.name}`"
        )
    if path.is_dir():
        raise UserError(
            f"{path}: is a directory; --model expects the model.pt written by `hourglass-sep train`"
        )
    if path.stat().st_size == 0:
        raise UserError(f"{path}: model file is empty (0 bytes; an interrupted copy?); {remedy}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise UserError(
            f"{path}: cannot read as a model file ({type(exc).__name__}: {first}); the file is "
            f"corrupt, truncated or not a torch.save file — {remedy}"
        ) from None
    if not isinstance(data, dict):
        raise UserError(
            f"{path}: not an hourglass-sep model (holds a {type(data).__name__}, expected a dict "
            f"with 'arch' and 'state_dict'; format {MODEL_FORMAT})"
        )
    return data


def read_model_file(path: str | os.PathLike) -> tuple[ArchConfig, dict, dict]:
    """(architecture, state_dict, other fields) of a ``model.pt``, checkpoint or release file.

    Raises ``UserError`` for a missing, unreadable, corrupt or foreign file.
    """
    path = Path(path)
    data = _torch_load(path)
    fmt = data.get("format")
    state = (
        data["model"] if fmt == CHECKPOINT_FORMAT and "model" in data else data.get("state_dict")
    )
    known = (None, MODEL_FORMAT, CHECKPOINT_FORMAT, RELEASE_FORMAT)
    if fmt not in known or "arch" not in data or not isinstance(state, dict):
        have = sorted(map(str, data))[:8]
        raise UserError(
            f"{path}: not an hourglass-sep model (format {fmt!r}, keys {have}); expected a dict "
            f"with 'arch' and 'state_dict' (format {MODEL_FORMAT}) as written by "
            "`hourglass-sep train`"
        )
    try:
        arch = ArchConfig.from_dict(dict(data["arch"]))
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: bad architecture record ({exc})") from None
    rest = {k: v for k, v in data.items() if k not in ("state_dict", "model", "optimizer")}
    return arch, state, rest


def build_loaded(arch: ArchConfig, state: dict, source: str) -> nn.Module:
    """The network of ``arch`` holding ``state`` (float32), built without random initialisation.

    The modules are made on the ``meta`` device and the loaded tensors assigned to them:
    initialising 35 M parameters only to overwrite them took ~0.4 s of every CLI run.
    Compact (fp16) release weights are widened to float32 here, before BatchNorm folding.
    """
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    with torch.device("meta"):
        model = build_model(arch)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        raise UserError(
            f"{source}: the weights do not fit the recorded architecture {arch.to_dict()} "
            f"({' '.join(first[:2])[:300]}); the file is damaged or was edited"
        ) from None
    return model


def load_model(
    path: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    precision: str = "auto",
    fold: bool = True,
    channels_last: bool = True,
) -> ModelBundle:
    """Load a ``model.pt`` (``torch.load(weights_only=True)``) and prepare it for inference.

    ``path=None``: the model shipped in the package (``hourglass_sep/resources/release.pt``,
    checked against the md5 in ``release.json``; see :mod:`hourglass_sep.nets.release`).
    See :func:`prepare_model` for the options.  Errors (missing, corrupt or foreign
    file, weights that do not fit the recorded architecture) raise ``UserError``.
    """
    if path is None:
        path = shipped_model_path()
    arch, state, rest = read_model_file(path)
    model = build_loaded(arch, state, str(path))
    keys = ("step", "wall_seconds", "device", "format", "md5")
    info = {k: rest[k] for k in keys if k in rest}
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
def forward(bundle: ModelBundle, x: torch.Tensor) -> torch.Tensor:
    """Last stack's prediction (B, outputs, 512, T) float32 on the CPU for input (B, 1, 512, T)."""
    x = x.to(device=bundle.device, dtype=bundle.dtype)
    if bundle.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        pred = bundle.model(x)[-1]
        return pred.float().cpu().contiguous()

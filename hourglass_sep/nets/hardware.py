"""What the machine can do: bfloat16 on the CPU or the GPU.

Training and separation (``--precision auto``) both use bf16 only where the hardware computes
it natively, so one rule decides both.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hourglass_sep.nets.settings import DEVICES  # --device choices, defined once


def cpu_bf16_usable() -> bool:
    """True when oneDNN can run bfloat16 convolutions on this CPU (natively or emulated)."""
    try:
        return bool(
            torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    except Exception:  # pragma: no cover - older torch builds
        return False


def cpu_has_native_bf16() -> bool:
    """True when the CPU has native bfloat16 dot products (AVX512-BF16 or AMX-BF16).

    ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` is also true on plain AVX-512
    CPUs, where oneDNN emulates bf16 (slower than fp32); ``auto`` only picks bf16 where
    the instructions exist.  Linux only (reads /proc/cpuinfo); elsewhere False.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return (" avx512_bf16" in flags or " amx_bf16" in flags) and cpu_bf16_usable()


def bf16_support(device: torch.device) -> tuple[bool, bool, str]:
    """(bf16 runs at all, bf16 is native, the device in words for messages) on ``device``."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, ok, f"the GPU {torch.cuda.get_device_name(device)}"
    return cpu_bf16_usable(), cpu_has_native_bf16(), "this CPU (needs AVX-512 and oneDNN)"


def resolve_device(requested: str = "auto", allow_cpu: bool = False) -> torch.device:
    """The torch device for ``--device`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``).

    ``auto`` takes a visible CUDA GPU, else the CPU.  An explicit ``cuda`` with no GPU is an
    error naming the way out, unless ``allow_cpu`` (the workflow's ``device.allow_cpu``) lets
    the job fall back to the CPU with a warning.
    """
    import logging
    import os

    from hourglass_sep.errors import UserError

    if requested not in DEVICES and not str(requested).startswith("cuda:"):
        raise UserError(f"--device {requested!r}: choose one of {', '.join(DEVICES)} or cuda:N")
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda" if requested == "auto" else requested)
    if requested == "auto":
        return torch.device("cpu")
    msg = (
        f"--device {requested} was requested but no CUDA GPU is visible (torch "
        f"{torch.__version__}, CUDA build: {torch.version.cuda or 'none'}, "
        f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')})"
    )
    if allow_cpu:
        logging.getLogger(__name__).warning(
            "%s; falling back to the CPU because of --allow-cpu (this will be slow)", msg
        )
        return torch.device("cpu")
    raise UserError(
        f"{msg}; run on a machine with a GPU and a CUDA build of torch, use --device cpu or "
        "--device auto, or pass --allow-cpu to fall back to the CPU"
    )


def default_threads() -> int:
    """Threads a job may use: ``OMP_NUM_THREADS`` (Snakemake sets it to the rule's threads),
    else every core."""
    import os

    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        n = 0
    return n if n >= 1 else (os.cpu_count() or 1)


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (``None`` = :func:`default_threads`); returns the count."""
    from hourglass_sep.errors import UserError

    if threads is None:
        threads = default_threads()
    if int(threads) < 1:
        raise UserError(f"--threads {threads}: must be >= 1")
    torch.set_num_threads(int(threads))
    return torch.get_num_threads()

"""What the machine can do: bfloat16 on the CPU or the GPU.

Training (``--amp auto``) and separation (``--precision auto``) both use bf16 only where the
hardware computes it natively, so one rule decides both.
"""

from __future__ import annotations

from pathlib import Path

import torch


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

"""What a clip's score rows hold and which signals BSS Eval can score: the sources and their
channels, the metric and table columns, and the checks that turn a bad clip into a status
(``ClipError``) instead of an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

SOURCES = ("voice", "accompaniment")
NEAR_SILENT_RATIO = 1e-8  # estimate energy / reference energy below this: near-silent
SILENT = "silent estimate (all zeros)"
NEAR_SILENT = "near-silent estimate (< -80 dB of the reference)"
# channel of the stereo MIR-1K file holding each source
CHANNEL = {"voice": 1, "accompaniment": 0}
METRICS = ("sdr", "sir", "sar")
FILTER_LEN = 512
# an estimate may be shorter than its reference (STFT framing), but not by more than this
DEFAULT_MAX_SHORTFALL_S = 0.25
MIX_COLUMNS = [f"{s}_mix_{m}" for s in SOURCES for m in METRICS]
BASELINE_COLUMNS = ["clip", "singer", "samples", "scorer", "seconds", "status"] + MIX_COLUMNS
SCORE_COLUMNS = (
    ["variant", "step", "clip", "singer", "samples", "scorer", "seconds", "status"]
    + [
        f"{s}_{m}"
        for s in SOURCES
        for m in ("sdr", "sir", "sar", "nsdr", "mix_sdr", "mix_sir", "mix_sar")
    ]
    + ["mix_from"]
)


class ClipError(ValueError):
    """A clip that cannot be scored; its message becomes the clip's ``status``."""


def as_sources(x: Any, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] != len(SOURCES):
        raise ClipError(
            f"{what} must have shape (2, samples) (voice, accompaniment); got {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        raise ClipError(f"{what} has dtype {x.dtype}, expected floating point samples")
    return np.ascontiguousarray(x, dtype=np.float64)


def silent_status(refs: np.ndarray, ests: np.ndarray, names: Sequence[str]) -> str | None:
    """The status of a clip whose estimates are silent or near-silent, else ``None``.

    ``refs`` and ``ests`` are ``(sources, samples)`` float arrays of equal shape; all-zero
    estimates are named first (they are the stronger statement)."""
    e_ref = np.sum(np.square(refs, dtype=np.float64), axis=1)
    e_est = np.sum(np.square(ests, dtype=np.float64), axis=1)
    zero = [s for s, row in zip(names, ests) if not np.any(row)]
    if zero:
        return f"{SILENT}: {', '.join(zero)}"
    faint = [s for s, a, b in zip(names, e_est, e_ref) if a < NEAR_SILENT_RATIO * b]
    return f"{NEAR_SILENT}: {', '.join(faint)}" if faint else None


def check_signals(refs: np.ndarray, ests: np.ndarray, names: Sequence[str] = SOURCES) -> None:
    """Raise ``ClipError`` (message = the clip's status) for inputs BSS Eval cannot score:
    mismatched shapes, fewer samples than the filter length, NaN/inf, all-zero references,
    silent or near-silent estimates (:func:`silent_status`)."""
    if refs.ndim != 2 or refs.shape != ests.shape:
        raise ClipError(f"length mismatch: references {refs.shape}, estimates {ests.shape}")
    names = list(names) if len(names) == refs.shape[0] else [str(i) for i in range(refs.shape[0])]
    if refs.shape[1] < FILTER_LEN:
        raise ClipError(
            f"too short: {refs.shape[1]} samples (BSS Eval needs at least {FILTER_LEN})"
        )
    for name, arr in (("reference", refs), ("estimate", ests)):
        bad = [s for s, row in zip(names, arr) if not np.all(np.isfinite(row))]
        if bad:
            raise ClipError(f"non-finite {name} (NaN or inf): {', '.join(bad)}")
    silent = [s for s, row in zip(names, refs) if not np.any(row)]
    if silent:
        raise ClipError(f"silent reference (all zeros): {', '.join(silent)}")
    faint = silent_status(refs, ests, names)  # BSS Eval of a faint estimate measures rounding
    if faint:
        raise ClipError(faint)

"""Which per-clip scores may enter a mean, a plot or a verdict: the one rule every product uses.

A clip's score row is *usable* when its ``status`` is ``ok`` and every metric it carries
(``{voice,accompaniment}_{sdr,sir,sar,nsdr}``) is finite.  Two kinds of failure get a status
of their own at scoring time, so that they are counted in ``failed`` with their reason
instead of dragging a mean to ``-inf``:

- **silent / near-silent estimate**: an estimate whose energy is below ``NEAR_SILENT_RATIO``
  (1e-8, i.e. -80 dB) of its reference's energy.  BSS Eval's SDR of such an estimate is a
  ratio of rounding noise (we saw -538 dB and ``-inf`` from a tiny bf16 network whose voice
  mask died), which measures nothing but the floating-point format.  Status:
  ``silent estimate (all zeros): voice`` or ``near-silent estimate (< -80 dB of the
  reference): voice``.
- **non-finite score**: any metric that is NaN or +-inf although the inputs passed the
  checks.  Status: ``non-finite score: voice sdr, voice nsdr``.

:func:`screen` applies the second rule to tables read from disk as well (tables written
before the rule, or by hand), so no reader has to trust its input.  Pure numpy/pandas.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SOURCES = ("voice", "accompaniment")
CLIP_METRICS = ("sdr", "sir", "sar", "nsdr")
METRIC_COLUMNS = tuple(f"{s}_{k}" for s in SOURCES for k in CLIP_METRICS)
NEAR_SILENT_RATIO = 1e-8  # estimate energy / reference energy below this: near-silent
SILENT = "silent estimate (all zeros)"
NEAR_SILENT = "near-silent estimate (< -80 dB of the reference)"
NON_FINITE = "non-finite score"


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


def non_finite_status(row: dict) -> str | None:
    """``non-finite score: ...`` naming the metrics of ``row`` that are NaN or inf."""
    bad = [
        c.replace("_", " ") for c in METRIC_COLUMNS if c in row and not np.isfinite(float(row[c]))
    ]
    return f"{NON_FINITE}: {', '.join(bad)}" if bad else None


def screen(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of a per-clip scores table in which every ``ok`` row with a non-finite metric
    has status ``non-finite score: ...`` and every non-finite metric value is NaN."""
    out = df.copy()
    if "status" not in out.columns:
        return out
    out["status"] = out["status"].astype(str).str.strip()
    cols = [c for c in METRIC_COLUMNS if c in out.columns]
    if not cols or out.empty:
        return out
    values = out[cols].apply(pd.to_numeric, errors="coerce").astype(float)
    finite = np.isfinite(values.to_numpy())
    bad_rows = (out["status"] == "ok").to_numpy() & ~finite.all(axis=1)
    for i in np.flatnonzero(bad_rows):
        names = [cols[j].replace("_", " ") for j in np.flatnonzero(~finite[i])]
        out.iloc[i, out.columns.get_loc("status")] = f"{NON_FINITE}: {', '.join(names)}"
    out[cols] = values.where(finite)
    return out


def usable(df: pd.DataFrame) -> pd.Series:
    """Rows of a screened scores table that may enter means, plots and verdicts."""
    return df["status"].astype(str).str.strip() == "ok"


def is_silent(status: pd.Series, source: str) -> pd.Series:
    """Clips whose estimate of ``source`` was silent or near-silent (by their status)."""
    s = status.astype(str).str.strip().str.lower()
    parts = s.str.partition(":")
    head, listed = parts[0], parts[2]
    silent = head.str.startswith(SILENT.split(" (")[0]) | head.str.startswith(
        NEAR_SILENT.split(" (")[0]
    )
    return silent & listed.str.contains(source, regex=False)


def failure_note(rows: pd.DataFrame) -> str:
    """ "no clip scored ok (4 of 4 failed: <most common reason>)" for a run's score rows."""
    status = rows["status"].astype(str).str.strip()
    bad = status[status != "ok"]
    why = f": {bad.value_counts().index[0]}" if len(bad) else ""
    return f"no clip scored ok ({len(bad)} of {len(status)} failed{why})"

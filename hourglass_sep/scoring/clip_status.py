"""Which per-clip scores may enter a mean, a plot or a verdict: the one rule every product uses.

A clip's score row is *usable* when its ``status`` is ``ok`` and every metric it carries
(``{voice,accompaniment}_{sdr,sir,sar,nsdr}``) is finite.  Two kinds of failure get a status
of their own at scoring time, so that they are counted in ``failed`` with their reason
instead of dragging a mean to ``-inf``:

- **silent / near-silent estimate** (``signals.silent_status``): an estimate whose energy is
  below ``signals.NEAR_SILENT_RATIO`` (1e-8, i.e. -80 dB) of its reference's energy.  BSS
  Eval's SDR of such an estimate is a ratio of rounding noise (we saw -538 dB and ``-inf``
  from a tiny bf16 network whose voice mask died), which measures nothing but the
  floating-point format.  Status:
  ``silent estimate (all zeros): voice`` or ``near-silent estimate (< -80 dB of the
  reference): voice``.
- **non-finite score**: any metric that is NaN or +-inf although the inputs passed the
  checks.  Status: ``non-finite score: voice sdr, voice nsdr``.

:func:`screen` applies the second rule to tables read from disk as well (tables written
before the rule, or by hand), so no reader has to trust its input.  Pure numpy/pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hourglass_sep.scoring.signals import NEAR_SILENT, SILENT, SOURCES

CLIP_METRICS = ("sdr", "sir", "sar", "nsdr")
METRIC_COLUMNS = tuple(f"{s}_{k}" for s in SOURCES for k in CLIP_METRICS)
NON_FINITE = "non-finite score"


def _non_finite(columns) -> str:
    return f"{NON_FINITE}: {', '.join(c.replace('_', ' ') for c in columns)}"


def non_finite_status(row: dict) -> str | None:
    """``non-finite score: ...`` naming the metrics of ``row`` that are NaN or inf."""
    bad = [c for c in METRIC_COLUMNS if c in row and not np.isfinite(float(row[c]))]
    return _non_finite(bad) if bad else None


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
        bad = [cols[j] for j in np.flatnonzero(~finite[i])]
        out.iloc[i, out.columns.get_loc("status")] = _non_finite(bad)
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
    # by the words before the parenthesis: older tables wrote other details after them
    silent = head.str.startswith(tuple(w.split(" (")[0] for w in (SILENT, NEAR_SILENT)))
    return silent & listed.str.contains(source, regex=False)


def main_failure(status: pd.Series) -> str:
    """The most common reason among the failed clips of ``status`` ("" when none failed)."""
    bad = status.astype(str).str.strip()
    bad = bad[bad != "ok"]
    return str(bad.value_counts().index[0]) if len(bad) else ""


def failure_note(rows: pd.DataFrame) -> str:
    """ "no clip scored ok (4 of 4 failed: <most common reason>)" for a run's score rows."""
    failed = int((~usable(rows)).sum())
    why = main_failure(rows["status"])
    return f"no clip scored ok ({failed} of {len(rows)} failed{': ' + why if why else ''})"

"""The network trained (``expect: trains``, compare {a}): judged per training (replicate) of
the run, from its scores and its history.csv.

A training trained when (1) its estimates are non-silent on at least ``min_non_silent``
(95 %) of its scored clips and (2) its loss fell: the last history.csv loss up to the
evaluated step over the first is at most ``max_loss_ratio`` (0.8).  Both are needed: a ReLU
head that died outputs zeros, yet its loss still falls from the random start to the loss of
silence; and a network that outputs something is not trained if its loss never moved.
holds: every training trained; contradicted: none did; inconclusive: some did, or a history
too short to show a fall (one row); no data: no scores, or no history where it decides.
A criterion per training, not a statistical test: no interval, no p-value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.kinds.record import Inputs, Kind
from hourglass_sep.claims.runs import run_name
from hourglass_sep.claims.tables import ONE_SEED
from hourglass_sep.results.aggregate import SOURCES
from hourglass_sep.scoring.clip_status import is_silent

MIN_NON_SILENT = 0.95
MAX_LOSS_RATIO = 0.8
TRAINED, NOT_TRAINED, NO_HISTORY, TOO_SHORT = "trained", "not trained", "no history", "too short"


def history_paths(rows: Iterable[dict]) -> dict[str, dict[int, str]]:
    """base variant -> {replicate: history.csv path} from experiments.json rows (the claims'
    run names are base variants; a replicate's own training wrote its own history)."""
    out: dict[str, dict[int, str]] = {}
    for r in rows:
        if r.get("history"):
            variant = str(r.get("base_variant") or r["variant"])
            out.setdefault(variant, {})[int(r.get("replicate") or 0)] = str(r["history"])
    return out


def _read_history(obj) -> pd.DataFrame | None:
    """A history as a table (step, loss, ...), or None when missing or unreadable."""
    if isinstance(obj, pd.DataFrame):
        hist = obj
    elif obj is None or not Path(obj).is_file():
        return None
    else:
        try:
            hist = pd.read_csv(obj)
        except (OSError, ValueError, pd.errors.ParserError):
            return None
    if not {"step", "loss"} <= set(hist.columns):
        return None
    return hist


def loss_fall(hist: pd.DataFrame, step: int) -> tuple[float, float] | None:
    """(first, last) finite loss of the history up to ``step``; None with fewer than 2 rows."""
    h = hist.assign(step=pd.to_numeric(hist["step"], errors="coerce"))
    h = h.assign(loss=pd.to_numeric(h["loss"], errors="coerce"))
    h = h[(h["step"] <= step) & np.isfinite(h["loss"])].sort_values("step", kind="stable")
    if len(h) < 2:
        return None
    return float(h["loss"].iloc[0]), float(h["loss"].iloc[-1])


def _one_training(rows: pd.DataFrame, hist, step: int, need: tuple[float, float]) -> tuple:
    """(status, text) of one replicate's training."""
    silent = np.zeros(len(rows), dtype=bool)
    for source in SOURCES:
        silent |= is_silent(rows["status"], source).to_numpy()
    n, share = len(rows), 1.0 - float(silent.mean())
    text = f"{n - int(silent.sum())}/{n} clips non-silent"
    if share < need[0]:
        return NOT_TRAINED, text
    table = _read_history(hist)
    if table is None:
        return NO_HISTORY, f"{text}, no loss history"
    fall = loss_fall(table, step)
    if fall is None:
        return TOO_SHORT, f"{text}, loss history of fewer than 2 rows up to step {step}"
    first, last = fall
    ratio = last / first if first > 0 else math.inf
    text = f"{text}, loss {first:.4g} -> {last:.4g} (x{ratio:.2f})"
    return (TRAINED if ratio <= need[1] else NOT_TRAINED), text


def _verdict(statuses: list[str]) -> str:
    """All trained: holds; none: contradicted; one training is no verdict (one seed)."""
    if len(statuses) < 2 and NO_HISTORY not in statuses:
        return ONE_SEED
    if all(s == TRAINED for s in statuses):
        return "holds"
    if all(s == NOT_TRAINED for s in statuses):
        return "contradicted"
    if NO_HISTORY in statuses and TRAINED not in statuses:
        return "no data"
    return "inconclusive"


def _row(claim: dict, source: str, inputs: Inputs) -> dict:
    a, scores = claim["runs"]["a"], inputs.every_seed
    need = (
        float(claim.get("min_non_silent", MIN_NON_SILENT)),
        float(claim.get("max_loss_ratio", MAX_LOSS_RATIO)),
    )
    base = {"variance": "none (a criterion per training)", "margin": math.nan}
    if not ((scores["variant"] == a[0]) & (scores["step"] == a[1])).any():
        return {**base, "verdict": "no data", "detail": f"no scores for run {run_name(a)}"}
    rows = st.run_rows(scores, a)
    histories = inputs.histories.get(a[0], {})
    results = {
        int(r): _one_training(g, histories.get(int(r)), int(a[1]), need)
        for r, g in rows.groupby("replicate", sort=True)
    }
    statuses = [s for s, _ in results.values()]
    rule = f"trained = non-silent on >= {need[0]:.0%} of clips and final/first loss <= {need[1]:g}"
    each = "; ".join(f"replicate {r}: {text}: {s}" for r, (s, text) in results.items())
    return {
        **base,
        "effect": statuses.count(TRAINED) / len(statuses),
        "verdict": _verdict(statuses),
        "n_clips": int(rows.groupby("replicate").size().min()),
        "n_replicates": len(statuses),
        "detail": f"{rule}; {each}",
    }


KIND = Kind(
    name="trains",
    expects=("trains",),
    summary=(
        "trains: every training of A trained (non-silent estimates on >= min_non_silent of "
        "the clips and final / first training loss <= max_loss_ratio)"
    ),
    forms=("a",),
    row=_row,
    compare_text=lambda claim, source: run_name(claim["runs"]["a"]),
    unit="share of trainings",
    keys={"min_non_silent": ("trains",), "max_loss_ratio": ("trains",)},
    per_source=False,
    metric="status + loss",
)

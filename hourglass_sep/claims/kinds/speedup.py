"""Shared by the timing kinds (speed-table, real-time, scoring-speed): a speed-up's interval
from interleaved repeats, the verdict outside a zone of indifference, and "needs GPU".

* **Interval.**  Repeat i of A and repeat i of B ran in the same round (results/timing.py),
  so the speed-up of round i is t_B,i / t_A,i.  Timings are positive and skewed, their
  ratios multiplicative: the interval is a t interval of the mean log-ratio over the rounds,
  exponentiated (the estimate is the geometric mean of the ratios).  The p-value is the t
  test of "no difference" (mean log-ratio 0).
* **Zone of indifference.**  A speed-up within 1 +- ``indifference`` (5 %) is no
  difference, and one within ``indifference`` of a claimed factor f is that factor.  So
  "faster by f" holds when the whole interval lies above ``max(f (1 - indifference), 1 +
  indifference)`` (1.05 for plain "faster", 1.33 for "40 % faster"); an interval entirely
  below it contradicts the claim (slower, the same speed, or short of the factor).  Else
  inconclusive.
* **Too few repeats.**  Under ``MIN_REPEATS`` rounds (5) the verdict is inconclusive, with the
  reason; what the repeats would say is kept in the detail.
* **needs GPU.**  A claim whose reported figure was measured on a GPU (``needs: gpu``) is
  not checked by a run on a CPU: the verdict is "needs GPU" and the detail holds the CPU
  result.  The speed table's ``device`` says where each row ran.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.tables import NEEDS_GPU
from hourglass_sep.errors import UserError
from hourglass_sep.results.timing import INDIFFERENCE, MIN_REPEATS, parse_times

P_METHOD = "t (log ratio per round)"
P_METHOD_ONE = "t (log speed-up per repeat)"  # one row against real time


def log_interval(logs: np.ndarray, confidence: float = st.CONFIDENCE) -> dict:
    """Geometric-mean ratio, its t interval and the t test's p from per-round log ratios."""
    n = int(logs.size)
    if n == 0:
        return {"effect": math.nan, "lo": math.nan, "hi": math.nan, "p_value": math.nan}
    mean = float(logs.mean())
    if n < 2 or np.ptp(logs) == 0:  # no spread to estimate (identical ratios): no interval
        lo = hi = mean if n >= 2 else math.nan
        p = math.nan
    else:
        with warnings.catch_warnings():  # near-identical ratios: scipy's precision warning
            warnings.simplefilter("ignore", RuntimeWarning)
            res = sps.ttest_1samp(logs, 0.0)
            lo, hi = res.confidence_interval(confidence)
        p = float(res.pvalue)
    return {"effect": math.exp(mean), "lo": math.exp(lo), "hi": math.exp(hi), "p_value": p}


def threshold(factor: float, indifference: float) -> float:
    """The speed-up "faster by ``factor``" must clear: the factor less the zone (a speed-up
    within the zone of the factor is the factor), and at least the top of the zone around 1
    (within it, no difference)."""
    return max(float(factor) * (1.0 - float(indifference)), 1.0 + float(indifference))


def decide(lo: float, hi: float, factor: float, indifference: float) -> str:
    """holds: the interval lies above :func:`threshold`; contradicted: below it."""
    t = threshold(factor, indifference)
    return st.decide(math.log(lo / t), math.log(hi / t), "greater") if lo > 0 else "inconclusive"


def row_of(speed: pd.DataFrame | None, what: str) -> dict:
    """The speed table's row named ``what``; ``UserError`` (-> "no data") when absent."""
    if speed is None:
        raise UserError("no speed table given")
    hit = speed[speed["what"].astype(str) == what]
    if hit.empty:
        raise UserError(f"speed table lacks {what!r}")
    return hit.iloc[0].to_dict()


def indifference_of(*rows: dict) -> float:
    """The zone the speed table was timed for (its ``indifference`` column), else the default."""
    values = [float(r["indifference"]) for r in rows if pd.notna(r.get("indifference"))]
    return max(values) if values else INDIFFERENCE


def on_gpu(*rows: dict) -> bool:
    return all(str(r.get("device") or "").startswith("cuda") for r in rows)


def repeats_reason(n: int) -> str:
    """Why a timing with ``n`` repeats gives no verdict ("" when it may give one)."""
    if n >= MIN_REPEATS:
        return ""
    return (
        f"{n} interleaved repeat(s); a timing verdict needs >= {MIN_REPEATS} (config speed.repeats)"
    )


def paired_logs(ra: dict, rb: dict) -> tuple[np.ndarray, str]:
    """Per-round log speed-ups log(t_B / t_A) of two rows timed in the same rounds, and why
    there are none ("" when there are)."""
    group_a, group_b = ra.get("group"), rb.get("group")
    if pd.isna(group_a) or pd.isna(group_b) or group_a != group_b:
        where = f"groups {group_a!r} / {group_b!r}".replace("nan", "none")
        return np.array([]), f"not timed in the same interleaved rounds ({where})"
    ta, tb = parse_times(ra.get("times")), parse_times(rb.get("times"))
    if len(ta) != len(tb) or not all(t > 0 for t in ta + tb):
        return np.array([]), f"unpaired repeats ({len(ta)} vs {len(tb)} positive timings)"
    return np.log(np.divide(tb, ta)), ""


def judged(
    stats: dict, reason: str, factor: float, indifference: float, basis: str = "the repeats"
) -> dict:
    """The row's verdict from the interval, or inconclusive with ``reason`` (what ``basis``,
    the interval's source, would say then goes to the detail)."""
    verdict = decide(stats["lo"], stats["hi"], factor, indifference)
    if not reason:
        return {**stats, "verdict": verdict, "why": ""}
    would = f"; {basis} alone would say {verdict}" if math.isfinite(stats["lo"]) else ""
    return {**stats, "verdict": "inconclusive", "why": reason + would}


def gpu_guard(row: dict, claim: dict, *rows: dict) -> dict:
    """``needs: gpu`` and a row that did not run on a GPU: "needs GPU", the CPU result kept
    in the detail."""
    if claim.get("needs") != "gpu" or on_gpu(*rows) or row["verdict"] == "no data":
        return row
    devices = " / ".join(sorted({str(r.get("device")) for r in rows}))
    cpu = f"on {devices}: {row['verdict']}"
    return {**row, "verdict": NEEDS_GPU, "detail": "; ".join(x for x in (cpu, row["detail"]) if x)}


def check_factor(claim: dict, where: str) -> None:
    """A timing claim states a speed-up: a factor below 1 ("at most 2x slower") is not one."""
    if float(claim.get("factor", 1.0)) < 1:
        raise UserError(f"{where}.factor: {claim['factor']} < 1; a timing claim states a speed-up")


def describe(stats: dict, factor: float, indifference: float) -> str:
    """The common tail of a timing row's detail: the interval and what it had to clear."""
    need = threshold(factor, indifference)
    return (
        f"x{stats['effect']:.3g} [{stats['lo']:.3g}, {stats['hi']:.3g}]; needs > x{need:.3g} "
        f"(factor {factor:g}, zone of indifference +-{indifference:.0%})"
    )

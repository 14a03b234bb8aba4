"""The verdict table's columns, the verdict of a claim from its parts, the effects table (one
row per compared pair in dB, the forest plot's input) and the verdict counts of a log line or
the report's summary."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import pandas as pd

# statistical verdicts, then the verdicts of checks (identity of two evaluations)
NEEDS_GPU = "needs GPU"  # the report's figure is a GPU figure and no GPU ran
BUDGET = "inconclusive (budget)"  # a sequential design stopped it: its seeds exceed the budget
ONE_SEED = "inconclusive (one seed)"  # two trained models, no seed variance to judge them by
VERDICTS = (
    "holds",
    "contradicted",
    "inconclusive",
    BUDGET,
    ONE_SEED,
    "needs paper scale",
    NEEDS_GPU,
    "no data",
)
CHECK_VERDICTS = ("identical", "differs")
COLUMNS = [
    "id",
    "level",  # claim: the claim's verdict (intersection-union of its parts); part: one part
    "family",  # confirmatory (the report states it) | exploratory (our reading)
    "statement",
    "sentence_zh",  # the report's sentence, verbatim
    "sentence_en",
    "rows",  # the report's log rows the claim rests on, e.g. "15, 16"
    "source",
    "metric",
    "expect",
    "compare",
    "verdict",
    "effect",
    "lo",
    "hi",
    "unit",
    "margin",
    "p_value",
    "p_method",
    "n_clips",
    "n_dropped",
    "n_replicates",
    "variance",
    "detail",
    "evidence",
    "pairs",
]
EFFECT_COLUMNS = ["id", "source", "label", "effect", "lo", "hi", "margin", "expect", "verdict"]


def _num(x) -> float:
    return math.nan if x is None else float(x)


def claim_verdict(parts: Sequence[str]) -> str:
    """The verdict of a claim from its parts' (one per source, metric or link): an
    intersection-union test.  Any part contradicted -> contradicted; else a part without data
    -> no data; else one judged by one seed -> one seed; else one needing paper scale -> that;
    all hold -> holds; else inconclusive.  Checks: any part differs -> differs; all identical
    -> identical.  Requiring every part keeps the claim's 5 % level with no correction."""
    parts = list(parts)
    if parts and set(parts) <= {*CHECK_VERDICTS, "no data"}:
        return next((v for v in ("differs", "no data") if v in parts), "identical")
    for v in ("contradicted", "no data", ONE_SEED, "needs paper scale", NEEDS_GPU):
        if v in parts:
            return v
    return "holds" if parts and all(v == "holds" for v in parts) else "inconclusive"


def _labels(verdicts: pd.DataFrame) -> pd.Series:
    """ "id [source]", with the metric where a claim's parts cover several metrics."""
    many = verdicts.groupby("id")["metric"].transform("nunique") > 1
    metric = verdicts["metric"].astype(str).where(many, "")
    inner = (verdicts["source"].astype(str) + " " + metric).str.strip()
    return verdicts["id"].astype(str) + " [" + inner + "]"


def effects_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """One row per compared pair in dB (chains give one row per link), for the forest plot.
    Claim-level rows carry no pairs: their parts are drawn."""
    rows = []
    labels = _labels(verdicts) if len(verdicts) else pd.Series(dtype=str)
    for label, r in zip(labels, verdicts.itertuples(index=False)):
        if r.unit != "dB" or not isinstance(r.pairs, str) or not r.pairs:
            continue
        for p in json.loads(r.pairs):
            if p.get("verdict") == "no data":
                continue
            rows.append(
                {
                    "id": r.id,
                    "source": r.source,
                    "label": f"{label} {p['a']} - {p['b']}",
                    "effect": _num(p["effect"]),
                    "lo": _num(p["lo"]),
                    "hi": _num(p["hi"]),
                    "margin": p.get("margin", 0.0) or 0.0,
                    "expect": r.expect,
                    # a pair of a claim that needs paper scale shows that verdict too
                    "verdict": r.verdict if r.verdict == "needs paper scale" else p["verdict"],
                }
            )
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


def verdict_counts(verdicts: pd.DataFrame) -> dict[str, int]:
    """How many claims got each verdict (for a log line or the report's summary): the
    claim-level rows, so a claim on both sources counts once."""
    if "level" in verdicts.columns:
        verdicts = verdicts[verdicts["level"] == "claim"]
    counts = verdicts["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS + CHECK_VERDICTS if counts.get(v, 0)}

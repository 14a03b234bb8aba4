"""The verdict table's columns, the effects table (one row per compared pair in dB, the
forest plot's input) and the verdict counts of a log line or the report's summary."""

from __future__ import annotations

import json
import math

import pandas as pd

# statistical verdicts, then the verdicts of checks (identity of two evaluations)
ONE_SEED = "inconclusive (one seed)"  # two trained models, no seed variance to judge them by
VERDICTS = ("holds", "contradicted", "inconclusive", ONE_SEED, "needs paper scale", "no data")
CHECK_VERDICTS = ("identical", "differs")
COLUMNS = [
    "id",
    "statement",
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


def effects_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """One row per compared pair in dB (chains give one row per link), for the forest plot."""
    rows = []
    for r in verdicts.itertuples(index=False):
        if r.unit != "dB" or not isinstance(r.pairs, str) or not r.pairs:
            continue
        for p in json.loads(r.pairs):
            if p.get("verdict") == "no data":
                continue
            rows.append(
                {
                    "id": r.id,
                    "source": r.source,
                    "label": f"{r.id} [{r.source}] {p['a']} - {p['b']}",
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
    """How many rows got each verdict (for a log line or the report's summary)."""
    counts = verdicts["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS + CHECK_VERDICTS if counts.get(v, 0)}

"""The record every claim kind fills in, and what a kind computes its rows from.

A kind is data plus three functions (check, row, compare text); the validator, the verdict
table and the JSON schema's ``expect`` enum read them from the registry, so nothing outside a
kind's module branches on its ``expect``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from hourglass_sep.claims.runs import KnownRuns, resolve_run
from hourglass_sep.results.aggregate import SOURCES


@dataclass(frozen=True)
class Inputs:
    """Everything a kind may compute a row from, gathered once per claims table."""

    scores: pd.DataFrame  # prepared per-clip scores (stats.prepare_scores)
    speed: pd.DataFrame | None  # speed.tsv, when given
    opts: dict  # stats options: n_boot, n_perm, seed, unit, confidence
    models: Mapping[str, str]  # variant -> the variant whose trained model it evaluates
    # assumed sd (dB) of a run's global metric between seeds, for runs with too few replicates
    # to measure it (None: such comparisons are "inconclusive (one seed)"; docs/statistics.md)
    seed_sd_prior: float | None = None
    # base variant -> {replicate: its training's history.csv (a path or the table)}, for
    # kinds that judge the training itself (``trains``)
    histories: Mapping[str, Mapping[int, object]] = field(default_factory=dict)
    # the prepared scores of every seed, diverged ones included (``scores`` holds the seeds
    # that trained; kinds that judge the trainings themselves -- silent, trains -- read this)
    all_scores: pd.DataFrame | None = None
    # (variant, step) -> "k of n seeds diverged ...: judged on the m that trained"
    divergence: Mapping[tuple, str] = field(default_factory=dict)

    @property
    def every_seed(self) -> pd.DataFrame:
        return self.scores if self.all_scores is None else self.all_scores


def sources_of(claim: dict) -> list[str]:
    src = claim.get("source", "both")
    return list(SOURCES) if src == "both" else [src]


def resolve_runs(claim: dict, known: KnownRuns, speed_whats, where: str) -> dict:
    """The compared runs as (variant, step): ``{"chain": [...]}``, ``{"a": .., "each": [...]}``
    or ``{"a": .., "b": ..}``."""
    cmp = claim["compare"]
    if "chain" in cmp:
        return {
            "chain": [
                resolve_run(r, known, f"{where}.compare.chain[{i}]")
                for i, r in enumerate(cmp["chain"])
            ]
        }
    out = {k: resolve_run(cmp[k], known, f"{where}.compare.{k}") for k in ("a", "b") if k in cmp}
    if "each" in cmp:
        out["each"] = [
            resolve_run(r, known, f"{where}.compare.each[{i}]") for i, r in enumerate(cmp["each"])
        ]
    return out


def _always(claim: dict) -> bool:
    return True


def _no_check(claim: dict, where: str) -> None:
    return None


@dataclass(frozen=True)
class Kind:
    """One kind of claim.  ``forms``: the compare shapes it takes, of ``b`` ({a, b}),
    ``chain``, ``threshold`` ({a, threshold}) and ``a`` ({a}).  ``keys``: optional claim keys
    it takes -> the expects that take them (any other kind refuses the key).  ``row(claim,
    source, inputs)``: the row's measured fields (verdict, effect, lo, hi, detail, ...)."""

    name: str
    expects: tuple[str, ...]
    summary: str  # what the expects claim (the schema's description of ``expect``)
    forms: tuple[str, ...]
    row: Callable[[dict, str, Inputs], dict]
    compare_text: Callable[[dict, str], str]  # the verdict table's ``compare`` column
    unit: str  # the effect's unit: dB, share of clips, speed-up (x)
    keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    own_clips: bool = False  # takes ``compare.clips: own`` (each run over its own clips)
    per_source: bool = True  # one row per source, else one row with source "-"
    metric: str | None = None  # the table's ``metric`` column; None: the claim's metric
    # the metrics a claim's rows cover, one row per (source, metric) and a claim-level row
    # over them; None: the claim's one ``metric``
    metrics_of: Callable[[dict], Sequence[str]] | None = None
    on_runs: bool = True  # compare names runs (else other things, e.g. speed-table rows)
    applies: Callable[[dict], bool] = _always  # picks among kinds sharing an expect
    check: Callable[[dict, str], None] = _no_check  # what the schema cannot check
    resolve: Callable[[dict, KnownRuns, Iterable[str] | None, str], dict] = resolve_runs

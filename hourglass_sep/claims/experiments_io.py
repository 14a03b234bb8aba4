"""What the claims read from experiments.json's rows: the evaluated steps of each variant,
the model each evaluates, its size, and the replicate runs to fold back into their variant."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pandas as pd


def _replicate0(rows: Sequence[dict]) -> Iterable[tuple[str, dict]]:
    """(base variant, row) of the replicate-0 rows of ``experiments.json``: what a variant
    is (its steps, model, size) is the same in every replicate."""
    for r in rows:
        if not int(r.get("replicate") or 0):
            yield str(r.get("base_variant") or r["variant"]), r


def known_runs_from_experiments(rows: Sequence[dict]) -> dict[str, list[tuple[int, int]]]:
    """base variant -> [(step, paper_step)] from the rows of ``experiments.json`` (the
    steps of replicate 0; other replicates evaluate the same steps)."""
    out: dict[str, list] = {}
    for base, r in _replicate0(rows):
        step = int(r["step"])
        out.setdefault(base, []).append((step, int(r.get("paper_step") or step)))
    return out


def model_of_variants(rows: Sequence[dict]) -> dict[str, str]:
    """variant -> the variant whose trained model it evaluates (itself, or an evaluation
    variant's ``model``)."""
    return {base: str(r.get("model") or r["variant"]) for base, r in _replicate0(rows)}


def parameters_of_variants(rows: Sequence[dict]) -> dict[str, float]:
    """variant -> its network's parameter count, where experiments.json has one."""
    return {base: r["parameters"] for base, r in _replicate0(rows) if r.get("parameters")}


def replicate_map(rows: Sequence[dict]) -> dict[str, tuple[str, int]]:
    """replicate run name (the scores' ``variant``, e.g. ``ours.s1``) -> (base variant,
    replicate), from experiments.json; a run named as its variant is not listed."""
    out = {}
    for r in rows:
        base = str(r.get("base_variant") or r["variant"])
        if base != str(r["variant"]):
            out[str(r["variant"])] = (base, int(r.get("replicate") or 0))
    return out


def as_replicates(scores: pd.DataFrame, runs: Mapping[str, tuple[str, int]]) -> pd.DataFrame:
    """Scores whose ``variant`` names a replicate run (``ours.s1``) renamed to the base
    variant with a ``replicate`` column, the form :mod:`hourglass_sep.claims.stats` expects.  Names
    not in ``runs`` are kept (replicate 0, or the table's own ``replicate`` column)."""
    if not runs:
        return scores
    out = scores.copy()
    names = out["variant"].astype(str)
    mapped = names.map(lambda n: runs.get(n, (n, None)))
    out["variant"] = [m[0] for m in mapped]
    own = out["replicate"] if "replicate" in out.columns else pd.Series(0, index=out.index)
    out["replicate"] = [own.iloc[i] if m[1] is None else m[1] for i, m in enumerate(mapped)]
    return out


def mark_deterministic(scores: pd.DataFrame, rows: Sequence[dict]) -> pd.DataFrame:
    """Scores with a ``deterministic`` column: True for the runs experiments.json records as
    training-free (``trains: false``: a method with no seed, whose replicates would repeat the
    same numbers), so their comparisons carry no seed term (:func:`stats.seed_terms`)."""
    fixed = {str(r["variant"]) for r in rows if r.get("trains") is False}
    return scores.assign(deterministic=scores["variant"].astype(str).isin(fixed))

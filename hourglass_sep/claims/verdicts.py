"""A verdict for each claim and source: holds, contradicted or inconclusive (or needs paper
scale, no data).  Each claim's kind (:mod:`hourglass_sep.claims.kinds.registry`) computes its
measured fields; this module adds what every row shares: the claim's words, the scale
caveat, the parameter ratio and the evidence.  Rules: docs/statistics.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pandas as pd

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.kinds.record import Inputs, sources_of
from hourglass_sep.claims.kinds.registry import kind_of
from hourglass_sep.claims.runs import KnownRuns, known_runs_from_scores
from hourglass_sep.claims.spec import validate_claims
from hourglass_sep.claims.tables import COLUMNS


def _parameter_text(claim: dict, parameters: Mapping[str, float]) -> str:
    """ "parameters A / B = r (a / b)" for a claim on two runs of different sizes, so that a
    claim like "Ours matches Park's with ~20 % fewer parameters" shows the ratio it rests on."""
    runs = claim["runs"]
    if not all(isinstance(runs.get(k), tuple) for k in ("a", "b")):  # not speed-table rows
        return ""
    pa, pb = (parameters.get(runs[k][0]) for k in ("a", "b"))
    if not pa or not pb or pa == pb:
        return ""
    return f"parameters {runs['a'][0]} / {runs['b'][0]} = {pa / pb:.2f} ({pa:,.0f} / {pb:,.0f})"


def _claim_rows(claim: dict, inputs: Inputs, paper_scale: bool, parameters) -> list[dict]:
    """The claim's rows, one per source (or one, for a kind that is not per source)."""
    kind = kind_of(claim, f"claims[{claim['id']}]")
    rows = []
    for source in sources_of(claim) if kind.per_source else ["-"]:
        row = {"unit": kind.unit, **kind.row(claim, source, inputs)}
        if claim.get("needs") == "paper-scale" and not paper_scale and row["verdict"] != "no data":
            row["detail"] = "; ".join(
                x for x in (f"at this scale: {row['verdict']}", row.get("detail")) if x
            )
            row["verdict"] = "needs paper scale"
        sizes = _parameter_text(claim, parameters)
        if sizes:
            row["detail"] = "; ".join(x for x in (row.get("detail"), sizes) if x)
        evidence = claim.get("evidence")
        rows.append(
            {
                "id": claim["id"],
                "statement": claim["statement"],
                "source": source,
                "metric": kind.metric or claim["metric"],
                "expect": claim["expect"],
                "compare": kind.compare_text(claim, source),
                **row,
                "evidence": "" if evidence is None else json.dumps(evidence, ensure_ascii=False),
            }
        )
    return rows


def evaluate_claims(
    claims,
    scores: pd.DataFrame,
    preset: str = "paper",
    known_runs: KnownRuns | None = None,
    speed: pd.DataFrame | None = None,
    paper_scale: bool | None = None,
    n_boot: int = st.N_BOOT,
    n_perm: int = st.N_PERM,
    seed: int = 0,
    unit: str = "clip",
    confidence: float = st.CONFIDENCE,
    models: Mapping[str, str] | None = None,
    parameters: Mapping[str, float] | None = None,
    seed_sd_prior: float | None = None,
) -> pd.DataFrame:
    """One row per claim and source: verdict, effect, its interval, p, n clips, n replicates
    and which variance the interval covers (``tables.COLUMNS``).

    ``claims``: a claims document or list (validated here).  ``known_runs``: the configured
    variants (:func:`hourglass_sep.claims.runs.known_runs_from_config`); every variant of
    ``scores`` is known as well.  ``paper_scale`` defaults to ``preset == "paper"``.
    ``seed`` fixes the resampling.  ``models``: variant -> the variant whose trained model it
    evaluates (:func:`hourglass_sep.claims.experiments_io.model_of_variants`); runs of one
    model pair their replicates.  ``parameters``: variant -> parameter count; a claim on two
    runs of different sizes prints their ratio.  ``seed_sd_prior``: the seed sd (dB) assumed
    for comparisons whose runs have too few replicates to measure it (None: such a comparison
    is "inconclusive (one seed)").
    """
    scores = st.prepare_scores(scores)
    known = {**known_runs_from_scores(scores), **dict(known_runs or {})}
    whats = None if speed is None else speed["what"].astype(str).tolist()
    checked = validate_claims(claims, known, whats)
    paper = (preset == "paper") if paper_scale is None else bool(paper_scale)
    opts = dict(n_boot=n_boot, n_perm=n_perm, seed=seed, unit=unit, confidence=confidence)
    inputs = Inputs(scores, speed, opts, dict(models or {}), seed_sd_prior)
    info = dict(parameters or {})
    rows = [r for c in checked for r in _claim_rows(c, inputs, paper, info)]
    return pd.DataFrame(rows).reindex(columns=COLUMNS)

"""A verdict for each claim and each of its parts (sources, metrics): holds, contradicted or
inconclusive (or needs paper scale, no data).  Each claim's kind
(:mod:`hourglass_sep.claims.kinds.registry`) computes a part's measured fields; this module
adds the claim-level row of a claim of several parts (an intersection-union: it holds iff
every part holds) and what every row shares: the claim's words, family and report rows, the
scale caveat, the parameter ratio and the evidence.  Rules: docs/statistics.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from hourglass_sep.claims import divergence as dv
from hourglass_sep.claims import stats as st
from hourglass_sep.claims.evidence import evidence_sentence, published_rows
from hourglass_sep.claims.kinds.record import Inputs, Kind, sources_of
from hourglass_sep.claims.kinds.registry import kind_of
from hourglass_sep.claims.runs import KnownRuns, known_runs_from_scores
from hourglass_sep.claims.spec import validate_claims
from hourglass_sep.claims.tables import COLUMNS, claim_verdict

# kinds that judge each training itself: diverged seeds are their subject, not a caveat
SEEDWISE = ("silent", "trains")


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


def _slack(part: dict, expect: str) -> float:
    """How far a part is from failing its claim (smaller: nearer); inf when unmeasured."""
    lo, hi, effect, margin = (
        math.nan if part.get(k) is None else float(part[k])
        for k in ("lo", "hi", "effect", "margin")
    )
    margin = margin if math.isfinite(margin) else 0.0
    if expect == "identical":
        slack = -effect
    elif expect in ("less", "below", "not-greater"):
        slack = (margin if expect == "not-greater" else 0.0) - hi
    elif expect == "equivalent":
        slack = min(lo + margin, margin - hi)
    else:  # greater, above, not-less, the -all kinds, share and speed-up kinds: the low end
        slack = lo + (margin if expect == "not-less" else 0.0)
    return slack if math.isfinite(slack) else math.inf


def _deciding(parts: list[dict], verdict: str, expect: str) -> dict:
    """The part the claim's verdict rests on: the first with that verdict when one part
    decides it (contradicted, no data, ...), else the one nearest to failing."""
    same = [p for p in parts if p["verdict"] == verdict] or parts
    if verdict in ("holds", "identical", "inconclusive"):
        return min(same, key=lambda p: _slack(p, expect))
    return same[0]


def _joined(parts: list[dict], key: str) -> str:
    return "; ".join(dict.fromkeys(str(p.get(key, "")) for p in parts if p.get(key, "") != ""))


def _iut_p(parts: list[dict]) -> tuple[float, str]:
    """The intersection-union p-value: the largest of the parts' (nan unless all have one)."""
    ps = [math.nan if p.get("p_value") is None else float(p["p_value"]) for p in parts]
    if not ps or not all(math.isfinite(x) for x in ps):
        return math.nan, ""
    method = _joined(parts, "p_method")
    return max(ps), f"intersection-union: max of {len(ps)} parts' p ({method})"


def _part_name(part: dict) -> str:
    return " ".join(x for x in (part["source"], part["metric"]) if x and x != "-")


def claim_level_row(parts: list[dict], expect: str, source: str) -> dict:
    """The claim-level row over a claim's parts: its verdict (:func:`tables.claim_verdict`),
    the numbers of the part it rests on, the parts' largest p-value, the fewest clips and
    replicates among them; no pairs (its parts are in the forest plot)."""
    verdict = claim_verdict([p["verdict"] for p in parts])
    rep = _deciding(parts, verdict, expect)
    n_ok = sum(p["verdict"] in ("holds", "identical") for p in parts)
    p_value, p_method = _iut_p(parts)
    summary = (
        f"{n_ok} of {len(parts)} parts hold (the claim holds iff all do); "
        f"rests on {_part_name(rep)}"
    )
    counts = {
        k: pd.to_numeric(pd.Series([p.get(k) for p in parts]), errors="coerce")
        for k in ("n_clips", "n_dropped", "n_replicates")
    }
    return {
        "level": "claim",
        "source": source,
        "metric": ", ".join(dict.fromkeys(p["metric"] for p in parts)),
        "compare": _joined(parts, "compare"),
        "verdict": verdict,
        **{k: rep.get(k, math.nan) for k in ("effect", "lo", "hi", "unit", "margin")},
        "p_value": p_value,
        "p_method": p_method,
        "n_clips": counts["n_clips"].min(),
        "n_dropped": counts["n_dropped"].max(),
        "n_replicates": counts["n_replicates"].min(),
        "variance": _joined(parts, "variance"),
        "detail": "; ".join(x for x in (summary, rep.get("detail")) if x),
        "pairs": "",
    }


def _parts(claim: dict, kind: Kind) -> list[tuple[str, dict]]:
    """(source, the claim as that part sees it): one per source (or "-" for a kind that is
    not per source) and, for a kind on several metrics, per metric."""
    sources = sources_of(claim) if kind.per_source else ["-"]
    if kind.metrics_of is None:
        return [(source, claim) for source in sources]
    return [(s, {**claim, "metric": m}) for s in sources for m in kind.metrics_of(claim)]


def _part_row(claim: dict, source: str, kind: Kind, inputs: Inputs, parameters) -> dict:
    """One part's measured row (before the paper-scale caveat)."""
    row = {"unit": kind.unit, **kind.row(claim, source, inputs)}
    sizes = _parameter_text(claim, parameters)
    if sizes:
        row["detail"] = "; ".join(x for x in (row.get("detail"), sizes) if x)
    return {
        "source": source,
        "metric": kind.metric or claim["metric"],
        "compare": kind.compare_text(claim, source),
        **row,
    }


def _at_scale(row: dict, claim: dict, paper_scale: bool) -> dict:
    """A claim that needs paper scale reads "needs paper scale" below it; the detail keeps
    what this scale would say."""
    if claim.get("needs") != "paper-scale" or paper_scale or row["verdict"] == "no data":
        return row
    detail = "; ".join(x for x in (f"at this scale: {row['verdict']}", row.get("detail")) if x)
    return {**row, "verdict": "needs paper scale", "detail": detail}


def _claim_words(claim: dict, reported: Mapping[int, Mapping]) -> dict:
    """The columns every row of a claim shares: its words, family, rows and evidence (the
    report's numbers as a sentence, :func:`evidence.evidence_sentence`)."""
    return {
        "id": claim["id"],
        "family": claim.get("family", ""),
        "statement": claim["statement"],
        "sentence_zh": claim.get("sentence_zh", ""),
        "sentence_en": claim.get("sentence_en", ""),
        "rows": ", ".join(str(r) for r in claim.get("rows") or []),
        "expect": claim["expect"],
        "evidence": evidence_sentence(claim, reported),
    }


def _divergence_note(claim: dict, notes: Mapping[tuple, str]) -> str:
    """The diverged-seed notes of the runs a claim compares ("1 of 3 seeds diverged ...:
    judged on the 2 that trained"), so its verdict says how many seeds it rests on."""
    runs = claim.get("runs") or {}
    keys = [runs[k] for k in ("a", "b") if isinstance(runs.get(k), tuple)]
    keys += [*runs.get("chain", []), *runs.get("each", [])]
    return "; ".join(dict.fromkeys(notes[tuple(r)] for r in keys if tuple(r) in notes))


def _with_note(row: dict, note: str) -> dict:
    if not note:
        return row
    return {**row, "detail": "; ".join(x for x in (row.get("detail"), note) if x)}


def _claim_rows(claim: dict, inputs: Inputs, paper_scale: bool, parameters, reported) -> list[dict]:
    """The claim's rows: one (level "claim") for a claim of one part; else a claim-level row
    (the intersection-union of its parts) followed by one row per part (level "part")."""
    kind = kind_of(claim, f"claims[{claim['id']}]")
    parts = [_part_row(c, s, kind, inputs, parameters) for s, c in _parts(claim, kind)]
    if len(parts) == 1:
        rows = [{**parts[0], "level": "claim"}]
    else:
        head = claim_level_row(parts, claim["expect"], claim.get("source", "both"))
        rows = [head, *({**p, "level": "part"} for p in parts)]
    words = _claim_words(claim, reported)
    note = _divergence_note(claim, inputs.divergence) if kind.name not in SEEDWISE else ""
    return [{**words, **_with_note(_at_scale(r, claim, paper_scale), note)} for r in rows]


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
    unit: str = st.DEFAULT_UNIT,
    confidence: float = st.CONFIDENCE,
    models: Mapping[str, str] | None = None,
    parameters: Mapping[str, float] | None = None,
    seed_sd_prior: float | None = None,
    histories: Mapping[str, Mapping[int, object]] | None = None,
    reported: Mapping[int, Mapping] | None = None,
) -> pd.DataFrame:
    """One row per claim part (source, metric): verdict, effect, its interval, p, n clips, n
    replicates and which variance the interval covers (``tables.COLUMNS``).

    ``claims``: a claims document or list (validated here).  ``known_runs``: the configured
    variants (:func:`hourglass_sep.claims.runs.known_runs_from_config`); every variant of
    ``scores`` is known as well.  ``paper_scale`` defaults to ``preset == "paper"``.
    ``seed`` fixes the resampling.  ``models``: variant -> the variant whose trained model it
    evaluates (:func:`hourglass_sep.claims.experiments_io.model_of_variants`); runs of one
    model pair their replicates.  ``parameters``: variant -> parameter count; a claim on two
    runs of different sizes prints their ratio.  ``seed_sd_prior``: the seed sd (dB) assumed
    for comparisons whose runs have too few replicates to measure it (None: such a comparison
    is "inconclusive (one seed)").  ``histories``: base variant -> {replicate: history.csv
    path or table} (:func:`hourglass_sep.claims.kinds.trains.history_paths` of the
    experiments rows), for ``expect: trains``.  ``reported``: report row -> the numbers the
    report printed (:func:`hourglass_sep.claims.evidence.reported_from_experiments`; None:
    the published table), for the evidence sentence.

    A claim of several parts (sources, metrics) gets a claim-level row (``level`` "claim",
    the intersection-union of its parts) before its parts' rows (``level`` "part").
    """
    every_seed = st.prepare_scores(scores)
    # quality verdicts rest on the seeds that trained; silent / trains judge every seed
    scores, notes = dv.drop_diverged(every_seed)
    known = {**known_runs_from_scores(scores), **dict(known_runs or {})}
    whats = None if speed is None else speed["what"].astype(str).tolist()
    checked = validate_claims(claims, known, whats)
    paper = (preset == "paper") if paper_scale is None else bool(paper_scale)
    opts = dict(n_boot=n_boot, n_perm=n_perm, seed=seed, unit=unit, confidence=confidence)
    inputs = Inputs(
        scores,
        speed,
        opts,
        dict(models or {}),
        seed_sd_prior,
        dict(histories or {}),
        all_scores=every_seed,
        divergence=notes,
    )
    info = dict(parameters or {})
    rep = published_rows() if reported is None else reported
    rows = [r for c in checked for r in _claim_rows(c, inputs, paper, info, rep)]
    return pd.DataFrame(rows).reindex(columns=COLUMNS)

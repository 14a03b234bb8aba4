"""The report's claims as data, and a verdict for each: holds, contradicted or inconclusive.

A claims file (YAML; ``workflow/schemas/claims.schema.yaml``, example beside it) lists
claims such as "Ours equals Park's within 0.5 dB" or "4 > 3 > 2 > 1 stacks".  Each is
checked against the per-clip scores with :mod:`hourglass_sep.claims.stats`; the rules are in
:func:`hourglass_sep.claims.stats.decide` and docs/statistics.md.

Runs are named ``VARIANT`` (its last evaluated step) or ``VARIANT@STEP`` where STEP is a
paper-scale step of the variant's ``evaluate`` list (mapped to the preset's scale, so one
claims file serves every preset) or a step at the preset's scale.  Any name in the scores'
``variant`` column (an evaluation variant) is a run too, with the steps it was scored at.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import yaml
from scipy import stats as sps

from hourglass_sep.claims import stats as st
from hourglass_sep.errors import UserError
from hourglass_sep.results.aggregate import SOURCES
from hourglass_sep.scoring.clip_status import is_silent

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "claims.schema.yaml"
VERDICTS = ("holds", "contradicted", "inconclusive", "needs paper scale", "no data")
INTERVAL_EXPECTS = ("greater", "less", "equivalent", "not-greater", "not-less")
MARGIN_EXPECTS = ("equivalent", "not-greater", "not-less")
THRESHOLD_EXPECTS = ("above", "below")
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

# --------------------------------------------------------------------------- runs

KnownRuns = Mapping[str, Sequence[tuple[object, object]]]  # variant -> [(step, paper_step)]


def known_runs_from_config(config: dict) -> dict[str, list[tuple[int, int]]]:
    """Every configured variant (``run_variants`` or not; evaluation variants too) -> its
    (step, paper_step) pairs.  Replicates are not runs of their own: a claim names the
    variant and gets every replicate."""
    from hourglass_sep.plan.experiments import resolve_bases

    bases = resolve_bases({**config, "run_variants": None})
    return {name: [(e.step, e.paper_step) for e in v.evaluations] for name, v in bases.items()}


def known_runs_from_scores(scores: pd.DataFrame) -> dict[str, list[tuple[object, object]]]:
    """Every (variant, step) of a scores table; steps are at the scores' scale."""
    pairs = scores[["variant", "step"]].drop_duplicates()
    out: dict[str, list] = {}
    for variant, step in pairs.itertuples(index=False):
        out.setdefault(str(variant), []).append((step, step))
    return out


def _last(evals: Sequence[tuple[object, object]]):
    try:
        return max(evals, key=lambda e: float(e[0]))[0]
    except (TypeError, ValueError):
        return evals[-1][0]


def resolve_run(text: str, known: KnownRuns, where: str) -> tuple[str, object]:
    """``VARIANT`` or ``VARIANT@STEP`` -> (variant, step at this scale); errors name ``where``."""
    name, _, step = str(text).partition("@")
    if name not in known:
        raise UserError(f"{where}: run {name!r} is not a variant (known: {sorted(known)})")
    evals = list(known[name])
    if not evals:
        raise UserError(f"{where}: variant {name!r} has no evaluated step")
    if not step:
        return name, _last(evals)
    for scaled, paper in evals:  # a paper-scale step first, then a step of this scale
        if str(paper) == step:
            return name, scaled
    for scaled, _paper in evals:
        if str(scaled) == step:
            return name, scaled
    raise UserError(
        f"{where}: step {step} is not evaluated for {name!r} (evaluated: paper-scale steps "
        f"{[p for _, p in evals]}, at this scale {[s for s, _ in evals]})"
    )


def run_name(run: tuple[str, object]) -> str:
    return f"{run[0]}@{run[1]}"


# --------------------------------------------------------------------------- validation


def _claim_where(doc: dict, path: Sequence) -> str:
    parts = list(path)
    if len(parts) >= 2 and parts[0] == "claims" and isinstance(parts[1], int):
        items = doc.get("claims") or []
        item = items[parts[1]] if parts[1] < len(items) else {}
        cid = item.get("id") if isinstance(item, dict) else None
        head = f"claims[{cid if isinstance(cid, str) else parts[1]}]"
        parts = parts[2:]
    else:
        head = "claims file"
    tail = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
    return head + tail


def _schema_check(doc: dict, schema_path) -> None:
    schema = yaml.safe_load(Path(schema_path or SCHEMA).read_text())
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(map(str, e.path))
    )
    if errors:
        e = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise UserError(f"{_claim_where(doc, e.absolute_path)}: {e.message}{more}")


def _check_form(c: dict, where: str) -> None:
    """The compare form and the keys must suit the expectation."""
    cmp, expect = c["compare"], c["expect"]
    form = next((k for k in ("chain", "threshold", "b") if k in cmp), "a")
    if form == "chain" and set(cmp) != {"chain"}:
        raise UserError(f"{where}.compare: a chain takes no other key (got {sorted(cmp)})")
    if form != "chain" and "a" not in cmp:
        raise UserError(f"{where}.compare.a: missing (the run the claim is about)")
    if form == "threshold" and "b" in cmp:
        raise UserError(f"{where}.compare: give either b or threshold, not both")
    if cmp.get("clips", "same") != "same" and (form != "b" or expect == "faster"):
        raise UserError(f"{where}.compare.clips: 'own' compares two runs' scores ({{a, b}})")
    allowed = {
        "greater": ("b", "chain"),
        "less": ("b", "chain"),
        "equivalent": ("b",),
        "not-greater": ("b",),
        "not-less": ("b",),
        "above": ("threshold",),
        "below": ("threshold",),
        "silent": ("a",),
        "faster": ("b",),
    }[expect]
    if form not in allowed:
        need = " or ".join(
            {"b": "{a, b}", "chain": "{chain}", "threshold": "{a, threshold}"}.get(f, "{a}")
            for f in allowed
        )
        raise UserError(f"{where}.compare: expect {expect} needs {need}")
    if expect == "equivalent" and not c.get("margin"):
        raise UserError(f"{where}.margin: expect equivalent needs a margin > 0 (dB)")
    if "margin" in c and expect not in MARGIN_EXPECTS:
        raise UserError(f"{where}.margin: used only with expect {' / '.join(MARGIN_EXPECTS)}")
    if "factor" in c and expect != "faster":
        raise UserError(f"{where}.factor: used only with expect faster")
    if "timing" in c and expect != "faster":
        raise UserError(f"{where}.timing: used only with expect faster")
    thr = cmp.get("threshold")
    if isinstance(thr, dict):
        lacking = [s for s in sources_of(c) if s not in thr]
        if lacking:
            raise UserError(f"{where}.compare.threshold: no value for source(s) {lacking}")


def sources_of(claim: dict) -> list[str]:
    src = claim.get("source", "both")
    return list(SOURCES) if src == "both" else [src]


def _resolve_claim_runs(c: dict, known: KnownRuns, speed_whats, where: str) -> dict:
    cmp = c["compare"]
    if c["expect"] == "faster" and c.get("timing") != "scoring":
        for key in ("a", "b"):
            if speed_whats is not None and cmp[key] not in speed_whats:
                raise UserError(
                    f"{where}.compare.{key}: {cmp[key]!r} is not a row of the speed table "
                    f"(known: {sorted(speed_whats)})"
                )
        return {"a": cmp["a"], "b": cmp["b"]}
    if "chain" in cmp:
        return {
            "chain": [
                resolve_run(r, known, f"{where}.compare.chain[{i}]")
                for i, r in enumerate(cmp["chain"])
            ]
        }
    return {k: resolve_run(cmp[k], known, f"{where}.compare.{k}") for k in ("a", "b") if k in cmp}


def validate_claims(
    doc, known_runs: KnownRuns, speed_whats: Iterable[str] | None = None, schema_path=None
) -> list[dict]:
    """Check a claims document (``{"claims": [...]}`` or the list) against the schema and the
    known runs; return copies of the claims with defaults filled and runs resolved under
    ``runs`` (the input is left unchanged).

    Raises :class:`UserError` naming the claim id and key, e.g.
    ``claims[ours-vs-parks].compare.b: run 'parkz' is not a variant (known: [...])``.
    """
    doc = copy.deepcopy({"claims": doc} if isinstance(doc, list) else doc)
    if not isinstance(doc, dict):
        raise UserError("claims file: expected a mapping with a 'claims' list")
    for c in doc.get("claims") or []:
        if isinstance(c, dict):
            c.pop("runs", None)  # claims validated before: resolve their runs again
    _schema_check(doc, schema_path)
    whats = None if speed_whats is None else set(speed_whats)
    seen, out = set(), []
    for c in doc["claims"]:
        where = f"claims[{c['id']}]"
        if c["id"] in seen:
            raise UserError(f"{where}.id: the id {c['id']!r} is used twice; ids must be unique")
        seen.add(c["id"])
        c.setdefault("metric", "gnsdr")
        c.setdefault("source", "both")
        _check_form(c, where)
        c["runs"] = _resolve_claim_runs(c, known_runs, whats, where)
        out.append(c)
    return out


def load_claims(path, known_runs: KnownRuns, speed_whats=None, schema_path=None) -> list[dict]:
    """Read and validate a claims YAML file; errors start with the file name."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: claims file not found")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({exc})") from None
    try:
        return validate_claims(doc, known_runs, speed_whats, schema_path)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


# --------------------------------------------------------------------------- verdicts


def _effect_fields(eff: st.Effect) -> dict:
    d = eff.as_dict()
    d["effect"] = d.pop("estimate")
    d["replicates"] = list(d["replicates"])
    return d


def _jsonable(record: dict) -> dict:
    """Plain JSON: numpy numbers as Python ones, NaN / inf as null."""

    def clean(x):
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, (float, np.floating)):
            return float(x) if math.isfinite(x) else None
        return x.item() if isinstance(x, np.integer) else x

    return {k: clean(v) for k, v in record.items()}


def _has_rows(scores: pd.DataFrame, run: tuple[str, object]) -> bool:
    return bool(((scores["variant"] == run[0]) & (scores["step"] == run[1])).any())


def _measure(fn, names: dict, expect: str, margin: float) -> dict:
    """Run one stats comparison; a run without (usable) scores gives a "no data" record."""
    try:
        eff = fn()
    except UserError as exc:
        return {**names, "verdict": "no data", "why": str(exc)}
    return {**names, **_effect_fields(eff), "verdict": st.decide(eff.lo, eff.hi, expect, margin)}


def _interval_pairs(scores, claim: dict, source: str, opts: dict, models) -> list[dict]:
    runs, expect = claim["runs"], claim["expect"]
    pairs = (
        list(zip(runs["chain"][:-1], runs["chain"][1:]))
        if "chain" in runs
        else [(runs["a"], runs["b"])]
    )
    margin = float(claim.get("margin", 0.0))
    own = claim["compare"].get("clips") == "own"
    compare = st.compare_own_clips if own else st.compare_runs
    out = []
    for a, b in pairs:
        names = {"a": run_name(a), "b": run_name(b), "margin": margin}
        # one trained model under two evaluations: replicate r of A is replicate r of B
        same = a[1] == b[1] and models.get(a[0], a[0]) == models.get(b[0], b[0])
        out.append(
            _measure(
                lambda a=a, b=b, same=same: compare(
                    scores, a, b, claim["metric"], source, paired_replicates=same, **opts
                ),
                names,
                expect,
                margin,
            )
        )
    return out


def _threshold_pairs(scores, claim: dict, source: str, opts: dict) -> list[dict]:
    thr = claim["compare"]["threshold"]
    t = float(thr[source] if isinstance(thr, dict) else thr)
    a = claim["runs"]["a"]
    kw = {k: v for k, v in opts.items() if k != "n_perm"}
    names = {"a": run_name(a), "b": f"{t:g}", "margin": 0.0, "threshold": t}
    fn = lambda: st.compare_threshold(scores, a, t, claim["metric"], source, **kw)  # noqa: E731
    rec = _measure(fn, names, claim["expect"], 0.0)
    if "effect" in rec:
        rec["value"] = rec["effect"] + t  # the run's global metric itself
    return [rec]


def combine_verdicts(verdicts: Sequence[str]) -> str:
    """Any pair contradicted -> contradicted; else a pair without data -> no data; all pairs
    hold -> holds; else inconclusive."""
    if "contradicted" in verdicts:
        return "contradicted"
    if "no data" in verdicts:
        return "no data"
    return "holds" if all(v == "holds" for v in verdicts) else "inconclusive"


def _weakest(pairs: list[dict], expect: str, verdict: str) -> dict:
    """The pair nearest to failing the claim (lowest bound in the claimed direction), or
    the first pair without data when that decided the verdict."""
    if verdict == "no data":
        return next(p for p in pairs if p["verdict"] == "no data")
    pairs = [p for p in pairs if p["verdict"] != "no data"]
    if expect in ("less", "below", "not-less"):
        return max(pairs, key=lambda p: p["hi"])
    return min(pairs, key=lambda p: p["lo"])


def _interval_row(scores, claim, source, opts, models) -> dict:
    if "threshold" in claim["compare"]:
        pairs = _threshold_pairs(scores, claim, source, opts)
    else:
        pairs = _interval_pairs(scores, claim, source, opts, models)
    verdict = combine_verdicts([p["verdict"] for p in pairs])
    rep = _weakest(pairs, claim["expect"], verdict)
    detail = rep.get("why", "")
    if len(pairs) > 1 and not detail:
        detail = f"weakest of {len(pairs)} pairs: {rep['a']} - {rep['b']}"
    if "value" in rep:
        detail = f"{rep['a']} {claim['metric']} = {rep['value']:.3f} dB"
    if rep.get("n_dropped"):
        dropped = f"{rep['n_dropped']} clip(s) not ok in every run dropped from the pairing"
        detail = f"{detail}; {dropped}" if detail else dropped
    reps = rep.get("replicates") or []
    row = {k: rep.get(k, math.nan) for k in ("effect", "lo", "hi", "p_value", "n_clips")}
    return {
        **row,
        "verdict": verdict,
        "unit": "dB",
        "margin": float(claim.get("margin", 0.0)),
        "p_method": rep.get("p_method", ""),
        "n_dropped": rep.get("n_dropped", math.nan),
        "n_replicates": min(reps) if reps else math.nan,
        "variance": rep.get("variance", ""),
        "detail": detail,
        "pairs": json.dumps([_jsonable(p) for p in pairs]),
    }


def _silent_row(scores, claim, source, opts) -> dict:
    """Share of the run's clips (all replicates) whose estimate is silent; Clopper-Pearson
    interval.  holds: every clip silent; contradicted: fewer than half; else inconclusive."""
    a = claim["runs"]["a"]
    base = {"unit": "share of clips", "variance": "clips", "margin": math.nan}
    if not _has_rows(scores, a):
        return {**base, "verdict": "no data", "detail": f"no scores for run {run_name(a)}"}
    rows = st.run_rows(scores, a)
    k, n = int(is_silent(rows["status"], source).sum()), len(rows)
    ci = sps.binomtest(k, n).proportion_ci(opts.get("confidence", st.CONFIDENCE))
    verdict = "holds" if k == n else "contradicted" if 2 * k < n else "inconclusive"
    return {
        **base,
        "effect": k / n,
        "lo": float(ci.low),
        "hi": float(ci.high),
        "verdict": verdict,
        "n_clips": n,
        "n_replicates": int(rows["replicate"].nunique()),
        "detail": f"{k} of {n} clip scores have a silent {source} estimate",
    }


def _faster_row(speed, claim) -> dict:
    """Speed-up seconds(B) / seconds(A) from the speed table (median of a name's rows).
    holds when it reaches ``factor`` (1 by default), contradicted otherwise; one timing per
    name, so there is no interval."""
    a, b = claim["runs"]["a"], claim["runs"]["b"]
    base = {"unit": "speed-up (x)", "variance": "single timing", "margin": math.nan}
    if speed is None:
        return {**base, "verdict": "no data", "detail": "no speed table given"}
    secs = pd.to_numeric(speed["seconds"], errors="coerce").groupby(speed["what"]).median()
    if a not in secs.index or b not in secs.index:
        return {**base, "verdict": "no data", "detail": f"speed table lacks {a!r} or {b!r}"}
    ratio = float(secs[b] / secs[a])
    factor = float(claim.get("factor", 1.0))
    verdict = "holds" if ratio >= factor else "contradicted"
    detail = f"{secs[a]:.3g} s vs {secs[b]:.3g} s; needs x{factor:g}"
    return {**base, "effect": ratio, "verdict": verdict, "detail": detail}


def _scoring_speed_row(scores, claim, opts) -> dict:
    """Speed-up of A's scoring over B's from the per-clip scoring seconds of the scores, with
    a bootstrap interval over the clips: holds when it lies above ``factor`` (1 by default),
    contradicted when below, inconclusive when it straddles."""
    a, b = claim["runs"]["a"], claim["runs"]["b"]
    factor = float(claim.get("factor", 1.0))
    base = {"unit": "speed-up (x)", "variance": "clips", "margin": math.nan}
    kw = {k: v for k, v in opts.items() if k in ("unit", "n_boot", "seed", "confidence")}
    try:
        r = st.speed_up(scores, a, b, **kw)
    except UserError as exc:
        return {**base, "verdict": "no data", "detail": str(exc)}
    verdict = st.decide(r["lo"] - factor, r["hi"] - factor, "greater")
    ta, tb = r.pop("seconds")
    detail = f"scoring {ta:.3g} s vs {tb:.3g} s over {r['n_clips']} clips; needs x{factor:g}"
    return {**base, **r, "verdict": verdict, "detail": detail}


def _compare_text(claim: dict, source: str) -> str:
    runs, expect = claim["runs"], claim["expect"]
    if "chain" in runs:
        return (" < " if expect == "less" else " > ").join(run_name(r) for r in runs["chain"])
    if expect == "faster" and claim.get("timing") == "scoring":
        return f"scoring {run_name(runs['a'])} vs {run_name(runs['b'])}"
    if expect == "faster":
        return f"{runs['a']} vs {runs['b']}"
    if expect == "silent":
        return run_name(runs["a"])
    if "threshold" in claim["compare"]:
        thr = claim["compare"]["threshold"]
        return f"{run_name(runs['a'])} vs {thr[source] if isinstance(thr, dict) else thr:g}"
    own = " (each on its own clips)" if claim["compare"].get("clips") == "own" else ""
    return f"{run_name(runs['a'])} - {run_name(runs['b'])}{own}"


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


def _claim_rows(scores, claim, speed, paper_scale, opts, models, parameters) -> list[dict]:
    """The claim's rows, one per source.  ``opts``: the stats options (resampling);
    ``models`` / ``parameters``: per variant (:func:`evaluate_claims`)."""
    sources = ["-"] if claim["expect"] == "faster" else sources_of(claim)
    rows = []
    for source in sources:
        if claim["expect"] == "faster" and claim.get("timing") == "scoring":
            row = _scoring_speed_row(scores, claim, opts)
        elif claim["expect"] == "faster":
            row = _faster_row(speed, claim)
        elif claim["expect"] == "silent":
            row = _silent_row(scores, claim, source, opts)
        else:
            row = _interval_row(scores, claim, source, opts, models)
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
                "metric": {"faster": "seconds", "silent": "status"}.get(
                    claim["expect"], claim["metric"]
                ),
                "expect": claim["expect"],
                "compare": _compare_text(claim, source),
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
) -> pd.DataFrame:
    """One row per claim and source: verdict, effect (dB), its interval, p, n clips, n
    replicates and which variance the interval covers (``COLUMNS``).

    ``claims``: a claims document or list (validated here).  ``known_runs``: the configured
    variants (:func:`known_runs_from_config`); every variant of ``scores`` is known as well.
    ``paper_scale`` defaults to ``preset == "paper"``.  ``seed`` fixes the resampling.
    ``models``: variant -> the variant whose trained model it evaluates
    (:func:`model_of_variants`); runs of one model pair their replicates.  ``parameters``:
    variant -> parameter count; a claim on two runs of different sizes prints their ratio.
    """
    scores = st.prepare_scores(scores)
    known = {**known_runs_from_scores(scores), **dict(known_runs or {})}
    whats = None if speed is None else speed["what"].astype(str).tolist()
    checked = validate_claims(claims, known, whats)
    paper = (preset == "paper") if paper_scale is None else bool(paper_scale)
    opts = dict(n_boot=n_boot, n_perm=n_perm, seed=seed, unit=unit, confidence=confidence)
    info = (dict(models or {}), dict(parameters or {}))
    rows = [r for c in checked for r in _claim_rows(scores, c, speed, paper, opts, *info)]
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


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
    return {v: int(counts.get(v, 0)) for v in VERDICTS if counts.get(v, 0)}


# --------------------------------------------------------------------------- command line


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


def claims_for_runs(claims: Sequence[dict], runs: Iterable[str]) -> tuple[list, list]:
    """(claims whose every compared run is among ``runs``, the ids of the others).

    A preset that runs a subset of the variants (``run_variants``) cannot judge a claim on a
    variant it did not train; such claims are left out of its claims file and named in the
    log, instead of stopping the verdicts of the others.
    """
    runs = set(runs)
    kept, dropped = [], []
    for c in claims:
        cmp = c.get("compare") or {}
        on_runs = c.get("expect") != "faster" or c.get("timing") == "scoring"
        names = [*cmp.get("chain", []), *[cmp[k] for k in ("a", "b") if k in cmp]]
        names = names if on_runs else []  # speed-table rows are not runs
        ok = all(str(n).partition("@")[0] in runs for n in names)
        (kept if ok else dropped).append(c if ok else c.get("id"))
    return kept, dropped


def write_claims_file(claims: Sequence[dict], path, log=None, dropped=()) -> None:
    """The config's ``claims:`` list as the claims YAML the ``claims`` verb reads (rule
    claims_file); a changed list rewrites it and so reruns the verdicts.  ``dropped``: ids
    of claims left out because this preset does not run their variants (logged)."""
    Path(path).write_text(yaml.safe_dump({"claims": list(claims)}, sort_keys=False))
    if log:
        text = f"{len(claims)} claims written to {path}\n"
        if dropped:
            text += f"left out (variants not run by this preset): {', '.join(dropped)}\n"
        Path(log).write_text(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--claims", required=True, help="claims YAML (workflow/schemas/claims.schema.yaml)"
    )
    p.add_argument("--scores", required=True, nargs="+", help="per-clip score TSVs")
    p.add_argument("--experiments", help="experiments.json: the configured runs and the scale")
    p.add_argument("--speed", help="speed.tsv, for claims with expect: faster")
    p.add_argument(
        "--preset", help="preset name (default: from experiments.json; paper = full scale)"
    )
    p.add_argument("--resamples", type=int, default=st.N_BOOT, help="bootstrap resamples")
    p.add_argument("--permutations", type=int, default=st.N_PERM, help="sign flips of the test")
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    p.add_argument("--unit", choices=st.UNITS, default="clip", help="resampling unit")
    p.add_argument("-o", "--output", required=True, help="verdicts TSV to write")
    p.add_argument("--effects", help="effects TSV to write (one row per compared pair)")
    p.add_argument("--figure", help="forest plot PNG to write")
    p.add_argument(
        "--intervals",
        help="TSV to write: every run's GNSDR/GSIR/GSAR with its 95 %% interval over clips "
        "(per replicate) and across replicates",
    )


def run(args: argparse.Namespace) -> int:
    from hourglass_sep.data.catalogue import write_table
    from hourglass_sep.results.aggregate import read_scores
    from hourglass_sep.results.run_inputs import load_experiments, load_speed, scale_info

    meta, rows, known = {}, [], {}
    if args.experiments:
        meta, rows = load_experiments(args.experiments)
        known = known_runs_from_experiments(rows)
    runs = replicate_map(rows)
    preset = args.preset or meta.get("preset") or "unknown"  # unknown: not paper scale
    paper = None if args.preset or not rows else not scale_info(meta, rows)["reduced"]
    speed = load_speed(args.speed)
    # one file at a time: replicates of a run share (variant, step, clip) across files
    scores = pd.concat([read_scores([p]) for p in args.scores], ignore_index=True)
    scores = as_replicates(scores, runs)
    claims = load_claims(
        args.claims,
        {**known_runs_from_scores(scores), **known},
        None if speed is None else speed["what"].astype(str),
    )
    table = evaluate_claims(
        claims,
        scores,
        preset=preset,
        known_runs=known,
        speed=speed,
        paper_scale=paper,
        n_boot=args.resamples,
        n_perm=args.permutations,
        seed=args.seed,
        unit=args.unit,
        models=model_of_variants(rows),
        parameters=parameters_of_variants(rows),
    )
    write_table(table, args.output)
    if args.intervals:
        write_table(st.interval_table(scores, args.resamples, args.seed), args.intervals)
    effects = effects_table(table)
    if args.effects:
        write_table(effects, args.effects)
    if args.figure:
        from hourglass_sep.claims.forest import forest_plot

        forest_plot(effects, args.figure)
    counts = ", ".join(f"{n} {v}" for v, n in verdict_counts(table).items())
    print(f"{args.output}: {len(table)} verdicts ({counts})")
    return 0

"""One look of a sequential design: the confirmatory claims judged on the replicates each look
had, and what to train before the next look (:mod:`hourglass_sep.claims.sequential`).

Every look re-reads the scores of all looks so far and observes look ``j`` on replicates
``0 .. design.replicates[j] - 1`` only, so a rerun plans the same and a claim's verdict does
not move with seeds added for another claim that shares its run.  Each compared pair of a
claim part (a source, a metric, a link of a chain) is one :class:`sequential.ClaimState`,
named ``id|source|metric|k``; a part's sequential verdict combines its pairs, a claim's its
parts (the same intersection-union as the fixed-design table).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict

import pandas as pd

from hourglass_sep.claims import sequential as sq
from hourglass_sep.claims.kinds.pairs import combine_verdicts
from hourglass_sep.claims.multiplicity import interval_rule
from hourglass_sep.claims.power import clip_part
from hourglass_sep.claims.stats import CLIPS_SEEDS
from hourglass_sep.claims.tables import claim_verdict
from hourglass_sep.errors import UserError

SEP = "|"
# the fixed-design verdicts a design may replace (not one seed, no data, another scale)
STATISTICAL = ("holds", "contradicted", "inconclusive")


def _observation(pair: dict) -> sq.Observation | None:
    """The pair's effect as the design sees it, None when it has no measured seed term (one
    seed, no data: more seeds are what the verdict lacks, but this look cannot judge it)."""
    need = ("effect", "se", "clips_lo", "clips_hi")
    if any(pair.get(k) is None for k in need) or not pair.get("replicates"):
        return None
    if pair.get("verdict") not in STATISTICAL or pair.get("variance") != CLIPS_SEEDS:
        return None  # a seed prior widens lo/hi, not se: the design needs measured seeds
    clip_se, _ = clip_part(pair)  # the engine's clip se (old records: off the interval)
    df = math.inf if pair.get("df") is None else float(pair["df"])
    reps = min(int(r) for r in pair["replicates"])
    return sq.Observation(float(pair["effect"]), float(pair["se"]), df, clip_se, reps)


def _decidable(table: pd.DataFrame) -> pd.DataFrame:
    """Confirmatory rows with pairs: the parts of a multi-part claim, single-part claims."""
    family = table["family"] if "family" in table.columns else pd.Series("", index=table.index)
    conf = table[family.fillna("").isin(["confirmatory", ""])]  # old tables: confirmatory
    parts = conf[conf["pairs"].fillna("").astype(str).str.startswith("[")]
    return parts


def pair_observations(table: pd.DataFrame) -> dict[str, tuple]:
    """state name -> (runs, expect, margin, Observation or None) for one look's table."""
    out = {}
    for r in _decidable(table).itertuples(index=False):
        rule = interval_rule(r.expect)  # greater-all: each part is a "greater"
        if rule is None:
            continue
        for k, pair in enumerate(json.loads(r.pairs)):
            name = SEP.join((str(r.id), str(r.source), str(r.metric), str(k)))
            margin = float(pair.get("margin") or 0.0)
            runs = (pair.get("a"), pair.get("b"))
            out[name] = (runs, rule, margin, _observation(pair))
    return out


def claim_states(tables: list[pd.DataFrame]) -> list[sq.ClaimState]:
    """One state per pair observed at every look so far (``tables[j]``: look j's verdicts)."""
    per_look = [pair_observations(t) for t in tables]
    states = []
    for name, (runs, expect, margin, _) in per_look[-1].items():
        obs = [look.get(name, (None,) * 4)[3] for look in per_look]
        if any(o is None for o in obs):
            continue  # no data or one seed at some look: nothing a design can extend
        runs = tuple(r for r in runs if r)
        states.append(sq.ClaimState(name, runs, expect, margin, tuple(obs)))
    return states


def at_replicates(scores: pd.DataFrame, n: int) -> pd.DataFrame:
    """The scores of replicates ``0 .. n - 1`` (what look j observes, n = its replicates)."""
    return scores[scores["replicate"].astype(int) < int(n)]


def run_look(
    evaluate: Callable[[pd.DataFrame], pd.DataFrame],
    scores: pd.DataFrame,
    design: sq.SequentialDesign,
    look: int,
    model_of: Mapping[str, str],
) -> dict:
    """The plan after ``look`` as JSON-able data: replicates and steps per trained variant,
    each state's status.  ``evaluate(scores) -> verdict table`` (the claims engine with the
    run's options)."""
    tables = [evaluate(at_replicates(scores, design.replicates[j])) for j in range(look + 1)]
    states = claim_states(tables)
    plan = sq.plan_look(states, design, look, model_of)
    last = look + 1 >= design.looks
    return {
        "look": look,
        "looks": design.looks,
        "replicates_now": design.replicates[look],
        "replicates": {} if last else plan.replicates,
        "steps": {} if last else plan.steps,
        "status": {k: asdict(v) for k, v in plan.status.items()},
        "design": design.table(),
    }


def load_plan(path) -> dict:
    """A look's JSON (:func:`run_look`), with an error that names the file."""
    hint = "it is written by `hourglass-sep claims-look` (the workflow's rule sequential_look)"
    try:
        plan = json.loads(open(path, encoding="utf-8").read())
    except FileNotFoundError:
        raise UserError(f"{path}: sequential look plan not found; {hint}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read the sequential look plan ({exc}); {hint}") from None
    if not isinstance(plan, dict) or not isinstance(plan.get("status"), dict):
        raise UserError(f"{path}: not a sequential look plan (no 'status' object); {hint}")
    return plan


def _part_verdicts(status: Mapping[str, dict]) -> dict[tuple, str]:
    """(id, source, metric) -> the sequential verdict of that part over its pairs."""
    pairs: dict[tuple, list[str]] = {}
    for name, st in status.items():
        cid, source, metric, _k = name.split(SEP)
        verdict = sq.FINAL if st["verdict"] == sq.PENDING else st["verdict"]
        pairs.setdefault((cid, source, metric), []).append(verdict)
    return {k: combine_verdicts(v) for k, v in pairs.items()}


def _status_text(status: Mapping[str, dict], cid: str) -> str:
    mine = [s for n, s in status.items() if n.split(SEP)[0] == cid]
    if not mine:
        return ""
    st = max(mine, key=lambda s: s["look"])
    verdict = sq.FINAL if st["verdict"] == sq.PENDING else st["verdict"]
    return (
        f"sequential: {verdict} at look {st['look'] + 1} ({st['replicates']} seeds per run, "
        f"{100 * st['level']:.2f} % interval)"
    )


def apply_sequential(table: pd.DataFrame, plan: Mapping) -> pd.DataFrame:
    """The verdict table with the design's verdicts for the confirmatory claims it judged:
    ``fixed_verdict`` keeps the all-replicates 95 % verdict, ``verdict`` becomes the
    sequential one and the detail says at which look and level."""
    status = plan.get("status") or {}
    parts = _part_verdicts(status)
    out = table.copy()
    out["fixed_verdict"] = out["verdict"]
    for i, r in out.iterrows():
        key = (str(r["id"]), str(r["source"]), str(r["metric"]))
        if key in parts and r["verdict"] in STATISTICAL:
            out.at[i, "verdict"] = parts[key]
    for cid, rows in out.groupby("id").groups.items():
        own = [k for k in parts if k[0] == cid]
        if not own:
            continue
        heads = [i for i in rows if out.at[i, "level"] == "claim"]
        if heads and len(rows) > 1:  # the claim row: its parts' verdicts, as now replaced
            out.at[heads[0], "verdict"] = claim_verdict(
                [out.at[i, "verdict"] for i in rows if i != heads[0]]
            )
        text = _status_text(status, str(cid))
        for i in rows:
            detail = str(out.at[i, "detail"]) if isinstance(out.at[i, "detail"], str) else ""
            out.at[i, "detail"] = "; ".join(x for x in (detail, text) if x)
    return out

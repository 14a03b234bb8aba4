"""Shared by the kinds whose verdict rests on intervals in dB (difference, margin, threshold):
each compared pair gets an effect, an interval and a verdict; the row shows the pair nearest
to failing the claim and lists every pair as JSON (the forest plot's input)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.kinds.record import Inputs
from hourglass_sep.claims.runs import run_name
from hourglass_sep.claims.tables import ONE_SEED
from hourglass_sep.errors import UserError


def _effect_fields(eff: st.Effect) -> dict:
    d = eff.as_dict()
    d["effect"] = d.pop("estimate")
    d["replicates"] = list(d["replicates"])
    return d


def jsonable(record: dict) -> dict:
    """Plain JSON: numpy numbers as Python ones, NaN / inf as null."""

    def clean(x):
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, (float, np.floating)):
            return float(x) if math.isfinite(x) else None
        return x.item() if isinstance(x, np.integer) else x

    return {k: clean(v) for k, v in record.items()}


def measure(
    fn, names: dict, expect: str, margin: float, inputs: Inputs, same: bool = False
) -> dict:
    """Run one stats comparison; a run without (usable) scores gives a "no data" record.
    ``inputs``/``same``: see :func:`seed_guard`."""
    try:
        eff = fn()
    except UserError as exc:
        return {**names, "verdict": "no data", "why": str(exc)}
    rec = {**names, **_effect_fields(eff), "verdict": st.decide(eff.lo, eff.hi, expect, margin)}
    return seed_guard(eff, rec, expect, margin, inputs, same)


def seed_guard(eff, rec: dict, expect: str, margin: float, inputs: Inputs, same: bool) -> dict:
    """One seed is not a verdict.  When the interval holds no seed variance (one replicate
    per run and no run of >= 3 to borrow from) a trained model is judged by the clips alone,
    although two seeds of one configuration differ by about as much as the report's effects.
    Then the verdict is "inconclusive (one seed)" -- unless ``inputs.seed_sd_prior`` (a seed
    sd in dB, measured at that scale) is given: the interval (at ``inputs.opts``' confidence)
    is widened by its seed term.  ``same``:
    A and B are one trained model under two evaluations (no seed noise between them)."""
    prior = inputs.seed_sd_prior
    if eff.variance != st.CLIPS or same:
        return rec
    if prior is None:
        why = (
            f"one seed: replicates {'/'.join(map(str, eff.replicates))}, no seed variance "
            f"(clips alone would say {rec['verdict']}); run >= 2 replicates per run"
        )
        return {**rec, "verdict": ONE_SEED, "why": why}
    z = float(sps.norm.ppf(0.5 + inputs.opts.get("confidence", st.CONFIDENCE) / 2))
    clip_half = (eff.hi - eff.lo) / 2
    seed_half = z * prior * math.sqrt(sum(1 / n for n in eff.replicates))
    extra = math.hypot(clip_half, seed_half) - clip_half
    lo, hi = eff.lo - extra, eff.hi + extra
    return {
        **rec,
        "lo": lo,
        "hi": hi,
        "verdict": st.decide(lo, hi, expect, margin),
        "variance": f"clips + seed prior ({prior:g} dB)",
    }


def run_pairs(claim: dict, source: str, inputs: Inputs) -> list[dict]:
    """A - B of a metric for {a, b}, for each link of a chain or for A against each B of
    {a, each}, paired clip by clip (or each run over its own clips with ``clips: own``)."""
    runs, expect = claim["runs"], claim["expect"]
    if "chain" in runs:
        pairs = list(zip(runs["chain"][:-1], runs["chain"][1:]))
    elif "each" in runs:
        pairs = [(runs["a"], b) for b in runs["each"]]
    else:
        pairs = [(runs["a"], runs["b"])]
    margin = float(claim.get("margin", 0.0))
    own = claim["compare"].get("clips") == "own"
    compare = st.compare_own_clips if own else st.compare_runs
    models, out = inputs.models, []
    for a, b in pairs:
        names = {"a": run_name(a), "b": run_name(b), "margin": margin}
        # one trained model under two evaluations: replicate r of A is replicate r of B
        same = a[1] == b[1] and models.get(a[0], a[0]) == models.get(b[0], b[0])
        out.append(
            measure(
                lambda a=a, b=b, same=same: compare(
                    inputs.scores,
                    a,
                    b,
                    claim["metric"],
                    source,
                    paired_replicates=same,
                    **inputs.opts,
                ),
                names,
                expect,
                margin,
                inputs,
                same,
            )
        )
    return out


def two_runs_text(claim: dict, source: str) -> str:
    runs = claim["runs"]
    own = " (each on its own clips)" if claim["compare"].get("clips") == "own" else ""
    if "each" in runs:
        return f"{run_name(runs['a'])} - each of {', '.join(run_name(b) for b in runs['each'])}"
    return f"{run_name(runs['a'])} - {run_name(runs['b'])}{own}"


def combine_verdicts(verdicts: Sequence[str]) -> str:
    """Any pair contradicted -> contradicted; else a pair without data -> no data; else a pair
    judged by one seed -> inconclusive (one seed); all pairs hold -> holds; else
    inconclusive."""
    if "contradicted" in verdicts:
        return "contradicted"
    if "no data" in verdicts:
        return "no data"
    if ONE_SEED in verdicts:
        return ONE_SEED
    return "holds" if all(v == "holds" for v in verdicts) else "inconclusive"


def _weakest(pairs: list[dict], upper: bool, verdict: str) -> dict:
    """The pair nearest to failing the claim (lowest bound in the claimed direction; the
    highest upper bound when ``upper``: A is claimed below), or the first pair without data
    when that decided the verdict."""
    if verdict in ("no data", ONE_SEED):
        return next(p for p in pairs if p["verdict"] == verdict)
    pairs = [p for p in pairs if p["verdict"] != "no data"]
    if upper:
        return max(pairs, key=lambda p: p["hi"])
    return min(pairs, key=lambda p: p["lo"])


def pairs_row(claim: dict, pairs: list[dict], upper: bool) -> dict:
    """The row of a claim's pairs: the combined verdict, the weakest pair's numbers and
    every pair as JSON.  ``upper``: the claim puts A below (its upper bound decides)."""
    verdict = combine_verdicts([p["verdict"] for p in pairs])
    rep = _weakest(pairs, upper, verdict)
    detail = rep.get("why", "")
    if len(pairs) > 1 and not detail:
        detail = f"weakest of {len(pairs)} pairs: {rep['a']} - {rep['b']}"
    if "value" in rep:
        value = f"{rep['a']} {claim['metric']} = {rep['value']:.3f} dB"
        detail = f"{value}; {detail}" if detail else value
    if rep.get("n_dropped"):
        dropped = f"{rep['n_dropped']} clip(s) not ok in every run dropped from the pairing"
        detail = f"{detail}; {dropped}" if detail else dropped
    if rep.get("unit_note"):  # e.g. "resampled by song: 4 singers (< 5)"
        detail = f"{detail}; {rep['unit_note']}" if detail else rep["unit_note"]
    reps = rep.get("replicates") or []
    row = {k: rep.get(k, math.nan) for k in ("effect", "lo", "hi", "p_value", "n_clips")}
    return {
        **row,
        "verdict": verdict,
        "margin": float(claim.get("margin", 0.0)),
        "p_method": rep.get("p_method", ""),
        "n_dropped": rep.get("n_dropped", math.nan),
        "n_replicates": min(reps) if reps else math.nan,
        "variance": rep.get("variance", ""),
        "detail": detail,
        "pairs": json.dumps([jsonable(p) for p in pairs]),
    }

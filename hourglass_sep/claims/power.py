"""How many seeds a claim needs: the minimum detectable effect (MDE) of each statistical
verdict at the replicates and clips it had, and the replicates per run that would decide it
with 80 % power at the seed sd we measured.

An "inconclusive" says nothing until it says whether more seeds could ever decide it: with
seed sd sigma and clip se c of the paired difference, the effect's se at n replicates per
run is sqrt(k sigma^2 / n + c^2) (k = 2 independent runs, 1 for a run against a threshold or
one model under two evaluations), and the claim is decided with power 1 - beta when
(t(1 - alpha) + t(1 - beta)) se(n) reaches the distance between the effect and the claim's
null, the t quantiles on Welch-Satterthwaite degrees of freedom as in ``stats.combine``.
The clip term does not shrink with seeds: an effect below the clips' own MDE needs more
clips, not more seeds.  :func:`annotate` adds these columns and Holm's
(:mod:`hourglass_sep.claims.multiplicity`) to a verdict table.  Reasoning: docs/statistics.md.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd
from scipy import stats as sps

from hourglass_sep.claims import multiplicity as mt
from hourglass_sep.claims import stats as st
from hourglass_sep.claims.tables import ONE_SEED
from hourglass_sep.errors import UserError

POWER = 0.8
MAX_SEEDS = 100
COLUMNS = ["mde", "seeds_needed", "power_note"]
PLANNED = (*mt.TESTED, ONE_SEED, "needs paper scale")  # verdicts with an interval to plan from
DECIDED = "decided"
_PRIOR = re.compile(r"seed prior \(([0-9.eE+-]+) dB\)")


def welch_df(parts) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variance terms (variance, df); a
    term with infinite df (a known variance) adds nothing to the denominator."""
    total = sum(v for v, _ in parts)
    denom = sum(v * v / k for v, k in parts if v > 0 and math.isfinite(k))
    return total * total / denom if denom > 0 else math.inf


@dataclass(frozen=True)
class Noise:
    """What the se of an effect is made of, to recompute it at another number of seeds.

    ``sigma``: seed sd of one run's global metric (of the replicate-by-replicate differences
    when one model is evaluated twice); ``terms``: independent seed terms (2 runs, 1);
    ``clip_df``: df of the clip part (inf: percentile bootstrap over many units);
    ``seed_df``: False when sigma is a stated prior (a known variance, no df)."""

    sigma: float
    clip_se: float
    terms: int = 2
    clip_df: float = math.inf
    seed_df: bool = True
    origin: str = "measured"

    def se(self, n: int) -> tuple[float, float]:
        """(se, Welch-Satterthwaite df) of the effect with ``n`` replicates per run."""
        seed_k = n - 1 if self.seed_df else math.inf
        parts = [(self.clip_se**2, self.clip_df)] + [(self.sigma**2 / n, seed_k)] * self.terms
        return math.sqrt(sum(v for v, _ in parts)), welch_df(parts)


def quantile_sum(df: float, alpha: float, power: float = POWER, tost: bool = False) -> float:
    """t(1 - alpha) + t(power): how many se an effect must lie from its null to be detected
    with that power by a one-sided test at alpha.  ``tost``: equivalence planned at a true
    difference of 0, where either one-sided test may fail, so t((1 + power) / 2)."""
    beta_q = (1 + power) / 2 if tost else power
    return float(sps.t.ppf(1 - alpha, df) + sps.t.ppf(beta_q, df))


def half_width(noise: Noise, n: int, confidence: float = st.CONFIDENCE) -> float:
    """Half-width of the two-sided ``confidence`` t interval with ``n`` replicates per run."""
    se, df = noise.se(n)
    return float(sps.t.ppf(0.5 + confidence / 2, df)) * se


def seeds_needed(
    noise: Noise,
    target: float,
    alpha: float,
    power: float = POWER,
    tost: bool = False,
    max_n: int = MAX_SEEDS,
) -> int | None:
    """The fewest replicates per run (>= 2: one measures no seed sd) at which an effect
    ``target`` away from the null is detected with ``power``; None beyond ``max_n``."""
    if not target > 0:
        return None
    for n in range(2, max_n + 1):
        se, df = noise.se(n)
        if quantile_sum(df, alpha, power, tost) * se <= target:
            return n
    return None


def clip_part(rec: dict, confidence: float = st.CONFIDENCE) -> tuple[float, float]:
    """(clip se, clip df) of a pair: ``clip_se`` / ``clip_df`` as the claims engine computed
    them (``stats.Effect``).  A record written before they were: off its clips-only interval
    read as normal, which overstates the se by t(df) / z where that interval was a few-unit t
    interval (8 % for 17 singers), so the plan errs towards more seeds; a clip-only record's
    own df is its clip df."""
    se, df = mt.number(rec.get("clip_se")), mt.number(rec.get("clip_df"), math.nan)
    if math.isfinite(se):
        return se, df if not math.isnan(df) else math.inf
    width = mt.number(rec.get("clips_hi")) - mt.number(rec.get("clips_lo"))
    if rec.get("variance") == st.CLIPS:
        df = mt.number(rec.get("df"), math.inf)
        return width / (2 * float(sps.t.ppf(0.5 + confidence / 2, df))), df
    return width / (2 * float(sps.norm.ppf(0.5 + confidence / 2))), math.inf


def _paired(reps: list[int], sigma: float, se: float, clip_se: float) -> bool:
    """Whether the seed term was s_d^2 / R (one model under two evaluations) rather than
    sigma^2 (1/R_A + 1/R_B): the record does not say, so the measured seed variance
    se^2 - c^2 is matched against both."""
    seed_var = se * se - clip_se * clip_se
    if len(reps) != 2 or reps[0] != reps[1] or not seed_var > 0 or not sigma > 0:
        return False
    apart = sigma**2 * (1 / reps[0] + 1 / reps[1])
    together = sigma**2 / reps[0]
    return abs(math.log(seed_var / together)) < abs(math.log(seed_var / apart))


def noise_of(rec: dict, confidence: float = st.CONFIDENCE) -> Noise | None:
    """The :class:`Noise` of one compared pair from its record (``pairs`` JSON): the clip
    part (:func:`clip_part`) and the seed sd, measured or stated as a prior in the
    ``variance`` text.  None when the seed sd is unknown (one seed, no prior)."""
    reps = [int(r) for r in rec.get("replicates") or []]
    clip_se, clip_df = clip_part(rec, confidence)
    if not reps or not math.isfinite(clip_se):
        return None
    prior = _PRIOR.search(str(rec.get("variance", "")))
    if prior:
        return Noise(float(prior.group(1)), clip_se, len(reps), clip_df, False, "prior")
    sigma = mt.number(rec.get("seed_sd"))
    if not math.isfinite(sigma):
        return None
    if _paired(reps, sigma, mt.number(rec.get("se")), clip_se):
        return Noise(sigma, clip_se, 1, clip_df, True, "paired")
    return Noise(sigma, clip_se, len(reps), clip_df, True, "measured")


def distance(rec: dict, rule: str, margin: float) -> tuple[float, bool]:
    """(how far the pair's effect lies from the claim's null, tost?).  Directions: |effect|
    (more seeds decide it either way); not-less/not-greater: |effect + margin| on the
    claimed side; equivalent: the margin itself, planned at a true difference of 0."""
    effect = mt.number(rec.get("effect"))
    margin = mt.number(rec.get("margin"), margin)
    if rule in ("less", "below", "not-greater"):
        effect = -effect
    if rule == "equivalent":
        return margin, True
    if rule in ("not-less", "not-greater"):
        return abs(effect + margin), False
    return abs(effect), False


@dataclass
class PairPlan:
    """One compared pair's plan: MDE now, seeds needed (0: decided, None: beyond the cap or
    unknown), and what it rests on, in words."""

    mde: float
    seeds: int | None
    note: str
    known: bool  # the seed sd is known (measured or a prior)


def _mde_now(rec: dict, alpha: float, power: float, tost: bool, confidence: float) -> float:
    """MDE at the pair's own replicates and clips: the se behind its interval (read as
    t(df), normal for a percentile bootstrap) times the quantile sum."""
    df = mt.number(rec.get("df"), math.inf)
    width = mt.number(rec.get("hi")) - mt.number(rec.get("lo"))
    se = width / (2 * float(sps.t.ppf(0.5 + confidence / 2, df)))
    return quantile_sum(df, alpha, power, tost) * se


def _noise_text(noise: Noise, reps) -> str:
    what = {"measured": "seed sd", "paired": "sd of replicate differences"}
    used = "/".join(str(r) for r in reps)
    name = what.get(noise.origin, "seed sd prior")
    return f"{name} {noise.sigma:.3g} dB (replicates {used}), clip se {noise.clip_se:.3g} dB"


def plan_pair(rec, rule, margin, alpha, power=POWER, confidence=st.CONFIDENCE, max_n=MAX_SEEDS):
    """:class:`PairPlan` of one pair tested one-sided at ``alpha`` by interval ``rule``.
    Decided (seeds 0): the pair is contradicted, or its p of "holds" meets ``alpha``."""
    target, tost = distance(rec, rule, margin)
    p = mt.pair_p(rec, rule, margin, confidence)
    verdict = rec.get("verdict")
    decided = verdict == "contradicted" or (verdict == "holds" and p <= alpha)
    mde = _mde_now(rec, alpha, power, tost, confidence)
    noise, reps = noise_of(rec, confidence), rec.get("replicates") or []
    if noise is None:
        why = f"seed sd not measured (replicates {'/'.join(map(str, reps)) or '?'}, no prior)"
        if math.isfinite(mde):
            why += f"; the clips alone would give an MDE of {mde:.3g}"
        return PairPlan(math.nan, 0 if decided else None, why, False)
    note = _noise_text(noise, reps)
    if decided:
        return PairPlan(mde, 0, note, True)
    n = seeds_needed(noise, target, alpha, power, tost, max_n)
    floor = quantile_sum(noise.clip_df, alpha, power, tost) * noise.clip_se
    if n is None and floor >= target:
        note += f"; the clips alone need a distance >= {floor:.3g}: more clips, not seeds"
    return PairPlan(mde, n, note, True)


def _row_record(row: dict) -> dict:
    """A row without pair records (an old or hand-made table) as one pair: its interval
    only, so no seed sd."""
    keys = ("effect", "lo", "hi", "margin", "verdict", "n_clips")
    reps = mt.number(row.get("n_replicates"))
    return {**{k: row.get(k) for k in keys}, "replicates": [int(reps)] if reps > 0 else []}


def _seeds_text(plans: list[PairPlan], decided: bool, max_n: int) -> object:
    """The ``seeds_needed`` cell: "decided", an int (the largest over the pairs still
    undecided: every one must be), f">{max_n}", or "n/a" (a seed sd unknown)."""
    undecided = [p for p in plans if p.seeds != 0]
    if decided or not undecided:
        return DECIDED
    if any(not p.known for p in undecided):
        return "n/a"
    if any(p.seeds is None for p in undecided):
        return f">{max_n}"
    return max(p.seeds for p in undecided)


def _row_note(row: dict, worst: PairPlan, rule: str, alpha: float) -> str:
    note = worst.note
    if rule == "equivalent":
        note += f"; planned at a true difference of 0 (observed {mt.number(row.get('effect')):.3g})"
    if row.get("verdict") == "needs paper scale":
        note = f"at this scale: {note}"
    if row.get("adjusted_verdict") == mt.HOLM_INCONCLUSIVE:
        note = f"at Holm's level {alpha:.3g}: {note}"
    return note


def plan_row(
    row: dict,
    pairs: list[dict],
    alpha: float,
    power: float = POWER,
    confidence: float = st.CONFIDENCE,
    max_n: int = MAX_SEEDS,
) -> tuple[float, object, str]:
    """(mde, seeds_needed, power_note) of one verdict row over its pairs (its parts' pairs
    for a claim row): the largest MDE and seed count, since every pair must be decided."""
    rule = mt.interval_rule(row.get("expect"))
    if rule is None or row.get("verdict") not in PLANNED:
        return math.nan, "n/a", ""
    margin = mt.number(row.get("margin"), 0.0)
    plans = [plan_pair(p, rule, margin, alpha, power, confidence, max_n) for p in pairs]
    if not plans:
        return math.nan, "n/a", "no interval to plan from"
    decided = row.get("adjusted_verdict", row.get("verdict")) in ("holds", "contradicted")
    seeds = _seeds_text(plans, decided, max_n)
    mdes = [p.mde for p in plans if math.isfinite(p.mde)]
    worst = max(plans, key=lambda p: (not p.known, p.seeds is None, p.seeds or 0))
    return (max(mdes) if mdes else math.nan), seeds, _row_note(row, worst, rule, alpha)


def _pairs_by_row(out: pd.DataFrame) -> list[list[dict]]:
    """Each row's pairs: a claim row with parts gets all its parts' pairs."""
    rows, lev = out.to_dict("records"), mt.levels(out).tolist()
    parts: dict[str, list[dict]] = {}
    for row, level in zip(rows, lev):
        if level == mt.PART:
            parts.setdefault(row["id"], []).extend(mt.pair_records(row) or [_row_record(row)])
    return [
        parts[row["id"]]
        if level != mt.PART and row["id"] in parts
        else mt.pair_records(row) or [_row_record(row)]
        for row, level in zip(rows, lev)
    ]


def annotate(
    verdicts: pd.DataFrame,
    alpha: float | None = None,
    confidence: float = st.CONFIDENCE,
    power: float = POWER,
    max_seeds: int = MAX_SEEDS,
) -> pd.DataFrame:
    """The verdict table with the multiplicity columns (:func:`multiplicity.adjust`: p_claim,
    p_adjusted, holm_level, adjusted_verdict, adjustment) and the power columns (mde,
    seeds_needed, power_note).  ``alpha``: the one-sided family-wise level (default
    (1 - confidence) / 2, the raw rows' own); ``confidence``: the level the table's
    intervals were computed at; a row left out of Holm is planned at ``alpha``, a claim that
    Holm made inconclusive at the level it missed."""
    missing = [c for c in mt.NEEDED if c not in verdicts.columns]
    if missing:
        raise UserError(
            f"not a verdicts table (missing columns {missing}); write it with "
            "`hourglass-sep claims`"
        )
    alpha = mt.side_level(confidence) if alpha is None else alpha
    out = mt.adjust(verdicts, alpha, confidence)
    cells = []
    for row, pairs in zip(out.to_dict("records"), _pairs_by_row(out)):
        level = row["holm_level"] if row["adjusted_verdict"] == mt.HOLM_INCONCLUSIVE else alpha
        cells.append(plan_row(row, pairs, level, power, confidence, max_seeds))
    mde, seeds, notes = zip(*cells) if cells else ((), (), ())
    out["mde"] = pd.Series(mde, index=out.index, dtype=float)
    out["seeds_needed"] = pd.Series(seeds, index=out.index, dtype=object)
    out["power_note"] = pd.Series(notes, index=out.index, dtype=object)
    return out

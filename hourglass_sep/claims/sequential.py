"""Replicates where they decide: a group-sequential design over training seeds.

A claim whose interval straddles its decision point after 3 seeds per run may decide with
8 or 12; a claim that already holds needs no more.  Adding seeds and looking again each
time inflates the error, though: at 95 % per look, looks at 3, 8 and 12 seeds turn the
one-sided 2.5 % false "holds" into 5.4 %.  The design fixes K looks (replicate counts) in
advance and spends the two-sided alpha across them with a Lan-DeMets spending function, so
the whole procedure keeps its level (docs/statistics.md, "Sequential replicates"; simulated
in tests/test_sequential.py).

Pieces, all pure numpy / scipy:

* :class:`SequentialDesign`: replicate count, z boundary and nominal confidence per look.
* :func:`decide_look` / :func:`sequential_verdicts`: a claim's verdict at a look, from its
  interval re-derived at that look's level (:func:`stats.decide`), with the futility stop
  "inconclusive (budget)" when the seeds needed exceed the budget.  Vectorised: the
  simulation runs the very same functions on arrays of simulated claims.
* :func:`plan_look` (:func:`next_replicates`, :func:`steps_needed`): which variants get
  more seeds, and how far each added replicate must train.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import optimize
from scipy import stats as sps

from hourglass_sep.claims import stats
from hourglass_sep.claims.tables import BUDGET  # futility: the seeds needed exceed the budget

BOUNDARIES = ("obrien-fleming", "pocock")
PENDING = "pending"  # undecided at a look that is not the last: more seeds
FINAL = "inconclusive"  # undecided at the last look
POWER = 0.8  # the power behind "seeds needed"
# the workflow's futility power (claims_sequential.futility_power): a claim whose seeds needed
# for it exceed the budget stops; 0.8 stops half of the real 0.35 dB effects on a noisy
# 3-seed estimate, 0.5 keeps ~70 % power for ~1.4 more seeds (docs/statistics.md)
FUTILITY_POWER = 0.5
_GRID = 401  # Simpson nodes per look in the boundary recursion (odd)

# --------------------------------------------------------------------------- boundaries


def spent_alpha(t: np.ndarray, alpha: float, boundary: str) -> np.ndarray:
    """Two-sided alpha spent by information fraction ``t`` (Lan & DeMets 1983).

    Each side spends alpha/2.  O'Brien-Fleming type: 2 - 2 Phi(z_{1-alpha/4} / sqrt(t)) per
    side, the convention of gsDesign's ``sfLDOF`` and of ``ldbounds``, whose published
    boundaries the tests reproduce; Pocock type: alpha ln(1 + (e - 1) t)."""
    t = np.asarray(t, dtype=float)
    if boundary == "obrien-fleming":
        per_side = 2 * sps.norm.sf(sps.norm.isf(alpha / 4) / np.sqrt(t))
        return 2 * per_side
    if boundary == "pocock":
        return alpha * np.log1p((math.e - 1) * t)
    raise ValueError(f"unknown boundary {boundary!r} (known: {list(BOUNDARIES)})")


def _simpson(b: float) -> tuple[np.ndarray, np.ndarray]:
    nodes = np.linspace(-b, b, _GRID)
    w = np.full(_GRID, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return nodes, w * (nodes[1] - nodes[0]) / 3


def _exit_mass(nodes: np.ndarray, mass: np.ndarray, b: float, step: float) -> float:
    """P(|S| >= b at the next look, not stopped before): S moves by N(0, step) from ``nodes``,
    which carry the probability ``mass`` of having continued so far."""
    sd = math.sqrt(step)
    return float(mass @ (sps.norm.cdf((-b - nodes) / sd) + sps.norm.sf((b - nodes) / sd)))


def _advance(nodes: np.ndarray, mass: np.ndarray, b: float, step: float):
    """The continuation sub-density at the next look on (-b, b), as Simpson masses."""
    new, w = _simpson(b)
    sd = math.sqrt(step)
    x = (new[:, None] - nodes[None, :]) / sd
    density = (np.exp(-0.5 * x * x) / (sd * math.sqrt(2 * math.pi))) @ mass
    return new, density * w


def _walk(fractions: Sequence[float]):
    """Yields (nodes, masses, information increment) before each look and receives that
    look's score bound b_k: the continuation density of the score S_k = Z_k sqrt(t_k), a
    Brownian motion in t (independent increments: corr(Z_j, Z_k) = sqrt(t_j / t_k)), from a
    point mass at 0."""
    nodes, mass, prev = np.zeros(1), np.ones(1), 0.0
    for t in fractions:
        step = t - prev
        b = yield nodes, mass, step
        nodes, mass, prev = (*_advance(nodes, mass, b, step), t)


def _excess(b: float, nodes: np.ndarray, mass: np.ndarray, step: float, target: float):
    return _exit_mass(nodes, mass, b, step) - target


def exit_probabilities(bounds: Sequence[float], fractions: Sequence[float]) -> np.ndarray:
    """P(the first |Z_k| >= bounds[k] is at look k) under the null, per look (recursive
    numerical integration, Armitage, McPherson & Rowe 1969; Jennison & Turnbull ch. 19)."""
    walk, out = _walk(fractions), []
    state = next(walk)
    for k, (c, t) in enumerate(zip(bounds, fractions)):
        b = c * math.sqrt(t)
        out.append(_exit_mass(*state[:2], b, state[2]))
        if k + 1 < len(fractions):
            state = walk.send(b)
    return np.asarray(out)


def spending_bounds(fractions: Sequence[float], alpha: float, boundary: str) -> np.ndarray:
    """Two-sided z boundaries whose exit probabilities under the null are the increments of
    :func:`spent_alpha` (Lan-DeMets): solved look by look on the recursion's density."""
    spent = np.diff(spent_alpha(np.asarray(fractions), alpha, boundary), prepend=0.0)
    walk, bounds = _walk(fractions), []
    state = next(walk)
    for k, t in enumerate(fractions):
        nodes, mass, step = state
        b = optimize.brentq(_excess, 1e-9, 60.0, args=(nodes, mass, step, spent[k]))
        bounds.append(b / math.sqrt(t))
        if k + 1 < len(fractions):
            state = walk.send(b)
    return np.asarray(bounds)


def classical_bounds(fractions: Sequence[float], alpha: float, boundary: str) -> np.ndarray:
    """The classical boundaries (Pocock 1977: one constant C; O'Brien & Fleming 1979:
    C / sqrt(t_k)) with total two-sided exit probability ``alpha``.  The design spends alpha
    instead (it tolerates unequal looks); these check the recursion against the published
    tables (Jennison & Turnbull, Table 2.3)."""
    t = np.asarray(fractions, dtype=float)
    shape = {"pocock": np.ones_like(t), "obrien-fleming": 1 / np.sqrt(t)}.get(boundary)
    if shape is None:
        raise ValueError(f"unknown boundary {boundary!r} (known: {list(BOUNDARIES)})")
    c = optimize.brentq(lambda x: exit_probabilities(x * shape, t).sum() - alpha, 0.5, 10.0)
    return c * shape


# --------------------------------------------------------------------------- the design


def _replicate_counts(start: int, max_replicates: int, looks: int) -> tuple[int, ...]:
    if looks == 1:
        return (max_replicates,)
    return tuple(int(n) for n in np.round(np.linspace(start, max_replicates, looks)))


@dataclass(frozen=True)
class SequentialDesign:
    """K looks at replicate counts ``start`` .. ``max_replicates`` (evenly spaced, rounded;
    one look: a fixed design at ``max_replicates``), two-sided ``alpha`` spent across them.

    Information is measured in replicates (t_k = n_k / max_replicates): the seed term
    dominates the variance of an effect; the clip term, which more seeds do not shrink,
    makes the true fractions larger than these, and the boundaries conservative
    (docs/statistics.md).  ``power`` is that of the seeds needed, ``futility`` whether a
    claim needing more than ``max_replicates`` stops early."""

    max_replicates: int
    looks: int
    alpha: float = 0.05
    boundary: str = "obrien-fleming"
    start: int = 3
    power: float = POWER
    futility: bool = True

    def __post_init__(self):
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"unknown boundary {self.boundary!r} (known: {list(BOUNDARIES)})")
        if not 0 < self.alpha < 1 or not 0.5 <= self.power < 1:
            raise ValueError(f"need 0 < alpha < 1 and 1/2 <= power < 1: {self.alpha}, {self.power}")
        if not 2 <= self.start <= self.max_replicates:
            raise ValueError(
                f"need 2 <= start ({self.start}) <= max_replicates ({self.max_replicates})"
            )
        most = self.max_replicates - self.start + 1
        if not 1 <= self.looks <= most:
            raise ValueError(
                f"looks must be 1..{most} (one per replicate count from {self.start} to "
                f"{self.max_replicates}), not {self.looks}"
            )

    @functools.cached_property
    def replicates(self) -> tuple[int, ...]:
        """Replicates per run at each look."""
        return _replicate_counts(self.start, self.max_replicates, self.looks)

    @functools.cached_property
    def fractions(self) -> tuple[float, ...]:
        """Information fraction at each look (replicates / max_replicates)."""
        return tuple(n / self.max_replicates for n in self.replicates)

    @functools.cached_property
    def bounds(self) -> tuple[float, ...]:
        """Two-sided z boundary at each look (Lan-DeMets spending)."""
        return tuple(float(c) for c in spending_bounds(self.fractions, self.alpha, self.boundary))

    @functools.cached_property
    def levels(self) -> tuple[float, ...]:
        """Nominal two-sided confidence of the interval at each look: 2 Phi(c_k) - 1."""
        return tuple(float(1 - 2 * sps.norm.sf(c)) for c in self.bounds)

    def table(self) -> list[dict]:
        """One row per look (for the report and the docs)."""
        rows = zip(self.replicates, self.fractions, self.bounds, self.levels)
        return [
            {"look": k, "replicates": n, "fraction": t, "bound": c, "level": level}
            for k, (n, t, c, level) in enumerate(rows)
        ]


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Observation:
    """A claim's effect at one look (scalars, or equal-shaped arrays: many claims at once).

    ``se`` and ``df`` are the interval's (:func:`stats.combine`), ``clip_se`` its clips-only
    part (what more seeds cannot shrink), ``replicates`` the fewest replicates per run."""

    effect: float | np.ndarray
    se: float | np.ndarray
    df: float | np.ndarray
    clip_se: float | np.ndarray
    replicates: int | np.ndarray

    @classmethod
    def from_effect(cls, eff: stats.Effect):
        """From the claims engine's :class:`stats.Effect`, with the clips' share of its se as
        the engine computed it (``Effect.clip_se``)."""
        return cls(eff.estimate, eff.se, eff.df, eff.clip_se, min(eff.replicates))


def se_from_interval(lo, hi, df, confidence: float = stats.CONFIDENCE):
    """The se behind a symmetric t interval [lo, hi] at ``confidence`` with ``df``."""
    q = sps.t.ppf(0.5 + confidence / 2, df)
    return (np.asarray(hi, dtype=float) - np.asarray(lo, dtype=float)) / (2 * q)


def relevel(effect, se, df, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The interval effect +- t(1/2 + level/2, df) se: the look's interval, re-derived from
    the claim's (95 %) one, whose se and df it shares."""
    half = sps.t.ppf(0.5 + level / 2, df) * np.asarray(se, dtype=float)
    effect = np.asarray(effect, dtype=float)
    return effect - half, effect + half


def _distance(effect, expect: str, margin: float) -> np.ndarray:
    """How far the effect lies from the nearest point its decision turns on."""
    e = np.asarray(effect, dtype=float)
    if expect in ("greater", "less", "above", "below"):
        return np.abs(e)
    if expect == "equivalent":
        return np.abs(margin - np.abs(e))
    if expect == "not-greater":
        return np.abs(margin - e)
    if expect == "not-less":
        return np.abs(e + margin)
    raise ValueError(f"no sequential rule for expect {expect!r} (known: {stats.DIRECTIONS})")


def _shortfall(n, d, unit, clip, per_df, level: float, power: float) -> np.ndarray:
    """(t_level + t_power)(df_n) se(n) - distance: <= 0 once n replicates per run suffice."""
    df = per_df * (n - 1)
    q = sps.t.ppf(0.5 + level / 2, df) + sps.t.ppf(power, df)
    return q * np.sqrt(unit / n + clip**2) - d


def _terms(obs: Observation, expect: str, margin: float) -> tuple:
    """(distance, one replicate's seed variance, clip se, df per replicate) of
    :func:`_shortfall`, as arrays of the observation's shape."""
    d = _distance(obs.effect, expect, margin)
    clip = np.broadcast_to(np.asarray(obs.clip_se, dtype=float), d.shape)
    n_now = np.broadcast_to(np.asarray(obs.replicates, dtype=float), d.shape)
    unit = np.maximum(np.asarray(obs.se, dtype=float) ** 2 - clip**2, 0.0) * n_now
    per_df = np.asarray(obs.df, dtype=float) / np.maximum(n_now - 1, 1)
    return d, unit, clip, per_df


def seeds_needed(obs: Observation, expect: str, margin: float, level: float, power=POWER):
    """Replicates per run for an interval at ``level`` to decide with probability ``power``
    were the true effect the observed one: the smallest n >= 2 with
    (t_level + t_power) sqrt(s^2 / n + clip_se^2) <= distance, where s^2 / n_now is the seed
    part of the observed se^2 and the df scale with n - 1.  inf when the clips alone forbid
    it.  The left side falls with n (power >= 1/2), so a bisection on log n finds it."""
    args = (*_terms(obs, expect, margin), level, power)
    lo, hi = np.full(args[0].shape, math.log(2)), np.full(args[0].shape, math.log(1e7))
    for _ in range(30):  # 15.4 / 2**30: n to 1e-8 relative, before rounding up
        mid = (lo + hi) / 2
        ok = _shortfall(np.exp(mid), *args) <= 0
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
    n = np.ceil(np.exp(hi) - 1e-9)
    n = np.where(_shortfall(2.0, *args) <= 0, 2.0, n)
    return np.where(_shortfall(1e7, *args) <= 0, n, np.inf)


def beyond_budget(obs: Observation, expect: str, margin: float, design, level: float):
    """Whether the seeds needed exceed ``design.max_replicates`` (the futility rule): the
    shortfall falls with n, so one evaluation at the budget tells, without the search.  An
    observation without a finite effect or se is beyond it too: no seed count decides it."""
    args = (*_terms(obs, expect, margin), level, design.power)
    return ~(_shortfall(float(design.max_replicates), *args) <= 0)


def decide_look(
    obs: Observation,
    expect: str,
    margin: float,
    design: SequentialDesign,
    look: int,
    levels: Sequence[float] | None = None,
) -> np.ndarray:
    """Verdicts at ``look`` (an object array shaped like ``obs.effect``): holds or contradicted
    from the interval at the look's level (:func:`stats.decide`); else ``pending`` (more
    seeds), ``inconclusive (budget)`` when the seeds needed exceed ``max_replicates``, or
    ``inconclusive`` at the last look.  ``levels`` overrides the design's (the naive 95 % at
    every look, for comparison only)."""
    if not 0 <= look < design.looks:
        raise ValueError(f"look {look} is not one of the design's 0..{design.looks - 1}")
    levels = design.levels if levels is None else tuple(levels)
    lo, hi = relevel(obs.effect, obs.se, obs.df, levels[look])
    pairs = zip(np.ravel(lo), np.ravel(hi))
    flat = [stats.decide(float(a), float(b), expect, margin) for a, b in pairs]
    verdict = np.asarray(flat, dtype=object).reshape(np.shape(lo))
    open_ = verdict == "inconclusive"
    if look == design.looks - 1:
        verdict[open_] = FINAL
        return verdict
    if not design.futility:
        verdict[open_] = PENDING
        return verdict
    beyond = beyond_budget(obs, expect, margin, design, levels[-1])
    verdict[open_] = np.where(beyond[open_], BUDGET, PENDING)
    return verdict


def sequential_verdicts(
    observations: Sequence[Observation],
    expect: str,
    margin: float,
    design: SequentialDesign,
    levels: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The procedure: each claim's verdict at the first look that stops it, and that look.

    ``observations[k]`` is the claim(s) at look k (with the first ``design.replicates[k]``
    replicates of each run); a claim still ``pending`` after the last one given is reported
    ``pending`` at that look.  Later observations never change a stopped claim's verdict."""
    if not 0 < len(observations) <= design.looks:
        raise ValueError(f"need 1..{design.looks} observations, not {len(observations)}")
    shape = np.shape(observations[0].effect)
    verdict = np.full(shape, PENDING, dtype=object)
    stop = np.full(shape, len(observations) - 1)
    open_ = np.ones(shape, dtype=bool)
    for k, obs in enumerate(observations):
        v = decide_look(obs, expect, margin, design, k, levels)
        now = open_ & (v != PENDING)
        verdict[now], stop[now] = v[now], k
        open_ &= ~now
    return verdict, stop


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class ClaimState:
    """A claim as the planner sees it: its runs ("VARIANT@STEP", "VARIANT" = its last step,
    or resolved (variant, step) pairs), its decision rule and one :class:`Observation` per
    look reached.  Exploratory claims (``confirmatory=False``) never ask for seeds."""

    claim: str
    runs: tuple
    expect: str
    margin: float = 0.0
    observations: tuple[Observation, ...] = ()
    confirmatory: bool = True


@dataclass(frozen=True)
class Status:
    """Where a claim stands: its verdict, the look that gave it (with that look's replicates
    and nominal level) and the interval at that level."""

    verdict: str
    look: int
    replicates: int
    level: float
    lo: float
    hi: float
    seeds_needed: float


def claim_status(state: ClaimState, design: SequentialDesign) -> Status:
    """The sequential verdict of one claim from its observations so far."""
    obs = state.observations
    verdict, stop = sequential_verdicts(obs, state.expect, state.margin, design)
    k = int(stop)
    level = design.levels[k]
    lo, hi = relevel(obs[k].effect, obs[k].se, obs[k].df, level)
    need = seeds_needed(obs[k], state.expect, state.margin, design.levels[-1], design.power)
    return Status(
        str(verdict.item()), k, design.replicates[k], level, float(lo), float(hi), float(need)
    )


@dataclass
class LookPlan:
    """After a look: the target replicates per trained variant, how far each added replicate
    trains (``None``: to the variant's last step), and every confirmatory claim's status."""

    replicates: dict[str, int] = field(default_factory=dict)
    steps: dict[str, object] = field(default_factory=dict)
    status: dict[str, Status] = field(default_factory=dict)


def _split_run(run) -> tuple[str, object]:
    if isinstance(run, tuple):
        return str(run[0]), run[1]
    name, _, step = str(run).partition("@")
    return name, (int(step) if step.isdigit() else step or None)


def _later(a, b):
    """The later of two steps; ``None`` (the last step) wins, and so it does when the two
    cannot be ordered: training too far wastes time, too short loses the claim."""
    if a is None or b is None:
        return None
    try:
        return max(a, b)
    except TypeError:
        return None


def _extend(plan: LookPlan, state: ClaimState, target: int, model_of: Mapping[str, str]):
    for run in state.runs:
        variant, step = _split_run(run)
        variant = model_of.get(variant, variant)  # an evaluation variant trains its model
        plan.replicates[variant] = max(plan.replicates.get(variant, 0), target)
        plan.steps[variant] = _later(plan.steps[variant], step) if variant in plan.steps else step


def plan_look(
    states: Sequence[ClaimState],
    design: SequentialDesign,
    look: int,
    model_of: Mapping[str, str] | None = None,
) -> LookPlan:
    """What to train after ``look``: the runs of the confirmatory claims still ``pending``
    (undecided, their seeds needed within the budget) get the next look's replicate count
    (a variant shared by several claims: the largest), trained to the latest step those
    claims use.  ``model_of`` maps evaluation variants to the variant they evaluate.
    Observations after ``look`` are ignored, so a rerun plans the same."""
    plan, model_of = LookPlan(), model_of or {}
    for state in states:
        if not state.confirmatory or not state.observations:
            continue
        seen = state.observations[: look + 1]
        status = claim_status(replace(state, observations=seen), design)
        plan.status[state.claim] = status
        if status.verdict != PENDING:
            continue
        if len(seen) != look + 1:
            raise ValueError(
                f"claim {state.claim}: undecided at look {len(seen) - 1} but not observed at "
                f"look {look} ({design.replicates[look]} replicates)"
            )
        _extend(plan, state, design.replicates[look + 1], model_of)
    return plan


def next_replicates(states, design: SequentialDesign, look: int, model_of=None) -> dict:
    """Variant -> replicates to have before the next look (:func:`plan_look`)."""
    return plan_look(states, design, look, model_of).replicates


def steps_needed(states, design: SequentialDesign, look: int, model_of=None) -> dict:
    """Variant -> the step its added replicates train to (:func:`plan_look`)."""
    return plan_look(states, design, look, model_of).steps

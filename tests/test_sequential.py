"""Sequential replicates: published boundaries, the decision at a look, the planner, and a
simulation of the whole procedure (false "holds" at the null, power at a planted effect)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from hourglass_sep.claims import sequential as sq
from hourglass_sep.claims import stats as st
from hourglass_sep.claims.tables import BUDGET

T3 = np.arange(1, 4) / 3
T5 = np.arange(1, 6) / 5

# --------------------------------------------------------------------------- boundaries


@pytest.mark.parametrize(
    "fractions, boundary, published",
    [  # Jennison & Turnbull (2000), Tables 2.1 and 2.3: two-sided 5 %, equal looks
        (T3, "pocock", [2.289] * 3),
        (T5, "pocock", [2.413] * 5),
        (T3, "obrien-fleming", [3.471, 2.454, 2.004]),
        (T5, "obrien-fleming", 2.040 / np.sqrt(T5)),
    ],
)
def test_classical_boundaries_match_the_published_tables(fractions, boundary, published):
    got = sq.classical_bounds(fractions, 0.05, boundary)
    np.testing.assert_allclose(got, published, atol=1.5e-3)


@pytest.mark.parametrize(
    "fractions, published",
    [  # Lan-DeMets O'Brien-Fleming type, 2.5 % per side (gsDesign sfLDOF, ldbounds)
        (T3, [3.7103, 2.5114, 1.9930]),
        (T5, [4.8769, 3.3569, 2.6803, 2.2898, 2.0310]),
    ],
)
def test_spending_boundaries_match_the_published_lan_demets_ones(fractions, published):
    got = sq.spending_bounds(fractions, 0.05, "obrien-fleming")
    np.testing.assert_allclose(got, published, atol=1e-3)


def _continue_probability(bounds, fractions) -> float:
    """P(|Z_k| < c_k at every look) from scipy's multivariate normal (Genz), corr(Z_j, Z_k) =
    sqrt(t_j / t_k): a check of the recursion that shares none of its code."""
    t = np.asarray(fractions)
    corr = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    c = np.asarray(bounds)
    p = sps.multivariate_normal.cdf(
        c, np.zeros(len(t)), corr, maxpts=2_000_000, abseps=1e-7, releps=1e-7, lower_limit=-c,
        rng=np.random.default_rng(1),
    )  # fmt: skip
    return float(p)


@pytest.mark.parametrize("boundary", sq.BOUNDARIES)
def test_the_design_spends_alpha_look_by_look(boundary):
    design = sq.SequentialDesign(12, 3, boundary=boundary)  # unequal looks: 3, 8, 12
    assert design.replicates == (3, 8, 12)
    spent = sq.spent_alpha(np.asarray(design.fractions), 0.05, boundary)
    for k in range(1, 4):
        stay = _continue_probability(design.bounds[:k], design.fractions[:k])
        assert 1 - stay == pytest.approx(spent[k - 1], abs=2e-4)
    assert spent[-1] == pytest.approx(0.05)
    exits = sq.exit_probabilities(design.bounds, design.fractions)
    np.testing.assert_allclose(np.cumsum(exits), spent, atol=1e-6)


def test_levels_are_the_boundaries_as_confidence():
    obf = sq.SequentialDesign(12, 3)
    assert obf.levels[0] > 0.9999 and 0.95 < obf.levels[-1] < 0.955  # strict early, ~95 % last
    assert list(obf.levels) == sorted(obf.levels, reverse=True)
    pocock = sq.SequentialDesign(12, 3, boundary="pocock")
    assert all(0.97 < lv < 0.985 for lv in pocock.levels)  # ~2.2 % per look, two-sided
    fixed = sq.SequentialDesign(12, 1)
    assert fixed.replicates == (12,) and fixed.levels[0] == pytest.approx(0.95, abs=1e-9)
    assert [r["replicates"] for r in sq.SequentialDesign(16, 4).table()] == [3, 7, 12, 16]


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"max_replicates": 4, "looks": 3}, "looks must be 1..2"),
        ({"max_replicates": 12, "looks": 0}, "looks must be"),
        ({"max_replicates": 2, "looks": 1}, "start (3) <= max_replicates (2)"),
        ({"max_replicates": 12, "looks": 3, "boundary": "haybittle"}, "unknown boundary"),
        ({"max_replicates": 12, "looks": 3, "power": 0.3}, "power"),
    ],
)
def test_a_bad_design_says_what_is_wrong(kw, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        sq.SequentialDesign(**kw)


# --------------------------------------------------------------------------- one look


def test_relevel_reproduces_the_engines_interval_and_se_inverts_it():
    lo, hi, se, df, _ = st.combine(0.3, 0.05, 825, [(0.02, 2), (0.015, 2)])
    rlo, rhi = sq.relevel(0.3, se, df, 0.95)
    assert (float(rlo), float(rhi)) == pytest.approx((lo, hi), abs=1e-12)
    assert float(sq.se_from_interval(lo, hi, df)) == pytest.approx(se, rel=1e-12)
    wide_lo, wide_hi = sq.relevel(0.3, se, df, 0.99)
    assert wide_lo < lo and wide_hi > hi


def test_observation_from_a_real_effect():
    rng = np.random.default_rng(0)
    clips = 400
    truth = rng.normal(8, 3, clips)  # clip difficulty, shared by both runs
    a = truth + 0.4 + rng.normal(0, 0.2, (4, 1)) + rng.normal(0, 0.3, (4, clips))
    b = truth + rng.normal(0, 0.2, (4, 1)) + rng.normal(0, 0.3, (4, clips))
    eff = st.paired_effect(a, b, np.ones(clips), n_perm=10)
    obs = sq.Observation.from_effect(eff)
    assert obs.replicates == 4 and obs.effect == eff.estimate
    d = a.mean(axis=0) - b.mean(axis=0)
    assert obs.clip_se == pytest.approx(d.std(ddof=1) / math.sqrt(clips), rel=0.15)
    lo, hi = sq.relevel(obs.effect, obs.se, obs.df, 0.95)
    assert (float(lo), float(hi)) == pytest.approx((eff.lo, eff.hi), abs=1e-9)


def _one(effect, se=0.1, df=20.0, clip_se=0.03, replicates=8):
    return sq.Observation(effect, se, df, clip_se, replicates)


def test_decide_look_at_the_looks_level():
    design = sq.SequentialDesign(12, 3)  # levels ~ 0.99999, 0.988, 0.954

    def verdict(obs, look, expect="greater", margin=0.0, d=design):
        return sq.decide_look(obs, expect, margin, d, look).item()

    # 0.25 +- t(0.994, 20) 0.1 = [-0.03, 0.53]: pending at look 1, holds at the 95.4 % look
    assert verdict(_one(0.25), 1) == sq.PENDING
    assert verdict(_one(0.25), 2) == "holds"
    assert verdict(_one(-0.5), 1) == "contradicted"
    assert verdict(_one(0.5), 0) == sq.PENDING  # O'Brien-Fleming: the first look rarely stops
    assert verdict(_one(0.01), 1) == BUDGET  # 0.01 dB needs thousands of seeds
    assert verdict(_one(0.01), 2) == sq.FINAL
    no_futility = sq.SequentialDesign(12, 3, futility=False)
    assert verdict(_one(0.01), 1, d=no_futility) == sq.PENDING
    assert verdict(_one(0.0, se=0.05), 2, "equivalent", 0.5) == "holds"
    assert verdict(_one(0.1, se=0.05), 1, "not-greater", 0.5) == "holds"
    assert verdict(_one(math.nan), 1) == BUDGET  # no number: no seed count decides it
    with pytest.raises(ValueError, match="look 3"):
        verdict(_one(0.2), 3)


def _brute_seeds(distance, obs, level, power):
    """The smallest n, trying every n up to 10^5: the definition, without the module's
    search (inf when none suffices)."""
    n = np.arange(2, 100_000, dtype=float)
    unit = (obs.se**2 - obs.clip_se**2) * obs.replicates
    df = obs.df / (obs.replicates - 1) * (n - 1)
    q = sps.t.ppf(0.5 + level / 2, df) + sps.t.ppf(power, df)
    ok = np.flatnonzero(q * np.sqrt(unit / n + obs.clip_se**2) <= distance)
    return float(n[ok[0]]) if ok.size else math.inf


@pytest.mark.parametrize(
    "effect, expect, margin, distance",
    [
        (0.35, "greater", 0.0, 0.35),
        (-0.2, "greater", 0.0, 0.2),
        (0.1, "equivalent", 0.5, 0.4),
        (0.4, "not-greater", 0.5, 0.1),
        (0.02, "less", 0.0, 0.02),  # the clips alone (0.05 dB se) forbid it: inf
    ],
)
def test_seeds_needed_is_the_smallest_sufficient_count(effect, expect, margin, distance):
    obs = _one(effect, se=0.186, df=4.5, clip_se=0.05, replicates=3)
    design = sq.SequentialDesign(12, 3)
    need = float(sq.seeds_needed(obs, expect, margin, 0.9537, 0.8))
    assert need == _brute_seeds(distance, obs, 0.9537, 0.8)
    beyond = bool(sq.beyond_budget(obs, expect, margin, design, 0.9537))
    assert beyond == (need > 12)


# --------------------------------------------------------------------------- the planner


def _state(claim, runs, *effects, expect="greater", **kw):
    obs = tuple(_one(e, se=s, replicates=n) for e, s, n in effects)
    return sq.ClaimState(claim, tuple(runs), expect, observations=obs, **kw)


def test_plan_extends_only_undecided_confirmatory_claims():
    design = sq.SequentialDesign(12, 3)
    states = [
        _state("decided", ["grow-2stack", "const-2stack"], (3.0, 0.3, 3)),  # holds at look 0
        _state("open-a", ["ours@15000", "parks"], (0.3, 0.12, 3)),
        _state("open-b", ["ours-1win@30000", ("ours", 20000)], (-0.25, 0.1, 3)),
        _state("hopeless", ["grow-1stack", "const-1stack"], (0.005, 0.1, 3)),
        _state("explore", ["grow-4stack@1000", "grow-3"], (0.3, 0.1, 3), confirmatory=False),
    ]  # fmt: skip
    plan = sq.plan_look(states, design, 0, model_of={"ours-1win": "ours"})
    assert plan.replicates == {"ours": 8, "parks": 8}
    assert plan.steps == {"ours": 30000, "parks": None}  # None: the variant's last step
    verdicts = {claim: s.verdict for claim, s in plan.status.items()}
    assert verdicts == {
        "decided": "holds", "open-a": sq.PENDING, "open-b": sq.PENDING, "hopeless": BUDGET,
    }  # fmt: skip
    assert sq.next_replicates(states, design, 0, {"ours-1win": "ours"}) == plan.replicates
    unmapped = sq.steps_needed(states, design, 0)  # ours-1win: a variant of its own
    assert unmapped == {"ours": 20000, "ours-1win": 30000, "parks": None}


def test_steps_that_cannot_be_ordered_train_to_the_end():
    design = sq.SequentialDesign(12, 3)
    states = [
        _state("one", ["x@best", "y@100"], (0.3, 0.12, 3)),
        _state("two", ["x@200", "y@300"], (0.3, 0.12, 3)),
    ]
    assert sq.steps_needed(states, design, 0) == {"x": None, "y": 300}


def test_plan_after_the_second_look_and_a_claim_left_behind():
    design = sq.SequentialDesign(12, 3)
    open_ = _state("open", ["ours@15000", "parks@15000"], (0.3, 0.12, 3), (0.2, 0.08, 8))
    plan = sq.plan_look([open_], design, 1)
    assert plan.replicates == {"ours": 12, "parks": 12} and plan.steps["parks"] == 15000
    status = plan.status["open"]
    assert (status.look, status.replicates, status.level) == (1, 8, design.levels[1])
    assert sq.plan_look([open_], design, 0).replicates == {"ours": 8, "parks": 8}  # a rerun
    last = _state("open", open_.runs, (0.3, 0.12, 3), (0.2, 0.08, 8), (0.1, 0.07, 12))
    plan = sq.plan_look([last], design, 2)
    assert plan.replicates == {} and plan.status["open"].verdict == sq.FINAL
    behind = _state("behind", ["ours", "parks"], (0.3, 0.12, 3))
    with pytest.raises(ValueError, match="claim behind: undecided at look 0"):
        sq.plan_look([behind], design, 1)


# --------------------------------------------------------------------------- simulation

M = 40_000  # simulated claims per setting
SIGMA, CLIP_SE, CLIPS = 0.22, 0.05, 825  # seed sd and clip se of the effect (dB), test clips
MC_SE = math.sqrt(0.025 * 0.975 / M)  # Monte-Carlo se of a 2.5 % rate: 0.0008


def _observe(ga, gb, clip, clip_se=CLIP_SE):
    """The engine's interval (stats.combine) for M claims at once: difference of the
    per-seed means plus the clips' error, seed variances of both runs, Satterthwaite df."""
    n = ga.shape[1]
    va, vb = ga.var(axis=1, ddof=1) / n, gb.var(axis=1, ddof=1) / n
    total = clip_se**2 + va + vb
    df = total**2 / (clip_se**4 / (CLIPS - 1) + (va**2 + vb**2) / (n - 1))
    effect = ga.mean(axis=1) - gb.mean(axis=1) + clip
    return sq.Observation(effect, np.sqrt(total), df, np.full(len(clip), clip_se), n)


def _draw(design, delta, seed, clip_se=CLIP_SE):
    """Per-seed global metrics of runs A (true effect ``delta``) and B for M claims; the
    clips' error is drawn once per claim (the same test clips at every look)."""
    rng = np.random.default_rng(seed)
    n = design.replicates[-1]
    ga = delta + SIGMA * rng.standard_normal((M, n))
    gb = SIGMA * rng.standard_normal((M, n))
    return ga, gb, clip_se * rng.standard_normal(M)


def simulate(design, delta, seed, levels=None, expect="greater", margin=0.0, clip_se=CLIP_SE):
    """The whole procedure on M claims (A > B by default): look k uses the first n_k seeds."""
    ga, gb, clip = _draw(design, delta, seed, clip_se)
    obs = [_observe(ga[:, :n], gb[:, :n], clip, clip_se) for n in design.replicates]
    verdict, look = sq.sequential_verdicts(obs, expect, margin, design, levels)
    seeds = np.asarray(design.replicates)[look]
    return {"holds": float(np.mean(verdict == "holds")), "seeds": float(seeds.mean())}


def test_the_simulated_interval_is_the_engines():
    ga, gb, clip = _draw(sq.SequentialDesign(12, 3), 0.0, 9)
    obs = _observe(ga[:5, :3], gb[:5, :3], clip[:5])
    for i in range(5):
        terms = [(float(np.var(g[i, :3], ddof=1) / 3), 2) for g in (ga, gb)]
        lo, hi, se, df, _ = st.combine(float(obs.effect[i]), CLIP_SE, CLIPS, terms)
        assert (obs.se[i], obs.df[i]) == pytest.approx((se, df), rel=1e-9)


@pytest.fixture(scope="module")
def results():
    """Every setting once (about 5 s); printed for docs/statistics.md ("Sequential replicates")."""
    obf, fixed3 = sq.SequentialDesign(12, 3), sq.SequentialDesign(3, 1)
    bare = sq.SequentialDesign(12, 3, futility=False)
    pocock = sq.SequentialDesign(12, 3, boundary="pocock", futility=False)
    lenient = sq.SequentialDesign(12, 3, power=0.5)  # futility: seeds for a 50 % chance
    naive = [0.95] * 3
    out = {
        "obf null": simulate(obf, 0.0, 1),
        "naive null": simulate(obf, 0.0, 1, naive),
        "obf, no futility, null": simulate(bare, 0.0, 1),
        "naive, no futility, null": simulate(bare, 0.0, 1, naive),
        "pocock, no futility, null": simulate(pocock, 0.0, 1),
        "obf, futility at 50 %, null": simulate(lenient, 0.0, 1),
        "fixed 3 null": simulate(fixed3, 0.0, 1),
        "obf, no futility, null, clip se 0.3": simulate(bare, 0.0, 1, clip_se=0.3),
        "equivalent at its margin": simulate(obf, 0.5, 3, None, "equivalent", 0.5),
        "ditto, no futility": simulate(bare, 0.5, 3, None, "equivalent", 0.5),
        "obf 0.35": simulate(obf, 0.35, 2),
        "obf, futility at 50 %, 0.35": simulate(lenient, 0.35, 2),
        "obf, no futility, 0.35": simulate(bare, 0.35, 2),
        "fixed 3 0.35": simulate(fixed3, 0.35, 2),
        "fixed 12 0.35": simulate(sq.SequentialDesign(12, 1), 0.35, 2),
    }
    print(
        f"\nM = {M}, seed sd {SIGMA}, clip se {CLIP_SE}, looks at 3/8/12 seeds; MC se {MC_SE:.4f}"
    )
    for name, r in out.items():
        print(f"  {name:36s} P(holds) {r['holds']:.4f}  mean seeds per run {r['seeds']:.2f}")
    return out


def test_false_holds_at_the_null_stay_within_alpha(results):
    # one-sided 2.5 % (the 95 % interval's lower side); 3 Monte-Carlo se of slack
    nulls = ("obf null", "obf, futility at 50 %, null", "obf, no futility, null")
    nulls += (
        "obf, no futility, null, clip se 0.3",
        "equivalent at its margin",
        "ditto, no futility",
    )
    for name in (*nulls, "pocock, no futility, null"):
        assert results[name]["holds"] <= 0.025 + 3 * MC_SE, name
    # without futility stops the boundaries alone spend it, nearly all
    assert results["obf, no futility, null"]["holds"] > 0.025 - 4 * MC_SE


def test_looking_at_95_percent_each_time_inflates_the_error(results):
    assert results["naive, no futility, null"]["holds"] > 0.04  # about twice the level
    assert results["naive null"]["holds"] > 0.025 + 3 * MC_SE
    assert results["naive null"]["holds"] > results["obf null"]["holds"] + 5 * MC_SE


def test_sequential_seeds_buy_power_over_three_seeds(results):
    mc = math.sqrt(0.25 / M)  # the largest se of a rate
    assert results["obf 0.35"]["holds"] > results["fixed 3 0.35"]["holds"] + 10 * mc
    bare, fixed12 = results["obf, no futility, 0.35"], results["fixed 12 0.35"]
    assert bare["holds"] > fixed12["holds"] - 0.02  # O'Brien-Fleming costs ~no power
    assert bare["seeds"] < fixed12["seeds"] - 1.5  # and stops large effects early
    assert results["obf null"]["seeds"] < 4.5  # futility: few seeds spent on nothing


def test_futility_trades_power_for_seeds(results):
    strict, lenient = results["obf 0.35"], results["obf, futility at 50 %, 0.35"]
    bare = results["obf, no futility, 0.35"]
    assert strict["holds"] < lenient["holds"] < bare["holds"]
    assert strict["seeds"] < lenient["seeds"] < bare["seeds"]


def test_the_planner_runs_the_simulated_procedure():
    """A few simulated claims through plan_look, look by look, seeds added only where it
    asks: the verdicts are sequential_verdicts'."""
    design = sq.SequentialDesign(12, 3)
    ga, gb, clip = _draw(design, 0.3, 5)
    ga, gb, clip = ga[:60], gb[:60], clip[:60]
    every = [_observe(ga[:, :n], gb[:, :n], clip) for n in design.replicates]
    expected, _ = sq.sequential_verdicts(every, "greater", 0.0, design)
    have = {f"a{i}": 3 for i in range(60)}
    states = {}
    for look, n in enumerate(design.replicates):
        for i in range(60):
            if have[f"a{i}"] < n:  # not extended: the claim stopped
                continue
            ob = _observe(ga[i : i + 1, :n], gb[i : i + 1, :n], clip[i : i + 1])
            obs = sq.Observation(*(np.ravel(x)[0] for x in vars(ob).values()))
            prev = states.get(i, sq.ClaimState(f"c{i}", (f"a{i}", f"b{i}"), "greater"))
            states[i] = sq.ClaimState(
                prev.claim, prev.runs, "greater", 0.0, (*prev.observations, obs)
            )
        plan = sq.plan_look(list(states.values()), design, look)
        have.update(plan.replicates)
    final = [sq.claim_status(states[i], design).verdict for i in range(60)]
    assert final == list(expected)
    assert len(set(final)) > 1

"""Deterministic runs (training-free methods, oracles) carry no seed term: a trained run
against one is judged by the clips and the trained run's own seeds; two of them by the clips
alone, and that is a verdict, not "one seed" (claims.stats, claims.experiments_io)."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from test_claims import claim, noisy, run_scores

from hourglass_sep.claims import cli as claims_cli
from hourglass_sep.claims import stats as st
from hourglass_sep.claims.experiments_io import mark_deterministic
from hourglass_sep.claims.tables import ONE_SEED
from hourglass_sep.claims.verdicts import evaluate_claims

KNOWN = {"ours": [(75, 15000)], "repet": [(0, 0)], "rpca": [(0, 0)]}
N = 200


@pytest.fixture(scope="module")
def base():
    return np.random.default_rng(5).normal(9, 3, N)


# ---------------------------------------------------------------- seed terms, known answers
def test_a_trained_run_against_a_fixed_one_keeps_only_its_own_seed_term():
    g = np.array([1.0, 2.0, 3.0])
    terms, sd = st.seed_terms([g, np.array([5.0])], fixed=(False, True))
    assert terms == [(pytest.approx(np.var(g, ddof=1) / 3), 2)] and sd == pytest.approx(1.0)
    assert terms[0][0] == pytest.approx(1 / 3)
    # the order of the runs does not matter
    assert st.seed_terms([np.array([5.0]), g], fixed=(True, False)) == (terms, sd)
    # nor how many (repeated) replicates the fixed run has: it lends nothing
    assert st.seed_terms([g, np.array([5.0, 5.0, 5.0])], fixed=(False, True)) == (terms, sd)


def test_two_fixed_runs_have_no_seed_term_and_a_seed_sd_of_zero():
    assert st.seed_terms([np.array([5.0]), np.array([7.0])], fixed=(True, True)) == ([], 0.0)
    three = [np.array([5.0, 6.0, 7.0]), np.array([7.0])]
    assert st.seed_terms(three, fixed=(True, True)) == ([], 0.0)


def test_one_replicate_against_a_fixed_run_has_no_term():
    terms, sd = st.seed_terms([np.array([4.0]), np.array([5.0])], fixed=(False, True))
    assert terms == [] and math.isnan(sd)


def test_without_fixed_a_single_replicate_borrows_the_donors_variance():
    g, one = np.array([1.0, 2.0, 3.0]), np.array([5.0])
    pooled = ([(pytest.approx(1.0 * (1 / 3 + 1)), 2)], pytest.approx(1.0))
    assert st.seed_terms([g, one]) == pooled  # one merged term over both runs
    assert st.seed_terms([g, one], fixed=(False, False)) == pooled
    assert st.difference_terms(g, one) == pooled
    # both runs with replicates: one term each, the sd pooled
    terms, sd = st.seed_terms([g, np.array([2.0, 4.0])])
    assert terms == [(pytest.approx(1 / 3), 2), (pytest.approx(2 / 2), 1)]
    assert sd == pytest.approx(math.sqrt((1 * 2 + 2 * 1) / 3))


def test_difference_terms_pass_fixed_on():
    g, one = np.array([1.0, 2.0, 3.0]), np.array([5.0])
    assert st.difference_terms(g, one, fixed=(False, True)) == ([(pytest.approx(1 / 3), 2)], 1.0)
    assert st.difference_terms(one, one, fixed=(True, True)) == ([], 0.0)
    # one model under two evaluations: the replicate-by-replicate differences, fixed or not
    terms, sd = st.difference_terms(g, g + np.array([0.0, 1.0, 2.0]), paired=True)
    assert terms == [(pytest.approx(1 / 3), 2)] and sd == pytest.approx(1.0)


# ---------------------------------------------------------------- paired_effect
def _arrays(base, reps_a, shift=1.0):
    """(a: reps_a replicates at shift + 0, 1, 2, ... dB, b: one replicate, equal weights)."""
    noise = np.random.default_rng(1).normal(0, 0.5, N)
    a = np.stack([base + noise + shift + r for r in range(reps_a)])
    return a, base[None, :], np.ones(N), np.arange(N) % 20


def test_paired_effect_adds_the_trained_runs_seed_term_only(base):
    a, b, w, groups = _arrays(base, 3)
    kw = dict(n_boot=500, n_perm=200)
    mixed = st.paired_effect(a, b, w, groups, fixed=(False, True), **kw)
    clips = st.paired_effect(a, b, w, groups, fixed=(True, True), **kw)
    assert mixed.variance == st.CLIPS_SEEDS and mixed.replicates == (3, 1)
    assert mixed.seed_sd == pytest.approx(1.0)  # replicates 1 dB apart
    assert mixed.estimate == pytest.approx(clips.estimate) == pytest.approx(2.0, abs=0.2)
    # the interval's variance: the clips' plus var(g) / 3 of the trained run alone
    assert mixed.se**2 == pytest.approx(clips.se**2 + 1 / 3)
    c = clips.se**2
    assert mixed.df == pytest.approx((c + 1 / 3) ** 2 / (c**2 / 19 + (1 / 3) ** 2 / 2))
    borrowed = st.paired_effect(a, b, w, groups, **kw)  # b borrows a's variance: wider
    assert borrowed.se**2 == pytest.approx(clips.se**2 + 1 / 3 + 1)


def test_two_fixed_runs_are_judged_by_the_clips_alone(base):
    a, b, w, groups = _arrays(base, 1)
    eff = st.paired_effect(a, b, w, groups, n_boot=500, n_perm=200, fixed=(True, True))
    assert eff.variance == st.CLIPS_FIXED != st.CLIPS and eff.seed_sd == 0.0
    assert eff.p_method == "sign-flip permutation" and (eff.lo, eff.hi) == (
        eff.clips_lo,
        eff.clips_hi,
    )
    plain = st.paired_effect(a, b, w, groups, n_boot=500, n_perm=200)
    assert plain.variance == st.CLIPS and math.isnan(plain.seed_sd)
    assert (plain.lo, plain.hi) == (eff.lo, eff.hi)  # the same interval, another name


def test_one_replicate_against_a_fixed_run_is_clips_only(base):
    a, b, w, groups = _arrays(base, 1)
    eff = st.paired_effect(a, b, w, groups, n_boot=500, n_perm=200, fixed=(False, True))
    assert eff.variance == st.CLIPS and math.isnan(eff.seed_sd)


# ---------------------------------------------------------------- score tables
def _scores(base, reps_ours=3, det=True, shift=1.0, spread=0.1, other="repet"):
    ours = [
        run_scores("ours", 75, noisy(base, shift + spread * r, r), replicate=r)
        for r in range(reps_ours)
    ]
    fixed = run_scores(other, 0, noisy(base, 0.0, 50)).assign(deterministic=det)
    return pd.concat([*(o.assign(deterministic=False) for o in ours), fixed], ignore_index=True)


def test_prepare_scores_adds_deterministic_and_align_runs_reports_it(base):
    bare = st.prepare_scores(run_scores("ours", 75, base))
    assert bare["deterministic"].dtype == bool and not bare["deterministic"].any()
    holes = run_scores("repet", 0, base).assign(deterministic=None)
    assert not st.prepare_scores(holes)["deterministic"].any()  # missing: not deterministic
    scores = st.prepare_scores(_scores(base))
    al = st.align_runs(scores, [("ours", 75), ("repet", 0)], "voice_nsdr")
    assert al.fixed == (False, True)
    assert [v.shape for v in al.values] == [(3, N), (1, N)]
    al = st.align_runs(st.prepare_scores(_scores(base, det=False)), [("repet", 0)], "voice_nsdr")
    assert al.fixed == (False,)


def test_mark_deterministic_marks_the_runs_that_do_not_train(base):
    scores = pd.concat(
        [
            run_scores("ours", 75, base),
            run_scores("ours.s1", 75, base),
            run_scores("ours-1win", 75, base),
            run_scores("repet", 0, base),
            run_scores("old", 10, base),
        ]
    )
    rows = [
        {"variant": "ours", "step": 75, "trains": True},
        {"variant": "ours.s1", "step": 75, "trains": True},
        {"variant": "ours-1win", "step": 75, "trains": True},  # an evaluation variant
        {"variant": "repet", "step": 0, "trains": False},
        {"variant": "old", "step": 10},  # an experiments.json from before: not marked
    ]
    out = mark_deterministic(scores, rows)
    marked = out.groupby("variant")["deterministic"].agg(["all", "any"])
    assert set(marked.index[marked["any"]]) == {"repet"} and marked.loc["repet", "all"]
    assert "deterministic" not in scores.columns  # the input is left as it was
    assert len(out) == len(scores)


# ---------------------------------------------------------------- verdicts
def _verdicts(df, b="repet", **kw):
    c = claim("ours-vs-b", compare={"a": "ours", "b": b}, expect="greater")
    return evaluate_claims([c], df, known_runs=KNOWN, n_perm=500, n_boot=500, **kw)


def test_three_replicates_against_a_deterministic_run_give_a_verdict(base):
    t = _verdicts(_scores(base, reps_ours=3, det=True))
    assert list(t["level"]) == ["claim", "part", "part"]
    assert (t["variance"] == st.CLIPS_SEEDS).all()
    assert (t["verdict"] == "holds").all() and ONE_SEED not in set(t["verdict"])
    assert (t["n_replicates"] == 1).all()  # the fewest: the deterministic run's one
    # unmarked, repet would borrow ours' seed variance: the same verdict on a wider interval
    borrowed = _verdicts(_scores(base, reps_ours=3, det=False))
    assert (borrowed["variance"] == st.CLIPS_SEEDS).all()
    assert (borrowed["hi"] - borrowed["lo"] > t["hi"] - t["lo"]).all()
    # a planted 0.7 dB loss is a real verdict too, the other way
    t = _verdicts(_scores(base, reps_ours=3, det=True, shift=-0.7))
    assert (t["verdict"] == "contradicted").all()


def test_without_the_mark_one_replicate_each_is_one_seed(base):
    t = _verdicts(_scores(base, reps_ours=1, det=False))
    assert (t["verdict"] == ONE_SEED).all() and (t["variance"] == st.CLIPS).all()
    assert t["detail"].str.contains("clips alone would say holds").all()


def test_one_replicate_against_a_deterministic_run_is_still_one_seed(base):
    t = _verdicts(_scores(base, reps_ours=1, det=True))
    assert (t["verdict"] == ONE_SEED).all()


def test_two_deterministic_runs_are_judged_by_the_clips(base):
    df = pd.concat(
        [
            run_scores("repet", 0, noisy(base, 1.0, 7)).assign(deterministic=True),
            run_scores("rpca", 0, noisy(base, 0.0, 8)).assign(deterministic=True),
        ]
    )
    c = claim("repet-vs-rpca", compare={"a": "repet", "b": "rpca"}, expect="greater")
    t = evaluate_claims([c], df, known_runs=KNOWN, n_perm=500, n_boot=500)
    assert (t["verdict"] == "holds").all() and (t["variance"] == st.CLIPS_FIXED).all()


def test_the_claims_verb_marks_the_runs_experiments_json_says_do_not_train(base, tmp_path):
    """Scores files as the workflow writes them (a replicate run is ``ours.s1``), the rows of
    experiments.json: ``trains: false`` is what turns "one seed" into a verdict."""
    paths = []
    for r, name in enumerate(("ours", "ours.s1", "ours.s2")):
        p = tmp_path / f"{name}.tsv"
        run_scores(name, 75, noisy(base, 1.0 + 0.1 * r, r)).to_csv(p, sep="\t", index=False)
        paths.append(str(p))
    p = tmp_path / "repet.tsv"
    run_scores("repet", 0, noisy(base, 0.0, 50)).to_csv(p, sep="\t", index=False)
    paths.append(str(p))
    rows = [
        {"variant": v, "base_variant": "ours", "replicate": r, "step": 75, "paper_step": 15000,
         "model": v, "trains": True}
        for r, v in enumerate(("ours", "ours.s1", "ours.s2"))
    ]  # fmt: skip
    rows.append({"variant": "repet", "step": 0, "paper_step": 0, "model": "repet"})
    doc = {"claims": [claim("c", compare={"a": "ours@15000", "b": "repet"}, expect="greater")]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc))

    def verdicts(repet_trains):
        rows[-1]["trains"] = repet_trains
        (tmp_path / "e.json").write_text(json.dumps({"meta": {"preset": "cpu"}, "rows": rows}))
        p = argparse.ArgumentParser()
        claims_cli.add_arguments(p)
        args = p.parse_args(
            ["--claims", str(tmp_path / "c.yaml"), "--scores", *paths, "--experiments",
             str(tmp_path / "e.json"), "--permutations", "300", "--resamples", "500",
             "-o", str(tmp_path / "v.tsv")]
        )  # fmt: skip
        claims, scores, kwargs = claims_cli.load_inputs(args)
        assert scores.loc[scores["variant"] == "ours", "replicate"].nunique() == 3
        return evaluate_claims(claims, scores, **kwargs)

    fixed = verdicts(False)
    assert (fixed["variance"] == st.CLIPS_SEEDS).all() and (fixed["verdict"] == "holds").all()
    # the same scores, repet recorded as a trained run of one replicate: it borrows ours' seeds
    trained = verdicts(True)
    assert (trained["variance"] == st.CLIPS_SEEDS).all()
    assert (trained["hi"] - trained["lo"] > fixed["hi"] - fixed["lo"]).all()

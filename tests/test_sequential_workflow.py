"""The sequential design in the pipeline: which runs a look may add (reserve replicates of the
confirmatory claims' variants, trained only as far as those claims' steps), what a look
observes (the first n_j replicates at look j) and how the last look's verdicts replace the
fixed-design ones."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO
from test_claims import claim, noisy, run_scores

from hourglass_sep.claims import sequential as sq
from hourglass_sep.claims.looks import apply_sequential, at_replicates, claim_states, run_look
from hourglass_sep.claims.verdicts import evaluate_claims
from hourglass_sep.pipeline.sequential_runs import (
    added_runs,
    design_of,
    needed_steps,
    reserve_of,
    reserve_runs,
)
from hourglass_sep.plan.experiments import ConfigError, resolve


@pytest.fixture(scope="module")
def cpu_config():
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    over = yaml.safe_load((REPO / "configs" / "cpu.yaml").read_text())
    return {**base, **over, "claims_sequential": {"max_replicates": 8, "looks": 3}}


def test_reserve_runs_extend_only_confirmatory_variants_to_their_steps(cpu_config):
    runs = resolve(cpu_config)
    design = design_of(cpu_config, cpu_config["replicates"])
    assert design.replicates == (3, 6, 8)
    reserve = reserve_runs(cpu_config, runs, cpu_config["claims"], design)
    steps = needed_steps(cpu_config, cpu_config["claims"])
    confirmatory = {c["id"] for c in cpu_config["claims"] if c.get("family") == "confirmatory"}
    assert "ours-vs-parks" in confirmatory
    # ours trains to 30,000 paper steps, but its confirmatory claims use 15,000 only
    ours = [v for v in reserve.values() if v.base_variant == "ours"]
    assert sorted(v.replicate for v in ours) == [3, 4, 5, 6, 7]
    full = runs["ours"]
    for v in ours:
        assert v.train.iterations == max(steps["ours"]) < full.train.iterations
        assert [e.step for e in v.evaluations] == sorted(steps["ours"])
        assert v.train.seed not in {r.train.seed for r in runs.values() if r.base_variant == "ours"}
    assert not set(reserve) & set(runs)
    exploratory_only = {"grow-3stack", "const-4stack"}  # only in exploratory claims
    assert not {v.base_variant for v in reserve.values()} & exploratory_only


def test_reserve_of_follows_the_plan_and_the_union_keeps_earlier_looks(cpu_config):
    runs = resolve(cpu_config)
    design = design_of(cpu_config, 3)
    reserve = reserve_runs(cpu_config, runs, cpu_config["claims"], design)
    first = reserve_of(reserve, {"ours": 6})
    assert sorted(reserve[n].replicate for n in first) == [3, 4, 5]
    assert all(reserve[n].base_variant == "ours" for n in first)
    both = added_runs(reserve, [{"replicates": {"ours": 6}}, {"replicates": {"parks": 6}}])
    assert set(first) <= set(both) and any(reserve[n].base_variant == "parks" for n in both)


def test_a_bad_design_names_the_key(cpu_config):
    with pytest.raises(ConfigError, match="claims_sequential"):
        design_of({**cpu_config, "claims_sequential": {"max_replicates": 2, "looks": 3}}, 3)
    assert design_of({**cpu_config, "claims_sequential": None}, 3) is None


def _scores(shift: float, reps: int, spread: float = 0.2) -> pd.DataFrame:
    base = np.random.default_rng(5).normal(9, 3, 120)
    rng = np.random.default_rng(11)
    a = [
        run_scores("ours", 75, noisy(base, shift + rng.normal(0, spread), r), replicate=r)
        for r in range(reps)
    ]
    b = [
        run_scores("parks", 75, noisy(base, rng.normal(0, spread), 50 + r), replicate=r)
        for r in range(reps)
    ]
    return pd.concat(a + b)


KNOWN = {"ours": [(75, 15000)], "parks": [(75, 15000)]}


def _evaluate(claims):
    return lambda s: evaluate_claims(claims, s, known_runs=KNOWN, n_perm=200, n_boot=300)


def test_look_j_observes_its_own_replicates_and_plans_more_for_an_undecided_claim():
    design = sq.SequentialDesign(max_replicates=8, looks=3, start=3, power=0.5)
    c = claim(
        "ours-vs-parks",
        compare={"a": "ours", "b": "parks"},
        expect="greater",
        family="confirmatory",
        source="voice",
    )
    scores = _scores(0.25, 8)
    assert set(at_replicates(scores, 3)["replicate"]) == {0, 1, 2}
    plan = run_look(_evaluate([c]), scores, design, 0, {})
    states = claim_states([_evaluate([c])(at_replicates(scores, 3))])
    assert [s.observations[0].replicates for s in states] == [3]
    status = plan["status"]["ours-vs-parks|voice|gnsdr|0"]
    if status["verdict"] == sq.PENDING:  # undecided: both runs get the next look's seeds
        assert plan["replicates"] == {"ours": 6, "parks": 6}
    else:
        assert plan["replicates"] == {}
    json.dumps(plan)  # the checkpoint's file
    again = run_look(_evaluate([c]), scores, design, 0, {})
    assert again == plan  # a rerun plans the same


def test_a_claim_over_six_metrics_is_observed_part_by_part():
    """greater-all: each (source, metric) part is a "greater" state of its own."""
    design = sq.SequentialDesign(max_replicates=6, looks=2, start=3, power=0.5)
    c = claim(
        "all-six",
        compare={"a": "ours", "b": "parks"},
        expect="greater-all",
        family="confirmatory",
    )
    plan = run_look(_evaluate([c]), _scores(0.3, 6), design, 0, {})
    names = sorted(plan["status"])
    assert len(names) == 6 and all(n.startswith("all-six|") for n in names)


def test_the_last_look_replaces_the_confirmatory_verdicts():
    design = sq.SequentialDesign(max_replicates=6, looks=2, start=3, power=0.5)
    c = claim(
        "big",
        compare={"a": "ours", "b": "parks"},
        expect="greater",
        family="confirmatory",
    )
    scores = _scores(2.0, 6, spread=0.05)  # 2 dB with tiny seed noise: decided at look 1
    plan = run_look(_evaluate([c]), scores, design, 1, {})
    assert plan["replicates"] == {}  # the last look asks for nothing
    table = _evaluate([c])(scores)
    out = apply_sequential(table, plan)
    assert (out["fixed_verdict"] == table["verdict"]).all()
    assert (out["verdict"] == "holds").all()
    assert out["detail"].str.contains("sequential: holds at look 1").all()


def test_one_command_runs_the_looks_and_a_rerun_resumes(tmp_path):
    """The tiny preset with two seeds and a design of two looks up to three: the looks run as
    checkpoints, the reserve runs a look asks for are trained and scored, the claims carry
    the design's verdicts, and the same command again has nothing to do."""
    from conftest import copy_repo, snakemake

    work = copy_repo(tmp_path / "repo")
    extra = tmp_path / "sequential.yaml"
    extra.write_text(
        # no futility stop: the one confirmatory claim, undecided at the first look's strict
        # level, gets a third seed per run before the last look
        "replicates: 2\nclaims_sequential: {max_replicates: 3, looks: 2, futility: false}\n"
        f"results: {tmp_path / 'results'}\n"
    )
    args = ("--cores", "2", "--configfile", "configs/tiny.yaml", str(extra))
    r = snakemake(work, *args)
    assert r.returncode == 0, (r.stdout + r.stderr)[-5000:]
    looks = tmp_path / "results" / "claims" / "sequential"
    first = json.loads((looks / "look0.json").read_text())
    last = json.loads((looks / "look1.json").read_text())
    assert first["replicates_now"] == 2 and last["replicates_now"] == 3
    assert last["replicates"] == {}  # the last look asks for nothing
    assert first["replicates"] == {"voice-mask": 3, "ours": 3}  # the claim's two runs
    for variant in first["replicates"]:  # what look 0 asked for was trained and scored
        assert list((tmp_path / "results" / "scores").glob(f"{variant}.s*/step*/*.tsv"))
    status = last["status"]["voice-mask-voice-fine|voice|gnsdr|0"]
    assert status["replicates"] in (2, 3) and status["verdict"] != "pending"
    v = pd.read_csv(tmp_path / "results" / "claims" / "verdicts.tsv", sep="\t")
    assert "fixed_verdict" in v.columns
    judged = v[v["id"] == "voice-mask-voice-fine"]
    assert judged["detail"].str.contains(r"sequential: .* at look [12] \(", regex=True).all()
    again = snakemake(work, *args, "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def test_one_seed_is_no_observation_and_keeps_its_verdict():
    """A look cannot judge a pair without measured seed variance: no state, and the last
    look leaves its "inconclusive (one seed)" alone."""
    from hourglass_sep.claims.tables import ONE_SEED

    design = sq.SequentialDesign(max_replicates=3, looks=2, start=2, power=0.5)
    c = claim("one", compare={"a": "ours", "b": "parks"}, expect="greater", family="confirmatory")
    scores = _scores(0.3, 1)
    plan = run_look(_evaluate([c]), scores, design, 1, {})
    assert plan["status"] == {}
    table = _evaluate([c])(scores)
    assert (table["verdict"] == ONE_SEED).all()
    assert (apply_sequential(table, plan)["verdict"] == ONE_SEED).all()

"""One seed is not a verdict (issue 20, item 9): two trained runs of one replicate each are
"inconclusive (one seed)" unless a seed-sd prior is given; a run of two replicates lends no
seed variance (one degree of freedom), a run of three does; one model under two evaluations
needs no seed variance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_claims import claim, noisy, run_scores

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.tables import ONE_SEED, VERDICTS
from hourglass_sep.claims.verdicts import evaluate_claims

KNOWN = {"ours": [(75, 15000)], "parks": [(75, 15000)]}


@pytest.fixture(scope="module")
def base():
    return np.random.default_rng(3).normal(9, 3, 200)


def _evaluate(df, prior=None, expect="greater", **kw):
    c = claim("ours-vs-parks", compare={"a": "ours", "b": "parks"}, expect=expect, **kw)
    return evaluate_claims([c], df, known_runs=KNOWN, n_perm=500, seed_sd_prior=prior)


def _runs(base, shift, reps_a=1, reps_b=1, spread=0.0):
    a = [run_scores("ours", 75, noisy(base, shift + spread * r, r), replicate=r)
         for r in range(reps_a)]  # fmt: skip
    b = [run_scores("parks", 75, noisy(base, spread * r, 50 + r), replicate=r)
         for r in range(reps_b)]  # fmt: skip
    return pd.concat(a + b)


def test_one_seed_each_is_inconclusive_whatever_the_clips_say(base):
    t = _evaluate(_runs(base, 1.0))  # a clear 1 dB over 200 clips, but one seed each
    # the claim-level row and its two sources
    assert list(t["verdict"]) == [ONE_SEED] * 3 and ONE_SEED in VERDICTS
    assert t["detail"].str.contains("clips alone would say holds").all()
    assert np.isfinite(t["effect"]).all()  # the measured effect is still reported


def test_a_run_of_two_replicates_lends_nothing_a_run_of_three_does(base):
    two = _evaluate(_runs(base, 1.0, reps_a=2, spread=0.3))
    assert (two["verdict"] == ONE_SEED).all()
    three = _evaluate(_runs(base, 1.0, reps_a=3, spread=0.3))
    assert (three["variance"] == st.CLIPS_SEEDS).all()
    assert (three["verdict"] != ONE_SEED).all()


def test_two_replicates_each_are_judged_with_their_own_seed_variance(base):
    t = _evaluate(_runs(base, 1.0, reps_a=2, reps_b=2, spread=0.1))
    assert (t["variance"] == st.CLIPS_SEEDS).all() and (t["verdict"] == "holds").all()


def test_a_seed_sd_prior_widens_the_interval_and_decides(base):
    df = _runs(base, 1.0)
    clips_only = _evaluate(df, prior=0.0)
    small = _evaluate(df, prior=0.2)  # 1 dB against a seed sd of 0.2 dB: still holds
    large = _evaluate(df, prior=2.0)  # against 2 dB: no longer decided
    assert (clips_only["verdict"] == "holds").all() and (small["verdict"] == "holds").all()
    assert (large["verdict"] == "inconclusive").all()
    width = lambda t: (t["hi"] - t["lo"]).to_numpy()  # noqa: E731
    assert (width(clips_only) < width(small)).all() and (width(small) < width(large)).all()
    half = 1.959964 * 2.0 * np.sqrt(2)  # the prior's own half-width dominates
    assert (width(large) / 2 > 0.99 * half).all()
    assert large["variance"].eq("clips + seed prior (2 dB)").all()


def test_one_model_under_two_evaluations_needs_no_seed_variance(base):
    c = claim("same-model", compare={"a": "ours-1win", "b": "ours"}, expect="greater")
    df = pd.concat([run_scores("ours-1win", 75, noisy(base, 1.0, 1)), run_scores("ours", 75, base)])
    t = evaluate_claims([c], df, known_runs=KNOWN, n_perm=500, models={"ours-1win": "ours"})
    assert (t["verdict"] == "holds").all()


def test_a_run_against_a_number_needs_seeds_too(base):
    c = claim("ours-above", compare={"a": "ours", "threshold": 5.0}, source="voice", expect="above")
    t = evaluate_claims([c], run_scores("ours", 75, base), known_runs=KNOWN, n_perm=200)
    row = t.iloc[0]
    assert row["verdict"] == ONE_SEED
    assert "ours@75 gnsdr = " in row["detail"] and "one seed: replicates 1" in row["detail"]


def test_the_claims_verb_takes_the_prior_and_refuses_a_negative_one(base, tmp_path, capsys):
    import yaml

    from hourglass_sep.cli import main

    scores = tmp_path / "s.tsv"
    _runs(base, 1.0).to_csv(scores, sep="\t", index=False)
    doc = {"claims": [claim("c", compare={"a": "ours", "b": "parks"}, expect="greater")]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc))
    out = tmp_path / "v.tsv"
    args = ["claims", "--claims", str(tmp_path / "c.yaml"), "--scores", str(scores)]
    args += ["--permutations", "200", "-o", str(out)]
    assert main([*args, "--seed-sd-prior", "-0.5"]) == 2
    assert "--seed-sd-prior -0.5: give the seed-to-seed sd in dB (>= 0)" in capsys.readouterr().err
    assert not out.exists()
    assert main(args) == 0
    assert (pd.read_csv(out, sep="\t")["verdict"] == ONE_SEED).all()
    assert main([*args, "--seed-sd-prior", "0.2"]) == 0
    table = pd.read_csv(out, sep="\t")
    assert (table["verdict"] == "holds").all()
    assert table["variance"].eq("clips + seed prior (0.2 dB)").all()


def test_the_config_key_reaches_the_claims_rule(tmp_path):
    from conftest import REPO, snakemake

    extra = tmp_path / "prior.yaml"
    extra.write_text(f"claims_seed_sd_prior: 0.3\nresults: {tmp_path / 'results'}\n")
    r = snakemake(REPO, "-n", "-p", "--configfile", "configs/tiny.yaml", str(extra))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "--seed-sd-prior 0.3 " in out
    extra.write_text(f"claims_seed_sd_prior: -1\nresults: {tmp_path / 'results'}\n")
    r = snakemake(REPO, "-n", "--configfile", "configs/tiny.yaml", str(extra))
    assert r.returncode != 0 and "claims_seed_sd_prior" in r.stdout + r.stderr

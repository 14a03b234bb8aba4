"""Claims as data: validation messages, verdicts on constructed scores, the forest plot."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from hourglass_sep.claims import cli as claims_cli
from hourglass_sep.claims.experiments_io import (
    as_replicates,
    known_runs_from_experiments,
    replicate_map,
)
from hourglass_sep.claims.forest import forest_plot
from hourglass_sep.claims.runs import known_runs_from_config
from hourglass_sep.claims.spec import claims_for_runs, load_claims, validate_claims
from hourglass_sep.claims.tables import EFFECT_COLUMNS, ONE_SEED, effects_table
from hourglass_sep.claims.verdicts import evaluate_claims
from hourglass_sep.errors import UserError
from hourglass_sep.scoring.signals import SCORE_COLUMNS

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "workflow" / "schemas" / "claims.example.yaml"
N = 240
# variant -> [(step at this scale, paper-scale step)], as known_runs_from_config gives them
KNOWN = {
    "ours": [(75, 15000), (150, 30000)],
    "parks": [(75, 15000)],
    "s1": [(40, 1000)],
    "s2": [(40, 1000)],
    "s3": [(40, 1000)],
    "s4": [(40, 1000)],
    "e2e": [(40, 1000)],
    "unscored": [(40, 1000)],
}


def run_scores(variant, step, nsdr, replicate=0, status="ok"):
    clips = [f"singer{i % 10}_{i % 4}_{i:03d}" for i in range(len(nsdr))]
    samples = np.random.default_rng(0).integers(64_000, 210_000, len(nsdr))
    df = pd.DataFrame({c: math.nan for c in SCORE_COLUMNS}, index=range(len(nsdr)))
    df["variant"], df["step"], df["clip"], df["samples"] = variant, step, clips, samples
    df["singer"] = [c.split("_")[0] for c in clips]
    df["scorer"], df["seconds"], df["status"], df["replicate"] = "museval", 0.1, status, replicate
    for src, off in (("voice", 0.0), ("accompaniment", -1.0)):
        for m, d in (("nsdr", 0), ("sdr", 2), ("sir", 6), ("sar", 3)):
            df[f"{src}_{m}"] = np.asarray(nsdr) + off + d
    return df


@pytest.fixture(scope="module")
def base():
    return np.random.default_rng(42).normal(9, 3, N)


def noisy(base, shift, seed, sd=0.6):
    return base + shift + np.random.default_rng(seed).normal(0, sd, len(base))


def claim(cid="c", **kw):
    c = {"id": cid, "statement": "a claim", "family": "exploratory", "metric": "gnsdr"}
    c["source"] = "both"
    c.update(kw)
    return c


def evaluate(claims, df, parts=True, **kw):
    """Claims on constructed runs of one replicate each: these tests check the clip-level
    machinery, so they state a seed sd of 0 dB (else: "inconclusive (one seed)", tested in
    tests/test_one_seed.py).  ``parts``: only the rows of single-part claims and the parts of
    the others (the claim-level rows are tested in tests/test_claims_encoding.py)."""
    kw.setdefault("n_perm", 2000)
    kw.setdefault("seed_sd_prior", 0.0)
    out = evaluate_claims(claims, df, known_runs=KNOWN, **kw)
    if not parts:
        return out
    many = out.groupby("id")["level"].transform("size") > 1
    return out[~(many & (out["level"] == "claim"))].reset_index(drop=True)


def test_planted_shift_holds_and_its_interval_covers_it(base):
    df = pd.concat([run_scores("ours", 75, noisy(base, 1.0, 1)), run_scores("parks", 75, base)])
    out = evaluate([claim(compare={"a": "ours@15000", "b": "parks"}, expect="greater")], df)
    assert list(out["source"]) == ["voice", "accompaniment"]
    assert (out["verdict"] == "holds").all()
    assert ((out["lo"] <= 1.0) & (out["hi"] >= 1.0)).all()
    assert (out["n_clips"] == N).all() and (out["variance"] == "clips + seed prior (0 dB)").all()
    assert (out["p_value"] < 0.01).all() and (out["unit"] == "dB").all()
    less = evaluate([claim(compare={"a": "ours@15000", "b": "parks"}, expect="less")], df)
    assert (less["verdict"] == "contradicted").all()


def test_identical_runs_do_not_hold_a_difference_but_hold_equivalence(base):
    df = pd.concat(
        [run_scores("ours", 75, noisy(base, 0, 2)), run_scores("parks", 75, noisy(base, 0, 3))]
    )
    pair = {"a": "ours@15000", "b": "parks@15000"}
    out = evaluate(
        [
            claim("diff", compare=pair, expect="greater"),
            claim("same", compare=pair, expect="equivalent", margin=0.5),
        ],
        df,
    )
    diff, same = out[out["id"] == "diff"], out[out["id"] == "same"]
    assert ((diff["lo"] <= 0) & (diff["hi"] >= 0)).all()
    assert (diff["verdict"] == "inconclusive").all()
    assert (same["verdict"] == "holds").all() and (same["margin"] == 0.5).all()


def test_equivalence_is_contradicted_far_outside_the_margin(base):
    df = pd.concat([run_scores("ours", 75, noisy(base, 2.0, 4)), run_scores("parks", 75, base)])
    out = evaluate(
        [claim(compare={"a": "ours", "b": "parks"}, expect="equivalent", margin=0.5)], df
    )
    # plain "ours" is its last evaluated step (150), not scored here: no data
    assert (out["verdict"] == "no data").all()
    out = evaluate(
        [claim(compare={"a": "ours@75", "b": "parks"}, expect="equivalent", margin=0.5)], df
    )
    assert (out["verdict"] == "contradicted").all() and out["compare"][0] == "ours@75 - parks@75"


def chain_scores(base, shifts):
    return pd.concat(
        [run_scores(f"s{k}", 40, noisy(base, s, 10 + k)) for k, s in zip((4, 3, 2, 1), shifts)]
    )


def test_chain_holds_contradicted_or_inconclusive(base):
    c = [claim(compare={"chain": ["s4", "s3", "s2", "s1"]}, expect="greater", source="voice")]
    ordered = evaluate(c, chain_scores(base, (3.0, 2.0, 1.0, 0.0)))
    assert (
        ordered["verdict"][0] == "holds"
        and ordered["compare"][0] == "s4@40 > s3@40 > s2@40 > s1@40"
    )
    assert len(json.loads(ordered["pairs"][0])) == 3
    reversed_link = evaluate(c, chain_scores(base, (3.0, 1.0, 2.0, 0.0)))
    assert reversed_link["verdict"][0] == "contradicted"
    assert "s3@40 - s2@40" in reversed_link["detail"][0]  # the weakest link is named
    tied_link = evaluate(c, chain_scores(base, (3.0, 2.0, 2.0, 0.0)))
    assert tied_link["verdict"][0] == "inconclusive"
    effects = effects_table(ordered)
    assert len(effects) == 3 and (effects["verdict"] == "holds").all()
    # a link without scores: no data, unless another link already contradicts the chain
    partial = chain_scores(base, (3.0, 2.0, 1.0, 0.0))
    assert evaluate(c, partial[partial["variant"] != "s1"])["verdict"][0] == "no data"
    broken = chain_scores(base, (1.0, 2.0, 1.0, 0.0))
    assert evaluate(c, broken[broken["variant"] != "s1"])["verdict"][0] == "contradicted"


def test_threshold_claims_and_needs_paper_scale(base):
    df = run_scores("s1", 40, noisy(base, 0, 5))  # voice GNSDR ~ 9, accompaniment ~ 8
    c = claim(
        compare={"a": "s1", "threshold": {"voice": 8.0, "accompaniment": 10.0}},
        expect="above",
        needs="paper-scale",
    )
    paper = evaluate([c], df, preset="paper")
    assert list(paper["verdict"]) == ["holds", "contradicted"]
    assert list(paper["compare"]) == ["s1@40 vs 8", "s1@40 vs 10"]
    demo = evaluate([c], df, preset="demo")
    assert (demo["verdict"] == "needs paper scale").all()
    assert demo["detail"][0].startswith("at this scale: holds")
    assert demo["effect"][0] == pytest.approx(paper["effect"][0])


def test_silent_claim_judges_seeds_and_one_seed_is_no_verdict(base):
    both = "silent estimate (all zeros): voice, accompaniment"
    c = [claim(compare={"a": "e2e"}, expect="silent")]

    def seeds(*statuses):
        return pd.concat(
            [run_scores("e2e", 40, base, status=s, replicate=r) for r, s in enumerate(statuses)]
        )

    out = evaluate(c, seeds(both, both))
    assert (out["verdict"] == "holds").all() and (out["effect"] == 1.0).all()
    assert out["unit"][0] == "share of seeds" and (out["n_replicates"] == 2).all()
    assert (evaluate(c, seeds("ok", "ok"))["verdict"] == "contradicted").all()
    one_dead = evaluate(c, seeds(both, "ok"))
    assert (one_dead["verdict"] == "inconclusive").all() and (one_dead["effect"] == 0.5).all()
    voice_only = evaluate(c, seeds(*["silent estimate (all zeros): voice"] * 2))
    assert list(voice_only["verdict"]) == ["holds", "contradicted"]
    one = evaluate(c, run_scores("e2e", 40, base, status=both))  # one seed: no verdict
    assert (one["verdict"] == ONE_SEED).all()
    assert one["detail"].str.contains("one seed would say holds").all()


def test_replicates_widen_the_interval_and_say_so(base):
    reps = [
        run_scores("ours", 75, noisy(base, 1.0 + s, r), replicate=r)
        for r, s in enumerate((-0.8, 0.0, 0.8))
    ]
    df = pd.concat(reps + [run_scores("parks", 75, base)])
    c = [claim(compare={"a": "ours@15000", "b": "parks"}, expect="greater", source="voice")]
    out = evaluate(c, df)
    assert out["variance"][0] == "clips + seeds" and out["n_replicates"][0] == 1
    pair = json.loads(out["pairs"][0])[0]
    assert pair["replicates"] == [3, 1]
    assert out["hi"][0] - out["lo"][0] > 3 * (pair["clips_hi"] - pair["clips_lo"])
    assert out["verdict"][0] == "inconclusive"  # 1 dB against seed noise of 0.8 dB, 3 seeds


def test_evaluation_variants_from_the_scores_are_runs(base):
    df = pd.concat([run_scores("ours", 75, base), run_scores("ours-mir_eval", 75, base)])
    out = evaluate(
        [claim(compare={"a": "ours-mir_eval", "b": "ours@15000"}, expect="equivalent", margin=0.1)],
        df,
    )
    assert (out["verdict"] == "holds").all()


def test_faster_from_one_timing_per_side_is_inconclusive():
    """A speed table of single timings (no interleaved rounds, e.g. an old one) gives the ratio
    but no verdict; verdicts on interleaved repeats: tests/test_timing_claims.py."""
    speed = pd.DataFrame({"what": ["ours path", "seed scheme"], "seconds": [2.0, 9.0]})
    c = [claim(compare={"a": "ours path", "b": "seed scheme"}, expect="faster", factor=4)]
    out = evaluate(c, run_scores("s1", 40, np.zeros(5)), speed=speed)
    assert out["verdict"][0] == "inconclusive" and out["effect"][0] == pytest.approx(4.5)
    assert "not timed in the same interleaved rounds" in out["detail"][0]


def test_a_subset_against_its_full_set_is_not_paired_clip_by_clip(base):
    """One model scored on all clips (``ours``) and on a subset of them (``ours-sub``): paired
    on their common clips the difference would be 0 by construction; each on its own clips
    it is the subset's mean minus the full set's, with an interval from a joint bootstrap."""
    full = run_scores("ours", 75, base)
    rest = np.arange(N) >= 60
    sub = full[~rest].assign(variant="ours-sub")
    df = pd.concat([full, sub])
    c = [claim(compare={"a": "ours-sub", "b": "ours@15000", "clips": "own"}, expect="equivalent",
               margin=2.0, source="voice")]  # fmt: skip
    out = evaluate(c, df)
    w = full["samples"].to_numpy(float)
    want = np.average(base[:60], weights=w[:60]) - np.average(base, weights=w)
    assert out["effect"][0] == pytest.approx(want) and out["n_clips"][0] == N
    assert out["lo"][0] < want < out["hi"][0] and out["hi"][0] - out["lo"][0] > 0.3
    assert "own clips" in out["compare"][0]
    paired = evaluate([dict(c[0], compare={"a": "ours-sub", "b": "ours@15000"})], df)
    assert paired["effect"][0] == 0 and paired["hi"][0] == paired["lo"][0] == 0
    # a planted +1 dB on the subset's clips: detected, the interval covers the shift
    shifted = full.copy()
    for col in ("voice_nsdr", "accompaniment_nsdr"):
        shifted.loc[~rest, col] += 1.0
    df = pd.concat([full, shifted[~rest].assign(variant="ours-sub")])
    out = evaluate([{k: v for k, v in c[0].items() if k != "margin"} | {"expect": "greater"}], df)
    d = out["effect"][0] - want
    assert d == pytest.approx(1.0) and out["lo"][0] < want + 1.0 < out["hi"][0]
    refused([claim(compare={"a": "s1", "threshold": 0, "clips": "own"}, expect="above")],
            r"claims\[c\]\.compare\.clips: 'own' compares two runs")  # fmt: skip


def test_one_model_under_two_evaluations_pairs_its_replicates(base):
    """Two evaluations of the same three trained models (e.g. 1 vs 4 windows per pass) that
    give identical outputs: the seed noise cancels replicate by replicate, so equivalence
    holds with a zero-width interval; treated as independent runs it could not."""
    reps = [run_scores("m", 40, noisy(base, s, r), replicate=r) for r, s in enumerate((-1, 0, 1))]
    one = pd.concat(reps)
    df = pd.concat([one, one.assign(variant="m-4win")])
    known = {**KNOWN, "m": [(40, 1000)], "m-4win": [(40, 1000)]}
    c = [claim(compare={"a": "m-4win", "b": "m"}, expect="equivalent", margin=0.01)]
    same = evaluate_claims(c, df, known_runs=known, n_perm=500, models={"m-4win": "m"})
    assert (same["verdict"] == "holds").all() and (same["hi"] - same["lo"] == 0).all()
    apart = evaluate_claims(c, df, known_runs=known, n_perm=500)
    assert (apart["verdict"] == "inconclusive").all()


def test_faster_scoring_from_the_per_clip_seconds(base):
    rng = np.random.default_rng(3)
    a = run_scores("s1", 40, base).assign(seconds=rng.uniform(0.05, 0.1, N))
    b = run_scores("s2", 40, base).assign(seconds=a["seconds"] * rng.uniform(1.5, 2.5, N))
    c = [claim(compare={"a": "s1", "b": "s2"}, expect="faster", timing="scoring")]
    out = evaluate(c, pd.concat([a, b]))
    # one timing per clip and side, two jobs apart: no verdict, what the clips would say kept
    assert out["verdict"][0] == "inconclusive" and out["unit"][0] == "speed-up (x)"
    assert "not interleaved" in out["detail"][0]
    assert "the clips alone would say holds" in out["detail"][0]
    assert 1.5 < out["lo"][0] < out["effect"][0] < out["hi"][0] < 2.5
    assert out["effect"][0] == pytest.approx(b["seconds"].sum() / a["seconds"].sum())
    short = evaluate([dict(c[0], factor=3)], pd.concat([a, b]))["detail"][0]
    assert "the clips alone would say contradicted" in short
    same = evaluate(c, pd.concat([a, a.assign(variant="s2")]))  # x1: inside the zone
    assert same["effect"][0] == pytest.approx(1.0)
    assert "the clips alone would say contradicted" in same["detail"][0]
    refused([claim(compare={"a": "s1", "b": "s2"}, expect="greater", timing="scoring")],
            r"claims\[c\]\.timing: used only with expect faster")  # fmt: skip
    refused([claim(compare={"a": "s1", "b": "nope"}, expect="faster", timing="scoring")],
            r"claims\[c\]\.compare\.b: run 'nope' is not a variant")  # fmt: skip


def refused(claims, match, known=KNOWN):
    with pytest.raises(UserError, match=match):
        validate_claims(claims, known)


def test_validator_names_the_claim_and_the_key():
    ok = claim("ours-vs-parks", compare={"a": "ours@15000", "b": "parks"}, expect="greater")
    out = validate_claims([ok], KNOWN)
    assert out[0]["runs"] == {"a": ("ours", 75), "b": ("parks", 75)}
    bad = copy.deepcopy(ok)
    bad["compare"]["b"] = "parkz"
    refused([bad], r"claims\[ours-vs-parks\]\.compare\.b: run 'parkz' is not a variant \(known: ")
    bad = dict(ok, metric="gnsdrr")
    refused([bad], r"claims\[ours-vs-parks\]\.metric: 'gnsdrr' is not one of")
    bad = copy.deepcopy(ok)
    bad["compare"]["a"] = "ours@20000"
    refused([bad], r"claims\[ours-vs-parks\]\.compare\.a: step 20000 is not evaluated for 'ours'")
    bad = {**claim("c2", compare={"chain": ["s1", "nope"]}, expect="greater")}
    refused([bad], r"claims\[c2\]\.compare\.chain\[1\]: run 'nope' is not a variant")
    refused([ok, ok], r"claims\[ours-vs-parks\]\.id: the id 'ours-vs-parks' is used twice")
    refused([dict(ok, expect="equivalent")], r"claims\[ours-vs-parks\]\.margin: .*needs a margin")
    refused([dict(ok, expect="above")], r"claims\[ours-vs-parks\]\.compare: expect above needs")
    refused([dict(ok, expect="bigger")], r"claims\[ours-vs-parks\]\.expect: 'bigger' is not one of")
    refused([dict(ok, colour="red")], r"claims\[ours-vs-parks\]: Additional properties")
    thr = claim("t", compare={"a": "s1", "threshold": {"voice": 1.0}}, expect="above")
    refused([thr], r"claims\[t\]\.compare\.threshold: no value for source\(s\) \['accompaniment'\]")


def test_example_claims_validate_against_the_config():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    paper = load_claims(EXAMPLE, known_runs_from_config(config))
    by_id = {c["id"]: c for c in paper}
    assert by_id["ours-vs-parks"]["runs"] == {"a": ("ours", 15000), "b": ("parks", 15000)}
    assert by_id["best-beats-park-paper"]["runs"]["a"] == ("uniform-lr1e-3", 20000)
    config_claims = yaml.safe_load((REPO / "config.yaml").read_text())["claims"]
    example = yaml.safe_load(EXAMPLE.read_text())["claims"]
    assert example == config_claims  # the example is the config's list, kept in step
    demo = copy.deepcopy(config)
    demo["scale"] = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())["scale"]
    scaled = {c["id"]: c for c in load_claims(EXAMPLE, known_runs_from_config(demo))}
    a, b = scaled["longer-training-no-gain"]["runs"].values()
    assert a[0] == b[0] == "ours" and a[1] == 2 * b[1]  # 30,000 and 15,000 at the demo's scale


def test_forest_plot_writes_a_png(base, tmp_path):
    df = pd.concat([run_scores("ours", 75, noisy(base, 0.3, 6)), run_scores("parks", 75, base)])
    out = evaluate(
        [claim("eq", compare={"a": "ours@75", "b": "parks"}, expect="equivalent", margin=0.5)], df
    )
    effects = effects_table(out)
    assert list(effects.columns) == EFFECT_COLUMNS and len(effects) == 2
    png = forest_plot(effects, tmp_path / "claims.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = forest_plot(effects.iloc[:0], tmp_path / "empty.png")
    assert empty.stat().st_size > 0


def test_command_line_writes_verdicts_effects_and_figure(base, tmp_path):
    import argparse

    scores = []
    for r, shift in enumerate((0.95, 1.0, 1.05)):  # three replicates of ours, one file each
        path = tmp_path / f"ours_{r}.tsv"
        run_scores("ours", 75, noisy(base, shift, 20 + r), replicate=r).to_csv(
            path, sep="\t", index=False
        )
        scores.append(str(path))
    path = tmp_path / "parks.tsv"
    run_scores("parks", 75, base).to_csv(path, sep="\t", index=False)
    scores.append(str(path))
    rows = [
        {"variant": "ours", "step": 75, "paper_step": 15000},
        {"variant": "ours", "step": 150, "paper_step": 30000},
        {"variant": "parks", "step": 75, "paper_step": 15000},
    ]
    meta = {"preset": "demo", "scale": {"width_divisor": 8, "iterations": 0.005}}
    (tmp_path / "experiments.json").write_text(json.dumps({"meta": meta, "rows": rows}))
    doc = {
        "claims": [
            claim("ours-vs-parks", compare={"a": "ours@15000", "b": "parks"}, expect="greater")
        ]
    }
    (tmp_path / "claims.yaml").write_text(yaml.safe_dump(doc))
    p = argparse.ArgumentParser()
    claims_cli.add_arguments(p)
    out = tmp_path / "verdicts.tsv"
    args = p.parse_args(
        [
            "--claims",
            str(tmp_path / "claims.yaml"),
            "--scores",
            *scores,
            "--experiments",
            str(tmp_path / "experiments.json"),
            "--permutations",
            "500",
            "-o",
            str(out),
            "--effects",
            str(tmp_path / "effects.tsv"),
            "--figure",
            str(tmp_path / "claims.png"),
        ]
    )
    assert claims_cli.run(args) == 0
    table = pd.read_csv(out, sep="\t")
    assert list(table["level"]) == ["claim", "part", "part"]  # a claim on both sources
    assert list(table["verdict"]) == ["holds", "holds", "holds"]
    assert (table["variance"] == "clips + seeds").all() and (table["n_replicates"] == 1).all()
    assert len(pd.read_csv(tmp_path / "effects.tsv", sep="\t")) == 2
    assert (tmp_path / "claims.png").stat().st_size > 0
    doc["claims"][0]["compare"]["b"] = "parkz"
    (tmp_path / "claims.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(
        UserError, match=r"claims.yaml: claims\[ours-vs-parks\]\.compare\.b: run 'parkz'"
    ):
        claims_cli.run(args)


def test_config_claims_are_validated_with_the_config():
    from conftest import REPO

    from hourglass_sep.pipeline.config import validate_config
    from hourglass_sep.plan.experiments import ConfigError

    schema = REPO / "workflow" / "schemas" / "config.schema.yaml"
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert len(config["claims"]) >= 17
    validate_config(copy.deepcopy(config), schema)
    bad = copy.deepcopy(config)
    bad["claims"][0]["compare"]["b"] = "parkz"
    with pytest.raises(ConfigError, match=r"claims\[ours-vs-parks\]\.compare\.b: run 'parkz'"):
        validate_config(bad, schema)
    bad = copy.deepcopy(config)
    bad["claims"][0]["metric"] = "gnsdx"
    with pytest.raises(ConfigError, match=r"claims\[ours-vs-parks\]\.metric: 'gnsdx' is not one"):
        validate_config(bad, schema)


def test_replicate_runs_map_back_to_their_variant():
    rows = [
        {"variant": "ours", "step": 10, "base_variant": "ours", "replicate": 0},
        {"variant": "ours.s1", "step": 10, "base_variant": "ours", "replicate": 1},
    ]
    scores = pd.DataFrame({"variant": ["ours", "ours.s1", "other"], "clip": ["a", "a", "a"]})
    out = as_replicates(scores, replicate_map(rows))
    assert out["variant"].tolist() == ["ours", "ours", "other"]
    assert out["replicate"].tolist() == [0, 1, 0]
    assert known_runs_from_experiments(rows) == {"ours": [(10, 10)]}


def test_claims_on_variants_a_preset_does_not_run_are_left_out():
    claims = [
        {"id": "ab", "compare": {"a": "ours@15000", "b": "parks"}, "expect": "greater"},
        {"id": "chain", "compare": {"chain": ["grow-4stack", "grow-3stack"]}, "expect": "greater"},
        {"id": "thr", "compare": {"a": "ours", "threshold": 0}, "expect": "above"},
        {"id": "speed", "compare": {"a": "x", "b": "y"}, "expect": "faster"},
    ]
    kept, dropped = claims_for_runs(claims, {"ours", "grow-4stack"})
    assert [c["id"] for c in kept] == ["thr", "speed"]
    assert dropped == ["ab", "chain"]


def test_a_claim_on_two_sizes_prints_the_parameter_ratio(base):
    """ "Ours matches Park's with ~20 % fewer parameters": the verdict shows the ratio."""
    df = pd.concat([run_scores("ours", 75, base), run_scores("parks", 75, base)])
    c = [claim(compare={"a": "ours@15000", "b": "parks"}, expect="equivalent", margin=0.5)]
    out = evaluate(c, df, parameters={"ours": 34_700_000, "parks": 42_800_000})
    assert out["detail"].str.contains(r"parameters ours / parks = 0\.81 \(34,700,000").all()
    same = evaluate(c, df, parameters={"ours": 1_000, "parks": 1_000})
    assert not same["detail"].fillna("").str.contains("parameters").any()

"""Minimum detectable effects and seeds needed (hourglass_sep/claims/power.py), the columns
`hourglass-sep claims` adds with them, and the `claims-plan` verb, on hand-made numbers with
known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as sps

from hourglass_sep.claims.multiplicity import HOLM_INCONCLUSIVE
from hourglass_sep.claims.power import (
    Noise,
    annotate,
    half_width,
    noise_of,
    plan_row,
    seeds_needed,
    welch_df,
)
from hourglass_sep.claims.tables import ONE_SEED
from hourglass_sep.cli import main
from hourglass_sep.data.catalogue import write_table
from hourglass_sep.scoring.signals import SCORE_COLUMNS

Z = float(sps.norm.ppf(0.975))
SIGMA, CLIP = 0.22, 0.05  # the reference's worked example (verdicts-and-power.md)


def test_welch_df_of_one_term_and_of_a_known_variance():
    assert welch_df([(0.3, 4)]) == pytest.approx(4)
    assert welch_df([(0.3, 4), (0.5, math.inf)]) == pytest.approx(0.8**2 / (0.3**2 / 4))
    assert welch_df([(0.3, math.inf)]) == math.inf


@pytest.mark.parametrize("n, expected", [(3, 0.5), (5, 0.35), (8, 0.25)])
def test_half_widths_of_the_worked_example(n, expected):
    """sigma 0.22, c 0.05, two runs of n seeds: half-width ~0.5 / 0.35 / 0.25 dB."""
    noise = Noise(SIGMA, CLIP, terms=2, clip_df=824)
    # by hand: se^2 = 2 sigma^2 / n + c^2, df = se^4 / (2 (sigma^2/n)^2 / (n-1) + c^4 / 824)
    se2 = 2 * SIGMA**2 / n + CLIP**2
    df = se2**2 / (2 * (SIGMA**2 / n) ** 2 / (n - 1) + CLIP**4 / 824)
    by_hand = sps.t.ppf(0.975, df) * math.sqrt(se2)
    assert half_width(noise, n) == pytest.approx(by_hand)
    assert half_width(noise, n) == pytest.approx(expected, abs=0.03)


def test_seeds_to_detect_0_18_db_with_80_percent_power():
    """The reference's "~25-30 seeds per run" is the answer without the clip term (or with one
    seed term); with c = 0.05 the clips' own 0.05 dB eats most of the budget: ~60."""
    alpha = 0.025  # one-sided, the holds side of a 95 % interval
    assert 25 <= seeds_needed(Noise(SIGMA, 0.0), 0.18, alpha) <= 30
    n = seeds_needed(Noise(SIGMA, CLIP, clip_df=824), 0.18, alpha)
    # normal-quantile lower bound: 2 sigma^2 / ((0.18 / (z.975 + z.8))^2 - c^2) = 59.3
    q = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    assert n >= 2 * SIGMA**2 / ((0.18 / q) ** 2 - CLIP**2)
    assert 58 <= n <= 63
    # the definition: the smallest n whose MDE reaches 0.18 dB
    noise = Noise(SIGMA, CLIP, clip_df=824)
    for m, ok in ((n, True), (n - 1, False)):
        se, df = noise.se(m)
        assert ((sps.t.ppf(0.975, df) + sps.t.ppf(0.8, df)) * se <= 0.18) == ok
    # beyond the cap, and an effect the clips alone cannot resolve
    assert seeds_needed(Noise(SIGMA, CLIP), 0.18, alpha, max_n=40) is None
    assert seeds_needed(Noise(SIGMA, 0.2), 0.18, alpha, max_n=1000) is None


def pair(effect, sigma, clip, reps=(3, 3), verdict="inconclusive", paired=False, **extra):
    """A pair record as `hourglass-sep claims` writes it: a t interval over clips + seeds with
    Welch-Satterthwaite df (or the clips alone when sigma is None)."""
    rec = {"a": "A", "b": "B", "effect": effect, "margin": 0.0, "replicates": list(reps)}
    rec.update(clips_lo=effect - Z * clip, clips_hi=effect + Z * clip, verdict=verdict)
    if sigma is None:
        lo, hi = rec["clips_lo"], rec["clips_hi"]
        return {**rec, "lo": lo, "hi": hi, "se": clip, "df": None, "variance": "clips", **extra}
    if paired:
        terms = [(sigma**2 / reps[0], reps[0] - 1)]
    else:
        terms = [(sigma**2 / r, r - 1) for r in reps]
    parts = [(clip**2, math.inf), *terms]
    se, df = math.sqrt(sum(v for v, _ in parts)), welch_df(parts)
    half = sps.t.ppf(0.975, df) * se
    rec.update(lo=effect - half, hi=effect + half, se=se, df=df, seed_sd=sigma)
    return {**rec, "variance": "clips + seeds", **extra}


def test_noise_from_pair_records():
    noise = noise_of(pair(0.1, SIGMA, CLIP))
    assert (noise.sigma, noise.terms, noise.origin) == (SIGMA, 2, "measured")
    assert noise.clip_se == pytest.approx(CLIP)
    # one model under two evaluations: the seed term is s_d^2 / R, one term
    assert noise_of(pair(0.1, SIGMA, CLIP, paired=True)).origin == "paired"
    assert noise_of(pair(0.1, SIGMA, CLIP, paired=True)).terms == 1
    # a run against a threshold: one run, one term
    assert noise_of(pair(0.1, SIGMA, CLIP, reps=(3,))).terms == 1
    # a stated prior: the variance text carries it, no df
    prior = noise_of(pair(0.1, None, CLIP, variance="clips + seed prior (0.3 dB)"))
    assert (prior.sigma, prior.seed_df, prior.origin) == (0.3, False, "prior")
    assert noise_of(pair(0.1, None, CLIP, reps=(1, 1))) is None  # one seed


def test_plan_row_decided_undecided_one_seed_and_clip_limited():
    row = {"expect": "greater", "verdict": "inconclusive", "margin": 0.0, "effect": 0.18}
    mde, seeds, note = plan_row(row, [pair(0.18, SIGMA, CLIP)], 0.025)
    assert seeds == seeds_needed(Noise(SIGMA, CLIP), 0.18, 0.025)
    assert "seed sd 0.22 dB (replicates 3/3)" in note
    rec = pair(0.18, SIGMA, CLIP)
    se = (rec["hi"] - rec["lo"]) / (2 * sps.t.ppf(0.975, rec["df"]))
    q = sps.t.ppf(0.975, rec["df"]) + sps.t.ppf(0.8, rec["df"])
    assert mde == pytest.approx(q * se)  # at the run's own 3 seeds and clips
    done = {**row, "verdict": "holds", "adjusted_verdict": "holds"}
    assert plan_row(done, [pair(1.5, SIGMA, CLIP, verdict="holds")], 0.025)[1] == "decided"
    one = {**row, "verdict": ONE_SEED}
    mde, seeds, note = plan_row(one, [pair(0.18, None, CLIP, reps=(1, 1))], 0.025)
    assert math.isnan(mde) and seeds == "n/a"
    assert note.startswith("seed sd not measured (replicates 1/1, no prior)")
    tiny = plan_row(row, [pair(0.01, SIGMA, CLIP)], 0.025, max_n=50)
    assert tiny[1] == ">50" and "more clips, not seeds" in tiny[2]
    assert plan_row({**row, "expect": "silent"}, [], 0.025) == (
        pytest.approx(math.nan, nan_ok=True),
        "n/a",
        "",
    )


def test_equivalence_is_planned_at_a_true_difference_of_zero():
    row = {"expect": "equivalent", "verdict": "inconclusive", "margin": 0.5, "effect": 0.3}
    rec = pair(0.3, SIGMA, CLIP, margin=0.5)
    _, seeds, note = plan_row(row, [rec], 0.025)
    assert seeds == seeds_needed(Noise(SIGMA, CLIP), 0.5, 0.025, tost=True)
    assert "planned at a true difference of 0 (observed 0.3)" in note
    # not-less, margin 0.5: the distance is effect + margin
    row = {"expect": "not-less", "verdict": "inconclusive", "margin": 0.5, "effect": -0.2}
    _, seeds, _ = plan_row(row, [pair(-0.2, SIGMA, CLIP, margin=0.5)], 0.025)
    assert seeds == seeds_needed(Noise(SIGMA, CLIP), 0.3, 0.025)


def _table() -> pd.DataFrame:
    """Three confirmatory claims: a clear holds, a raw holds Holm undoes, an inconclusive."""
    recs = {
        "clear": pair(1.5, SIGMA, CLIP, verdict="holds"),
        "borderline": pair(0.36, SIGMA, CLIP, reps=(5, 5), verdict="holds"),  # p 0.017
        "open": pair(0.18, SIGMA, CLIP),
    }
    rows = []
    for name, rec in recs.items():
        rows.append(
            {
                "id": name,
                "level": "claim",
                "family": "confirmatory",
                "source": "voice",
                "metric": "gnsdr",
                "expect": "greater",
                "verdict": rec["verdict"],
                "unit": "dB",
                "n_replicates": min(rec["replicates"]),
                "pairs": json.dumps([rec]),
                **{k: rec[k] for k in ("effect", "lo", "hi", "margin")},
            }
        )
    return pd.DataFrame(rows)


def test_annotate_adds_every_column_and_plans_a_holm_loss_at_its_level():
    out = annotate(_table()).set_index("id")
    for col in ("p_claim", "p_adjusted", "holm_level", "adjusted_verdict", "adjustment"):
        assert col in out.columns
    assert out.loc["borderline", "verdict"] == "holds"
    assert out.loc["borderline", "adjusted_verdict"] == HOLM_INCONCLUSIVE
    assert out.loc["clear", "seeds_needed"] == "decided"
    level = out.loc["borderline", "holm_level"]
    assert level < 0.025
    rec = pair(0.36, SIGMA, CLIP, reps=(5, 5))
    assert out.loc["borderline", "seeds_needed"] == seeds_needed(noise_of(rec), 0.36, level)
    assert out.loc["borderline", "power_note"].startswith(f"at Holm's level {level:.3g}")
    assert out.loc["open", "seeds_needed"] == seeds_needed(
        noise_of(pair(0.18, SIGMA, CLIP)), 0.18, 0.025
    )


def test_claims_plan_prints_the_seeds_needed(tmp_path, capsys):
    write_table(_table(), tmp_path / "claims" / "verdicts.tsv")
    assert main(["claims-plan", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    n = seeds_needed(noise_of(pair(0.18, SIGMA, CLIP)), 0.18, 0.025)
    assert f"needs ≈ {n} seeds per run" in out
    assert "borderline [voice gnsdr] (confirmatory): holds -> inconclusive (Holm)" in out
    assert "decided: no more seeds needed" in out
    assert "Holm over 3 confirmatory claims at one-sided 0.025" in out
    # --verdicts and -o: the annotated table written back
    annotated = tmp_path / "annotated.tsv"
    args = ["claims-plan", "--verdicts", str(tmp_path / "claims" / "verdicts.tsv")]
    assert main([*args, "-o", str(annotated)]) == 0
    assert "seeds_needed" in pd.read_csv(annotated, sep="\t").columns


def test_claims_plan_names_a_missing_or_malformed_table(tmp_path, capsys):
    assert main(["claims-plan", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "claims" / "verdicts.tsv") in err and "not found" in err
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tverdict\nx\tholds\n")
    assert main(["claims-plan", "--verdicts", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "missing columns" in err
    assert main(["claims-plan"]) == 2
    assert "give a results folder or --verdicts" in capsys.readouterr().err


def _scores(variant: str, step: int, values: np.ndarray, replicate: int) -> pd.DataFrame:
    n = len(values)
    clips = [f"singer{i % 6}_{i % 5}_{i:03d}" for i in range(n)]
    df = pd.DataFrame({c: math.nan for c in SCORE_COLUMNS}, index=range(n))
    df["variant"], df["step"], df["clip"], df["samples"] = variant, step, clips, 100_000
    df["singer"] = [c.split("_")[0] for c in clips]
    df["scorer"], df["seconds"], df["status"], df["replicate"] = "museval", 0.1, "ok", replicate
    for src in ("voice", "accompaniment"):
        for m, d in (("nsdr", 0), ("sdr", 2), ("sir", 6), ("sar", 3)):
            df[f"{src}_{m}"] = values + d
    return df


def test_the_claims_verb_writes_the_new_columns_and_the_plan_reads_them(tmp_path, capsys):
    rng = np.random.default_rng(3)
    base = rng.normal(9, 3, 120)
    paths = []
    for variant, shift in (("a", 0.1), ("b", 0.0)):
        for r in range(3):
            values = base + shift + rng.normal(0, 0.2) + rng.normal(0, 0.1, base.size)
            paths.append(tmp_path / f"{variant}{r}.tsv")
            _scores(variant, 10, values, r).to_csv(paths[-1], sep="\t", index=False)
    claim = {
        "id": "a-beats-b",
        "statement": "A beats B",
        "family": "confirmatory",
        "compare": {"a": "a", "b": "b"},
        "metric": "gnsdr",
        "source": "voice",
        "expect": "greater",
    }
    (tmp_path / "claims.yaml").write_text(yaml.safe_dump({"claims": [claim]}))
    verdicts = tmp_path / "results" / "claims" / "verdicts.tsv"
    verdicts.parent.mkdir(parents=True)
    argv = ["claims", "--claims", str(tmp_path / "claims.yaml"), "--scores", *map(str, paths)]
    assert main([*argv, "--resamples", "300", "--permutations", "300", "-o", str(verdicts)]) == 0
    table = pd.read_csv(verdicts, sep="\t")
    for col in ("p_claim", "p_adjusted", "adjusted_verdict", "mde", "seeds_needed", "power_note"):
        assert col in table.columns, col
    assert table["adjustment"].iloc[0] == "Holm over 1 confirmatory claims, one-sided 0.025"
    capsys.readouterr()
    assert main(["claims-plan", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert "a-beats-b [voice gnsdr] (confirmatory)" in out and "MDE" in out


def test_the_plan_reads_the_clip_se_the_engine_computed():
    """17 singers, 3 seeds a run: the pair record carries the clips' share of the se, so the
    plan (and a sequential look) use it, not the clips-only t interval read as normal, which
    is t(16) / z = 8 % wider; the interval's se is that share plus the seed terms."""
    from hourglass_sep.claims import sequential as sq
    from hourglass_sep.claims import stats as st
    from hourglass_sep.claims.kinds.pairs import jsonable
    from hourglass_sep.claims.looks import _observation

    rng = np.random.default_rng(3)
    singers = np.repeat(np.arange(17), 4)
    base = rng.normal(10, 2, singers.size) + rng.normal(0, 1, 17)[singers]
    a = base + 0.3 + rng.normal(0, 0.2, (3, 1)) + rng.normal(0, 0.5, (3, singers.size))
    b = base + rng.normal(0, 0.2, (3, 1)) + rng.normal(0, 0.5, (3, singers.size))
    eff = st.paired_effect(a, b, np.ones(singers.size), groups=singers)
    assert eff.variance == st.CLIPS_SEEDS and eff.clip_df == 16
    seeds = eff.se**2 - eff.clip_se**2
    assert seeds > 0 and seeds == pytest.approx(2 * eff.seed_sd**2 / 3, rel=1e-9)
    rec = jsonable({**eff.as_dict(), "effect": eff.estimate})
    rec.update(verdict="holds", replicates=[3, 3])
    assert noise_of(rec).clip_se == pytest.approx(eff.clip_se, rel=1e-12)
    assert noise_of(rec).clip_df == 16
    old = {k: v for k, v in rec.items() if k not in ("clip_se", "clip_df")}
    ratio = noise_of(old).clip_se / eff.clip_se  # a record written before: the normal reading
    assert ratio == pytest.approx(float(sps.t.ppf(0.975, 16)) / Z, rel=1e-6)
    assert sq.Observation.from_effect(eff).clip_se == eff.clip_se
    assert _observation(rec).clip_se == pytest.approx(eff.clip_se, rel=1e-12)

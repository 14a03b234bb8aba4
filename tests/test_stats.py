"""Statistics engine: known answers on constructed per-clip scores."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from hourglass_sep.claims import stats as st
from hourglass_sep.errors import UserError
from hourglass_sep.scoring.signals import SCORE_COLUMNS

N = 300


def clip_names(n=N):
    return [f"singer{i % 12}_{i % 5}_{i:03d}" for i in range(n)]


def lengths(n=N, seed=0):
    return np.random.default_rng(seed).integers(64_000, 210_000, n).astype(float)


def scores(variant, step, nsdr, samples, replicate=None, status=None):
    """A scores table of one run: voice NSDR = ``nsdr``, the other metrics derived from it."""
    clips = clip_names(len(nsdr))
    df = pd.DataFrame({c: math.nan for c in SCORE_COLUMNS}, index=range(len(nsdr)))
    df["variant"], df["step"], df["clip"] = variant, step, clips
    df["singer"] = [c.split("_")[0] for c in clips]
    df["samples"], df["scorer"], df["seconds"] = samples, "museval", 0.1
    df["status"] = "ok" if status is None else status
    for src, off in (("voice", 0.0), ("accompaniment", -0.5)):
        df[f"{src}_nsdr"] = np.asarray(nsdr) + off
        df[f"{src}_sdr"] = np.asarray(nsdr) + off + 2
        df[f"{src}_sir"] = np.asarray(nsdr) + off + 6
        df[f"{src}_sar"] = np.asarray(nsdr) + off + 3
    if replicate is not None:
        df["replicate"] = replicate
    return df


def test_global_interval_is_the_length_weighted_mean_and_covers_it():
    rng = np.random.default_rng(1)
    x, w = rng.normal(10, 3, N), lengths()
    r = st.global_interval(x, w, n_boot=2000, seed=0)
    assert r["estimate"] == pytest.approx(np.sum(w * x) / np.sum(w))
    assert r["lo"] < r["estimate"] < r["hi"]
    # the bootstrap se of a weighted mean is near its analytic (delta-method) value
    p = w / w.sum()
    analytic = math.sqrt(np.sum(p**2 * (x - r["estimate"]) ** 2))
    assert r["se"] == pytest.approx(analytic, rel=0.15)


def test_weights_follow_the_resampled_clips():
    # one long clip at 0 dB and short ones at 10 dB: each resample's mean is its own
    # weighted mean, so the interval moves with how often the long clip is drawn
    x = np.array([0.0] + [10.0] * 9)
    w = np.array([90.0] + [1.0] * 9)
    counts = st.resample_counts(np.arange(10), n_boot=50, seed=3)
    boot = st.bootstrap_means(x, w, n_boot=50, seed=3)
    expected = (counts @ (w * x)) / (counts @ w)
    np.testing.assert_allclose(boot, expected)
    assert counts.sum(axis=1).tolist() == [10] * 50


def test_bootstrap_is_deterministic_for_a_seed():
    rng = np.random.default_rng(2)
    x, w = rng.normal(5, 2, N), lengths()
    a = st.global_interval(x, w, seed=7)
    b = st.global_interval(x, w, seed=7)
    c = st.global_interval(x, w, seed=8)
    assert (a["lo"], a["hi"]) == (b["lo"], b["hi"])
    assert (a["lo"], a["hi"]) != (c["lo"], c["hi"])


def test_planted_shift_is_found_and_covered():
    rng = np.random.default_rng(3)
    base, w = rng.normal(9, 3, N), lengths()
    shifted = base + 1.0 + rng.normal(0, 0.8, N)
    e = st.paired_effect(shifted, base, w, seed=0)
    assert e.lo <= 1.0 <= e.hi
    assert e.lo > 0 and st.decide(e.lo, e.hi, "greater") == "holds"
    assert st.decide(e.lo, e.hi, "less") == "contradicted"
    assert e.p_value < 0.001 and e.p_method == "sign-flip permutation"
    assert e.variance == st.CLIPS and e.replicates == (1, 1)


def test_identical_runs_contain_zero_and_do_not_hold():
    rng = np.random.default_rng(4)
    x, w = rng.normal(9, 3, N), lengths()
    same = st.paired_effect(x, x, w)
    assert same.lo <= 0 <= same.hi and same.p_value == 1.0
    assert st.decide(same.lo, same.hi, "greater") == "inconclusive"
    assert st.decide(same.lo, same.hi, "equivalent", 0.5) == "holds"
    # the same configuration twice: equal in expectation, per-clip noise differs
    again = st.paired_effect(x + rng.normal(0, 0.5, N), x + rng.normal(0, 0.5, N), w)
    assert again.lo <= 0 <= again.hi
    assert st.decide(again.lo, again.hi, "greater") == "inconclusive"
    assert st.decide(again.lo, again.hi, "equivalent", 0.5) == "holds"


def test_sign_flip_p_keeps_its_false_positive_rate_and_finds_a_shift():
    """At the null, p < 0.05 in 5 % of 1,000 studies (binomial sd 0.7 %): the bounds
    2.5-7.5 % would catch a doubled rate (10 %, 3.6 sd above 7.5 %) or a test that never
    rejects; the rate is printed."""
    rng = np.random.default_rng(5)
    w = lengths(200)
    ps = np.array(
        [st.sign_flip_p(rng.normal(0, 1, 200), w, n_perm=199, seed=s) for s in range(1000)]
    )
    rate = float(np.mean(ps <= 0.05))
    print(f"false-positive rate at alpha 0.05 over 1,000 null studies: {rate:.3f}")
    assert 0.025 <= rate <= 0.075
    assert st.sign_flip_p(rng.normal(0.4, 1, 200), w, n_perm=999) < 0.01


def test_hierarchical_interval_is_wider_when_replicates_disagree():
    rng = np.random.default_rng(6)
    base, w = rng.normal(9, 3, N), lengths()
    seed_shift_a = np.array([0.6, -0.5, 0.1])  # seed-to-seed spread of the global metric
    seed_shift_b = np.array([-0.4, 0.3, 0.2])
    a = np.stack([base + 0.5 + s + rng.normal(0, 0.3, N) for s in seed_shift_a])
    b = np.stack([base + s + rng.normal(0, 0.3, N) for s in seed_shift_b])
    e = st.paired_effect(a, b, w)
    assert e.variance == st.CLIPS_SEEDS and e.replicates == (3, 3)
    assert e.hi - e.lo > 3 * (e.clips_hi - e.clips_lo)
    assert e.lo < e.clips_lo and e.hi > e.clips_hi
    assert e.p_method == "t (Satterthwaite)" and 2 < e.df < 10
    # agreeing replicates: the seed term is small and the interval close to clips-only
    a2 = np.stack([base + 0.5 + rng.normal(0, 0.3, N) for _ in range(3)])
    b2 = np.stack([base + rng.normal(0, 0.3, N) for _ in range(3)])
    e2 = st.paired_effect(a2, b2, w)
    assert e2.hi - e2.lo < 2 * (e2.clips_hi - e2.clips_lo)


def test_one_run_without_replicates_borrows_the_seed_variance():
    rng = np.random.default_rng(7)
    base, w = rng.normal(9, 3, N), lengths()
    a = np.stack([base + s for s in (0.5, -0.5, 0.0)])
    e = st.paired_effect(a, base, w)
    assert e.variance == st.CLIPS_SEEDS and e.replicates == (3, 1)
    assert e.seed_sd == pytest.approx(0.5)
    # var = clip var + s^2 (1/3 + 1/1): the single run is assumed as noisy as the other
    clip_se = st.bootstrap_means(a.mean(axis=0) - base, w).std()
    assert e.se**2 == pytest.approx(clip_se**2 + 0.25 * (1 / 3 + 1))
    assert e.df < 3


def test_replicate_interval_is_a_t_interval():
    r = st.replicate_interval([10.0, 10.4, 10.2])
    assert r["mean"] == pytest.approx(10.2) and r["sd"] == pytest.approx(0.2)
    half = 4.302652729911275 * 0.2 / math.sqrt(3)  # t(0.975, 2)
    assert (r["lo"], r["hi"]) == pytest.approx((10.2 - half, 10.2 + half))
    assert math.isnan(st.replicate_interval([3.0])["sd"])


def test_threshold_and_equivalence_rules():
    rng = np.random.default_rng(8)
    x, w = rng.normal(10.5, 3, N), lengths()
    e = st.threshold_effect(x, w, 0.0)
    assert st.decide(e.lo, e.hi, "above") == "holds"
    assert st.decide(e.lo, e.hi, "below") == "contradicted"
    near = st.threshold_effect(x, w, e.estimate)  # a threshold at the run's own value
    assert near.lo < 0 < near.hi and st.decide(near.lo, near.hi, "above") == "inconclusive"
    assert st.decide(-0.2, 0.3, "equivalent", 0.5) == "holds"
    assert st.decide(0.6, 0.9, "equivalent", 0.5) == "contradicted"
    assert st.decide(0.2, 0.7, "equivalent", 0.5) == "inconclusive"
    assert st.decide(-2.0, 0.3, "not-greater", 0.5) == "holds"
    assert st.decide(0.6, 1.0, "not-greater", 0.5) == "contradicted"
    assert st.decide(-0.3, 2.0, "not-less", 0.5) == "holds"


def test_compare_runs_pairs_clips_and_counts_the_dropped():
    rng = np.random.default_rng(9)
    base, w = rng.normal(9, 3, N), lengths()
    a = scores("a", 100, base + 1 + rng.normal(0, 0.5, N), w)
    b = scores("b", 100, base, w)
    a.loc[:4, "status"] = "silent estimate (all zeros): voice"
    b = b.iloc[:-3]  # three clips never scored for b
    df = st.prepare_scores(pd.concat([a, b]))
    e = st.compare_runs(df, ("a", 100), ("b", 100), "gnsdr", "voice")
    assert e.n_clips == N - 8 and e.n_dropped == 8
    assert e.lo <= 1 <= e.hi and e.lo > 0
    acc = st.compare_runs(df, ("a", 100), ("b", 100), "gsar", "accompaniment")
    assert acc.estimate == pytest.approx(e.estimate)  # same offsets on every metric


def test_replicate_column_and_replicate_table():
    rng = np.random.default_rng(10)
    base, w = rng.normal(9, 3, N), lengths()
    reps = [scores("a", 5, base + s, w, replicate=r) for r, s in enumerate((0.0, 0.3, 0.6))]
    df = st.prepare_scores(pd.concat(reps))
    t = st.replicate_table(df, "gnsdr", "voice")
    assert t.loc[0, "n"] == 3 and t.loc[0, "sd"] == pytest.approx(0.3)
    assert t.loc[0, "mean"] == pytest.approx(np.sum(w * base) / w.sum() + 0.3)


def test_song_unit_resamples_whole_songs():
    rng = np.random.default_rng(11)
    w = lengths()
    songs = np.repeat(np.arange(30), N // 30)
    song_effect = rng.normal(0, 2, 30)[songs]  # clips of a song share their difficulty
    x = 9 + song_effect + rng.normal(0, 0.5, N)
    by_clip = st.global_interval(x, w)
    by_song = st.global_interval(x, w, groups=songs)
    assert by_song["hi"] - by_song["lo"] > 1.5 * (by_clip["hi"] - by_clip["lo"])


def test_bad_inputs_are_refused():
    df = scores("a", 1, np.zeros(10), lengths(10))
    with pytest.raises(UserError, match="missing columns"):
        st.prepare_scores(df.drop(columns=["samples"]))
    with pytest.raises(UserError, match="scored twice"):
        st.prepare_scores(pd.concat([df, df]))
    with pytest.raises(UserError, match="unknown metric 'gnsdrr'"):
        st.metric_column("gnsdrr", "voice")
    with pytest.raises(UserError, match="no scores for run b@1"):
        st.compare_runs(st.prepare_scores(df), ("a", 1), ("b", 1))


def test_default_unit_is_the_singer_and_few_singers_give_way_to_songs_then_clips():
    """MIR-1K names <singer>_<song>_<clip>: the default resamples singers; with fewer than
    MIN_UNITS (5) of them the next finer unit is used and the note says why."""
    assert st.DEFAULT_UNIT == "singer"
    rng = np.random.default_rng(12)
    base, w = rng.normal(9, 3, N), lengths()
    df = st.prepare_scores(
        pd.concat([scores("a", 1, base + 0.5 + rng.normal(0, 1, N), w), scores("b", 1, base, w)])
    )
    e = st.compare_runs(df, ("a", 1), ("b", 1))
    assert e.resampled_by == "singer" and e.unit_note == ""
    assert e.df == 11  # 12 singers: the clips-only interval is a t interval on 11 df
    demo = pd.Series([f"s{i % 4}_{i % 8 // 4}_{i:02d}" for i in range(16)])  # 4 singers, 8 songs
    codes, used, note = st.resolve_units(demo, pd.Series([None] * 16))
    assert used == "song" and codes.max() + 1 == 8
    assert note == "resampled by song: 4 singers (< 5)"
    tiny = pd.Series([f"s{i % 3}_1_{i:02d}" for i in range(12)])  # 3 singers, 3 songs
    codes, used, note = st.resolve_units(tiny, pd.Series([None] * 12), "singer")
    assert used == "clip" and codes.max() + 1 == 12
    assert note == "resampled by clip: 3 singers, 3 songs (< 5)"
    # the singer column wins over the name when present
    codes, used, _ = st.resolve_units(demo, pd.Series(["x"] * 8 + ["y"] * 8), "singer")
    assert used == "song"


def test_compare_runs_carries_the_fallback_note():
    rng = np.random.default_rng(13)
    n, w = 16, lengths(16)
    base = rng.normal(9, 3, n)
    a, b = scores("a", 1, base + 1, w), scores("b", 1, base, w)
    for t in (a, b):
        t["clip"] = [f"s{i % 4}_{i % 8 // 4}_{i:02d}" for i in range(n)]
        t["singer"] = t["clip"].str.split("_").str[0]
    e = st.compare_runs(st.prepare_scores(pd.concat([a, b])), ("a", 1), ("b", 1))
    assert e.resampled_by == "song" and "4 singers (< 5)" in e.unit_note and e.df == 7


def test_few_units_give_a_t_interval_many_the_percentile_one():
    rng = np.random.default_rng(14)
    boot = rng.normal(0.3, 0.1, 2000)
    lo, hi, se, df = st.clips_interval(0.3, boot, 17)
    assert df == 16 and se == pytest.approx(boot.std() * math.sqrt(17 / 16))
    half = 2.1199052992210112 * se  # t(0.975, 16)
    assert (lo, hi) == pytest.approx((0.3 - half, 0.3 + half))
    lo, hi, se, df = st.clips_interval(0.3, boot, 300)
    assert math.isinf(df) and (lo, hi) == st.percentile_interval(boot)
    # a threshold effect over 12 singers: its p is a t p on the same df
    x, w = rng.normal(10, 3, N), lengths()
    groups = np.arange(N) % 12
    e = st.threshold_effect(x, w, 9.5, groups)
    assert e.df == 11 and e.p_method == "bootstrap t (11 df)"
    assert e.p_value == pytest.approx(2 * sps.t.sf(abs(e.estimate) / e.se, 11))

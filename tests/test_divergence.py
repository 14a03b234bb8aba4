"""Diverged seeds: known answers on constructed scores (a dead voice mask that is silent,
one that is not, a configuration that is poor on every seed, a run where nothing trained)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from test_stats import scores

from hourglass_sep.claims import divergence as dv
from hourglass_sep.claims import stats as st
from hourglass_sep.errors import UserError

C = 60
SILENT_VOICE = "silent estimate (all zeros): voice"
W = np.random.default_rng(0).integers(64_000, 210_000, C).astype(float)


def run(variant, levels, step=100, seed=1, fail=None, acc=None):
    """Replicates of one run: replicate r's voice NSDR is ``levels[r]`` + clip noise (the
    accompaniment's 0.5 dB less, or ``acc[r]``); ``fail``: {replicate: status} for every
    clip of that replicate (metrics NaN)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 2, C)
    out = []
    for r, level in enumerate(levels):
        df = scores(variant, step, level + base + rng.normal(0, 0.3, C), W, replicate=r)
        if acc is not None:
            df["accompaniment_nsdr"] = acc[r] + base + rng.normal(0, 0.3, C)
        if fail and r in fail:
            df["status"] = fail[r]
            df.loc[:, df.columns.str.endswith(("_sdr", "_sir", "_sar", "_nsdr"))] = np.nan
        out.append(df)
    return pd.concat(out, ignore_index=True)


@pytest.fixture
def dead_seed():
    """ours: replicate 2's voice estimates are silent on all 60 clips; parks trained."""
    return pd.concat(
        [run("ours", [8.6, 8.2, 8.3], fail={2: SILENT_VOICE}), run("parks", [8.3, 8.1, 8.5])]
    )


def test_one_silent_seed_of_three_is_found_and_counted(dead_seed):
    per = dv.diverged_replicates(dead_seed)
    hit = per[per["diverged"]]
    assert hit[["variant", "step", "replicate", "source"]].values.tolist() == [
        ["ours", 100, 2, "voice"]
    ]
    assert hit["share_failed"].iloc[0] == 1.0 and "60 of 60 clips" in hit["reason"].iloc[0]
    table = dv.divergence_table(dead_seed).set_index("variant")
    ci = sps.binomtest(1, 3).proportion_ci(0.95, method="exact")
    assert table.loc["ours", ["n_seeds", "k_diverged"]].tolist() == [3, 1]
    assert (table.loc["ours", "lo"], table.loc["ours", "hi"]) == pytest.approx((ci.low, ci.high))
    assert table.loc["ours", "text"] == "1 of 3 seeds diverged [0.01, 0.91]"
    assert table.loc["ours", "diverged_replicates"] == "2"
    assert table.loc["parks", "text"] == "0 of 3 seeds diverged [0.00, 0.71]"


def test_after_dropping_the_comparison_uses_the_two_seeds_that_trained(dead_seed):
    before = st.prepare_scores(dead_seed)
    with pytest.raises(UserError, match="no clip scored ok"):  # the dead seed empties it
        st.compare_runs(before, ("ours", 100), ("parks", 100))
    kept, notes = dv.drop_diverged(dead_seed)
    assert set(kept.loc[kept["variant"] == "ours", "replicate"]) == {0, 1}
    assert len(kept) == len(before) - C
    note = notes[("ours", 100)]
    assert note.startswith("1 of 3 seeds diverged [0.01, 0.91] (replicate 2: voice estimate")
    assert note.endswith("judged on the 2 that trained") and list(notes) == [("ours", 100)]
    e = st.compare_runs(kept, ("ours", 100), ("parks", 100))
    assert e.replicates == (2, 3) and e.n_clips == C and e.variance == st.CLIPS_SEEDS
    assert e.lo < e.estimate < e.hi


def test_a_dead_mask_that_is_not_silent_is_found_by_its_gap():
    """docs/quality-cpu.md: const-4stack seed 2 at -9.7 dB voice GNSDR while its siblings
    trained; no clip silent, the median is ~15 dB under the others; its accompaniment
    is normal, and the replicate goes as a whole."""
    df = run("const-4stack", [5.1, 4.6, -9.7], acc=[4.5, 4.4, 4.2])
    per = dv.diverged_replicates(df)
    hit = per[per["diverged"]]
    assert hit[["replicate", "source"]].values.tolist() == [[2, "voice"]]
    assert hit["share_failed"].iloc[0] == 0
    assert "below 0 dB" in hit["reason"].iloc[0] and "under replicate 0" in hit["reason"].iloc[0]
    assert dv.divergence_table(df)["k_diverged"].tolist() == [1]


def test_poor_or_uneven_seeds_that_trained_are_kept():
    """Poor on every seed (softplus end-to-end at -8 dB): the configuration's result.  A
    weaker seed above 0 dB, or a negative one within 6 dB of the others: kept.  Fewer
    than half of the clips silent: kept."""
    poor = run("softplus", [-8.2, -7.5, -8.9])
    assert not dv.diverged_replicates(poor)["diverged"].any()
    weaker = run("grow-2stack", [9.0, 8.5, 1.0], seed=3)  # 8 dB under, but above 0 dB
    assert not dv.diverged_replicates(weaker)["diverged"].any()
    near = run("grow-3stack", [4.0, 3.5, -1.5], seed=4)  # below 0, 5.5 dB under the best
    assert not dv.diverged_replicates(near)["diverged"].any()
    some = run("grow-4stack", [5.0, 5.2, 4.8], seed=5)
    some.loc[(some["replicate"] == 1) & (some.index % C < 20), "status"] = SILENT_VOICE
    per = dv.diverged_replicates(some)
    assert not per["diverged"].any()
    one = per[(per["replicate"] == 1) & (per["source"] == "voice")]
    assert one["share_failed"].iloc[0] == pytest.approx(20 / C)
    # the boundary from the other side: below 0 and 7 dB under the best -> diverged
    uneven = run("grow-1stack", [6.0, 5.5, -1.0], seed=2)
    assert dv.divergence_table(uneven)["diverged_replicates"].tolist() == ["2"]


def test_non_finite_scores_count_for_the_source_they_name():
    df = run("ours", [8.0, 8.2])
    df.loc[df["replicate"] == 1, "status"] = "non-finite score: accompaniment sdr"
    per = dv.diverged_replicates(df).set_index(["replicate", "source"])
    assert per.loc[(1, "accompaniment"), "diverged"] and per.loc[(1, "accompaniment"), "n_failed"]
    assert per.loc[(1, "voice"), "n_failed"] == 0


def test_a_run_where_nothing_trained_keeps_its_seeds():
    """Row 12 (end-to-end ReLU): every seed's accompaniment silent.  3 of 3 diverged, and
    the seeds stay: the silent claim and "no clip scored ok" must still see them."""
    silent = "silent estimate (all zeros): voice, accompaniment"
    df = run("end-to-end", [0.0, 0.0, 0.0], fail={0: silent, 1: silent, 2: silent})
    table = dv.divergence_table(df)
    ci = sps.binomtest(3, 3).proportion_ci(0.95, method="exact")
    assert table["text"].iloc[0] == "3 of 3 seeds diverged [0.29, 1.00]"
    assert (table["lo"].iloc[0], table["hi"].iloc[0]) == pytest.approx((ci.low, ci.high))
    kept, notes = dv.drop_diverged(df)
    assert len(kept) == len(df) and notes[("end-to-end", 100)].endswith("none trained, all kept")


def test_one_replicate_without_a_replicate_column():
    df = run("ours", [8.0], fail={0: SILENT_VOICE}).drop(columns="replicate")
    table = dv.divergence_table(df)
    assert table["text"].iloc[0] == "1 of 1 seed diverged [0.03, 1.00]"


def test_a_gap_on_a_few_clips_is_not_called_divergence():
    """Three clips: a seed 9 dB under its sibling and below 0 dB is noise of a barely trained
    network's median, not a dead mask; on 60 clips the same gap is one."""
    few = run("tiny", [4.5, -4.5])
    few = few[few["clip"].isin(few["clip"].unique()[:3])]
    assert not dv.diverged_replicates(few)["diverged"].any()
    assert dv.diverged_replicates(run("tiny", [4.5, -4.5]))["diverged"].any()

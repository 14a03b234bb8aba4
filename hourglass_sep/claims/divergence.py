"""Seeds whose training diverged: found per (variant, step, replicate), counted per run with
a Clopper-Pearson interval over seeds, and left out of the quality verdicts.

A training whose ReLU mask head dies (the report's row 12, and at CPU scale two of the 27
100-step ablation trainings: const-4stack and grow-3stack seed 2, -9.7 and -10.4 dB voice
GNSDR while their siblings trained) is not noise around the configuration's mean: one such
seed puts +-20 dB into a t interval over three.  Quality is judged on the seeds that
trained, and the run says how many did not ("1 of 3 seeds diverged [0.01, 0.91]").

A replicate of a run diverged when, for either source, one of:

* **its estimates failed** on at least ``SHARE_FAILED`` (half) of its clips: silent,
  near-silent (< -80 dB of the reference) or non-finite scores of that source (the
  ``status`` column).  A working network almost never gives one; half the clips is the
  network, not the clips;
* **it trained into a dead mask that is not (near-)silent**: its median per-clip NSDR of
  the source is below 0 dB (worse than returning the mixture) *and* at least ``GAP_DB``
  (6 dB) under the best median among the run's other replicates.  Failed clips count as
  the lowest values.  The 0 dB anchor keeps a merely weaker seed in, and the gap keeps a
  configuration that is poor on every seed (the softplus end-to-end head at -8 dB) in: that
  is the configuration's result, which its claims must see.  6 dB is ~25 x the seed sd at
  CPU scale (0.22 dB) and under half the gap of the dead masks above (~15 dB).  This rule
  needs ``MIN_CLIPS_GAP`` (10) clips: the median of two or three clips of a barely trained
  network moves by more than 6 dB between seeds that all trained (the tiny test preset).

Pure pandas / scipy; reads the statuses that ``scoring.clip_status`` writes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from hourglass_sep.claims import stats as st
from hourglass_sep.results.aggregate import SOURCES
from hourglass_sep.scoring.clip_status import NON_FINITE, is_silent

SHARE_FAILED = 0.5  # share of a replicate's clips with a failed estimate of a source
GAP_DB = 6.0  # median NSDR this far under the run's best other replicate (and below 0)
MIN_CLIPS_GAP = 10  # fewer clips: a median too noisy to call a dead mask by its gap alone
RUN = ["variant", "step"]
KEY = ["variant", "step", "replicate"]
REPLICATE_COLUMNS = KEY + [
    "source", "n_clips", "n_failed", "share_failed", "median_nsdr", "diverged", "reason",
]  # fmt: skip
TABLE_COLUMNS = RUN + ["n_seeds", "k_diverged", "lo", "hi", "diverged_replicates", "text"]


def failed_for(status: pd.Series, source: str) -> pd.Series:
    """Clips whose estimate of ``source`` failed in a way only the model explains: silent,
    near-silent or non-finite scores of that source (a too-short clip is the data's)."""
    s = status.astype(str).str.strip()
    listed = s.str.partition(":")[2]
    non_finite = s.str.startswith(NON_FINITE) & listed.str.contains(source, regex=False)
    return is_silent(s, source) | non_finite


def _source_stats(scores: pd.DataFrame, source: str) -> pd.DataFrame:
    """Per replicate of each run: clips, failed clips of ``source``, their share and the
    median NSDR of the source with failed clips as -inf."""
    failed = failed_for(scores["status"], source).to_numpy()
    value = pd.to_numeric(scores[st.metric_column("gnsdr", source)], errors="coerce").to_numpy()
    value = np.where(scores["status"].to_numpy() == "ok", value, np.nan)
    value[failed] = -np.inf
    frame = scores[KEY].assign(_failed=failed, _v=value)
    out = frame.groupby(KEY, sort=True).agg(
        n_clips=("_failed", "size"), n_failed=("_failed", "sum"), median_nsdr=("_v", "median")
    )
    out["share_failed"] = out["n_failed"] / out["n_clips"]
    return out.reset_index().assign(source=source)


def _best_other(per: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """For each replicate: the highest median among the other replicates of its run and
    source, and which replicate has it (NaN / None when there is no other)."""
    best = pd.Series(np.nan, index=per.index)
    who = pd.Series(None, index=per.index, dtype=object)
    for _, g in per.groupby(RUN + ["source"], sort=False):
        for i in g.index:
            others = g["median_nsdr"].drop(i).dropna()
            if len(others):
                best[i], who[i] = others.max(), g.loc[others.idxmax(), "replicate"]
    return best, who


def _reason(row: pd.Series, best: float, best_rep) -> str:
    """Why the replicate diverged on its source ("" when it did not)."""
    if row["n_clips"] and row["share_failed"] >= SHARE_FAILED:
        return (
            f"{row['source']} estimate silent, near-silent or non-finite on "
            f"{int(row['n_failed'])} of {int(row['n_clips'])} clips (>= {SHARE_FAILED:.0%})"
        )
    med = row["median_nsdr"]
    if row["n_clips"] < MIN_CLIPS_GAP:
        return ""
    if np.isfinite(best) and med < 0 and best - med >= GAP_DB:
        return (
            f"median {row['source']} NSDR {med:.1f} dB: below 0 dB and {best - med:.1f} dB "
            f"under replicate {best_rep}'s {best:.1f} dB (>= {GAP_DB:g} dB)"
        )
    return ""


def diverged_replicates(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, step, replicate, source): clips, failed clips and their share,
    the median NSDR (failed clips as -inf), whether the replicate diverged on that source
    and why (the module's rule)."""
    prepared = st.prepare_scores(scores)
    per = pd.concat([_source_stats(prepared, s) for s in SOURCES], ignore_index=True)
    best, who = _best_other(per)
    per["reason"] = [_reason(row, best[i], who[i]) for i, row in per.iterrows()]
    per["diverged"] = per["reason"] != ""
    return per.reindex(columns=REPLICATE_COLUMNS)


def clopper_pearson(k: int, n: int, confidence: float = st.CONFIDENCE) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a binomial share k / n, from the beta quantiles:
    with 3 seeds no normal approximation says anything."""
    a = (1 - confidence) / 2
    lo = 0.0 if k == 0 else float(sps.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(sps.beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def seeds_text(k: int, n: int, lo: float, hi: float) -> str:
    """ "1 of 3 seeds diverged [0.01, 0.91]" """
    return f"{k} of {n} seed{'s' if n != 1 else ''} diverged [{lo:.2f}, {hi:.2f}]"


def divergence_table(
    scores: pd.DataFrame,
    replicates: pd.DataFrame | None = None,
    confidence: float = st.CONFIDENCE,
) -> pd.DataFrame:
    """Per run (variant, step): seeds, diverged seeds (on either source), the Clopper-Pearson
    interval of the divergence rate over seeds (not clips: a seed is the trial), which
    replicates diverged and the sentence.  ``replicates``: :func:`diverged_replicates`'s
    table when already computed."""
    per = diverged_replicates(scores) if replicates is None else replicates
    by_rep = per.groupby(KEY, sort=True)["diverged"].any().reset_index()
    rows = []
    for (variant, step), g in by_rep.groupby(RUN, sort=True):
        n, bad = len(g), g.loc[g["diverged"], "replicate"].tolist()
        lo, hi = clopper_pearson(len(bad), n, confidence)
        text = seeds_text(len(bad), n, lo, hi)
        rows.append([variant, step, n, len(bad), lo, hi, ", ".join(map(str, bad)), text])
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _run_note(row: pd.Series, per: pd.DataFrame, kept_all: bool) -> str:
    """The verdict detail's sentence for a run with diverged seeds."""
    mine = per[(per["variant"] == row["variant"]) & (per["step"] == row["step"]) & per["diverged"]]
    why = "; ".join(f"replicate {r['replicate']}: {r['reason']}" for _, r in mine.iterrows())
    trained = row["n_seeds"] - row["k_diverged"]
    tail = "none trained, all kept" if kept_all else f"judged on the {trained} that trained"
    return f"{row['text']} ({why}); {tail}"


def drop_diverged(
    scores: pd.DataFrame, replicates: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, dict]:
    """The prepared scores (:func:`stats.prepare_scores`) without the rows of diverged
    replicates, and a note per run that lost any: {(variant, step): "1 of 3 seeds diverged
    [0.01, 0.91] (replicate 2: ...); judged on the 2 that trained"}.

    The kept replicates are then paired on *their* ok clips (``align_runs`` needs a clip ok
    in every replicate, so a dead seed's silent clips no longer empty a comparison).  A run
    whose every seed diverged keeps them: nothing trained, and dropping it would turn "the
    estimates are silent" into "not evaluated"; its note says so."""
    prepared = st.prepare_scores(scores)
    per = diverged_replicates(prepared) if replicates is None else replicates
    table = divergence_table(prepared, per)
    notes, drop = {}, []
    for _, row in table[table["k_diverged"] > 0].iterrows():
        kept_all = row["k_diverged"] == row["n_seeds"]
        notes[(row["variant"], row["step"])] = _run_note(row, per, kept_all)
        if not kept_all:
            bad = per[(per["variant"] == row["variant"]) & (per["step"] == row["step"])]
            drop += [
                (row["variant"], row["step"], r) for r in bad.loc[bad["diverged"], "replicate"]
            ]
    keys = pd.MultiIndex.from_frame(prepared[KEY])
    kept = prepared[~keys.isin(pd.MultiIndex.from_tuples(drop, names=KEY))] if drop else prepared
    return kept.copy(), notes

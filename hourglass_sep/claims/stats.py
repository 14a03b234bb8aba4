"""Intervals and paired tests for the length-weighted global metrics (GNSDR, GSIR, ...).

The report compares single runs whose differences are the size of its own run-to-run
noise; this module says how sure a difference is.  Pure numpy / pandas / scipy.

Two sources of variance are modelled (docs/statistics.md has the reasoning):

* **clips**: the test clips are a sample; a bootstrap over singers (the default,
  ``DEFAULT_UNIT``), songs or clips (``unit=``) gives the interval of a length-weighted
  mean.  The weights follow the resampled clips, so each resample is itself a
  length-weighted mean.  Clips of one singer share a voice, so a clip bootstrap is
  optimistic; with few units the interval is a t interval on the units' degrees of freedom
  (:func:`clips_interval`), and with fewer than ``MIN_UNITS`` a finer unit is used
  (:func:`resolve_units`).
* **seeds**: with replicate trainings (a ``replicate`` column in the scores), the
  per-replicate global metrics vary; their variance is added to the clip variance and the
  interval becomes a t interval with Welch-Satterthwaite degrees of freedom.

Paired comparisons (run A vs run B on the same clips) work on per-clip differences, so
the clip-to-clip difficulty, which dwarfs any model difference, cancels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from hourglass_sep.errors import UserError
from hourglass_sep.results.aggregate import GLOBAL, REQUIRED, SOURCES
from hourglass_sep.scoring.clip_status import failure_note, screen

CONFIDENCE = 0.95
N_BOOT = 2000
N_PERM = 10000
UNITS = ("clip", "song", "singer")
# MIR-1K's test clips are ~90 songs by 17 singers: clips of one singer share a voice, of one
# song its accompaniment, so the singer is the unit a new test set would be drawn in
DEFAULT_UNIT = "singer"
MIN_UNITS = 5  # fewer units than this: resample the next finer unit (singer -> song -> clip)
FEW_UNITS = 30  # fewer units than this: t interval on units - 1 df, not bootstrap percentiles
FINER = {"singer": "song", "song": "clip"}
CLIPS, CLIPS_SEEDS = "clips", "clips + seeds"
# a deterministic method (training-free, oracle) has no seed noise: its comparisons with
# another deterministic run are judged by the clips alone, and that is a verdict, not one seed
CLIPS_FIXED = "clips (deterministic runs)"
MIN_DONOR_REPLICATES = 3  # a run lends its seed variance only with this many replicates


@dataclass
class Effect:
    """An effect in dB (a difference A - B, or a run's metric minus a threshold)."""

    estimate: float
    lo: float  # the interval the verdict uses (covers ``variance``)
    hi: float
    se: float  # standard error behind [lo, hi]
    p_value: float
    p_method: str
    n_clips: int  # clips entering the means
    n_dropped: int  # clips of the runs left out (failed or absent in one of them)
    replicates: tuple[int, ...]  # replicates per run (A, B) or (A,)
    variance: str  # "clips" or "clips + seeds"
    clips_lo: float  # the clips-only bootstrap interval, for reference
    clips_hi: float
    clip_se: float = math.nan  # the clips' share of ``se`` (what more seeds cannot shrink)
    clip_df: float = math.inf  # its df in the clips + seeds interval: resampled units - 1
    seed_sd: float = math.nan  # sd of the per-replicate global metric (pooled), NaN without
    df: float = math.inf  # degrees of freedom of the t interval (inf: bootstrap percentiles)
    wilcoxon_p: float = math.nan  # secondary test of paired differences (unweighted)
    resampled_by: str = ""  # the unit the bootstrap drew: singer, song or clip
    unit_note: str = ""  # why it is not the unit asked for ("" when it is)

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- tables


def _normal_steps(steps: pd.Series) -> pd.Series:
    num = pd.to_numeric(steps, errors="coerce")
    if num.notna().all() and (num == num.round()).all():
        return num.astype("int64")
    return steps.astype(str)


def prepare_scores(df: pd.DataFrame) -> pd.DataFrame:
    """A checked copy: ``replicate`` added (0) when absent, steps one type, status stripped."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise UserError(
            f"not a scores table (missing columns {missing}); write it with `hourglass-sep score`"
        )
    out = screen(df)  # non-finite metrics of an "ok" row: a failed clip, never a -inf mean
    if "replicate" not in out.columns:
        out["replicate"] = 0
    if "deterministic" not in out.columns:
        out["deterministic"] = False
    out["deterministic"] = out["deterministic"].fillna(False).astype(bool)
    rep = pd.to_numeric(out["replicate"], errors="coerce")
    if rep.isna().any() or (rep != rep.round()).any():
        raise UserError("scores column 'replicate' must hold integers (the replicate seed)")
    out["replicate"] = rep.astype("int64")
    out["variant"] = out["variant"].fillna("").astype(str)
    out["status"] = out["status"].astype(str).str.strip()
    out["step"] = _normal_steps(out["step"])
    dup = out.duplicated(subset=["variant", "step", "replicate", "clip"])
    if dup.any():
        r = out[dup].iloc[0]
        raise UserError(
            f"clip {r['clip']!r} of run {r['variant']}@{r['step']} replicate {r['replicate']} "
            f"is scored twice ({int(dup.sum())} duplicates); pass each shard's scores once"
        )
    return out


def metric_column(metric: str, source: str) -> str:
    """Per-clip column behind a global metric: ``gnsdr`` + ``voice`` -> ``voice_nsdr``."""
    if metric not in GLOBAL:
        raise UserError(f"unknown metric {metric!r} (known: {sorted(GLOBAL)})")
    if source not in SOURCES:
        raise UserError(f"unknown source {source!r} (known: {list(SOURCES)})")
    return f"{source}_{GLOBAL[metric]}"


def run_rows(scores: pd.DataFrame, run: tuple[str, object]) -> pd.DataFrame:
    variant, step = run
    rows = scores[(scores["variant"] == variant) & (scores["step"] == step)]
    if rows.empty:
        raise UserError(f"no scores for run {variant}@{step}; is it evaluated?")
    return rows


@dataclass
class Aligned:
    """Runs' per-clip values on their common clips: ``values[i]`` is (replicates, clips)."""

    clips: np.ndarray
    weights: np.ndarray
    values: list[np.ndarray]
    groups: np.ndarray  # resampling unit of each clip (integer codes)
    n_dropped: int
    unit: str = "clip"  # the unit ``groups`` codes (after :func:`resolve_units`)
    unit_note: str = ""
    fixed: tuple[bool, ...] = ()  # per run: deterministic (no seed noise), see seed_terms


def _unit_of(clips: pd.Series, singers: pd.Series, unit: str) -> pd.Series:
    if unit == "clip":
        return clips
    if unit == "song":  # MIR-1K clip names are <singer>_<song>_<clip>
        return clips.str.rsplit("_", n=1).str[0]
    if unit == "singer":
        return singers.fillna(clips.str.split("_").str[0]).astype(str)
    raise UserError(f"unknown resampling unit {unit!r} (known: {list(UNITS)})")


def resolve_units(
    clips: pd.Series, singers: pd.Series, unit: str = DEFAULT_UNIT
) -> tuple[np.ndarray, str, str]:
    """Integer unit codes of ``clips``, the unit used and a note when it is not ``unit``.

    A bootstrap over fewer than ``MIN_UNITS`` units has a handful of distinct resamples and a
    t quantile above 2.8 (df <= 3): it measures nothing.  Then the next finer unit is used
    (singer -> song -> clip), e.g. the demo corpus's 4 test singers give way to its 8 songs;
    the note says so ("resampled by song: 4 singers (< 5)"), for the verdict's detail."""
    used, skipped = unit, []
    while True:
        codes = pd.factorize(_unit_of(clips, singers, used))[0]
        k = int(codes.max()) + 1 if codes.size else 0
        if k >= MIN_UNITS or used not in FINER:
            break
        skipped.append(f"{k} {used}s")
        used = FINER[used]
    note = f"resampled by {used}: {', '.join(skipped)} (< {MIN_UNITS})" if skipped else ""
    return codes, used, note


def align_runs(
    scores: pd.DataFrame,
    runs: Sequence[tuple[str, object]],
    column: str,
    unit: str = DEFAULT_UNIT,
    union: bool = False,
) -> Aligned:
    """Per-clip values of ``runs`` on the clips that are ``ok`` with a finite value in every
    replicate of every run; the others are counted in ``n_dropped``.  Weights: the mean
    ``samples`` of the clip over the runs (equal when the runs scored the same lengths).

    ``union``: on the clips usable in *any* run instead, NaN where a run has none (each run
    keeps its own clips); ``n_dropped`` then counts each run's unusable clips.

    ``groups`` codes the resampling unit of each clip, ``unit`` or a finer one when it has
    fewer than ``MIN_UNITS`` among the clips (:func:`resolve_units`)."""
    every, wides, ok_rows, dropped, fixed = set(), [], [], 0, []
    for run in runs:
        rows = run_rows(scores, run)
        fixed.append(bool(rows["deterministic"].any()) if "deterministic" in rows else False)
        every |= set(rows["clip"])
        ok = rows[rows["status"] == "ok"]
        ok = ok.assign(_v=pd.to_numeric(ok[column], errors="coerce"))  # not rows': pandas aligns
        if ok.empty:
            raise UserError(f"run {run[0]}@{run[1]}: {failure_note(rows)}")
        wide = ok.pivot(index="clip", columns="replicate", values="_v")
        wide = wide.reindex(columns=sorted(rows["replicate"].unique()))
        wides.append(wide[np.isfinite(wide.to_numpy(dtype=float)).all(axis=1)])
        ok_rows.append(ok)
        dropped += rows["clip"].nunique() - len(wides[-1])
    merge = set.union if union else set.intersection
    common = sorted(merge(*(set(w.index) for w in wides)))
    if not common:
        names = ", ".join(f"{v}@{s}" for v, s in runs)
        raise UserError(f"runs {names} have no clip scored ok in all of them ({column})")
    ok = pd.concat(ok_rows)
    ok = ok[ok["clip"].isin(common)]
    w = pd.to_numeric(ok["samples"], errors="coerce").groupby(ok["clip"]).mean()
    first = ok.drop_duplicates("clip").set_index("clip").reindex(common)
    singers = first["singer"] if "singer" in first.columns else pd.Series([None] * len(common))
    codes, used, note = resolve_units(pd.Series(common), singers.reset_index(drop=True), unit)
    return Aligned(
        clips=np.asarray(common),
        weights=w.loc[common].to_numpy(dtype=float),
        values=[wd.reindex(common).to_numpy(dtype=float).T for wd in wides],
        groups=codes,
        n_dropped=dropped if union else len(every) - len(common),
        unit=used,
        unit_note=note,
        fixed=tuple(fixed),
    )


# --------------------------------------------------------------------------- resampling


def resample_counts(groups: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """(n_boot, clips) multiplicities of each clip in each bootstrap resample (read-only).

    Units (``groups`` codes: clips, songs or singers) are drawn with replacement, as many
    as there are; a drawn unit brings all its clips.  Multiplicities make every resampled
    statistic one matrix product.  The same (groups, n_boot, seed) gives the same matrix,
    cached: a claims table compares many runs on the same clips.
    """
    groups = np.ascontiguousarray(groups, dtype=np.int64)
    return _counts(groups.tobytes(), n_boot, seed)


@functools.lru_cache(maxsize=8)
def _counts(groups_bytes: bytes, n_boot: int, seed: int) -> np.ndarray:
    groups = np.frombuffer(groups_bytes, dtype=np.int64)
    k = int(groups.max()) + 1
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, k, size=(n_boot, k), dtype=np.int32)
    flat = (draws + k * np.arange(n_boot, dtype=np.int64)[:, None]).ravel()
    per_unit = np.bincount(flat, minlength=n_boot * k).reshape(n_boot, k)
    out = per_unit if k == groups.size and (groups == np.arange(k)).all() else per_unit[:, groups]
    out = out.astype(float)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=8)
def _flip_bits(k: int, n_perm: int, seed: int) -> np.ndarray:
    """(n_perm, k) random 0/1 per unit, from random bytes (8 flips per drawn byte)."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=(n_perm, (k + 7) // 8), dtype=np.uint8)
    bits = np.unpackbits(raw, axis=1)[:, :k]
    bits.flags.writeable = False
    return bits


def weighted_mean(y: np.ndarray, w: np.ndarray) -> float:
    return float(np.sum(w * y) / np.sum(w))


def bootstrap_means(
    y: np.ndarray, w: np.ndarray, groups=None, n_boot: int = N_BOOT, seed: int = 0
) -> np.ndarray:
    """Length-weighted mean of ``y`` in each bootstrap resample of the clips."""
    groups = np.arange(len(y)) if groups is None else groups
    counts = resample_counts(groups, n_boot, seed)
    return (counts @ (w * y)) / (counts @ w)


def percentile_interval(boot: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    a = (1 - confidence) / 2
    lo, hi = np.quantile(boot, [a, 1 - a])
    return float(lo), float(hi)


def unit_se(boot: np.ndarray, n_units: int) -> float:
    """Standard error of a statistic from its bootstrap over ``n_units`` units.

    The bootstrap variance of a mean of G units is the plug-in one, dividing by G instead of
    G - 1: too small by (G - 1) / G, 6 % of the variance at MIR-1K's 17 test singers.  The
    factor G / (G - 1) undoes that (the CR1 correction of cluster-robust variances)."""
    var = float(np.var(boot))
    return math.sqrt(var * n_units / (n_units - 1)) if n_units > 1 else math.sqrt(var)


def units_df(n_units: int) -> float:
    """Degrees of freedom of a mean over ``n_units`` resampled units (at least 1): the clip
    term's df in every t interval here."""
    return float(max(n_units - 1, 1))


def clips_interval(
    estimate: float, boot: np.ndarray, n_units: int, confidence: float = CONFIDENCE
) -> tuple[float, float, float, float]:
    """(lo, hi, se, df) of the clips-only interval from a bootstrap over ``n_units`` units.

    Many units (>= ``FEW_UNITS``): the percentile interval (df inf), which follows a skewed
    statistic.  Few units (17 singers): the bootstrap's quantiles are those of a normal with
    the plug-in variance, and a mean over 17 clusters is a t statistic on 16 df, so the
    percentile interval under-covers; there ``estimate +- t(G - 1) se`` with the corrected se
    (:func:`unit_se`) is used, the usual few-cluster answer."""
    se = unit_se(boot, n_units)
    if n_units >= FEW_UNITS:
        lo, hi = percentile_interval(boot, confidence)
        return lo, hi, se, math.inf
    df = units_df(n_units)
    half = float(sps.t.ppf(0.5 + confidence / 2, df)) * se
    return estimate - half, estimate + half, se, df


def global_interval(
    values: np.ndarray,
    weights: np.ndarray,
    groups=None,
    n_boot: int = N_BOOT,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict:
    """(a) The length-weighted global metric with its bootstrap interval over clips."""
    y = np.asarray(values, dtype=float)
    boot = bootstrap_means(y, weights, groups, n_boot, seed)
    lo, hi = percentile_interval(boot, confidence)
    return {"estimate": weighted_mean(y, weights), "lo": lo, "hi": hi, "se": float(boot.std())}


def replicate_interval(per_replicate: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    """(b) Mean, sd and t interval of one run's per-replicate global metric (seeds only:
    the clips are held fixed).  One replicate: sd and interval are NaN."""
    g = np.asarray(per_replicate, dtype=float)
    n, mean = len(g), float(np.mean(g))
    if n < 2:
        return {"mean": mean, "sd": math.nan, "lo": math.nan, "hi": math.nan, "n": n}
    sd = float(np.std(g, ddof=1))
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "sd": sd, "lo": mean - half, "hi": mean + half, "n": n}


# --------------------------------------------------------------------------- tests


def sign_flip_p(
    d: np.ndarray, w: np.ndarray, groups=None, n_perm: int = N_PERM, seed: int = 0
) -> float:
    """Two-sided sign-flip permutation p-value of the length-weighted mean difference.

    Under the null that A and B are exchangeable on every clip, each clip's difference is
    as likely to have either sign; flipping signs at random (per resampling unit) gives the
    null distribution of the very statistic we report, weights included.
    """
    groups = np.arange(len(d)) if groups is None else np.asarray(groups)
    k = int(groups.max()) + 1
    wd = w * d
    observed = abs(wd.sum())
    bits = _flip_bits(k, n_perm, seed + 1)  # not the bootstrap's stream
    extreme = 0
    for start in range(0, n_perm, 2000):  # sum(s_i wd_i) = 2 sum(b_i wd_i) - sum(wd_i)
        flips = bits[start : start + 2000][:, groups].astype(float)
        stats = np.abs(2 * (flips @ wd) - wd.sum())
        extreme += int(np.sum(stats >= observed * (1 - 1e-9)))
    return (1 + extreme) / (1 + n_perm)


def wilcoxon_p(d: np.ndarray) -> float:
    """Wilcoxon signed-rank p (unweighted, a robustness check of the sign of the differences)."""
    d = np.asarray(d, dtype=float)
    if not np.any(d != 0):
        return 1.0
    return float(sps.wilcoxon(d, zero_method="wilcox").pvalue)


def _per_replicate(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    return values @ w / w.sum()


def seed_terms(
    reps: Sequence[np.ndarray], fixed: Sequence[bool] = ()
) -> tuple[list[tuple[float, float]], float]:
    """Seed-variance terms (variance of the estimate, degrees of freedom) for a difference of
    run means (two runs) or one run mean, and the pooled seed sd.

    ``fixed[i]``: run i is deterministic (a training-free method): it adds no seed term and
    neither lends nor borrows; the terms are those of the other runs (none left: no term and a
    seed sd of 0).

    A run with one replicate borrows the variance of the runs that have at least
    ``MIN_DONOR_REPLICATES`` (same architecture family, same data: seed noise is assumed
    alike); then the terms share one estimate and merge into one term.  A run of two
    replicates lends nothing: one degree of freedom gives a t interval of +-12.7 sd, which
    says nothing and looks like a result.  Without a donor there is no seed term (the
    claims then call the comparison "inconclusive (one seed)").
    """
    if any(fixed):
        random = [g for g, f in zip(reps, fixed) if not f]
        return seed_terms(random) if random else ([], 0.0)
    n = [len(g) for g in reps]
    var = [float(np.var(g, ddof=1)) if len(g) > 1 else math.nan for g in reps]
    have = [i for i, k in enumerate(n) if k > 1]
    if len(have) == len(reps):
        pooled = sum(var[i] * (n[i] - 1) for i in have) / sum(n[i] - 1 for i in have)
        return [(var[i] / n[i], n[i] - 1) for i in range(len(reps))], math.sqrt(pooled)
    donors = [i for i in have if n[i] >= MIN_DONOR_REPLICATES]
    if not donors:
        return [], math.nan
    pooled_df = sum(n[i] - 1 for i in donors)
    pooled = sum(var[i] * (n[i] - 1) for i in donors) / pooled_df
    return [(pooled * sum(1 / k for k in n), pooled_df)], math.sqrt(pooled)


def difference_terms(
    ga: np.ndarray, gb: np.ndarray, paired: bool = False, fixed: Sequence[bool] = ()
) -> tuple[list[tuple[float, float]], float]:
    """Seed terms of a difference of two runs' per-replicate global metrics.

    ``paired``: replicate r of A and of B are the *same* trained model (one model under two
    evaluations, e.g. 1 vs 4 windows per pass), so the seed noise cancels in the
    replicate-by-replicate differences, whose variance is the term; otherwise the two runs'
    seed variances add (:func:`seed_terms`)."""
    if paired and len(ga) == len(gb) and len(ga) > 1:
        d = np.asarray(ga) - np.asarray(gb)
        var = float(np.var(d, ddof=1))
        return [(var / len(d), len(d) - 1)], math.sqrt(var)
    return seed_terms([ga, gb], fixed)


def combine(estimate: float, clip_se: float, n_units: int, terms, confidence=CONFIDENCE):
    """t interval over clip + seed variance, Welch-Satterthwaite degrees of freedom.

    Returns (lo, hi, se, df, p) with p two-sided for ``estimate == 0``."""
    parts = [(clip_se**2, units_df(n_units))] + list(terms)
    total = sum(v for v, _ in parts)
    if total <= 0:
        return estimate, estimate, 0.0, math.inf, 1.0 if estimate == 0 else 0.0
    df = total**2 / sum(v**2 / k for v, k in parts if v > 0)
    se = math.sqrt(total)
    half = float(sps.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * sps.t.sf(abs(estimate) / se, df))
    return estimate - half, estimate + half, se, float(df), p


def _z_p(estimate: float, se: float, df: float = math.inf) -> float:
    """Two-sided p of ``estimate == 0`` from its se: normal, or t on ``df`` when finite."""
    if se <= 0:
        return 1.0 if estimate == 0 else 0.0
    dist = sps.norm if math.isinf(df) else sps.t(df)
    return float(2 * dist.sf(abs(estimate) / se))


# --------------------------------------------------------------------------- effects


def paired_effect(
    a: np.ndarray,
    b: np.ndarray,
    weights: np.ndarray,
    groups=None,
    n_boot: int = N_BOOT,
    n_perm: int = N_PERM,
    seed: int = 0,
    n_dropped: int = 0,
    confidence: float = CONFIDENCE,
    paired_replicates: bool = False,
    fixed: Sequence[bool] = (),
) -> Effect:
    """(c) A - B on the same clips; ``a``/``b`` are (replicates, clips) or (clips,).
    ``fixed``: which of A, B is deterministic (:func:`seed_terms`).

    One replicate each: the length-weighted mean difference, its bootstrap interval over the
    units of ``groups`` (:func:`clips_interval`), the sign-flip p.  With replicates: the
    interval adds the seed-to-seed variance of the per-replicate global metrics
    (:func:`combine`; ``paired_replicates``: see :func:`difference_terms`).
    """
    a, b = np.atleast_2d(a).astype(float), np.atleast_2d(b).astype(float)
    w = np.asarray(weights, dtype=float)
    groups = np.arange(w.size) if groups is None else np.asarray(groups)
    d = a.mean(axis=0) - b.mean(axis=0)
    est = weighted_mean(d, w)
    boot = bootstrap_means(d, w, groups, n_boot, seed)
    n_units = int(groups.max()) + 1
    clo, chi, se, cdf = clips_interval(est, boot, n_units, confidence)
    terms, seed_sd = difference_terms(
        _per_replicate(a, w), _per_replicate(b, w), paired_replicates, fixed
    )
    common = dict(
        n_clips=int(w.size),
        n_dropped=int(n_dropped),
        replicates=(a.shape[0], b.shape[0]),
        clips_lo=clo,
        clips_hi=chi,
        clip_se=se,
        clip_df=units_df(n_units),
        seed_sd=seed_sd,
        wilcoxon_p=wilcoxon_p(d),
    )
    if not terms:
        p = sign_flip_p(d, w, groups, n_perm, seed)
        variance = CLIPS_FIXED if fixed and all(fixed) else CLIPS
        return Effect(
            est, clo, chi, se, p, "sign-flip permutation", variance=variance, df=cdf, **common
        )
    lo, hi, se, df, p = combine(est, se, n_units, terms, confidence)
    return Effect(est, lo, hi, se, p, "t (Satterthwaite)", variance=CLIPS_SEEDS, df=df, **common)


def threshold_effect(
    a: np.ndarray,
    weights: np.ndarray,
    threshold: float,
    groups=None,
    n_boot: int = N_BOOT,
    seed: int = 0,
    n_dropped: int = 0,
    confidence: float = CONFIDENCE,
) -> Effect:
    """(d) A run's global metric minus ``threshold`` (a number, e.g. a paper's figure)."""
    a = np.atleast_2d(a).astype(float)
    w = np.asarray(weights, dtype=float)
    groups = np.arange(w.size) if groups is None else np.asarray(groups)
    y = a.mean(axis=0)
    est = weighted_mean(y, w) - threshold
    boot = bootstrap_means(y, w, groups, n_boot, seed) - threshold
    seeds = seed_terms([_per_replicate(a, w)])
    counts = dict(n_clips=int(w.size), n_dropped=int(n_dropped), replicates=(a.shape[0],))
    return _z_or_t_effect(est, boot, groups, seeds, confidence, **counts)


def _z_or_t_effect(est, boot, groups, seeds, confidence, **counts) -> Effect:
    """An unpaired effect from its bootstrap: the clips-only percentile interval with a
    bootstrap z p-value, or, with seed terms, the t interval over clips + seeds."""
    terms, seed_sd = seeds
    n_units = int(groups.max()) + 1
    clo, chi, se, cdf = clips_interval(est, boot, n_units, confidence)
    clip = dict(clip_se=se, clip_df=units_df(n_units))
    common = dict(clips_lo=clo, clips_hi=chi, seed_sd=seed_sd, **clip, **counts)
    if not terms:
        method = "bootstrap z" if math.isinf(cdf) else f"bootstrap t ({cdf:g} df)"
        p = _z_p(est, se, cdf)
        return Effect(est, clo, chi, se, p, method, variance=CLIPS, df=cdf, **common)
    lo, hi, se, df, p = combine(est, se, n_units, terms, confidence)
    return Effect(est, lo, hi, se, p, "t (Satterthwaite)", variance=CLIPS_SEEDS, df=df, **common)


# --------------------------------------------------------------------------- on score tables


def _with_unit(eff: Effect, al: Aligned) -> Effect:
    """``eff`` with the unit its bootstrap drew and the note when that was a fallback."""
    eff.resampled_by, eff.unit_note = al.unit, al.unit_note
    return eff


def compare_runs(
    scores: pd.DataFrame,
    a: tuple[str, object],
    b: tuple[str, object],
    metric: str = "gnsdr",
    source: str = "voice",
    unit: str = DEFAULT_UNIT,
    **kw,
) -> Effect:
    """Paired A - B of a global metric from a prepared scores table (:func:`prepare_scores`),
    resampled by ``unit`` (or a finer one: :func:`resolve_units`)."""
    al = align_runs(scores, [a, b], metric_column(metric, source), unit)
    eff = paired_effect(
        *al.values, al.weights, al.groups, n_dropped=al.n_dropped, fixed=al.fixed, **kw
    )
    return _with_unit(eff, al)


def compare_threshold(
    scores: pd.DataFrame,
    a: tuple[str, object],
    threshold: float,
    metric: str = "gnsdr",
    source: str = "voice",
    unit: str = DEFAULT_UNIT,
    **kw,
) -> Effect:
    """A run's global metric minus ``threshold``, with its interval."""
    al = align_runs(scores, [a], metric_column(metric, source), unit)
    eff = threshold_effect(
        al.values[0], al.weights, threshold, al.groups, n_dropped=al.n_dropped, **kw
    )
    return _with_unit(eff, al)


def own_clips_effect(
    a: np.ndarray,
    b: np.ndarray,
    w: np.ndarray,
    in_a: np.ndarray,
    in_b: np.ndarray,
    groups=None,
    n_boot: int = N_BOOT,
    seed: int = 0,
    paired_replicates: bool = False,
    confidence: float = CONFIDENCE,
) -> Effect:
    """(e) A - B where each run is averaged over its own clips (e.g. a test subset vs the
    full test set): not paired clip by clip.  ``a``/``b``: (replicates, clips) over the
    union of the clips, NaN where a run has no score; ``in_a``/``in_b``: membership masks.

    The bootstrap resamples the union once per resample and averages each run over its own
    drawn clips, so clips the runs share move together (a nested subset's correlation with
    its full set is kept).  Resamples that draw no clip of a run are skipped.  With
    replicates: the replicate-by-replicate differences (``paired_replicates``: the same
    trained models, e.g. one model under two evaluations) or the two runs' seed variances."""
    a, b = np.atleast_2d(a).astype(float), np.atleast_2d(b).astype(float)
    w = np.asarray(w, dtype=float)
    groups = np.arange(w.size) if groups is None else np.asarray(groups)
    wa, wb = w * in_a, w * in_b
    ya, yb = np.nan_to_num(a.mean(axis=0)), np.nan_to_num(b.mean(axis=0))
    est = float(ya @ wa / wa.sum() - yb @ wb / wb.sum())
    counts = resample_counts(groups, n_boot, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (counts @ (wa * ya)) / (counts @ wa) - (counts @ (wb * yb)) / (counts @ wb)
    boot = boot[np.isfinite(boot)]
    ga = np.nan_to_num(a) @ wa / wa.sum()  # per-replicate global metrics
    gb = np.nan_to_num(b) @ wb / wb.sum()
    seeds = difference_terms(ga, gb, paired_replicates)
    counts = dict(n_clips=int(w.size), n_dropped=0, replicates=(a.shape[0], b.shape[0]))
    return _z_or_t_effect(est, boot, groups, seeds, confidence, **counts)


def compare_own_clips(
    scores: pd.DataFrame,
    a: tuple[str, object],
    b: tuple[str, object],
    metric: str = "gnsdr",
    source: str = "voice",
    unit: str = DEFAULT_UNIT,
    **kw,
) -> Effect:
    """A - B of a global metric, each run over its own ok clips (:func:`own_clips_effect`)."""
    al = align_runs(scores, [a, b], metric_column(metric, source), unit, union=True)
    masks = [np.isfinite(v[0]) for v in al.values]
    kw.pop("n_perm", None)
    eff = own_clips_effect(*al.values, al.weights, *masks, al.groups, **kw)
    eff.n_dropped = al.n_dropped
    return _with_unit(eff, al)


def speed_up(
    scores: pd.DataFrame,
    a: tuple[str, object],
    b: tuple[str, object],
    unit: str = DEFAULT_UNIT,
    n_boot: int = N_BOOT,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    **_,
) -> dict:
    """How many times faster A's scoring is than B's: total per-clip ``seconds`` of B over
    A's on the clips both scored (each clip's mean over replicates), a bootstrap interval
    over the units (:func:`clips_interval` on the log ratio, so few units give a t interval
    there) and a Wilcoxon signed-rank p of the per-clip log ratios."""
    al = align_runs(scores, [a, b], "seconds", unit)
    ta, tb = al.values[0].mean(axis=0), al.values[1].mean(axis=0)
    counts = resample_counts(al.groups, n_boot, seed)
    effect = float(tb.sum() / ta.sum())
    log_boot = np.log((counts @ tb) / (counts @ ta))
    n_units = int(al.groups.max()) + 1
    lo, hi, _, _ = clips_interval(math.log(effect), log_boot, n_units, confidence)
    good = (ta > 0) & (tb > 0)
    return {
        "effect": effect,
        "lo": math.exp(lo),
        "hi": math.exp(hi),
        "resampled_by": al.unit,
        "unit_note": al.unit_note,
        "p_value": wilcoxon_p(np.log(tb[good] / ta[good])),
        "p_method": "Wilcoxon signed-rank (log ratio)",
        "n_clips": int(ta.size),
        "n_dropped": al.n_dropped,
        "n_replicates": min(al.values[0].shape[0], al.values[1].shape[0]),
        "seconds": (float(ta.sum()), float(tb.sum())),
    }


def replicate_table(
    scores: pd.DataFrame, metric: str = "gnsdr", source: str = "voice"
) -> pd.DataFrame:
    """(b) per run (variant, step): mean, sd and t interval over replicates of the global
    metric, each replicate averaged over its own ok clips (as ``aggregate`` does)."""
    col = metric_column(metric, source)
    ok = scores[scores["status"] == "ok"].copy()
    ok["_w"] = pd.to_numeric(ok["samples"], errors="coerce")
    ok["_wx"] = ok["_w"] * pd.to_numeric(ok[col], errors="coerce")
    per = ok.groupby(["variant", "step", "replicate"])[["_w", "_wx"]].sum()
    per["g"] = per["_wx"] / per["_w"]
    rows = []
    for (variant, step), g in per.groupby(level=["variant", "step"]):
        rows.append({"variant": variant, "step": step, **replicate_interval(g["g"].to_numpy())})
    return pd.DataFrame(rows, columns=["variant", "step", "mean", "sd", "lo", "hi", "n"])


INTERVAL_COLUMNS = [
    "variant", "step", "replicate", "source", "metric", "estimate", "lo", "hi", "sd", "n",
    "variance",
]  # fmt: skip


def _run_intervals(g: pd.DataFrame, key: tuple, n_boot: int, seed: int, confidence) -> list:
    """Rows of one (variant, step): per replicate a bootstrap interval over its ok clips,
    then (two or more replicates) mean, sd and t interval across the replicates."""
    rows, per_rep = [], {}
    for rep, r in g.groupby("replicate"):
        ok = r[r["status"] == "ok"]
        w = pd.to_numeric(ok["samples"], errors="coerce").to_numpy(dtype=float)
        for source in SOURCES:
            for metric in ("gnsdr", "gsir", "gsar"):
                y = pd.to_numeric(ok[metric_column(metric, source)], errors="coerce").to_numpy()
                good = np.isfinite(y) & np.isfinite(w)
                if not good.any():
                    continue
                gi = global_interval(y[good], w[good], None, n_boot, seed, confidence)
                per_rep.setdefault((source, metric), []).append(gi["estimate"])
                rows.append(
                    [*key, int(rep), source, metric, gi["estimate"], gi["lo"], gi["hi"],
                     gi["se"], int(good.sum()), "clips"]
                )  # fmt: skip
    for (source, metric), values in per_rep.items():
        if len(values) < 2:
            continue
        ri = replicate_interval(values, confidence)
        rows.append(
            [*key, "all", source, metric, ri["mean"], ri["lo"], ri["hi"], ri["sd"], ri["n"],
             "seeds"]
        )  # fmt: skip
    return rows


def interval_table(
    scores: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0, confidence: float = CONFIDENCE
) -> pd.DataFrame:
    """Every run's GNSDR / GSIR / GSAR with its uncertainty, one row per (variant, step,
    replicate, source, metric).  ``variance`` says which: ``clips`` = percentile bootstrap
    over the test clips of one trained model (``sd`` = bootstrap se, ``n`` = clips);
    ``seeds`` (replicate ``all``) = mean, sd and t interval across the replicates' global
    metrics (``n`` = replicates), the clips held fixed."""
    scores = prepare_scores(scores)
    rows = []
    for key, g in scores.groupby(["variant", "step"], sort=True):
        rows.extend(_run_intervals(g, key, n_boot, seed, confidence))
    return pd.DataFrame(rows, columns=INTERVAL_COLUMNS)


# --------------------------------------------------------------------------- decisions

DIRECTIONS = ("greater", "less", "above", "below", "not-greater", "not-less", "equivalent")


def decide(lo: float, hi: float, expect: str, margin: float = 0.0) -> str:
    """Verdict from an interval of A - B (or A - threshold): holds / contradicted / inconclusive.

    greater, above:  holds when lo > 0, contradicted when hi < 0;
    less, below:     the mirror image;
    equivalent:      holds when -margin < lo and hi < margin, contradicted when the
                     interval lies entirely outside (hi < -margin or lo > margin);
    not-greater:     (A does not beat B by more than margin) holds when hi < margin,
                     contradicted when lo > margin; not-less is its mirror image.
    """
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "inconclusive"
    if expect in ("less", "below"):
        lo, hi, expect = -hi, -lo, "greater"
    if expect == "not-less":
        lo, hi, expect = -hi, -lo, "not-greater"
    if expect in ("greater", "above"):
        return "holds" if lo > 0 else "contradicted" if hi < 0 else "inconclusive"
    if expect == "not-greater":
        return "holds" if hi < margin else "contradicted" if lo > margin else "inconclusive"
    if expect == "equivalent":
        if -margin < lo and hi < margin:
            return "holds"
        return "contradicted" if hi < -margin or lo > margin else "inconclusive"
    raise ValueError(f"no interval rule for expect {expect!r} (known: {DIRECTIONS})")

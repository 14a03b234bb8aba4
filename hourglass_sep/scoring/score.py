"""BSS Eval v3 scoring of separated estimates (the MIR-1K protocol) and the NSDR baseline.

Protocol (see ``docs/scoring.md``):

* references are the original channels of each test clip (voice = right, accompaniment =
  left) at the clip's own rate (16 kHz for MIR-1K); the mixture is their mean;
* the estimate of each source is scored against the references truncated to the estimate's
  length with BSS Eval v3 ``bss_eval_sources`` on the whole clip (512-tap distortion
  filters), estimate *i* against reference *i* (fixed order, no permutation search);
* NSDR = SDR(estimate) - SDR(mixture used as the estimate).  The mixture's scores depend
  only on the clip, so ``hourglass-sep baseline`` computes them once per dataset and every
  ``hourglass-sep score`` reuses them.

Three interchangeable backends give the same numbers (to ~1e-6 dB on MIR-1K clips):
``museval`` (the seed's choice, default), ``fast_bss_eval`` (about twice as fast) and
``cached`` (``hourglass_sep.scoring.bss_eval``: the references' Gram matrix factorised once per
clip,
read from the reference cache of ``hourglass_sep.scoring.reference_cache`` when one is given, each
estimate then costing block FFTs and triangular solves; about 10x faster than museval).
Neither museval nor fast_bss_eval is imported through its package ``__init__``:
``import museval`` pulls in musdb -> stempeg, which refuses to import without the
``ffmpeg`` binary, and ``import fast_bss_eval`` imports torch (seconds per worker process).
We load their numpy code (``museval/metrics.py``, ``fast_bss_eval/numpy/``)
from the installed files.

Two verbs live here: ``baseline`` (``add_baseline_arguments`` / ``run_baseline``) and
``score`` (``add_score_arguments`` / ``run_score``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hourglass_sep.data.catalogue import (  # one sharding rule for separate/baseline/score
    evaluated_clips,
    parse_shard,
)
from hourglass_sep.errors import UserError
from hourglass_sep.scoring.clip_status import METRIC_COLUMNS, non_finite_status, silent_status

log = logging.getLogger(__name__)

SOURCES = ("voice", "accompaniment")
# channel of the stereo MIR-1K file holding each source
CHANNEL = {"voice": 1, "accompaniment": 0}
BACKENDS = ("museval", "fast_bss_eval", "cached", "mir_eval")
DEFAULT_BACKEND = "museval"
METRICS = ("sdr", "sir", "sar")
FILTER_LEN = 512
# an estimate may be shorter than its reference (STFT framing), but not by more than this
DEFAULT_MAX_SHORTFALL_S = 0.25
BLAS_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

MIX_COLUMNS = [f"{s}_mix_{m}" for s in SOURCES for m in METRICS]
BASELINE_COLUMNS = ["clip", "singer", "samples", "scorer", "seconds", "status"] + MIX_COLUMNS
SCORE_COLUMNS = (
    ["variant", "step", "clip", "singer", "samples", "scorer", "seconds", "status"]
    + [
        f"{s}_{m}"
        for s in SOURCES
        for m in ("sdr", "sir", "sar", "nsdr", "mix_sdr", "mix_sir", "mix_sar")
    ]
    + ["mix_from"]
)

PIP_NAME = {"museval": "museval", "fast_bss_eval": "fast-bss-eval", "cached": "hourglass-sep"}


class ClipError(ValueError):
    """A clip that cannot be scored; its message becomes the clip's ``status``."""


# --------------------------------------------------------------------------- backends

_BACKEND_CACHE: dict[str, Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]] = {}


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # does not execute the package's __init__
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"scoring backend {package!r} is not installed; install it with "
            f"`pip install {PIP_NAME.get(package, package)}` or choose the other --backend "
            f"({', '.join(b for b in BACKENDS if b != package)})"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _load_file_module(name: str, path: Path, package_dir: Path | None = None):
    """Execute ``path`` as module ``name`` (a package when ``package_dir`` is given)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(package_dir)] if package_dir else None
    )
    if spec is None or spec.loader is None:  # pragma: no cover - broken installation
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return mod


def _missing_dependency(package: str, exc: BaseException) -> UserError:
    return UserError(
        f"scoring backend {package!r} cannot be loaded ({type(exc).__name__}: {exc}); "
        f"(re)install it with `pip install {PIP_NAME[package]}` or choose the other --backend"
    )


def load_museval_metrics():
    """``museval.metrics`` without running ``museval/__init__`` (which needs ffmpeg)."""
    if "museval.metrics" in sys.modules:  # already imported the normal way
        return sys.modules["museval.metrics"]
    path = _package_dir("museval") / "metrics.py"
    if not path.is_file():
        raise _missing_dependency("museval", FileNotFoundError(str(path)))
    try:
        return _load_file_module("hourglass_sep._museval_metrics", path)
    except ImportError as exc:
        raise _missing_dependency("museval", exc) from None


def load_fast_bss_eval_numpy():
    """``fast_bss_eval.numpy`` without running ``fast_bss_eval/__init__`` (which imports torch)."""
    pkg = _package_dir("fast_bss_eval") / "numpy"
    if not (pkg / "metrics.py").is_file():
        raise _missing_dependency("fast_bss_eval", FileNotFoundError(str(pkg / "metrics.py")))
    try:
        return _load_file_module("hourglass_sep._fast_bss_eval_numpy", pkg / "__init__.py", pkg)
    except ImportError as exc:
        raise _missing_dependency("fast_bss_eval", exc) from None


def _museval_eval(mm) -> Callable:
    def run(refs: np.ndarray, ests: np.ndarray) -> dict[str, np.ndarray]:
        # BSS Eval v4 code path, one window spanning the clip, filters fitted on the whole
        # clip, bss_eval_sources criteria: identical to museval.metrics.bss_eval_sources
        # (and mir_eval.separation.bss_eval_sources) with compute_permutation=False.
        sdr, _isr, sir, sar, _perm = mm.bss_eval(
            refs,
            ests,
            window=np.inf,
            hop=np.inf,
            compute_permutation=False,
            filters_len=FILTER_LEN,
            framewise_filters=False,
            bsseval_sources_version=True,
        )
        return {"sdr": sdr[:, 0], "sir": sir[:, 0], "sar": sar[:, 0]}

    return run


def _fast_bss_eval_eval(fb) -> Callable:
    metrics = getattr(fb, "metrics", None)
    square_cosine = getattr(metrics, "square_cosine_metrics", None)
    to_db = getattr(metrics, "_base_metrics_bss_eval", None)

    def run(refs: np.ndarray, ests: np.ndarray) -> dict[str, np.ndarray]:
        n = refs.shape[0]
        diag = np.arange(n)
        if square_cosine is not None and to_db is not None:
            # fast_bss_eval's compute_permutation=False path calls np.linalg.solve with a
            # batch of vectors, which NumPy >= 2 rejects.  The pairwise path works: it
            # scores every (reference, estimate) pair, and we keep the diagonal, i.e.
            # estimate i against reference i.  (The SIR/SAR solve does not depend on the
            # pairing, so this costs the same as the unpaired computation.)
            coh_sdr, coh_sar = square_cosine(refs, ests, filter_length=FILTER_LEN, pairwise=True)
            neg_sdr, neg_sir, neg_sar = to_db(coh_sdr, coh_sar, clamp_db=None)
            return {
                "sdr": -neg_sdr[diag, diag],
                "sir": -neg_sir[diag, diag],
                "sar": -neg_sar[diag, diag],
            }
        # layout of fast_bss_eval changed: the public API (best permutation) is only usable
        # when that permutation is the identity
        sdr, sir, sar, perm = fb.bss_eval_sources(
            refs, ests, filter_length=FILTER_LEN, compute_permutation=True
        )
        if not np.array_equal(
            np.asarray(perm), diag
        ):  # pragma: no cover - needs another fast_bss_eval
            raise ClipError(
                "fast_bss_eval matched the estimates to other sources; score with --backend museval"
            )
        return {"sdr": sdr, "sir": sir, "sar": sar}

    return run


def _cached_eval(refs: np.ndarray, ests: np.ndarray, factors=None) -> dict[str, np.ndarray]:
    """``scoring.bss_eval`` with the references' factors (cached, or computed here)."""
    from hourglass_sep.scoring import bss_eval

    if refs.shape[0] != 2:
        raise ClipError(f"the cached backend scores 2 sources; got {refs.shape[0]}")
    if factors is None or factors.samples != refs.shape[1]:
        try:
            factors = bss_eval.factorise(refs)
        except np.linalg.LinAlgError:  # singular correlations: museval's least squares
            return get_backend("museval")(refs, ests)
    return bss_eval.sources_scores(factors, refs, ests)


def get_backend(name: str) -> Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]:
    """The evaluation function of a backend; raises ``UserError`` when it is unavailable."""
    if name not in BACKENDS:
        raise UserError(f"unknown scoring backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    if name not in _BACKEND_CACHE:
        if name == "museval":
            _BACKEND_CACHE[name] = _museval_eval(load_museval_metrics())
        elif name == "fast_bss_eval":
            _BACKEND_CACHE[name] = _fast_bss_eval_eval(load_fast_bss_eval_numpy())
        elif name == "mir_eval":  # the report's row 1 was scored with it
            from hourglass_sep.scoring.mir_eval_backend import mir_eval_eval

            _BACKEND_CACHE[name] = mir_eval_eval()
        else:
            _BACKEND_CACHE[name] = _cached_eval
    return _BACKEND_CACHE[name]


def scorer_name(backend: str) -> str:
    """``backend version`` as written in the tables' ``scorer`` column."""
    from importlib import metadata

    try:
        version = metadata.version(PIP_NAME.get(backend, backend))
    except metadata.PackageNotFoundError:
        version = "?"
    return f"{backend} {version}"


# --------------------------------------------------------------------------- metrics


def _as_sources(x: Any, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] != len(SOURCES):
        raise ClipError(
            f"{what} must have shape (2, samples) (voice, accompaniment); got {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        raise ClipError(f"{what} has dtype {x.dtype}, expected floating point samples")
    return np.ascontiguousarray(x, dtype=np.float64)


def check_signals(refs: np.ndarray, ests: np.ndarray, names: Sequence[str] = SOURCES) -> None:
    """Raise ``ClipError`` (message = the clip's status) for inputs BSS Eval cannot score:
    mismatched shapes, fewer samples than the filter length, NaN/inf, all-zero references,
    silent or near-silent estimates (``clip_status.silent_status``)."""
    if refs.ndim != 2 or refs.shape != ests.shape:
        raise ClipError(f"length mismatch: references {refs.shape}, estimates {ests.shape}")
    names = list(names) if len(names) == refs.shape[0] else [str(i) for i in range(refs.shape[0])]
    if refs.shape[1] < FILTER_LEN:
        raise ClipError(
            f"too short: {refs.shape[1]} samples (BSS Eval needs at least {FILTER_LEN})"
        )
    for name, arr in (("reference", refs), ("estimate", ests)):
        bad = [s for s, row in zip(names, arr) if not np.all(np.isfinite(row))]
        if bad:
            raise ClipError(f"non-finite {name} (NaN or inf): {', '.join(bad)}")
    silent = [s for s, row in zip(names, refs) if not np.any(row)]
    if silent:
        raise ClipError(f"silent reference (all zeros): {', '.join(silent)}")
    faint = silent_status(refs, ests, names)  # BSS Eval of a faint estimate measures rounding
    if faint:
        raise ClipError(faint)


def bss_eval_sources(
    refs: np.ndarray, ests: np.ndarray, backend: str = DEFAULT_BACKEND, factors=None
) -> dict[str, np.ndarray]:
    """BSS Eval v3 ``bss_eval_sources`` (whole signal, 512-tap filters), estimate i vs reference i.

    ``refs`` and ``ests`` are ``(n_sources, samples)`` (voice, accompaniment for MIR-1K).
    Returns ``{"sdr", "sir", "sar"}`` arrays of shape ``(n_sources,)`` in dB.
    Raises ``ClipError`` for silent, non-finite or mismatched inputs, ``UserError`` when
    the backend is not installed.  ``factors``: the references' ``bss_eval.ReferenceFactors``
    for the ``cached`` backend (computed here when absent or of another length).
    """
    refs = np.ascontiguousarray(np.asarray(refs, dtype=np.float64))
    ests = np.ascontiguousarray(np.asarray(ests, dtype=np.float64))
    if refs.ndim != 2 or ests.ndim != 2:
        raise ClipError(
            f"expected two (sources, samples) arrays; got shapes {refs.shape}, {ests.shape}"
        )
    check_signals(refs, ests)
    fn = get_backend(backend)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _cached_eval(refs, ests, factors) if backend == "cached" else fn(refs, ests)
    return {k: np.asarray(v, dtype=np.float64).reshape(refs.shape[0]) for k, v in out.items()}


def mixture_scores(
    refs: np.ndarray, backend: str = DEFAULT_BACKEND, factors=None
) -> dict[str, float]:
    """Scores of the mixture (mean of the references) used as the estimate of every source.

    Returns ``{"voice_mix_sdr": .., "voice_mix_sir": .., ..., "accompaniment_mix_sar": ..}``.
    The mixture is an exact sum of the references, so its SAR is infinite in theory; the
    reported value is numerical noise (> 100 dB) and differs between backends.
    ``factors``: as for :func:`bss_eval_sources`.
    """
    refs = _as_sources(refs, "references")
    mix = np.stack([refs.mean(axis=0)] * len(SOURCES))  # mean of the two channels
    if backend == "cached" and factors is not None and factors.samples == refs.shape[1]:
        check_signals(refs, mix)
        return mixture_scores_from_factors(factors)
    m = bss_eval_sources(refs, mix, backend, factors)
    return {f"{s}_mix_{k}": float(m[k][i]) for i, s in enumerate(SOURCES) for k in METRICS}


def mixture_scores_from_factors(factors) -> dict[str, float]:
    """:func:`mixture_scores` from cached reference factors alone (no audio needed)."""
    from hourglass_sep.scoring import bss_eval

    m = bss_eval.mixture_scores(factors)
    return {f"{s}_mix_{k}": float(m[k][i]) for i, s in enumerate(SOURCES) for k in METRICS}


def _empty_score_row(samples: int = 0, status: str = "ok") -> dict[str, Any]:
    row: dict[str, Any] = {"samples": int(samples), "status": status, "mix_from": ""}
    for s in SOURCES:
        for k in ("sdr", "sir", "sar", "nsdr", "mix_sdr", "mix_sir", "mix_sar"):
            row[f"{s}_{k}"] = math.nan
    return row


def score_clip(
    refs: np.ndarray,
    ests: np.ndarray,
    backend: str = DEFAULT_BACKEND,
    baseline: dict[str, float] | None = None,
    baseline_samples: int | None = None,
    max_shortfall: int | None = None,
    factors=None,
) -> dict[str, Any]:
    """Score one clip; never raises for bad data (the reason goes to ``status``).

    ``refs``: ``(2, n)`` original (voice, accompaniment); ``ests``: ``(2, m)`` estimates,
    ``m <= n``.  The references are truncated to ``m`` samples.  ``baseline``: the
    mixture's ``{src}_mix_{sdr,sir,sar}`` computed on ``baseline_samples`` samples; it is
    reused when those are the ``m`` samples scored, otherwise the mixture is rescored on
    the truncated clip.  ``max_shortfall``: the most samples an estimate may lack.
    ``factors``: the full-length references' factors for the ``cached`` backend (unused
    when the estimate is shorter: the truncated references are factorised here).

    Returns ``samples``, ``status`` ("ok" or a reason), ``mix_from`` and, per source,
    ``sdr sir sar nsdr mix_sdr mix_sir mix_sar`` (``NaN`` where unknown).
    """
    row = _empty_score_row()
    try:
        refs = _as_sources(refs, "references")
        ests = _as_sources(ests, "estimates")
        n, m = refs.shape[1], ests.shape[1]
        row["samples"] = m
        if m > n:
            raise ClipError(f"length mismatch: estimate has {m} samples, reference {n}")
        if max_shortfall is not None and n - m > max_shortfall:
            raise ClipError(
                f"length mismatch: estimate has {m} samples, reference {n} "
                f"(more than {max_shortfall} short)"
            )
        refs = refs[:, :m]
        check_signals(refs, ests)
        if (
            baseline is not None
            and baseline_samples == m
            and not any(math.isnan(float(baseline.get(c, math.nan))) for c in MIX_COLUMNS)
        ):
            mix = {c: float(baseline[c]) for c in MIX_COLUMNS}
            row["mix_from"] = "baseline"
        else:
            mix = mixture_scores(refs, backend, factors)
            row["mix_from"] = "recomputed"
        scores = bss_eval_sources(refs, ests, backend, factors)
        for i, s in enumerate(SOURCES):
            for k in METRICS:
                row[f"{s}_{k}"] = float(scores[k][i])
            for k in METRICS:
                row[f"{s}_mix_{k}"] = mix[f"{s}_mix_{k}"]
            row[f"{s}_nsdr"] = row[f"{s}_sdr"] - row[f"{s}_mix_sdr"]
        bad = non_finite_status(row)
        if bad:  # never a mean's -inf: the clip fails with the metrics named
            for c in METRIC_COLUMNS:
                row[c] = math.nan
            raise ClipError(bad)
    except ClipError as exc:
        row["status"] = str(exc)
    except UserError:
        raise
    except Exception as exc:  # a numerical failure must not stop a long job
        row["status"] = f"scorer error: {type(exc).__name__}: {exc}"
    return row


# --------------------------------------------------------------------------- clips and files


def load_catalogue(path: str | os.PathLike):
    from hourglass_sep.data.catalogue import read_catalogue

    df = read_catalogue(path)
    if "evaluate" not in df.columns:
        raise UserError(
            f"{path}: catalogue has no 'evaluate' column; write it with `hourglass-sep catalogue`"
        )
    return df


def read_references(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """``(2, n)`` float64 (voice = right channel, accompaniment = left channel) and the rate."""
    from hourglass_sep.data.audio import read_audio

    try:
        x, sr = read_audio(path)
    except UserError as exc:
        raise ClipError(f"unreadable reference: {exc}") from None
    if x.shape[0] != 2:
        raise ClipError(f"reference is not stereo ({x.shape[0]} channels): {path}")
    return np.stack([x[CHANNEL[s]] for s in SOURCES]).astype(np.float64), sr


class EstimatesIndex:
    """Which estimates file holds which clip (one or several npz files, e.g. one per shard)."""

    def __init__(self, paths: Sequence[str | os.PathLike]):
        self.where: dict[str, str] = {}
        self.meta: dict[str, Any] = {}
        for p in paths:
            p = Path(p)
            if not p.exists():
                raise UserError(
                    f"{p}: estimates file not found; "
                    "write it with `hourglass-sep separate --estimates`"
                )
            if p.is_dir():
                raise UserError(
                    f"{p}: is a directory; "
                    "--estimates expects the .npz written by `hourglass-sep separate`"
                )
            try:
                with np.load(p, allow_pickle=False) as z:
                    keys = set(z.files)
                    if "clips" not in keys:
                        raise UserError(
                            f"{p}: not an estimates file "
                            f"(no 'clips' array; has {sorted(keys)[:5]}); "
                            "expected the .npz written by `hourglass-sep separate --estimates`"
                        )
                    clips = [str(c) for c in np.atleast_1d(z["clips"])]
                    if "meta" in keys:
                        with contextlib.suppress(Exception):
                            self.meta[str(p)] = json.loads(str(z["meta"]))
            except UserError:
                raise
            except Exception as exc:
                raise UserError(
                    f"{p}: cannot read as an estimates .npz ({type(exc).__name__}: {exc}); "
                    "expected the file written by `hourglass-sep separate --estimates`"
                ) from None
            for c in clips:
                if all(f"{s}__{c}" in keys for s in SOURCES):
                    self.where.setdefault(c, str(p))

    def __contains__(self, clip: str) -> bool:
        return clip in self.where


_NPZ_CACHE: dict[tuple, Any] = {}  # open estimates / reference cache files of this process


def _close_npz_cache() -> None:
    for z in _NPZ_CACHE.values():
        with contextlib.suppress(Exception):
            z.close()
    _NPZ_CACHE.clear()


def _open_npz(path: str):
    """The open ``NpzFile`` of ``path`` (kept open across the clips a worker scores)."""
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)  # a rewritten file is opened afresh
    z = _NPZ_CACHE.get(key)
    if z is None:
        if len(_NPZ_CACHE) >= 8:
            _close_npz_cache()
        z = _NPZ_CACHE[key] = np.load(path, allow_pickle=False)
    return z


def _read_estimates(path: str, clip: str) -> np.ndarray:
    z = _open_npz(path)
    arrs = [np.asarray(z[f"{s}__{clip}"]) for s in SOURCES]
    if any(a.ndim != 1 for a in arrs):
        raise ClipError(f"estimates must be 1-D waveforms; got shapes {[a.shape for a in arrs]}")
    if arrs[0].shape != arrs[1].shape:
        raise ClipError(
            f"length mismatch: voice estimate has {arrs[0].size} samples, "
            f"accompaniment {arrs[1].size}"
        )
    return np.stack(arrs).astype(np.float64)


def read_baselines(paths: Sequence[str | os.PathLike]):
    """Concatenate baseline shard tables (``hourglass-sep baseline`` outputs), one row per clip."""
    import pandas as pd

    frames = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise UserError(
                f"{p}: baseline table not found; write it with `hourglass-sep baseline`"
            )
        try:
            df = pd.read_csv(p, sep="\t")
        except Exception as exc:
            raise UserError(
                f"{p}: cannot read as a TSV table ({type(exc).__name__}: {exc})"
            ) from None
        missing = [c for c in ("clip", "samples", "status", *MIX_COLUMNS) if c not in df.columns]
        if missing:
            raise UserError(
                f"{p}: not a baseline table (missing columns {missing}); "
                "write it with `hourglass-sep baseline --catalogue ... --shard I/N -o FILE`"
            )
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=BASELINE_COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    df["clip"] = df["clip"].astype(str)
    dup = df["clip"].duplicated()
    if dup.any():
        log.warning(
            "%d clips appear in more than one baseline file; keeping the first", int(dup.sum())
        )
        df = df[~dup]
    return df.set_index("clip", drop=False)


# --------------------------------------------------------------------------- tasks (run in workers)


def _baseline_task(task: dict) -> dict:
    t0 = time.perf_counter()
    row = {
        "clip": task["clip"],
        "singer": task["singer"],
        "samples": task["samples"],
        "status": "ok",
    }
    row.update({c: math.nan for c in MIX_COLUMNS})
    try:
        factors = _cached_factors(task)
        if factors is not None:  # the reference cache has it all: no audio to read
            row["samples"] = factors.samples
            row.update(mixture_scores_from_factors(factors))
        else:
            refs, _sr = read_references(task["path"])
            row["samples"] = refs.shape[1]
            row.update(mixture_scores(refs, task["backend"]))
    except ClipError as exc:
        row["status"] = str(exc)
    except UserError:
        raise
    except Exception as exc:  # never stop a long job half way
        row["status"] = f"scorer error: {type(exc).__name__}: {exc}"
    row["seconds"] = time.perf_counter() - t0
    return row


def _cached_factors(task: dict):
    """The clip's factors from the reference cache named in ``task`` (``None``: none)."""
    entry = task.get("references")
    if entry is None or task["backend"] != "cached":
        return None
    from hourglass_sep.scoring.reference_cache import load_factors

    return load_factors(entry["path"], task["clip"], entry["samples"])


def _score_task(task: dict) -> dict:
    t0 = time.perf_counter()
    base = {"clip": task["clip"], "singer": task["singer"]}
    try:
        if task["estimates"] is None:
            raise ClipError("missing from estimates")
        ests = _read_estimates(task["estimates"], task["clip"])
        refs, sr = read_references(task["path"])
        factors = _cached_factors(task)
        if factors is not None:
            from hourglass_sep.scoring.reference_cache import check_matches

            check_matches(factors, refs, f"{task['references']['path']} ({task['clip']})")
        shortfall = (
            None if task["max_shortfall_s"] is None else int(round(task["max_shortfall_s"] * sr))
        )
        row = score_clip(
            refs,
            ests,
            task["backend"],
            task["baseline"],
            task["baseline_samples"],
            shortfall,
            factors,
        )
    except ClipError as exc:
        row = _empty_score_row(task["samples"], str(exc))
    except UserError:
        raise
    except Exception as exc:  # never stop a long job half way
        row = _empty_score_row(task["samples"], f"scorer error: {type(exc).__name__}: {exc}")
    row.update(base)
    row["seconds"] = time.perf_counter() - t0
    return row


# --------------------------------------------------------------------------- parallel map


def default_workers() -> int:
    """Snakemake's ``threads`` (it exports OMP_NUM_THREADS) or the number of CPUs."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    try:
        n = int(env)
    except ValueError:
        n = 0
    return n if n > 0 else (os.cpu_count() or 1)


@contextlib.contextmanager
def _single_blas_thread_env():
    old = {k: os.environ.get(k) for k in BLAS_ENV}
    os.environ.update({k: "1" for k in BLAS_ENV})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _limit_blas_here():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _init_worker(backend: str) -> None:
    # the environment already says one thread (set before the worker started, i.e. before
    # numpy was imported there); threadpoolctl, when present, makes sure of it
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    get_backend(backend)  # load once per worker, outside the timed tasks


def run_tasks(
    fn: Callable[[dict], dict],
    tasks: list[dict],
    workers: int,
    backend: str,
    progress: bool = False,
    desc: str = "clips",
) -> list[dict]:
    """``fn`` applied to each task (see :func:`iter_tasks`), in completion order."""
    return list(iter_tasks(fn, tasks, workers, backend, progress, desc))


def iter_tasks(
    fn: Callable[[dict], dict],
    tasks: list[dict],
    workers: int,
    backend: str,
    progress: bool = False,
    desc: str = "clips",
):
    """Yield ``fn(task)`` for each task as it finishes: in this process when ``workers <= 1``,
    else in a ``ProcessPoolExecutor`` of spawned workers with one BLAS thread each.  A
    result is not kept once yielded (the reference cache streams megabytes per clip)."""
    from tqdm import tqdm

    get_backend(backend)  # a missing backend is reported before any work starts
    workers = max(1, min(int(workers), len(tasks)))
    bar = tqdm(
        total=len(tasks),
        desc=desc,
        unit="clip",
        disable=not progress,
        mininterval=1.0,
        file=sys.stderr,
    )
    try:
        if workers <= 1:
            with _limit_blas_here():
                for t in tasks:
                    result = fn(t)
                    bar.update()
                    yield result
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with (
                _single_blas_thread_env(),
                ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=mp.get_context("spawn"),
                    initializer=_init_worker,
                    initargs=(backend,),
                ) as pool,
            ):
                futures = {pool.submit(fn, t) for t in tasks}
                try:
                    for fut in as_completed(futures):
                        futures.discard(fut)
                        bar.update()
                        yield fut.result()
                finally:  # an error (or an abandoned generator) stops the queued clips
                    for fut in futures:
                        fut.cancel()
    finally:
        bar.close()


# --------------------------------------------------------------------------- tables


def reference_entries(clips, references, backend: str) -> dict[str, dict | None]:
    """clip -> where its cached factors are (``None``: compute them) for catalogue rows
    ``clips`` and the reference cache files ``references`` (``None``: no cache)."""
    names = clips["clip"].astype(str).tolist()
    if not references:
        return dict.fromkeys(names)
    if backend != "cached":
        log.warning("--references is read by the cached backend only; ignored (%s)", backend)
        return dict.fromkeys(names)
    from hourglass_sep.scoring.reference_cache import ReferenceCache

    if isinstance(references, (str, os.PathLike)):
        references = [references]
    cache = ReferenceCache(references)
    missing = cache.missing(names)
    if missing:
        raise UserError(
            f"the reference caches lack {len(missing)} of the {len(names)} clips "
            f"(e.g. {', '.join(missing[:3])}); pass every shard file of the cache to "
            "--references (or omit --references to factorise here)"
        )
    stale = [c for c, n in zip(names, clips["samples"]) if cache.where[c][1] != int(n)]
    if stale:
        raise UserError(
            f"{cache.where[stale[0]][0]}: {len(stale)} clips (e.g. {stale[0]}) have another "
            "length in the reference cache than in the catalogue; the cache is stale: rebuild it"
        )
    return {c: cache.entry(c) for c in names}


def mixture_baseline(
    clips,
    backend: str = DEFAULT_BACKEND,
    workers: int = 1,
    progress: bool = False,
    references=None,
):
    """The mixture's SDR/SIR/SAR per clip (catalogue rows ``clips``) -> baseline DataFrame.

    ``references``: reference cache file(s) read by the ``cached`` backend (the mixture is
    then scored from the cached correlations alone)."""
    import pandas as pd

    entries = reference_entries(clips, references, backend)
    tasks = [
        {
            "clip": str(r.clip),
            "singer": str(r.singer),
            "path": str(r.path),
            "samples": int(r.samples),
            "backend": backend,
            "references": entries[str(r.clip)],
        }
        for r in clips.itertuples(index=False)
    ]
    rows = run_tasks(_baseline_task, tasks, workers, backend, progress, desc="baseline")
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=BASELINE_COLUMNS)
    df["scorer"] = scorer_name(backend)
    return df[BASELINE_COLUMNS].sort_values("clip", kind="stable").reset_index(drop=True)


def _indexed_baseline(baseline, clips):
    """The baseline table indexed by clip, checked to cover every clip to score.

    A partial baseline (some shard files forgotten) would silently rescore mixtures; a
    clear error names the fix instead.
    """
    baseline = baseline.set_index(baseline["clip"].astype(str), drop=False)
    missing = [c for c in clips["clip"].astype(str) if c not in baseline.index]
    if missing:
        raise UserError(
            f"the baseline tables lack {len(missing)} of the {len(clips)} clips to score "
            f"(e.g. {', '.join(missing[:3])}); pass every shard file of "
            "`hourglass-sep baseline` to --baseline "
            "(or omit --baseline to score the mixture here)"
        )
    return baseline


def _score_tasks(
    clips, index, baseline, entries: dict, backend: str, max_shortfall_s: float | None
) -> list[dict]:
    """One picklable task per clip for the worker pool (estimates may be absent: ``None``)."""
    tasks = []
    for r in clips.itertuples(index=False):
        clip = str(r.clip)
        b = bs = None
        if baseline is not None:
            brow = baseline.loc[clip]
            if str(brow["status"]) == "ok":  # a failed baseline row: the mixture is rescored here
                b = {c: float(brow[c]) for c in MIX_COLUMNS}
                bs = int(brow["samples"])
        tasks.append(
            {
                "clip": clip,
                "singer": str(r.singer),
                "path": str(r.path),
                "samples": int(r.samples),
                "estimates": index.where.get(clip),
                "backend": backend,
                "baseline": b,
                "baseline_samples": bs,
                "max_shortfall_s": max_shortfall_s,
                "references": entries[clip],
            }
        )
    return tasks


def _log_extra_estimates(index, clips) -> None:
    """Say when the estimates hold clips that are not scored (e.g. a wider split)."""
    expected = set(clips["clip"].astype(str))
    extra = [c for c in index.where if c not in expected]
    if extra:
        log.info(
            "%d clips in the estimates are not among the clips to score (e.g. %s); ignored",
            len(extra),
            extra[0],
        )


def _log_missing_estimates(tasks: list[dict]) -> None:
    """Warn up front: clips without estimates become failure rows, not a crash."""
    n_missing = sum(t["estimates"] is None for t in tasks)
    if n_missing:
        log.warning(
            "%d of %d clips are missing from the estimates; recorded as failures",
            n_missing,
            len(tasks),
        )


def score_estimates(
    clips,
    estimates: str | os.PathLike | Sequence[str | os.PathLike],
    baseline=None,
    backend: str = DEFAULT_BACKEND,
    workers: int = 1,
    variant: str = "",
    step: Any = "",
    max_shortfall_s: float | None = DEFAULT_MAX_SHORTFALL_S,
    progress: bool = False,
    references=None,
):
    """Score the estimates of catalogue rows ``clips`` -> per-clip scores DataFrame.

    ``estimates``: one or several npz files (``clips``, ``voice__<clip>``,
    ``accompaniment__<clip>``).  ``baseline``: a DataFrame from ``mixture_baseline`` /
    ``read_baselines`` (index or column ``clip``) or ``None`` to score the mixture of every
    clip here.  Clips absent from the estimates get status ``missing from estimates``.
    ``references``: reference cache file(s) read by the ``cached`` backend.
    """
    import pandas as pd

    if isinstance(estimates, (str, os.PathLike)):
        estimates = [estimates]
    index = EstimatesIndex(estimates)
    if baseline is not None:
        baseline = _indexed_baseline(baseline, clips)
    entries = reference_entries(clips, references, backend)
    _log_extra_estimates(index, clips)
    tasks = _score_tasks(clips, index, baseline, entries, backend, max_shortfall_s)
    _log_missing_estimates(tasks)
    try:
        rows = run_tasks(_score_task, tasks, workers, backend, progress, desc="score")
    finally:
        _close_npz_cache()
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=SCORE_COLUMNS)
    df["variant"] = variant
    df["step"] = step
    df["scorer"] = scorer_name(backend)
    return df[SCORE_COLUMNS].sort_values("clip", kind="stable").reset_index(drop=True)


def write_table(df, path: str | os.PathLike) -> None:
    from hourglass_sep.data.catalogue import write_table as _write

    _write(df, path)


# --------------------------------------------------------------------------- CLI


def _common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--catalogue", required=True, help="catalogue TSV (hourglass-sep catalogue)")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=DEFAULT_BACKEND,
        help="BSS Eval implementation (same numbers to ~1e-6 dB; fast_bss_eval is ~2x, "
        "cached ~10x faster than museval)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (one BLAS thread each); default: $OMP_NUM_THREADS "
        "(Snakemake's threads) or the number of CPUs",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--references",
        nargs="+",
        default=None,
        help="reference cache .npz file(s) (hourglass-sep references), read by "
        "--backend cached; omitted: the references are factorised here",
    )


def add_baseline_arguments(p: argparse.ArgumentParser) -> None:
    _common_arguments(p)
    p.add_argument("--shard", default="0/1", help="shard I/N (0-based) of the evaluated test clips")
    p.add_argument("-o", "--output", required=True, help="baseline TSV to write")


def add_score_arguments(p: argparse.ArgumentParser) -> None:
    _common_arguments(p)
    p.add_argument(
        "--estimates",
        required=True,
        nargs="+",
        help="estimates .npz written by `hourglass-sep separate --estimates` (several: shards)",
    )
    p.add_argument(
        "--baseline",
        nargs="+",
        default=None,
        help="baseline TSV(s) from `hourglass-sep baseline` (all shards); "
        "omitted: the mixture is scored here for every clip",
    )
    p.add_argument(
        "--shard", default="0/1", help="score shard I/N (0-based) of the evaluated test clips"
    )
    p.add_argument("--variant", required=True, help="variant name written in the table")
    p.add_argument(
        "--step", required=True, help="training step of the model (written in the table)"
    )
    p.add_argument(
        "--max-shortfall",
        type=float,
        default=DEFAULT_MAX_SHORTFALL_S,
        help="seconds an estimate may be shorter than its reference before the clip is "
        "recorded as a length mismatch",
    )
    p.add_argument("-o", "--output", required=True, help="per-clip scores TSV to write")


def _workers(args) -> int:
    n = default_workers() if args.workers is None else args.workers
    if n < 1:
        raise UserError(f"--workers {n}: need at least 1")
    return n


def _step_value(step: str):
    try:
        return int(step)
    except ValueError:
        return step


def run_baseline(args: argparse.Namespace) -> int:
    shard = parse_shard(args.shard)
    clips = evaluated_clips(load_catalogue(args.catalogue), shard)
    if clips.empty:
        log.warning("%s: no evaluated test clips in shard %s", args.catalogue, args.shard)
    _check_paths(clips, args.catalogue)
    t0 = time.perf_counter()
    df = mixture_baseline(
        clips,
        args.backend,
        _workers(args),
        progress=not args.no_progress,
        references=args.references,
    )
    write_table(df, args.output)
    ok = int((df["status"] == "ok").sum())
    print(
        f"{args.output}: mixture baseline of {len(df)} clips ({ok} ok, {len(df) - ok} failed), "
        f"{args.backend}, {time.perf_counter() - t0:.1f} s"
    )
    return 0


def run_score(args: argparse.Namespace) -> int:
    shard = parse_shard(args.shard)
    clips = evaluated_clips(load_catalogue(args.catalogue), shard)
    if clips.empty:
        log.warning("%s: no evaluated test clips in shard %s", args.catalogue, args.shard)
    _check_paths(clips, args.catalogue)
    baseline = read_baselines(args.baseline) if args.baseline else None
    if baseline is not None and "scorer" in baseline.columns:
        other = sorted(
            {str(s) for s in baseline["scorer"] if not str(s).startswith(args.backend + " ")}
        )
        if other:
            log.info(
                "baseline scored with %s, estimates with %s (the backends agree to ~1e-6 dB)",
                ", ".join(other),
                args.backend,
            )
    t0 = time.perf_counter()
    df = score_estimates(
        clips,
        args.estimates,
        baseline,
        args.backend,
        _workers(args),
        args.variant,
        _step_value(args.step),
        max_shortfall_s=args.max_shortfall,
        progress=not args.no_progress,
        references=args.references,
    )
    write_table(df, args.output)
    ok = df["status"] == "ok"
    msg = (
        f"{args.output}: {len(df)} clips ({int(ok.sum())} ok, {int((~ok).sum())} failed), "
        f"{args.backend}, {time.perf_counter() - t0:.1f} s"
    )
    if ok.any():
        w = df.loc[ok, "samples"].astype(float)
        msg += "; GNSDR voice {:.3f} dB, accompaniment {:.3f} dB".format(
            float(np.average(df.loc[ok, "voice_nsdr"], weights=w)),
            float(np.average(df.loc[ok, "accompaniment_nsdr"], weights=w)),
        )
    print(msg)
    if (~ok).any():
        reasons = df.loc[~ok, "status"].value_counts()
        for reason, count in reasons.head(5).items():
            log.warning("%d clip(s): %s", count, reason)
    return 0


def _check_paths(clips, catalogue) -> None:
    missing = [p for p in clips["path"].astype(str) if not Path(p).exists()]
    if missing:
        raise UserError(
            f"{catalogue}: {len(missing)} clip files listed in the catalogue do not exist "
            f"(e.g. {missing[0]}); rebuild the catalogue where the data lives"
        )

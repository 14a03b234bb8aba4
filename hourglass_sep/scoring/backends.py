"""The BSS Eval v3 backends and the mixture's own scores.

Neither museval nor fast_bss_eval is imported through its package ``__init__``:
``import museval`` pulls in musdb -> stempeg, which refuses to import without the ``ffmpeg``
binary, and ``import fast_bss_eval`` imports torch (seconds per worker process); their numpy
code is loaded from the installed files.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hourglass_sep.errors import UserError
from hourglass_sep.scoring.signals import (
    FILTER_LEN,
    METRICS,
    SOURCES,
    ClipError,
    as_sources,
    check_signals,
)

BACKENDS = ("museval", "fast_bss_eval", "cached", "mir_eval")


DEFAULT_BACKEND = "museval"


PIP_NAME = {"museval": "museval", "fast_bss_eval": "fast-bss-eval", "cached": "hourglass-sep"}


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
    refs = as_sources(refs, "references")
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

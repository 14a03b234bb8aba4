"""The registry of scoring backends, and scoring one clip's signals with one of them.

The backends are the ``SCORER`` records of the modules in ``scoring/scorers/`` (see
``scoring.scorer_record``), found when this module is imported: adding a backend is a new
module there plus its test.  ``BACKENDS`` (the CLI choices and the config schema's enum)
is derived from them.  Also here: the mixture's own scores (the NSDR baseline).
"""

from __future__ import annotations

import numpy as np

from hourglass_sep.errors import UserError
from hourglass_sep.registry import discover
from hourglass_sep.scoring import bss_eval, scorers
from hourglass_sep.scoring.scorer_record import ScoreFn, Scorer
from hourglass_sep.scoring.signals import (
    METRICS,
    SOURCES,
    ClipError,
    as_sources,
    check_signals,
)

REGISTRY: dict[str, Scorer] = {  # every SCORER of scoring/scorers/, by rank then name
    r.name: r for r in sorted(discover(scorers, "SCORER", Scorer), key=lambda r: (r.rank, r.name))
}
BACKENDS = tuple(REGISTRY)  # the --backend / evaluation.backend choices, in rank order
DEFAULT_BACKEND = "museval"
_BACKEND_CACHE: dict[str, ScoreFn] = {}


def scorer(name: str) -> Scorer:
    """The record of backend ``name``; ``UserError`` naming the choices when unknown."""
    if name not in REGISTRY:
        raise UserError(f"unknown scoring backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    return REGISTRY[name]


def get_backend(name: str) -> ScoreFn:
    """The scoring function of a backend, loaded once per process; ``UserError`` when it is
    unknown or not installed."""
    rec = scorer(name)
    if name not in _BACKEND_CACHE:
        _BACKEND_CACHE[name] = rec.load()
    return _BACKEND_CACHE[name]


def scorer_name(backend: str) -> str:
    """``backend version`` as written in the tables' ``scorer`` column."""
    from importlib import metadata

    try:
        version = metadata.version(scorer(backend).package)
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
        out = fn(refs, ests, factors)
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
    if (
        scorer(backend).reads_reference_factors
        and factors is not None
        and factors.samples == refs.shape[1]
    ):
        check_signals(refs, mix)
        return mixture_scores_from_factors(factors)
    m = bss_eval_sources(refs, mix, backend, factors)
    return {f"{s}_mix_{k}": float(m[k][i]) for i, s in enumerate(SOURCES) for k in METRICS}


def mixture_scores_from_factors(factors) -> dict[str, float]:
    """:func:`mixture_scores` from cached reference factors alone (no audio needed)."""
    m = bss_eval.mixture_scores(factors)
    return {f"{s}_mix_{k}": float(m[k][i]) for i, s in enumerate(SOURCES) for k in METRICS}

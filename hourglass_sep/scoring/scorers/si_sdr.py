"""``si_sdr``: scale-invariant SDR, SIR and SAR (Le Roux, Wisdom, Erdogan and Hershey, "SDR --
half-baked or well done?", ICASSP 2019), the metrics most separation papers since 2019 report.

No distortion filter: the target is the reference scaled by the least-squares gain
``alpha = <est, ref> / ||ref||^2``; the error is split into interference (the part of the
estimate in the span of all references, minus the target) and artifacts (the rest).
``SI-SDR = 10 log10(||target||^2 / ||est - target||^2)``, SI-SIR and SI-SAR likewise over the
interference and artifact parts.  Pure numpy; not BSS Eval v3, so its numbers are not
comparable with the report's GNSDR (the ``scorer`` column says which was used).
"""

from __future__ import annotations

import numpy as np

from hourglass_sep.scoring.scorer_record import Scorer


def _db(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 10 * np.log10(num / den)


def si_metrics(refs: np.ndarray, ests: np.ndarray) -> dict[str, np.ndarray]:
    """SI-SDR/SIR/SAR of each estimate *i* against reference *i* (``(sources, samples)``)."""
    gram = refs @ refs.T
    coef = np.linalg.solve(gram, refs @ ests.T)  # (sources, estimates): projection on the span
    projected = coef.T @ refs  # each estimate's part in the span of all references
    alpha = np.einsum("ij,ij->i", ests, refs) / np.diag(gram)
    target = alpha[:, None] * refs
    interference = projected - target
    artifacts = ests - projected
    t, e = np.sum(target**2, axis=1), np.sum((ests - target) ** 2, axis=1)
    i, a = np.sum(interference**2, axis=1), np.sum(artifacts**2, axis=1)
    return {"sdr": _db(t, e), "sir": _db(t, i), "sar": _db(t, a)}


def load():
    def run(refs: np.ndarray, ests: np.ndarray, factors=None) -> dict[str, np.ndarray]:
        return si_metrics(refs, ests)

    return run


SCORER = Scorer(
    name="si_sdr",
    summary="scale-invariant SDR/SIR/SAR (Le Roux et al. 2019), no distortion filters",
    package="hourglass-sep",
    load=load,
    rank=60,
    family="scale_invariant",
)

"""``cached``: BSS Eval v3 with the references' Gram matrix factorised once per clip
(``scoring.bss_eval``), read from the reference cache when one is given; each estimate then
costs block FFTs and triangular solves, about 10x faster than museval, same numbers."""

from __future__ import annotations

import numpy as np

from hourglass_sep.scoring import bss_eval
from hourglass_sep.scoring.scorer_record import Scorer
from hourglass_sep.scoring.scorers.museval_v4 import load as load_museval
from hourglass_sep.scoring.signals import ClipError


def load():
    fallback = []  # museval's least squares, loaded only when a clip needs it

    def run(refs: np.ndarray, ests: np.ndarray, factors=None) -> dict[str, np.ndarray]:
        if refs.shape[0] != 2:
            raise ClipError(f"the cached backend scores 2 sources; got {refs.shape[0]}")
        if factors is None or factors.samples != refs.shape[1]:
            try:
                factors = bss_eval.factorise(refs)
            except np.linalg.LinAlgError:  # singular correlations
                fallback[:] = fallback or [load_museval()]
                return fallback[0](refs, ests, None)
        return bss_eval.sources_scores(factors, refs, ests)

    return run


SCORER = Scorer(
    name="cached",
    summary="BSS Eval v3 with each clip's reference factorisation computed once (reference cache)",
    package="hourglass-sep",
    load=load,
    rank=30,
    reads_reference_factors=True,
)

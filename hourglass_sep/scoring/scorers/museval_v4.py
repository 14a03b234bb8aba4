"""``museval`` (the report's scorer from its second row on): BSS Eval v4 code run with one
window spanning the clip and v3 "sources" criteria.

``museval.metrics`` is loaded from the installed file: ``import museval`` runs musdb ->
stempeg, which refuses to import without the ``ffmpeg`` binary.
"""

from __future__ import annotations

import sys

import numpy as np

from hourglass_sep.scoring.scorer_record import (
    Scorer,
    load_file_module,
    missing_dependency,
    package_dir,
)
from hourglass_sep.scoring.signals import FILTER_LEN


def load_museval_metrics():
    """``museval.metrics`` without running ``museval/__init__`` (which needs ffmpeg)."""
    if "museval.metrics" in sys.modules:  # already imported the normal way
        return sys.modules["museval.metrics"]
    path = package_dir("museval", "museval") / "metrics.py"
    if not path.is_file():
        raise missing_dependency("museval", "museval", FileNotFoundError(str(path)))
    try:
        return load_file_module("hourglass_sep._museval_metrics", path)
    except ImportError as exc:
        raise missing_dependency("museval", "museval", exc) from None


def load():
    mm = load_museval_metrics()

    def run(refs: np.ndarray, ests: np.ndarray, factors=None) -> dict[str, np.ndarray]:
        # identical to museval.metrics.bss_eval_sources (and mir_eval's) without permutation
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


SCORER = Scorer(
    name="museval",
    summary="museval's BSS Eval (the report's scorer), one window per clip",
    package="museval",
    load=load,
    rank=10,
)

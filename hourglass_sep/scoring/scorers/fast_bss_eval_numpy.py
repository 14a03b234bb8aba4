"""``fast_bss_eval`` (about twice as fast as museval, same numbers to ~1e-6 dB).

Its numpy code is loaded from the installed files: ``import fast_bss_eval`` imports torch
(seconds per worker process).
"""

from __future__ import annotations

import numpy as np

from hourglass_sep.scoring.scorer_record import (
    Scorer,
    load_file_module,
    missing_dependency,
    package_dir,
)
from hourglass_sep.scoring.signals import FILTER_LEN, ClipError

PIP = "fast-bss-eval"


def load_fast_bss_eval_numpy():
    """``fast_bss_eval.numpy`` without running ``fast_bss_eval/__init__`` (which imports torch)."""
    pkg = package_dir("fast_bss_eval", PIP) / "numpy"
    if not (pkg / "metrics.py").is_file():
        raise missing_dependency("fast_bss_eval", PIP, FileNotFoundError(str(pkg / "metrics.py")))
    try:
        return load_file_module("hourglass_sep._fast_bss_eval_numpy", pkg / "__init__.py", pkg)
    except ImportError as exc:
        raise missing_dependency("fast_bss_eval", PIP, exc) from None


def load():
    fb = load_fast_bss_eval_numpy()
    metrics = getattr(fb, "metrics", None)
    square_cosine = getattr(metrics, "square_cosine_metrics", None)
    to_db = getattr(metrics, "_base_metrics_bss_eval", None)

    def run(refs: np.ndarray, ests: np.ndarray, factors=None) -> dict[str, np.ndarray]:
        diag = np.arange(refs.shape[0])
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
        if not np.array_equal(np.asarray(perm), diag):  # pragma: no cover - another version
            raise ClipError(
                "fast_bss_eval matched the estimates to other sources; score with --backend museval"
            )
        return {"sdr": sdr, "sir": sir, "sar": sar}

    return run


SCORER = Scorer(
    name="fast_bss_eval",
    summary="fast_bss_eval's numpy BSS Eval, about twice as fast as museval",
    package=PIP,
    load=load,
    rank=20,
)

"""``mir_eval``: BSS Eval v3 "sources" as the report's first row scored.

The report's row 1 was scored with ``mir_eval.separation.bss_eval_sources``; rows 2 on with
museval.  Offering it as a backend lets that row be regenerated as an evaluation variant.
"""

from __future__ import annotations

import warnings

import numpy as np

from hourglass_sep.errors import UserError
from hourglass_sep.scoring.scorer_record import Scorer


def load_mir_eval_separation():
    """``mir_eval.separation``, or a UserError saying how to install it."""
    try:
        from mir_eval import separation
    except ImportError:
        raise UserError(
            "scoring backend mir_eval needs the mir_eval package: pip install mir_eval"
        ) from None
    return separation


def load(separation=None):
    """mir_eval's bss_eval_sources without permutation search (its filters are 512 taps,
    fitted on the whole clip, like museval's v3 "sources")."""
    sep = separation or load_mir_eval_separation()

    def run(refs: np.ndarray, ests: np.ndarray, factors=None) -> dict[str, np.ndarray]:
        with warnings.catch_warnings():  # 0.8 marks bss_eval_sources deprecated; same maths
            warnings.simplefilter("ignore", FutureWarning)
            sdr, sir, sar, _perm = sep.bss_eval_sources(
                np.asarray(refs, dtype=float),
                np.asarray(ests, dtype=float),
                compute_permutation=False,
            )
        return {"sdr": np.asarray(sdr), "sir": np.asarray(sir), "sar": np.asarray(sar)}

    return run


SCORER = Scorer(
    name="mir_eval",
    summary="mir_eval's bss_eval_sources (the report's first row)",
    package="mir_eval",
    load=load,
    rank=40,
)

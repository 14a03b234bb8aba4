"""``oracle-irm``: the ideal ratio mask, |S_j|^p / sum_k |S_k|^p, from the true sources.

Not a separation method but a ceiling: with the mixture's phase and a mask on the magnitude,
the IRM (power 1) is close to the best a mask can do at a given STFT front end, so it says how
much of the GNSDR gap is the network's and how much the front end's (``band: protocol``: the
report's 8 kHz STFT 1024/256 without the Nyquist bin; ``band: full``: the clip's own rate, every
bin).  Needs the true sources: workflow clips only.
"""

from __future__ import annotations

import numpy as np

from hourglass_sep.methods.record import BAND_HELP, BANDS, MethodKind, Range


def masks(mag, settings, frame_rate, sources) -> np.ndarray:
    """Voice mask |V|^p / (|V|^p + |A|^p), accompaniment its complement (half each where
    both sources are silent)."""
    p = settings["power"]
    v, a = (np.asarray(s, np.float64) ** p for s in sources)
    total = v + a
    voice = np.divide(v, total, out=np.full_like(v, 0.5), where=total > 0)
    return np.stack([voice, 1.0 - voice]).astype(np.float32)


METHOD = MethodKind(
    name="oracle-irm",
    description="oracle ideal ratio mask (the true sources' magnitudes; a ceiling)",
    settings={"power": 1.0, "band": "protocol"},
    oracle=True,
    masks=masks,
    bounds={"power": Range(0.0, 10.0, lo_open=True), "band": BANDS},
    setting_help={
        "power": "exponent p of |S_j|^p / sum_k |S_k|^p (1: magnitude ratio, 2: Wiener-like)",
        "band": BAND_HELP,
    },
    reference=(
        "Ideal ratio mask as an upper bound of mask-based separation, e.g. Vincent, Gribonval "
        "& Plumbley, 'Oracle estimators for the benchmarking of source separation "
        "algorithms', Signal Processing 87(8), 2007 (they derive the best mask per bin from "
        "the true sources; this record uses the plain ratio of the magnitudes, not their "
        "optimal one). Published MIR-1K GNSDR of an IRM under this report's protocol: not "
        "found."
    ),
)

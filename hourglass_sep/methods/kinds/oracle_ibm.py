"""``oracle-ibm``: the ideal binary mask, 1 where the voice dominates (|V| > |A|), from the
true sources.

The binary counterpart of ``oracle-irm``: the ceiling of hard (0/1) masks at a front end
(``band``, as for ``oracle-irm``); RPCA's binary masks are compared against it.  Needs the true
sources: workflow clips only.
"""

from __future__ import annotations

import numpy as np

from hourglass_sep.methods.record import BAND_HELP, BANDS, MethodKind


def masks(mag, settings, frame_rate, sources) -> np.ndarray:
    """Voice mask 1 where |V| > |A| (ties, silence included, go to the accompaniment)."""
    voice = (sources[0] > sources[1]).astype(np.float32)
    return np.stack([voice, 1.0 - voice])


METHOD = MethodKind(
    name="oracle-ibm",
    description="oracle ideal binary mask (the true sources' magnitudes; a ceiling)",
    settings={"band": "protocol"},
    oracle=True,
    masks=masks,
    bounds={"band": BANDS},
    setting_help={"band": BAND_HELP},
    reference=(
        "Ideal binary mask (Wang, 'On ideal binary mask as the computational goal of auditory "
        "scene analysis', in Speech Separation by Humans and Machines, 2005), local criterion "
        "0 dB. Published MIR-1K GNSDR of an IBM under this report's protocol: not found."
    ),
)

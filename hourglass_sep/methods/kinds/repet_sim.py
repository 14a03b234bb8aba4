"""``repet-sim``: REPET-SIM, the repeating background found through the similarity matrix.

As librosa's "Vocal separation" example: each frame of the magnitude is replaced by the median
of its most similar frames (``librosa.decompose.nn_filter``, cosine metric, neighbours at least
``width_seconds`` apart), the background is ``min(S, filtered)``, and soft masks
(``librosa.util.softmask``) with margins 2 (background) and 10 (voice) and power 2 split the
mixture.  A clip shorter than about twice the width gets the widest width it allows
(librosa needs ``width < (frames - 1) // 2``); a clip of under 5 frames (0.16 s at the 8 kHz
front end) has no neighbours at all and goes wholly to the accompaniment.
"""

from __future__ import annotations

import numpy as np

from hourglass_sep.methods.record import BAND_HELP, BANDS, MethodKind, Range


def usable_width(width_seconds: float, frame_rate: float, frames: int) -> int:
    """The filter width in frames: ``width_seconds`` at ``frame_rate``, shrunk to what a clip of
    ``frames`` frames allows (0: too short for any neighbour)."""
    wanted = max(1, int(round(width_seconds * frame_rate)))
    return max(0, min(wanted, (frames - 1) // 2 - 1))


def masks(mag, settings, frame_rate, sources) -> np.ndarray:
    """(voice, accompaniment) soft masks of the REPET-SIM background estimate."""
    import librosa

    S = np.asarray(mag, np.float32)
    width = usable_width(settings["width_seconds"], frame_rate, S.shape[-1])
    if width < 1 or not S.any():
        return np.stack([np.zeros_like(S), np.ones_like(S)])
    filtered = librosa.decompose.nn_filter(S, aggregate=np.median, metric="cosine", width=width)
    background = np.minimum(S, filtered)
    p = settings["power"]
    bg = librosa.util.softmask(
        background, settings["margin_background"] * (S - background), power=p
    )
    fg = librosa.util.softmask(S - background, settings["margin_foreground"] * background, power=p)
    return np.stack([fg, bg]).astype(np.float32)


METHOD = MethodKind(
    name="repet-sim",
    description="REPET-SIM (repeating background by similar frames; librosa's recipe)",
    settings={
        "width_seconds": 2.0,
        "margin_background": 2.0,
        "margin_foreground": 10.0,
        "power": 2.0,
        "band": "protocol",
    },
    oracle=False,
    masks=masks,
    bounds={
        "width_seconds": Range(0.0, 60.0, lo_open=True),
        "margin_background": Range(0.0, 1000.0),
        "margin_foreground": Range(0.0, 1000.0),
        "power": Range(0.0, 100.0, lo_open=True),
        "band": BANDS,
    },
    setting_help={
        "width_seconds": "similar frames must lie at least this far apart (shrunk for short clips)",
        "margin_background": "softmask margin of the background (accompaniment) mask",
        "margin_foreground": "softmask margin of the foreground (voice) mask",
        "power": "softmask exponent",
        "band": BAND_HELP,
    },
    reference=(
        "Rafii & Pardo, 'Music/Voice Separation Using the Similarity Matrix', ISMIR 2012 "
        "(cited by librosa.decompose.nn_filter); the recipe and its defaults are librosa's "
        "'Vocal separation' gallery example (22.05 kHz, hop 512, width 2 s), not the paper's "
        "own implementation. Published MIR-1K GNSDR of REPET-SIM: not found."
    ),
)

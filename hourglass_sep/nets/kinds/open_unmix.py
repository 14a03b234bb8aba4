"""``open-unmix``: Stöter et al.'s Open-Unmix (JOSS 2019), a learned peer of the report's.

Per frame: fc1 + BatchNorm + tanh to ``channels`` hidden units (paper 512), a ``poolings``-layer
bidirectional LSTM (paper 3), skip concatenation, fc2 and fc3 back to the bins, a ReLU
multiplier of the mixture per output.  ``stacks`` counts predictions (the loss, history.csv), so
the LSTM depth is ``poolings`` and ``stacks`` is pinned to 1; no stem and no growth (pinned).
Recurrent, not pooled: any number of frames (``time_multiple`` 1).  Sized like "Ours":
``channels`` 1280, ``poolings`` 3 (34.8 M parameters).  The network is
``nets.open_unmix.OpenUnmix``; the ``openunmix`` package is not used (it requires torchaudio,
which pins another torch than the project's).
"""

from __future__ import annotations

from hourglass_sep.nets.kind_record import UNUSED_STEM, NetworkKind


def build(arch):
    """The network of ``arch`` (torch is imported here, not with the record)."""
    from hourglass_sep.nets.open_unmix import OpenUnmix

    return OpenUnmix(arch)


def any_length(arch) -> int:
    """Frames need not be a multiple of anything: the BLSTM runs over any length."""
    return 1


KIND = NetworkKind(
    name="open-unmix",
    description="Stöter et al.'s Open-Unmix, BLSTM over frames",
    build=build,
    uses=("channels", "poolings", "target"),
    requires={"stacks": 1, "growth": 0, "stem": UNUSED_STEM},
    targets=("masks", "voice", "accompaniment"),
    time_multiple=any_length,
)

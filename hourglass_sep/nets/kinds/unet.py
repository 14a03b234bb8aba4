"""``unet``: Jansson et al.'s singing-voice U-Net (ISMIR 2017), a learned peer of the report's.

Five-by-five stride-2 convolutions down (``poolings`` layers, paper 6, widths ``channels`` x
2^i, paper 16 ... 512), transposed convolutions up with skip concatenation, one sigmoid mask per
output.  One prediction (``stacks`` pinned to 1), no stem and no growth (pinned), so two configs
of one network cannot differ in a field without effect; frames must be a multiple of
``2 ** poolings`` (64 at the paper's 6 layers, the hourglass rule).  Sized like "Ours":
``channels`` 30, ``poolings`` 6 (34.5 M parameters).  The network is ``nets.unet.UNet``.
"""

from __future__ import annotations

from hourglass_sep.nets.kind_record import UNUSED_STEM, NetworkKind


def build(arch):
    """The network of ``arch`` (torch is imported here, not with the record)."""
    from hourglass_sep.nets.unet import UNet

    return UNet(arch)


KIND = NetworkKind(
    name="unet",
    description="Jansson et al.'s U-Net, sigmoid masks",
    build=build,
    uses=("channels", "poolings", "target"),
    requires={"stacks": 1, "growth": 0, "stem": UNUSED_STEM},
    targets=("masks", "voice", "accompaniment"),
)

"""``hourglass``: the course report's stacked hourglass network (PyTorch).

Every convolution is Conv2d(bias) -> BatchNorm2d -> ReLU; an hourglass pools ``poolings`` times
and widens by ``growth`` channels at each pooling ("Ours": F=64, +64; "Park's": F=256, +0).  The
network is ``nets.model.StackedHourglass``.  It was called ``seed`` while the course report's
code was called "the seed"; configs and checkpoints with that name are still read.
"""

from __future__ import annotations

from hourglass_sep.nets.kind_record import NetworkKind


def build(arch):
    """The network of ``arch`` (torch is imported here, not with the record)."""
    from hourglass_sep.nets.model import StackedHourglass

    return StackedHourglass(arch)


KIND = NetworkKind(
    name="hourglass",
    description="the report's, Conv-BN-ReLU",
    build=build,
    uses=("stacks", "channels", "growth", "stem", "poolings", "target"),
    aliases=("seed",),
)

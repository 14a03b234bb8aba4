"""``park-original``: Park et al.'s TensorFlow network, ported.

Plain conv + bias with ReLU and no BatchNorm, a constant width (``growth`` 0), linear 1x1 mask
heads (``target`` masks only) and identity-plus-1x1 merges between stacks; its stem has one more
conv of the last width than the report's, which a preset's ``scale.stem`` keeps.  The network is
``nets.model.ParkStackedHourglass`` (34,176,776 parameters at Park's size).
"""

from __future__ import annotations

from hourglass_sep.nets.kind_record import NetworkKind


def build(arch):
    """The network of ``arch`` (torch is imported here, not with the record)."""
    from hourglass_sep.nets.model import ParkStackedHourglass

    return ParkStackedHourglass(arch)


def scale_stem(stem: list[int]) -> list[int]:
    """A preset's stem widths plus Park's extra conv at the last width."""
    return [*stem, stem[-1]]


KIND = NetworkKind(
    name="park-original",
    description="Park's TensorFlow network, no BatchNorm",
    build=build,
    uses=("stacks", "channels", "stem", "poolings", "target"),
    requires={"growth": 0},
    targets=("masks",),
    scale_stem=scale_stem,
)

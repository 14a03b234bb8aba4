"""What a network kind is: one record, written once in its own module of ``nets/kinds/``.

A kind is a value of ``arch.kind`` (``--kind``): a family of networks built from an
``ArchConfig``.  Its record says what the family is, which ``ArchConfig`` fields its network
reads, which values the fields it does not read must keep, which targets it can predict, how a
preset's ``scale.stem`` becomes its stem, which input lengths it takes, its old names and how to
build it.  The ``--kind`` choices and help, ``ArchConfig``'s checks, the config schema's enum, the
scaling of ``plan.experiments`` and ``model.build_model`` all read the records: nothing else
lists the kinds, so a new kind is a new module in ``nets/kinds/`` plus its test.

Torch-free: the Snakefile reads the records (through ``nets.settings``) to check a config in a
dry run, so a record's ``build`` imports its network's torch code only when it is called.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hourglass_sep.registry import discover

# ArchConfig's default stem (``nets.settings``, which imports this module): the value that a kind
# without a stem pins, so that a variant of it need not name the stem
UNUSED_STEM = (64, 128, 128)


@dataclass(frozen=True)
class NetworkKind:
    """One network family (the ``arch.kind`` / ``--kind`` value ``name``)."""

    name: str
    description: str  # a few words: the --kind help and the docs
    build: Callable[[Any], Any]  # ArchConfig -> torch.nn.Module (imports torch when called)
    uses: tuple[str, ...]  # the ArchConfig fields the network reads (besides kind)
    # ArchConfig fields the network does not read, pinned to one value so that two configs of
    # one network cannot differ in a field without effect
    requires: Mapping[str, object] = field(default_factory=dict)
    targets: tuple[str, ...] | None = None  # the targets it can predict (None: every one)
    # a preset's scale.stem -> this kind's stem widths (list: the stem replaced as given); a
    # kind that pins ``stem`` in ``requires`` has no stem, and its pin stays
    scale_stem: Callable[[list[int]], list[int]] = list
    aliases: tuple[str, ...] = ()  # old names, still read from configs and saved models
    # ArchConfig -> the number input frames must be a multiple of (None: 2 ** poolings, the
    # pooling grid of a network that halves the time axis ``poolings`` times)
    time_multiple: Callable[[Any], int] | None = None

    def problems(self, arch) -> list[str]:
        """The rules of this kind that ``arch`` breaks (``ArchConfig`` checks the rest)."""
        out = [
            f"{name} must be {value} for kind={self.name}"
            for name, value in self.requires.items()
            if getattr(arch, name) != value
        ]
        if self.targets is not None and arch.target not in self.targets:
            out.append(f"kind={self.name} supports target={'|'.join(self.targets)} only")
        return out


@functools.cache
def network_kinds() -> dict[str, NetworkKind]:
    """Every ``KIND`` record of the modules in ``nets/kinds/``, by name."""
    from hourglass_sep.nets import kinds

    found = discover(kinds, "KIND", NetworkKind, names=lambda r: (r.name, *r.aliases))
    return {rec.name: rec for rec in sorted(found, key=lambda r: r.name)}


def kind_aliases() -> dict[str, str]:
    """Old name -> current name of every kind (``seed`` -> ``hourglass``)."""
    return {old: rec.name for rec in network_kinds().values() for old in rec.aliases}


def network_kind(name: str) -> NetworkKind:
    """The record of kind ``name`` (an old name too); ``ValueError`` naming the choices."""
    kinds = network_kinds()
    current = kind_aliases().get(name, name)
    if current not in kinds:
        raise ValueError(f"unknown network kind {name!r}; choose one of: {', '.join(kinds)}")
    return kinds[current]

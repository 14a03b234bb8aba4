"""The claim kinds, found by scanning the kinds package: every module defining ``KIND`` is
registered, so adding a kind is adding a module (docs/statistics.md, "Adding a claim kind")."""

from __future__ import annotations

import functools

from hourglass_sep.claims.kinds.record import Kind
from hourglass_sep.errors import UserError
from hourglass_sep.registry import discover


@functools.cache
def kinds() -> tuple[Kind, ...]:
    """Every kind, in the order of its module's name (the order of the ``expect`` enum)."""
    from hourglass_sep.claims import kinds as package  # record, registry, pairs: helpers

    return tuple(discover(package, "KIND", Kind, every_module=False))


def _ordered(values) -> list[str]:
    return list(dict.fromkeys(values))


def expect_values() -> list[str]:
    """Every ``expect`` a claims file may give (the schema's enum)."""
    return _ordered(e for k in kinds() for e in k.expects)


def optional_keys() -> list[str]:
    """The claim keys some kinds take and the others refuse (margin, factor, ...)."""
    return _ordered(key for k in kinds() for key in k.keys)


def expects_taking(key: str) -> list[str]:
    return _ordered(e for k in kinds() for e in k.keys.get(key, ()))


def find_kind(claim: dict) -> Kind | None:
    """The kind of a claim: the first whose expects hold the claim's and that applies."""
    expect = claim.get("expect")
    return next((k for k in kinds() if expect in k.expects and k.applies(claim)), None)


def kind_of(claim: dict, where: str = "claim") -> Kind:
    kind = find_kind(claim)
    if kind is None:
        raise UserError(
            f"{where}.expect: {claim.get('expect')!r} is not a claim kind "
            f"(known: {expect_values()})"
        )
    return kind

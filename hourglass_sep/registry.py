"""Registries found by scanning a package: each record lives in its own module.

Three kinds of things are written once, each in a module of its own package, and found here
instead of being listed: scoring backends (``scoring/scorers/``), network kinds
(``nets/kinds/``) and claim kinds (``claims/kinds/``).  Adding one is a new module plus its
test.  Bottom floor: imports nothing of the project.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from types import ModuleType


def discover(
    package: ModuleType,
    attr: str,
    record_type: type,
    names: Callable[[object], tuple[str, ...]] = lambda r: (r.name,),
    every_module: bool = True,
) -> list:
    """The ``attr`` records of the modules of ``package``, in module-name order.

    ``every_module``: a module without such a record is an error (else it is a helper module
    and skipped).  ``names``: the names a record answers to (its aliases too); a name given
    by two records is an error naming it."""
    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"{package.__name__}.{info.name}")
        rec = getattr(mod, attr, None)
        if isinstance(rec, record_type):
            found.append(rec)
        elif every_module:
            raise TypeError(f"{mod.__name__} defines no {attr} ({record_type.__name__}) record")
    taken = [n for rec in found for n in names(rec)]
    twice = sorted({n for n in taken if taken.count(n) > 1})
    if twice:
        raise TypeError(f"{package.__name__}: names defined twice: {twice}")
    return found

"""What a scoring backend is: one record, written once in its own module of ``scoring/scorers/``.

A record says what the backend computes, which package brings it (for the install hint and
the ``scorer`` column's version) and how to load its function.  The function takes
``(refs, ests, factors)`` -- ``(sources, samples)`` float64 arrays that passed
``signals.check_signals`` and, for backends that read them, the clip's cached reference
factors (``None`` otherwise) -- and returns ``{"sdr", "sir", "sar"}`` arrays of shape
``(sources,)`` in dB, estimate *i* scored against reference *i*.  ``scoring.backends``
discovers the records; nothing else lists the backends.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hourglass_sep.errors import UserError

ScoreFn = Callable[[np.ndarray, np.ndarray, object], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Scorer:
    """One scoring backend (the ``--backend`` / ``evaluation.backend`` value ``name``)."""

    name: str
    summary: str  # one line for docs and --help
    package: str  # distribution whose version goes in the scorer column (pip name)
    load: Callable[[], ScoreFn]  # imports lazily; raises UserError when not installed
    rank: int = 50  # listing order (--backend choices, "auto" in the GPU script)
    reads_reference_factors: bool = False  # uses the reference cache (scoring.reference_cache)
    # what the numbers are: backends of one family give the same numbers (tested), others not
    family: str = "bss_eval_v3"  # BSS Eval v3 sources: 512-tap filters, whole clip


def package_dir(package: str, pip_name: str) -> Path:
    """Where an installed package's files are, without executing its ``__init__``."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"scoring backend {package!r} is not installed; install it with "
            f"`pip install {pip_name}` or choose another --backend"
        )
    return Path(list(spec.submodule_search_locations)[0])


def load_file_module(name: str, path: Path, package_dir: Path | None = None):
    """Execute ``path`` as module ``name`` (a package when ``package_dir`` is given)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(package_dir)] if package_dir else None
    )
    if spec is None or spec.loader is None:  # pragma: no cover - broken installation
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return mod


def missing_dependency(package: str, pip_name: str, exc: BaseException) -> UserError:
    return UserError(
        f"scoring backend {package!r} cannot be loaded ({type(exc).__name__}: {exc}); "
        f"(re)install it with `pip install {pip_name}` or choose another --backend"
    )

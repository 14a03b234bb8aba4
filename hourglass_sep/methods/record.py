"""What a training-free method is: one record, written once in its own module of ``methods/kinds/``.

A method turns a magnitude spectrogram (F, T) into voice and accompaniment masks (2, F, T) in
[0, 1]; the separation floor multiplies them with the mixture's STFT, as it does a network's
masks, so the estimates, the scores and everything after them are shared with the networks.
An *oracle* also reads the true source magnitudes: it exists only for the workflow's MIR-1K
clips (left = accompaniment, right = voice) and measures the ceiling of a front end.

A record's ``settings`` map each key to its default; the default's type is the setting's type
(an int default takes ints, a float default numbers, a str default one of its ``bounds``
choices).  ``check_settings`` names every problem as ``where.key``, so a config's
``variants.X.method`` and the CLI's ``--method-settings`` report the same way.

Torch-free: the Snakefile reads the records (config checks in dry runs), so a record's
``masks`` imports numpy's heavier friends (librosa, tensorly) only when it is called.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from hourglass_sep.errors import UserError
from hourglass_sep.registry import discover

BANDS = ("protocol", "full")  # the report's 8 kHz STFT, or the clip's own rate, all bins
BAND_HELP = (
    "protocol: the pipeline's 8 kHz STFT 1024/256 (bins 0..511, the networks' front end); "
    "full: the clip's own rate, every bin (separation.fullband.Grid.matching)"
)


@dataclass(frozen=True)
class Range:
    """Numeric bounds of a setting (``None``: open); ``*_open``: the bound itself is refused."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def holds(self, v: float) -> bool:
        above = self.lo is None or (v > self.lo if self.lo_open else v >= self.lo)
        below = self.hi is None or (v < self.hi if self.hi_open else v <= self.hi)
        return above and below

    def text(self) -> str:
        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {self.lo:g}")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_open else '<='} {self.hi:g}")
        return " and ".join(parts) or "any number"


Bound = Range | tuple[str, ...]  # numbers: a Range; strings: the allowed values


@dataclass(frozen=True)
class MethodKind:
    """One training-free method (the ``kind:`` of a variant, ``separate --method NAME``)."""

    name: str
    description: str  # a few words: the --method help, the docs, a variant's default note
    settings: Mapping[str, object]  # key -> default (its type is the setting's type)
    oracle: bool  # reads the true sources: workflow clips only
    # masks(mag (F, T), settings (resolved), frame_rate (frames/s), sources (2, F, T) | None)
    # -> (2, F, T) voice and accompaniment masks; imports its libraries when called
    masks: Callable[..., np.ndarray]
    reference: str  # citation, published MIR-1K numbers and how their protocol differs
    bounds: Mapping[str, Bound] = field(default_factory=dict)
    setting_help: Mapping[str, str] = field(default_factory=dict)

    def check_settings(self, settings: dict, where: str) -> list[str]:
        """Every problem of ``settings`` (unknown keys, wrong types, out of bounds), each
        naming ``where.key``; empty when they are usable."""
        if settings is None:
            return []
        if not isinstance(settings, Mapping):
            return [f"{where}: expected a mapping of settings, got {type(settings).__name__}"]
        out = []
        for key, value in settings.items():
            if key not in self.settings:
                known = ", ".join(self.settings) or "none"
                out.append(f"{where}.{key}: {self.name} has no such setting (known: {known})")
            elif problem := self._problem(key, value):
                out.append(f"{where}.{key}: {problem}")
        return out

    def _problem(self, key: str, value: object) -> str | None:
        """Why ``value`` is no value of setting ``key`` (None: it is)."""
        default, bound = self.settings[key], self.bounds.get(key)
        if isinstance(default, str):
            if not isinstance(value, str) or (bound is not None and value not in bound):
                return f"{value!r}: choose one of {', '.join(bound or ())}"
            return None
        if isinstance(default, bool):
            return None if isinstance(value, bool) else f"{value!r}: expected true or false"
        wanted = (int,) if isinstance(default, int) else (int, float)
        if isinstance(value, bool) or not isinstance(value, wanted):
            kind = "an integer" if wanted == (int,) else "a number"
            return f"{value!r}: expected {kind}"
        if not math.isfinite(value):
            return f"{value!r}: expected a finite number"
        if isinstance(bound, Range) and not bound.holds(value):
            return f"{value!r}: must be {bound.text()}"
        return None

    def resolved(self, settings: dict | None = None) -> dict:
        """The defaults with ``settings`` over them (numbers as their default's type);
        ``UserError`` naming the problems when a setting is unusable."""
        given = dict(settings or {})
        problems = self.check_settings(given, self.name)
        if problems:
            raise UserError("; ".join(problems))
        out = dict(self.settings)
        for key, value in given.items():
            out[key] = float(value) if isinstance(self.settings[key], float) else value
        return out

    def usage(self) -> str:
        """``name (key=default, ...)``: the --method help line."""
        keys = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        return f"{self.name} ({keys})" if keys else self.name

    def refuse_without_sources(self) -> None:
        """``UserError`` for an oracle asked to separate something without true sources."""
        if self.oracle:
            raise UserError(
                f"{self.name} is an oracle: oracles need the true sources, i.e. the workflow's "
                "MIR-1K clips (--catalogue; left = accompaniment, right = voice); a song has "
                f"none. For songs use a method that needs none: {', '.join(blind_methods())}"
            )

    def compute(
        self,
        mag: np.ndarray,
        settings: dict | None = None,
        *,
        frame_rate: float,
        sources: np.ndarray | None = None,
    ) -> np.ndarray:
        """(2, F, T) float32 voice and accompaniment masks in [0, 1] of magnitude ``mag``.

        ``sources``: the true (voice, accompaniment) magnitudes on the same grid; an oracle
        without them is refused (a song has no true sources)."""
        if sources is None:
            self.refuse_without_sources()
        mag = np.asarray(mag, np.float32)
        if mag.ndim != 2:
            raise ValueError(f"{self.name}: expected a magnitude (F, T), got shape {mag.shape}")
        if sources is not None and np.shape(sources) != (2, *mag.shape):
            raise ValueError(
                f"{self.name}: sources must be (2, {mag.shape[0]}, {mag.shape[1]}), "
                f"got {np.shape(sources)}"
            )
        src = None if sources is None else np.asarray(sources, np.float32)
        m = self.masks(mag, self.resolved(settings), frame_rate, src)
        if np.shape(m) != (2, *mag.shape):
            raise ValueError(f"{self.name}: masks of shape {np.shape(m)}, expected (2, F, T)")
        m = np.nan_to_num(np.asarray(m, np.float32), nan=0.0)
        return np.clip(m, 0.0, 1.0, out=m)


@functools.cache
def method_kinds() -> dict[str, MethodKind]:
    """Every ``METHOD`` record of the modules in ``methods/kinds/``, by name."""
    from hourglass_sep.methods import kinds

    found = discover(kinds, "METHOD", MethodKind)
    return {rec.name: rec for rec in sorted(found, key=lambda r: r.name)}


def blind_methods() -> list[str]:
    """The methods that need no true sources (what a song can be separated with)."""
    return [name for name, rec in method_kinds().items() if not rec.oracle]


def method_kind(name: str) -> MethodKind:
    """The record of method ``name`` (``repet_sim`` reads as ``repet-sim``); ``UserError``
    naming the choices."""
    kinds = method_kinds()
    key = str(name).strip().lower().replace("_", "-")
    if key not in kinds:
        raise UserError(f"unknown method {name!r}; choose one of: {', '.join(kinds)}")
    return kinds[key]

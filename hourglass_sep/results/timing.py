"""How the speed table times things: interleaved repeats, so that a timing claim has an interval.

One timing per side decides nothing: a machine's speed drifts (other jobs, turbo clocks, a
warm cache), and two setups timed one after the other see different machines.  So the setups
of a comparison are timed in *rounds*: after an untimed warm-up of each, every round runs
each setup once, in a fixed order (A B A B ... for two, A B C A B C ... for three).  Repeat i
of A and repeat i of B ran seconds apart, so their ratio is free of the slow drift, and the
ratios over the rounds give the speed-up's interval (``claims/kinds/speedup.py``).

A row of the speed table keeps every repeat: ``times`` holds the seconds of round 1, 2, ...
(``;``-separated), ``group`` names the rounds the row was timed in (rows of one group pair by
round), ``order`` its place in each round.  ``seconds`` is their median, for readers that want
one number.  Defaults (the config's ``speed:`` keys, workflow/schemas/config.schema.yaml) are
the constants below, written once: the ``speed`` verb's options take them, the config passes
only what it sets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

MIN_REPEATS = 5  # fewest interleaved repeats a timing verdict takes (fewer: inconclusive)
REPEATS = MIN_REPEATS  # the speed verb times as many rounds as a verdict needs
WARMUP = 1  # untimed runs of every setup before the first round
INDIFFERENCE = 0.05  # zone of indifference: a speed-up within 1 +- this is "no difference"
TIMES_SEP = ";"
# the speed table's columns: the first four are every reader's; the rest say how it was timed
COLUMNS = [
    "what",
    "device",
    "seconds",
    "detail",
    "group",
    "order",
    "repeats",
    "times",
    "audio_seconds",
    "indifference",
]


@dataclass(frozen=True)
class Setup:
    """One thing to time.  ``run()`` is one timed repeat; it may return the seconds of named
    parts of itself (e.g. separation and scoring within a test run), which become rows too.
    ``warm()`` is the untimed warm-up (loading a backend, first-call allocations)."""

    what: str
    run: Callable[[], dict[str, float] | None]
    warm: Callable[[], object]
    parts: tuple[str, ...] = ()  # the names ``run`` returns seconds for


def round_order(setups: Sequence[Setup]) -> dict[str, int]:
    """Each timed name's place in a round: its setup's (a part shares its setup's place)."""
    return {name: i for i, s in enumerate(setups) for name in (s.what, *s.parts)}


def interleave(
    setups: Sequence[Setup],
    repeats: int = REPEATS,
    warmup: int = WARMUP,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Seconds of every setup (and of the parts it reports), one per round: ``warmup``
    untimed runs of each setup, then ``repeats`` rounds running each setup once, in the given
    order (A B A B ...), so that repeat i of A and repeat i of B form a pair."""
    for setup in setups:
        for _ in range(warmup):
            setup.warm()
    times: dict[str, list[float]] = {s.what: [] for s in setups}
    for _ in range(repeats):
        for setup in setups:
            t0 = clock()
            parts = setup.run()
            times[setup.what].append(clock() - t0)
            for name, secs in (parts or {}).items():
                times.setdefault(name, []).append(float(secs))
    return times


def format_times(times: Sequence[float]) -> str:
    return TIMES_SEP.join(f"{t:.6f}" for t in times)


def parse_times(cell) -> list[float]:
    """The repeats of a speed-table cell: ``"0.5;0.49;..."`` (a lone number may have been read
    as a float; an empty cell is no repeats)."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return []
    return [float(x) for x in str(cell).split(TIMES_SEP) if x.strip()]


def timing_rows(
    times: dict[str, list[float]],
    group: str,
    order: dict[str, int],
    device: dict[str, str],
    detail: dict[str, str],
    protocol: dict,
) -> list[dict]:
    """Speed-table rows of one group of interleaved timings (``times`` as :func:`interleave`
    returns it, ``order`` as :func:`round_order`).  ``device`` / ``detail``: per name;
    ``protocol``: ``warmup``, ``indifference`` and ``audio_seconds`` (per name)."""
    rows = []
    for what, secs in times.items():
        note = f"median of {len(secs)} interleaved repeats ({protocol.get('warmup', 0)} warm-up)"
        rows.append(
            dict(
                what=what,
                device=device[what],
                seconds=float(np.median(secs)) if secs else math.nan,
                detail="; ".join(x for x in (detail.get(what, ""), note) if x),
                group=group,
                order=order[what],
                repeats=len(secs),
                times=format_times(secs),
                audio_seconds=protocol.get("audio_seconds", {}).get(what, math.nan),
                indifference=protocol.get("indifference", INDIFFERENCE),
            )
        )
    return rows

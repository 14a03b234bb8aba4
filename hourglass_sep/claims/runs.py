"""Run names in claims: ``VARIANT`` or ``VARIANT@STEP`` resolved to (variant, step).

STEP is a paper-scale step of the variant's ``evaluate`` list (mapped to the preset's scale,
so one claims file serves every preset) or a step at the preset's scale; a plain VARIANT is
its last evaluated step.  Any name in the scores' ``variant`` column (an evaluation variant)
is a run too, with the steps it was scored at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from hourglass_sep.errors import UserError

KnownRuns = Mapping[str, Sequence[tuple[object, object]]]  # variant -> [(step, paper_step)]


def known_runs_from_config(config: dict) -> dict[str, list[tuple[int, int]]]:
    """Every configured variant (``run_variants`` or not; evaluation variants too) -> its
    (step, paper_step) pairs.  Replicates are not runs of their own: a claim names the
    variant and gets every replicate."""
    from hourglass_sep.plan.experiments import resolve_bases

    bases = resolve_bases({**config, "run_variants": None})
    return {name: [(e.step, e.paper_step) for e in v.evaluations] for name, v in bases.items()}


def known_runs_from_scores(scores: pd.DataFrame) -> dict[str, list[tuple[object, object]]]:
    """Every (variant, step) of a scores table; steps are at the scores' scale."""
    pairs = scores[["variant", "step"]].drop_duplicates()
    out: dict[str, list] = {}
    for variant, step in pairs.itertuples(index=False):
        out.setdefault(str(variant), []).append((step, step))
    return out


def _last(evals: Sequence[tuple[object, object]]):
    try:
        return max(evals, key=lambda e: float(e[0]))[0]
    except (TypeError, ValueError):
        return evals[-1][0]


def resolve_run(text: str, known: KnownRuns, where: str) -> tuple[str, object]:
    """``VARIANT`` or ``VARIANT@STEP`` -> (variant, step at this scale); errors name ``where``."""
    name, _, step = str(text).partition("@")
    if name not in known:
        raise UserError(f"{where}: run {name!r} is not a variant (known: {sorted(known)})")
    evals = list(known[name])
    if not evals:
        raise UserError(f"{where}: variant {name!r} has no evaluated step")
    if not step:
        return name, _last(evals)
    for scaled, paper in evals:  # a paper-scale step first, then a step of this scale
        if str(paper) == step:
            return name, scaled
    for scaled, _paper in evals:
        if str(scaled) == step:
            return name, scaled
    raise UserError(
        f"{where}: step {step} is not evaluated for {name!r} (evaluated: paper-scale steps "
        f"{[p for _, p in evals]}, at this scale {[s for s, _ in evals]})"
    )


def run_name(run: tuple[str, object]) -> str:
    return f"{run[0]}@{run[1]}"

"""The runs a sequential design may add (``claims_sequential``, docs/statistics.md).

The workflow resolves them once, at parse time, like every other run: the replicates
``len(configured seeds) .. max_replicates - 1`` of each trained variant that a *confirmatory*
claim compares (an evaluation variant's claim extends the model it evaluates, and the
evaluation variant gets the matching replicates).  None of them is a target by itself: a look
of the design (Snakemake checkpoint ``sequential_look``) asks for the replicates of the runs
whose claims are still undecided, and only those train.

An added replicate trains only as far as the confirmatory claims on its variant need: its
iterations are the largest step those claims name (training is the same trajectory whatever
``--iterations`` says, so step ``s`` of a shorter training is step ``s`` of the full one), and
it is evaluated at those steps only.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import replace

from hourglass_sep.claims.runs import known_runs_from_config, resolve_run
from hourglass_sep.claims.sequential import FUTILITY_POWER, SequentialDesign
from hourglass_sep.plan.experiments import ConfigError, Variant, resolve, resolve_bases, seeds_of


def design_of(config: dict, start: int) -> SequentialDesign | None:
    """The config's design (``claims_sequential``), or None when it is off; errors name the
    key.  ``start``: the replicates every run has before the first look."""
    spec = config.get("claims_sequential")
    if not spec:
        return None
    given = {k: spec[k] for k in ("alpha", "boundary", "futility") if spec.get(k) is not None}
    try:
        return SequentialDesign(
            max_replicates=int(spec["max_replicates"]),
            looks=int(spec["looks"]),
            start=int(start),
            power=float(spec.get("futility_power") or FUTILITY_POWER),
            **given,
        )
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"claims_sequential: {exc}") from None


def _claim_runs(claim: dict) -> Iterable[str]:
    cmp = claim.get("compare") or {}
    yield from (cmp[k] for k in ("a", "b") if isinstance(cmp.get(k), str))
    yield from [*(cmp.get("chain") or []), *(cmp.get("each") or [])]


def needed_steps(config: dict, claims: Iterable[dict]) -> dict[str, set]:
    """Trained variant -> the steps (this scale) its confirmatory claims compare, an
    evaluation variant's claim counted for its model; threshold and speed claims name no
    run to extend beyond their ``a``."""
    known = known_runs_from_config(config)
    bases = resolve_bases({**config, "run_variants": None})
    out: dict[str, set] = {}
    for c in claims:
        if c.get("family") != "confirmatory" or c.get("needs"):
            continue  # a design extends neither exploratory claims nor another scale's
        for text in _claim_runs(c):
            if str(text).partition("@")[0] not in known:
                continue  # a speed-table row, not a run
            variant, step = resolve_run(text, known, f"claims[{c.get('id')}]")
            model = bases[variant].model if variant in bases else variant
            out.setdefault(model, set()).add(step)
            if model != variant:
                out.setdefault(variant, set()).add(step)
    return out


def _with_seeds(config: dict, models: Iterable[str], total: int) -> dict:
    """A copy of the config whose ``models`` have ``total`` seeds: their own first."""
    cfg = copy.deepcopy(config)
    bases = resolve_bases(config)
    for name in models:
        spec = cfg["variants"][name] = dict(cfg["variants"][name] or {})
        seeds = seeds_of(name, spec, config, int(bases[name].train.seed))
        while len(seeds) < total:
            seeds.append(max(seeds) + 1)
        spec.pop("replicates", None)
        spec["seeds"] = seeds
    return cfg


def _truncated(run: Variant, steps: set) -> Variant | None:
    """The run evaluated at ``steps`` only, trained as far as the last of them."""
    evals = [e for e in run.evaluations if e.step in steps]
    if not evals:
        return None
    if not run.trains:
        return replace(run, evaluations=evals)
    last = max(e.step for e in evals)
    return replace(run, evaluations=evals, train=replace(run.train, iterations=last))


def reserve_runs(
    config: dict, runs: Mapping[str, Variant], claims: Iterable[dict], design: SequentialDesign
) -> dict[str, Variant]:
    """The replicates a look may ask for, beyond ``runs`` (the configured ones)."""
    steps = needed_steps(config, list(claims))
    trained = {n for n in steps if n in runs and runs[n].trains}
    if not trained:
        return {}
    every = resolve(_with_seeds(config, trained, design.max_replicates))
    out = {}
    for name, run in every.items():
        if name in runs or run.base_variant not in steps:
            continue
        if run.model != run.name and run.model in runs:
            continue  # evaluates a configured replicate: nothing to add
        kept = _truncated(run, steps[run.base_variant])
        if kept is not None:
            out[name] = kept
    return out


def reserve_of(reserve: Mapping[str, Variant], replicates: Mapping[str, int]) -> list[str]:
    """The reserve runs a look's plan asks for: every reserve replicate below the target
    count of its model (an evaluation variant follows its model's target)."""
    out = []
    for name, run in reserve.items():
        model = reserve[run.model].base_variant if run.model in reserve else run.base_variant
        if run.replicate < int(replicates.get(model, 0)):
            out.append(name)
    return out


def write_added_runs(rows: list[dict], preset: str, path, log_path=None) -> None:
    """The reserve runs' experiments.json rows (no parameter counts: their models are the
    configured variants' sizes), which the claims read to fold ``NAME.s<seed>`` back into
    its variant and find each replicate's training history; ``log_path``: one line of what
    was written."""
    import json
    from pathlib import Path

    from hourglass_sep.data.audio import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"meta": {"preset": preset}, "rows": rows}, indent=1))
    if log_path:
        runs = sorted({r["variant"] for r in rows})
        Path(log_path).write_text(f"{path}: {len(runs)} reserve run(s): {', '.join(runs)}\n")


def added_runs(reserve: Mapping[str, Variant], plans: Iterable[Mapping]) -> list[str]:
    """The reserve runs the looks so far asked for (the union over their plans: a run a
    look extended stays in every later look, whose earlier observations need it)."""
    names: dict[str, None] = {}
    for plan in plans:
        names.update(dict.fromkeys(reserve_of(reserve, plan.get("replicates") or {})))
    return list(names)

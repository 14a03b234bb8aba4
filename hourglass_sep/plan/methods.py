"""The rows of the Methods table (``methods_table:`` in config), resolved against the runs.

The table lines the hourglass up against its peers under one protocol: each row names a base
variant (its replicates are averaged) and, for a variant evaluated at several steps, the step
at paper scale (e.g. Ours at 15,000 steps: the learned peers' budget).  Torch-free: the
Snakefile resolves the rows once and passes them to the ``methods`` job.
"""

from __future__ import annotations

from hourglass_sep.plan.experiments import ConfigError, Variant


def _entry(item) -> tuple[str, int | None]:
    if isinstance(item, str):
        return item, None
    return item["variant"], item.get("step")


def _scaled_step(base: Variant, paper_step: int | None, where: str) -> int:
    """The run-scale step of ``base``'s evaluation at ``paper_step`` (None: its last)."""
    if paper_step is None:
        return base.evaluations[-1].step
    for e in base.evaluations:
        if e.paper_step == paper_step:
            return e.step
    steps = sorted({e.paper_step for e in base.evaluations})
    raise ConfigError(
        f"{where}.step: {base.name!r} is not evaluated at {paper_step} (its steps: {steps})"
    )


def methods_rows(config: dict, runs: dict[str, Variant]) -> tuple[list[dict], list[str]]:
    """(rows ``{"variant", "step"}`` of the base variants this preset runs, the names left out
    because the preset does not run them).  A name that is no variant at all is an error.
    Fewer than two rows make no table (all names left out): one method compares nothing."""
    spec = config.get("methods_table") or {}
    bases = {v.base_variant: v for v in runs.values() if v.replicate == 0}
    known = set(config.get("variants") or {})
    rows, skipped = [], []
    for k, item in enumerate(spec.get("rows") or []):
        name, paper_step = _entry(item)
        where = f"methods_table.rows[{k}]"
        if name not in known:
            raise ConfigError(f"{where}: {name!r} is not a variant (known: {sorted(known)})")
        if name not in bases:
            skipped.append(name)
            continue
        rows.append({"variant": name, "step": _scaled_step(bases[name], paper_step, where)})
    if len(rows) < 2:  # one method compares nothing (e.g. the tiny preset runs only Ours)
        return [], skipped + [r["variant"] for r in rows]
    return rows, skipped


def methods_oracle(config: dict) -> str | None:
    """The base variant whose GNSDR is the ceiling of the fraction-of-oracle columns."""
    spec = config.get("methods_table") or {}
    oracle = spec.get("oracle")
    if oracle is not None and oracle not in (config.get("variants") or {}):
        raise ConfigError(f"methods_table.oracle: {oracle!r} is not a variant")
    return oracle

"""The experiment table: config variants -> concrete runs at the chosen scale.

Pure Python (no torch): the Snakefile imports it to expand its DAG, and the
``experiments.json`` that the workbook and report read is built from it.

A variant (one entry of ``config["variants"]``) holds the paper-scale settings
and the seed report's numbers; a *scale* (``config["scale"]``) shrinks widths and
iterations for CPU or demo runs without editing any variant:

    width_divisor   channels and growth of every variant are divided by it
    stem            replaces every variant's stem widths (the stem dominates the
                    cost of small networks, so reduced scales must shrink it)
    iterations      multiplies iterations and lr-decay steps (evaluated steps stay at the
                    same fraction of the run)
    min_iterations  floor of the scaled iterations
    precise_bn      batches over which every model's BatchNorm statistics are re-estimated
                    before it is saved (0 = the training running averages, as the seed);
                    a variant's own ``train.precise_bn`` wins (see train.precise_bn_state)
    weight_average  decay of the moving average of the weights that is saved instead of the
                    last step's weights (0 = off, the seed's way; needs precise_bn); a variant's
                    own ``train.weight_average`` wins (see train.WeightAverage)
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

VARIANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
METRICS = ("gnsdr", "gsir", "gsar")
SOURCES = ("voice", "accompaniment")

ARCH_DEFAULTS = dict(
    kind="hourglass",
    stacks=4,
    channels=64,
    growth=64,
    stem=[64, 128, 128],
    poolings=5,
    target="masks",
)
TRAIN_DEFAULTS = dict(
    iterations=15000,
    lr=0.01,
    lr_decay_every=0,
    lr_decay_factor=0.2,
    batch=4,
    frames=64,
    sampling="per_clip",
    seed=0,
    precise_bn=None,
    weight_average=None,
)


class ConfigError(ValueError):
    """A config value is wrong; the message names the key."""


@dataclass
class Evaluation:
    step: int  # step at this scale
    paper_step: int
    report_row: int | None
    reported: dict | None  # {"voice": {"gnsdr":..}, "accompaniment": {...}} or None
    reported_note: str | None

    @property
    def tag(self) -> str:
        return f"step{self.step}"


@dataclass
class Variant:
    name: str
    note: str
    arch: dict
    train: dict
    evaluations: list[Evaluation] = field(default_factory=list)
    label: str | None = None

    @property
    def snapshot_steps(self) -> list[int]:
        return sorted({e.step for e in self.evaluations})


def _scaled(n: int, factor: float, floor: int) -> int:
    return max(int(floor), int(round(n * factor)))


def _reported(entry: dict, where: str) -> tuple[dict | None, str | None]:
    rep = entry.get("reported")
    if rep is None:
        return None, entry.get("reported_note")
    out = {}
    for src in SOURCES:
        vals = rep.get(src)
        if vals is None:
            out[src] = None
            continue
        if isinstance(vals, (list, tuple)):
            if len(vals) != 3:
                raise ConfigError(
                    f"{where}.reported.{src}: give 3 numbers (GNSDR, GSIR, GSAR), got {vals!r}"
                )
            vals = dict(zip(METRICS, vals))
        out[src] = {m: (None if vals.get(m) is None else float(vals[m])) for m in METRICS}
    return out, entry.get("reported_note")


def resolve_variant(name: str, spec: dict, scale: dict) -> Variant:
    """Apply the scale to one variant entry; raise ConfigError naming the bad key."""
    where = f"variants.{name}"
    if not VARIANT_RE.match(name):
        raise ConfigError(f"{where}: variant names may hold letters, digits, '.', '_' and '-' only")
    arch = {**ARCH_DEFAULTS, **copy.deepcopy(spec.get("arch") or {})}
    train = {**TRAIN_DEFAULTS, **copy.deepcopy(spec.get("train") or {})}
    unknown = set(arch) - set(ARCH_DEFAULTS)
    if unknown:
        raise ConfigError(
            f"{where}.arch: unknown key(s) {sorted(unknown)}; known: {sorted(ARCH_DEFAULTS)}"
        )
    unknown = set(train) - set(TRAIN_DEFAULTS)
    if unknown:
        raise ConfigError(
            f"{where}.train: unknown key(s) {sorted(unknown)}; known: {sorted(TRAIN_DEFAULTS)}"
        )
    div = float(scale.get("width_divisor", 1) or 1)
    if div != 1:
        arch["channels"] = max(1, int(round(arch["channels"] / div)))
        arch["growth"] = int(round(arch["growth"] / div))
    if scale.get("stem") and arch["kind"] == "hourglass":
        arch["stem"] = list(scale["stem"])
    elif scale.get("stem") and arch["kind"] == "park-original":
        # Park's stem has one more 128-wide conv; keep its shape, shrink its widths
        s = list(scale["stem"])
        arch["stem"] = s + [s[-1]]
    arch["stem"] = [int(x) for x in arch["stem"]]
    factor = float(scale.get("iterations", 1.0))
    floor = int(scale.get("min_iterations", 1))
    paper_iters = int(train["iterations"])
    train["iterations"] = _scaled(paper_iters, factor, floor)
    if train["lr_decay_every"]:
        train["lr_decay_every"] = _scaled(int(train["lr_decay_every"]), factor, 1)
    if train["precise_bn"] is None:
        train["precise_bn"] = int(scale.get("precise_bn", 0) or 0)
    if train["weight_average"] is None:
        train["weight_average"] = float(scale.get("weight_average", 0) or 0)
    if train["weight_average"] and not train["precise_bn"]:
        raise ConfigError(
            f"{where}: weight_average {train['weight_average']} needs precise_bn > 0 (scale.precise_bn "
            f"or {where}.train.precise_bn): BatchNorm statistics must be re-estimated for averaged weights"
        )
    evals = []
    for k, ev in enumerate(spec.get("evaluate") or [{"step": paper_iters}]):
        w = f"{where}.evaluate[{k}]"
        paper_step = int(ev.get("step", paper_iters))
        if paper_step > paper_iters or paper_step < 1:
            raise ConfigError(
                f"{w}.step: {paper_step} is outside 1..{paper_iters} (the variant's iterations)"
            )
        # the same fraction of the (scaled) run as at paper scale
        step = max(1, int(round(train["iterations"] * paper_step / paper_iters)))
        rep, note = _reported(ev, w)
        evals.append(Evaluation(step, paper_step, ev.get("report_row"), rep, note))
    steps = [e.step for e in evals]
    if len(set(steps)) != len(steps):
        raise ConfigError(
            f"{where}.evaluate: two evaluations fall on the same step {steps} at this scale"
        )
    return Variant(name, spec.get("note", ""), arch, train, evals, spec.get("label"))


def resolve(config: dict) -> dict[str, Variant]:
    """All variants to run (``config["run_variants"]`` selects a subset, null = all)."""
    variants = config.get("variants") or {}
    if not variants:
        raise ConfigError("variants: the config defines no variants")
    chosen = config.get("run_variants")
    if chosen:
        missing = [v for v in chosen if v not in variants]
        if missing:
            raise ConfigError(
                f"run_variants: {missing} not defined under variants (known: {sorted(variants)})"
            )
    else:
        chosen = list(variants)
    scale = config.get("scale") or {}
    return {name: resolve_variant(name, variants[name], scale) for name in chosen}


def training_cost(variant: Variant) -> float:
    """Rough relative cost of training a variant, for scheduling only (no torch).

    Per step: batch x stacks x (a fixed per-stack overhead + sum over the hourglass levels
    of width_l^2 / 4^l, the conv work per input pixel at level l).  The overhead term is
    fitted to CPU step times of small networks (kernel launches and memory traffic weigh
    more than FLOPs there): 4-stack "Ours" F=12+12 (0.58 s) vs "Park's" F=48 (1.81 s).
    """
    arch, train = variant.arch, variant.train
    levels = sum(
        (arch["channels"] + level * arch["growth"]) ** 2 / 4**level
        for level in range(arch["poolings"] + 1)
    )
    return float(train["iterations"]) * train["batch"] * arch["stacks"] * (800.0 + levels)


def training_priorities(variants: dict[str, Variant]) -> dict[str, int]:
    """Scheduling priority per variant: the costliest training gets the highest number.

    Starting the longest trainings first (longest-processing-time order) keeps every core
    busy until the end instead of leaving one long run alone after the short ones.
    """
    order = sorted(variants, key=lambda name: (training_cost(variants[name]), name))
    return {name: rank + 1 for rank, name in enumerate(order)}


def arch_flags(arch: dict) -> str:
    """CLI flags of ``hourglass-sep train`` for an architecture dict."""
    return (
        f"--kind {arch['kind']} --stacks {arch['stacks']} --channels {arch['channels']} "
        f"--growth {arch['growth']} --stem {','.join(str(s) for s in arch['stem'])} "
        f"--poolings {arch['poolings']} --target {arch['target']}"
    )


def train_flags(train: dict, snapshots: list[int]) -> str:
    snaps = ",".join(str(s) for s in snapshots)
    return (
        f"--iterations {train['iterations']} --lr {train['lr']} --lr-decay-every {train['lr_decay_every']} "
        f"--lr-decay-factor {train['lr_decay_factor']} --batch {train['batch']} --frames {train['frames']} "
        f"--sampling {train['sampling']} --seed {train['seed']} --precise-bn {train.get('precise_bn') or 0} "
        f"--weight-average {train.get('weight_average') or 0:g}"
        + (f" --snapshots {snaps}" if snaps else "")
    )


def experiment_rows(variants: dict[str, Variant], meta: dict, results: str) -> dict:
    """The ``experiments.json`` object: ``{"meta": ..., "rows": [...]}`` (one row per evaluation)."""
    from .model import ArchConfig, build_model, count_parameters  # torch import only here

    rows = []
    for v in variants.values():
        params = count_parameters(build_model(ArchConfig.from_dict(v.arch)))
        for e in v.evaluations:
            label = v.label or v.name
            if len(v.evaluations) > 1:
                label = f"{label} @{e.step}"
            rows.append(
                dict(
                    variant=v.name,
                    step=e.step,
                    paper_step=e.paper_step,
                    label=label,
                    note=v.note,
                    report_row=e.report_row,
                    arch=v.arch,
                    parameters=params,
                    train=v.train,
                    reported=e.reported,
                    reported_note=e.reported_note,
                    reported_source=(
                        f"seed report result.xlsx, row {e.report_row}" if e.report_row else None
                    ),
                    scale=meta.get("scale"),
                    train_info=f"{results}/models/{v.name}/train.json",
                    history=f"{results}/models/{v.name}/history.csv",
                )
            )
    return {"meta": meta, "rows": rows}

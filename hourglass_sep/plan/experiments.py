"""The experiment table: config variants -> concrete runs at the chosen scale.

Pure Python (no torch): the Snakefile imports it to expand its DAG, and the rows of the
``experiments.json`` that the workbook and report read are made from the runs it resolved
(:func:`experiment_rows`; only the parameter counts are added by the job, with torch).

A variant (one entry of ``config["variants"]``) holds the paper-scale settings
and the report's numbers; a *scale* (``config["scale"]``) shrinks widths and
iterations for CPU or demo runs without editing any variant:

    width_divisor   channels and growth of every variant are divided by it
    stem            replaces every variant's stem widths (the stem dominates the
                    cost of small networks, so reduced scales must shrink it)
    iterations      multiplies iterations and lr-decay steps (evaluated steps stay at the
                    same fraction of the run)
    min_iterations  floor of the scaled iterations
    max_lr          cap of every variant's learning rate (null = none): a few dozen steps at
                    the report's lr 0.1 leave some small networks with a dead mask
    precise_bn      batches over which every model's BatchNorm statistics are re-estimated
                    before it is saved (0 = the training running averages, as the report);
                    a variant's own ``train.precise_bn`` wins (see train.precise_bn_state)
    weight_average  decay of the moving average of the weights that is saved instead of the
                    last step's weights (0 = off, the report's way; needs precise_bn); a variant's
                    own ``train.weight_average`` wins (see train.WeightAverage)

A variant becomes one *run* per replicate (``replicates: N`` or ``seeds: [..]``, globally or
per variant): replicate 0 keeps the variant's name, replicate r > 0 is ``NAME.s<seed>``
trained with its own seed.  An *evaluation variant* (``model: OTHER`` + ``evaluation:``)
trains nothing: it evaluates OTHER's snapshots with other evaluation settings (windows per
forward pass, scoring backend, schedule) or on a stratified test subset (``test_clips``).

A variant's ``kind`` says what separates: a network kind (``nets/kinds/``: the report's
``hourglass``, ``park-original``, the learned peers ``unet`` and ``open-unmix``; the same as
``arch.kind``) or a training-free method (``methods/kinds/``: ``repet-sim``, ``rpca`` and the
oracle masks ``oracle-irm`` / ``oracle-ibm``).  A training-free entry takes ``method:``
settings (checked by its record), trains nothing, is evaluated once at step 0 and has one run:
it is deterministic, so replicates would repeat the same numbers.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, replace

from hourglass_sep.errors import UserError
from hourglass_sep.methods.record import method_kinds
from hourglass_sep.nets.kind_record import kind_aliases, network_kind, network_kinds
from hourglass_sep.nets.settings import (
    ArchConfig,
    TrainConfig,
    coerce,
    marked,
    setting_flags,
    variant_defaults,
    variant_dict,
    variant_keys,
)

VARIANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
METRICS = ("gnsdr", "gsir", "gsar")
REPORT_KINDS = ("hourglass", "park-original")  # the networks of the report and Park's paper
SOURCES = ("voice", "accompaniment")

# a variant's defaults: the fields of ArchConfig / TrainConfig (the report's "Ours")
ARCH_DEFAULTS = variant_defaults(ArchConfig)
TRAIN_DEFAULTS = variant_defaults(TrainConfig)


class ConfigError(ValueError):
    """A config value is wrong; the message names the key."""


@dataclass(kw_only=True)
class Evaluation:
    """One evaluated step of a run, with the report's numbers for it (if any)."""

    step: int  # step at this scale
    paper_step: int
    report_row: int | None
    reported: dict | None  # {"voice": {"gnsdr":..}, "accompaniment": {...}} or None
    reported_note: str | None
    replicate: int | None = None  # the replicate this entry is for (None = every replicate)

    @property
    def tag(self) -> str:
        return f"step{self.step}"


@dataclass(kw_only=True)
class Variant:
    """One run: a variant's replicate (or an evaluation variant) at this scale.

    ``arch`` / ``train`` are the checked settings objects; their variant keys are what a job is
    given (:func:`arch_flags`, :func:`train_flags`) and what experiments.json records.  A
    training-free run has neither (None): its ``kind`` is a method and ``settings`` its
    method's resolved settings.
    """

    name: str
    note: str
    arch: ArchConfig | None
    train: TrainConfig | None
    evaluations: list[Evaluation] = field(default_factory=list)
    label: str | None = None
    base_variant: str = ""  # the config entry this run comes from ("" = name)
    replicate: int = 0
    model: str = ""  # the trained run whose snapshots are evaluated ("" = name)
    evaluation: dict = field(default_factory=dict)  # evaluation settings that differ
    kind: str = ""  # network kind (arch.kind) or training-free method ("" = arch.kind)
    settings: dict = field(default_factory=dict)  # a training-free method's settings

    def __post_init__(self):
        self.base_variant = self.base_variant or self.name
        self.model = self.model or self.name
        self.kind = self.kind or (self.arch.kind if self.arch is not None else "")

    @property
    def free(self) -> bool:
        """True for a training-free method (no network, no training, one deterministic run)."""
        return self.arch is None

    @property
    def family(self) -> str:
        """hourglass (the report's networks) | learned peer | training-free | oracle."""
        if self.free:
            return "oracle" if method_kinds()[self.kind].oracle else "training-free"
        return "hourglass" if self.kind in REPORT_KINDS else "learned peer"

    @property
    def snapshot_steps(self) -> list[int]:
        return sorted({e.step for e in self.evaluations})

    @property
    def trains(self) -> bool:
        """True for a run with its own training job (not an evaluation variant, not a
        training-free method)."""
        return not self.free and self.model == self.name

    @property
    def subset(self) -> int | None:
        """Test clips of a subset evaluation (scores taken from the model's), else None."""
        return self.evaluation.get("test_clips")


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


def _kind_pins(given: dict) -> dict:
    """The values a network kind pins (``requires``: the U-Net's one stack, ...): the defaults
    of its fields, over ArchConfig's (which are the hourglass "Ours")."""
    try:
        return dict(network_kind(given.get("kind", ArchConfig.kind)).requires)
    except ValueError:
        return {}  # an unknown kind: ArchConfig names the choices


def _settings(cls, spec: dict, section: str, where: str, scale: dict) -> dict:
    """A variant's ``arch:`` or ``train:`` mapping over the defaults of ``cls``'s fields (and,
    for ``arch:``, the values its kind pins).

    A preset's ``scale:`` value of a ``per_scale`` field (precise_bn, weight_average) is the
    default of every variant that does not set it.
    """
    given = copy.deepcopy(spec.get(section) or {})
    known = variant_keys(cls)
    unknown = set(given) - set(known)
    if unknown:
        raise ConfigError(
            f"{where}.{section}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}"
        )
    per_scale = {k: scale[k] for k in marked(cls, "per_scale") if scale.get(k) is not None}
    pins = _kind_pins(given) if cls is ArchConfig else {}
    values = {**variant_defaults(cls), **pins, **per_scale, **given}
    return {k: coerce(cls, k, v) for k, v in values.items()}


def _scale_arch(arch: dict, scale: dict) -> None:
    """Shrink widths (``width_divisor``) and replace the stem (``stem``) in place."""
    div = float(scale.get("width_divisor", 1) or 1)
    if div != 1:
        arch["channels"] = max(1, int(round(arch["channels"] / div)))
        arch["growth"] = int(round(arch["growth"] / div))
    if scale.get("stem"):  # each kind says how (Park's stem keeps its extra conv)
        try:
            kind = network_kind(arch["kind"])
        except ValueError:
            kind = None  # unknown: ArchConfig names the choices
        if kind is not None and "stem" not in kind.requires:  # a pinned stem is no stem
            arch["stem"] = kind.scale_stem(list(scale["stem"]))
    arch["stem"] = [int(x) for x in arch["stem"]]


def _scale_steps(train: dict, scale: dict) -> None:
    """Multiply every step count (``steps`` fields) by ``scale.iterations``, in place."""
    factor = float(scale.get("iterations", 1.0))
    for name in marked(TrainConfig, "steps"):
        if not train[name]:
            continue  # 0 = never (e.g. a constant lr)
        floor = int(scale.get("min_iterations", 1)) if name == "iterations" else 1
        train[name] = _scaled(int(train[name]), factor, floor)
    if scale.get("max_lr") is not None:
        train["lr"] = min(float(train["lr"]), float(scale["max_lr"]))


def _validated(cls, values: dict, where: str):
    """``values`` as a ``cls`` object, checked by the dataclass (its rules live there, once);
    a legacy kind becomes its current name."""
    try:
        return cls(**values)
    except (ValueError, UserError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _evaluations(spec: dict, where: str, paper_iters: int, iterations: int) -> list[Evaluation]:
    """The variant's evaluated steps, moved to the same fraction of the (scaled) run."""
    evals = []
    for k, ev in enumerate(spec.get("evaluate") or [{"step": paper_iters}]):
        w = f"{where}.evaluate[{k}]"
        paper_step = int(ev.get("step", paper_iters))
        if paper_step > paper_iters or paper_step < 1:
            raise ConfigError(
                f"{w}.step: {paper_step} is outside 1..{paper_iters} (the variant's iterations)"
            )
        step = max(1, int(round(iterations * paper_step / paper_iters)))
        rep, note = _reported(ev, w)
        evals.append(
            Evaluation(
                step=step,
                paper_step=paper_step,
                report_row=ev.get("report_row"),
                reported=rep,
                reported_note=note,
                replicate=ev.get("replicate"),
            )
        )
    steps = [(e.replicate, e.step) for e in evals]
    if len(set(steps)) != len(steps):
        raise ConfigError(
            f"{where}.evaluate: two evaluations fall on the same step {steps} at this scale"
        )
    return evals


def resolve_arch(name: str, spec: dict, scale: dict) -> ArchConfig:
    """The architecture of variant ``name`` (entry ``spec``) at this scale, checked."""
    where = f"variants.{name}"
    arch = _settings(ArchConfig, spec, "arch", where, scale)
    _scale_arch(arch, scale)
    return _validated(ArchConfig, arch, f"{where}.arch")


def resolve_variant(name: str, spec: dict, scale: dict) -> Variant:
    """Apply the scale to one variant entry; raise ConfigError naming the bad key.

    Defaults come from the fields of ArchConfig / TrainConfig (hourglass_sep.nets.settings) and
    the values are checked by those dataclasses, so each rule is written once.
    """
    where = f"variants.{name}"
    if not VARIANT_RE.match(name):
        raise ConfigError(f"{where}: variant names may hold letters, digits, '.', '_' and '-' only")
    arch = resolve_arch(name, spec, scale)
    train = _settings(TrainConfig, spec, "train", where, scale)
    paper_iters = int(train["iterations"])
    _scale_steps(train, scale)
    train = _validated(TrainConfig, train, f"{where}.train")
    evals = _evaluations(spec, where, paper_iters, train.iterations)
    return Variant(
        name=name,
        note=spec.get("note", ""),
        arch=arch,
        train=train,
        evaluations=evals,
        label=spec.get("label"),
    )


EVALUATION_KEYS = ("windows_per_batch", "backend", "schedule", "test_clips")


def _for_replicate(evals: list[Evaluation], r: int) -> list[Evaluation]:
    """The evaluations of replicate ``r``: the common entries (the report's numbers belong
    to replicate 0 only), with an entry marked ``replicate: r`` replacing its step's."""
    own = {e.step: e for e in evals if e.replicate == r}
    out = []
    for e in evals:
        if e.replicate is not None:
            continue
        if e.step in own:
            out.append(own.pop(e.step))
        elif r == 0:
            out.append(e)
        else:
            out.append(
                Evaluation(
                    step=e.step,
                    paper_step=e.paper_step,
                    report_row=None,
                    reported=None,
                    reported_note=None,
                )
            )
    return sorted(out + list(own.values()), key=lambda e: e.step)


def seeds_of(name: str, spec: dict, config: dict, base_seed: int) -> list[int]:
    """The training seeds of a variant's replicates: its own ``seeds``/``replicates``, else
    the config's, else one; at least as many as its ``evaluate`` entries' ``replicate`` need."""
    where = f"variants.{name}"
    own = [k for k in ("seeds", "replicates") if spec.get(k) is not None]
    if len(own) == 2:
        raise ConfigError(f"{where}: give seeds or replicates, not both")
    src, key = (spec, own[0]) if own else (config, "seeds" if config.get("seeds") else "")
    if not key:
        key = "replicates"
    seeds = src.get(key)
    if key == "seeds":
        seeds = [int(x) for x in seeds]
        if len(set(seeds)) != len(seeds) or not seeds:
            raise ConfigError(f"{where}: seeds {seeds} must be distinct and not empty")
    else:
        n = int(seeds or 1)
        if n < 1:
            raise ConfigError(f"{where}: replicates must be >= 1, got {n}")
        seeds = [base_seed + r for r in range(n)]
    wanted = [int(e["replicate"]) for e in spec.get("evaluate") or [] if "replicate" in e]
    while wanted and len(seeds) <= max(wanted):
        seeds.append(max(seeds) + 1)
    return seeds


def run_name(name: str, replicate: int, seed: int) -> str:
    """Replicate 0 keeps the variant's name (its results keep their paths); the others
    are ``NAME.s<seed>``."""
    return name if replicate == 0 else f"{name}.s{seed}"


def _replicates(base: Variant, seeds: list[int]) -> list[Variant]:
    out = []
    for r, seed in enumerate(seeds):
        evals = _for_replicate(base.evaluations, r)
        if not evals:
            continue
        out.append(
            replace(
                base,
                name=run_name(base.name, r, seed),
                train=replace(base.train, seed=seed),
                evaluations=evals,
                base_variant=base.name,
                replicate=r,
                model="",  # its own
            )
        )
    return out


def _evaluation_settings(name: str, spec: dict) -> dict:
    where = f"variants.{name}.evaluation"
    ev = dict(spec.get("evaluation") or {})
    unknown = set(ev) - set(EVALUATION_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {EVALUATION_KEYS}")
    if not ev:
        raise ConfigError(f"{where}: an evaluation variant needs at least one of {EVALUATION_KEYS}")
    if "test_clips" in ev and len(ev) > 1:
        raise ConfigError(
            f"{where}: test_clips selects clips of the model's own scores; it cannot be "
            "combined with other evaluation settings (make two evaluation variants)"
        )
    return ev


def _evaluation_variant(name: str, spec: dict, model: Variant, scale: dict) -> Variant:
    """An entry with ``model:``: the model's architecture and training, evaluated again."""
    where = f"variants.{name}"
    extra = set(spec) & {"arch", "train", "seeds", "replicates"}
    if extra:
        raise ConfigError(
            f"{where}: {sorted(extra)} belong to the trained variant {model.name!r}; an "
            "evaluation variant takes model, evaluation, evaluate, note and label"
        )
    paper_iters = max(e.paper_step for e in model.evaluations)
    evals = _evaluations(spec, where, paper_iters, max(model.snapshot_steps))
    known = {e.paper_step: e.step for e in model.evaluations}
    for e in evals:
        if e.paper_step not in known:
            raise ConfigError(
                f"{where}.evaluate: step {e.paper_step} is not evaluated for {model.name!r} "
                f"(its steps: {sorted(known)})"
            )
        e.step = known[e.paper_step]
    return Variant(
        name=name,
        note=spec.get("note", ""),
        arch=model.arch,
        train=model.train,
        evaluations=evals,
        label=spec.get("label"),
        model=model.name,
        evaluation=_evaluation_settings(name, spec),
    )


FREE_KEYS = ("kind", "method", "evaluate", "note", "label")


def variant_kinds() -> list[str]:
    """Every value a variant's ``kind`` may take: the network kinds (their old names too) and
    the training-free methods -- the schema's enum and :func:`_kind_of`'s check."""
    return [*network_kinds(), *kind_aliases(), *method_kinds()]


def _kind_of(name: str, spec: dict) -> str:
    """The entry's kind: ``kind:``, else ``arch.kind``, else ArchConfig's default; a name that
    is neither a network kind nor a method is an error naming both lists."""
    kind = spec.get("kind") or (spec.get("arch") or {}).get("kind") or ArchConfig.kind
    if kind not in variant_kinds():
        raise ConfigError(
            f"variants.{name}.kind: unknown kind {kind!r}; networks: {', '.join(network_kinds())}; "
            f"training-free methods: {', '.join(method_kinds())}"
        )
    return kind


def _network_spec(name: str, spec: dict) -> dict:
    """A network entry with its top-level ``kind:`` moved into ``arch.kind`` (one setting)."""
    where = f"variants.{name}"
    if spec.get("method") is not None:
        raise ConfigError(f"{where}.method: method settings are for training-free kinds only")
    kind = spec.get("kind")
    if kind is None:
        return spec
    arch = dict(spec.get("arch") or {})
    if arch.get("kind", kind) != kind:
        raise ConfigError(f"{where}: kind {kind!r} and arch.kind {arch['kind']!r} differ")
    return {**spec, "arch": {**arch, "kind": kind}}


def _free_evaluation(spec: dict, where: str) -> Evaluation:
    """A training-free run's one evaluation, at step 0, with any published numbers."""
    entries = spec.get("evaluate") or [{}]
    if len(entries) != 1 or entries[0].get("step", 0) != 0 or "replicate" in entries[0]:
        raise ConfigError(
            f"{where}.evaluate: a training-free method is evaluated once, at step 0 "
            "(give at most one entry, without step or replicate)"
        )
    rep, note = _reported(entries[0], f"{where}.evaluate[0]")
    return Evaluation(
        step=0,
        paper_step=0,
        report_row=entries[0].get("report_row"),
        reported=rep,
        reported_note=note,
    )


def resolve_free(name: str, spec: dict) -> Variant:
    """A training-free entry (``kind:`` a method of ``methods/kinds/``): its settings checked
    by the method's record; no network, no training, one run."""
    where = f"variants.{name}"
    if not VARIANT_RE.match(name):
        raise ConfigError(f"{where}: variant names may hold letters, digits, '.', '_' and '-' only")
    if spec.get("kind") is None:  # named as arch.kind
        method = spec["arch"]["kind"]
        raise ConfigError(
            f"{where}.arch.kind: {method!r} is a training-free method, not a network; "
            f"write `kind: {method}` (without arch:)"
        )
    rec = method_kinds()[spec["kind"]]
    extra = sorted(set(spec) - set(FREE_KEYS))
    if extra:
        raise ConfigError(
            f"{where}: {extra} do not apply to the training-free method {rec.name!r} (it trains "
            f"nothing and has one deterministic run); it takes {', '.join(FREE_KEYS)}"
        )
    given = spec.get("method") or {}
    problems = rec.check_settings(given, f"{where}.method")
    if problems:
        raise ConfigError("; ".join(problems))
    return Variant(
        name=name,
        note=spec.get("note", rec.description),
        arch=None,
        train=None,
        evaluations=[_free_evaluation(spec, where)],
        label=spec.get("label"),
        kind=rec.name,
        settings=rec.resolved(given),
    )


def _chosen(config: dict, variants: dict) -> list[str]:
    chosen = config.get("run_variants")
    if not chosen:
        return list(variants)
    missing = [v for v in chosen if v not in variants]
    if missing:
        raise ConfigError(
            f"run_variants: {missing} not defined under variants (known: {sorted(variants)})"
        )
    # an evaluation variant needs its model's training
    needed = [variants[v]["model"] for v in chosen if (variants[v] or {}).get("model")]
    return list(dict.fromkeys([*chosen, *needed]))


def resolve_bases(config: dict) -> dict[str, Variant]:
    """The chosen config entries at this scale, before replicates (replicate 0 each)."""
    variants = config.get("variants") or {}
    if not variants:
        raise ConfigError("variants: the config defines no variants")
    scale = config.get("scale") or {}
    chosen = _chosen(config, variants)
    out = {}
    for name in chosen:
        spec = variants[name] or {}
        if _kind_of(name, spec) in method_kinds():
            out[name] = resolve_free(name, spec)
        elif spec.get("model") is None:
            out[name] = resolve_variant(name, _network_spec(name, spec), scale)
    for name in chosen:
        spec = variants[name] or {}
        model = spec.get("model")
        if model is None:
            continue
        if model not in out or out[model].free:
            trained = sorted(k for k, v in out.items() if not v.free)
            raise ConfigError(
                f"variants.{name}.model: {model!r} is not a trained variant (known: {trained})"
            )
        out[name] = _evaluation_variant(name, spec, out[model], scale)
    return out


def resolve(config: dict) -> dict[str, Variant]:
    """All runs: each chosen variant (``run_variants``, null = all) once per replicate.

    An evaluation variant has the replicates of its model, replicate r evaluating the
    model's replicate r.
    """
    variants = config.get("variants") or {}
    bases = resolve_bases(config)
    seeds = {}
    for name, base in bases.items():
        if base.trains:
            seeds[name] = seeds_of(name, variants[name] or {}, config, int(base.train.seed))
    runs: dict[str, Variant] = {}
    for name, base in bases.items():
        if base.free:  # deterministic: one run
            runs[name] = base
            continue
        if base.trains:
            runs.update((v.name, v) for v in _replicates(base, seeds[name]))
            continue
        for r, seed in enumerate(seeds[base.model]):
            rn = run_name(name, r, seed)
            runs[rn] = replace(
                base,
                name=rn,
                train=replace(base.train, seed=seed),
                evaluations=_for_replicate(base.evaluations, r),
                base_variant=name,
                replicate=r,
                model=run_name(base.model, r, seed),
            )
    return runs


def replicate_runs(runs: dict[str, Variant]) -> dict[str, list[str]]:
    """base variant -> its run names, replicate 0 first."""
    out: dict[str, list[str]] = {}
    for v in sorted(runs.values(), key=lambda v: v.replicate):
        out.setdefault(v.base_variant, []).append(v.name)
    return out


def training_cost(variant: Variant) -> float:
    """Rough relative cost of training a variant, for scheduling only (no torch).

    Per step: batch x stacks x (a fixed per-stack overhead + sum over the hourglass levels
    of width_l^2 / 4^l, the conv work per input pixel at level l).  The overhead term is
    fitted to CPU step times of small networks (kernel launches and memory traffic weigh
    more than FLOPs there): 4-stack "Ours" F=12+12 (0.58 s) vs "Park's" F=48 (1.81 s).
    """
    arch, train = variant.arch, variant.train
    levels = sum(
        (arch.channels + level * arch.growth) ** 2 / 4**level for level in range(arch.poolings + 1)
    )
    return float(train.iterations) * train.batch * arch.stacks * (800.0 + levels)


def training_priorities(variants: dict[str, Variant]) -> dict[str, int]:
    """Scheduling priority per variant: the costliest training gets the highest number.

    Starting the longest trainings first (longest-processing-time order) keeps every core
    busy until the end instead of leaving one long run alone after the short ones.
    """
    trained = [name for name, v in variants.items() if v.trains]
    order = sorted(trained, key=lambda name: (training_cost(variants[name]), name))
    return {name: rank + 1 for rank, name in enumerate(order)}


def arch_flags(arch: ArchConfig) -> str:
    """CLI flags of ``hourglass-sep train`` for a run's architecture (ArchConfig's fields)."""
    return setting_flags(ArchConfig, variant_dict(arch))


def train_flags(train: TrainConfig, snapshots: list[int]) -> str:
    """CLI flags of ``hourglass-sep train`` for a run's variant training settings and its
    snapshots (the job's execution settings are the workflow's, not the variant's)."""
    return setting_flags(TrainConfig, {**variant_dict(train), "snapshots": list(snapshots) or None})


def experiment_rows(runs: dict[str, Variant], results: str, preset: str) -> list[dict]:
    """The rows of ``experiments.json``, one per evaluation, with ``parameters`` still None.

    Torch-free, so the workflow makes them from the runs it resolved (once, in common.smk) and
    the job only counts the parameters (:func:`experiments_table`).
    """
    rows = []
    for v in runs.values():
        arch = variant_dict(v.arch) if v.arch is not None else None
        train = variant_dict(v.train) if v.train is not None else None
        for e in v.evaluations:
            label = v.label or v.name
            if v.label and v.replicate:
                label = f"{label} [seed {v.train.seed}]"
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
                    arch=arch,
                    parameters=None,  # experiments_table
                    train=train,
                    reported=e.reported,
                    reported_note=e.reported_note,
                    reported_source=(
                        f"the report's result.xlsx, row {e.report_row}" if e.report_row else None
                    ),
                    scale=preset,
                    train_info=None if v.free else f"{results}/models/{v.model}/train.json",
                    history=None if v.free else f"{results}/models/{v.model}/history.csv",
                    base_variant=v.base_variant,
                    replicate=v.replicate,
                    seed=None if v.free else v.train.seed,
                    model=v.model,
                    evaluation=v.evaluation,
                    method=v.kind,
                    method_family=v.family,
                    trains=not v.free,
                    method_settings=v.settings or None,
                )
            )
    return rows


def experiments_table(rows: list[dict], meta: dict) -> dict:
    """The ``experiments.json`` object ``{"meta": ..., "rows": [...]}``: the rows of
    :func:`experiment_rows` with each model's parameter count (torch is imported here only)."""
    from hourglass_sep.nets.model import build_model, count_parameters

    counted: dict[str, int] = {}  # replicates and evaluation variants share a size
    out = []
    for row in rows:
        if row["arch"] is None:  # a training-free method: no parameters
            counted[row["model"]] = 0
        elif row["model"] not in counted:
            arch = ArchConfig.from_dict(row["arch"])
            counted[row["model"]] = count_parameters(build_model(arch))
        out.append({**row, "parameters": counted[row["model"]]})
    return {"meta": meta, "rows": out}

"""Every architecture and training setting: name, type, bounds, default and help, written once.

A setting is a field of :class:`ArchConfig` (the network's shape) or :class:`TrainConfig`
(how it is trained), made by :func:`setting`.  Everything else is derived from the fields:

* the ``hourglass-sep train`` / ``model-info`` options (:func:`add_setting_arguments`,
  :func:`from_namespace`): ``--lr-decay-every`` for the field ``lr_decay_every``;
* the flags a workflow job passes (:func:`setting_flags`);
* the defaults of a variant in config.yaml (:func:`variant_defaults`, used by
  ``experiments.resolve``);
* which keys must match to resume a checkpoint (:func:`resume_keys`);
* the ``arch:`` / ``train:`` properties of a variant in the config schema, with their types,
  bounds and choices (:func:`variant_schema`; ``pipeline.config.load_schema`` puts them into
  ``workflow/schemas/config.schema.yaml``, which does not list them);
* the checks of a value (``__post_init__``: the bounds and choices below, then the rules that
  tie two fields together, written there).

Adding a setting = a field here (with its bounds), its use, a test.  The network kinds (the
``kind`` choices and their own rules) are the records of ``nets/kinds/``.

Field metadata (the keyword arguments of :func:`setting`):

``help``       the help text (``--help`` of the CLI).
``choices``    allowed values (checked in ``__post_init__``, by the CLI and the schema).
``aliases``    old values still accepted, mapped to their new name (``kind: seed``).
``minimum``, ``exclusive_minimum``, ``exclusive_maximum``
               bounds of a number (of each number of a tuple), checked in ``__post_init__`` and
               by the schema (JSON Schema's keywords); a float must also be finite.
``min_items``  the fewest numbers a tuple setting holds.
``metavar``    the CLI placeholder.
``execution``  True for settings of a *job*, not of a variant: where and how a run executes
               and what it records (device, threads, precision, checkpoints, logging,
               snapshots).
               They are not variant keys (config.yaml ``variants.*.train`` and the schema leave
               them out); the workflow sets them per job.
``resume``     ``match``: must equal the checkpoint's to resume (changes the trajectory);
               ``free``: may change between sessions; ``warn``: its resolved value is compared
               and a change resumes with a warning that the result is not bit-identical.
``steps``      a number of training steps: a preset's ``scale.iterations`` multiplies it.
``per_scale``  a preset's ``scale:`` section may set it for every variant (a variant's own
               value wins).

Pure Python (no torch): the Snakefile imports this module through ``experiments``.
"""

from __future__ import annotations

import argparse
import math
import operator
import typing
import warnings
from dataclasses import Field, InitVar, asdict, dataclass, field, fields

from hourglass_sep.errors import UserError
from hourglass_sep.nets.kind_record import kind_aliases, network_kind, network_kinds

TARGETS = {
    # name: (number of network outputs, what they mean)
    "masks": (2, "voice and accompaniment masks"),
    "voice": (1, "voice mask; accompaniment = mixture - voice estimate"),
    "accompaniment": (1, "accompaniment mask; voice = mixture - accompaniment estimate"),
    "end-to-end": (2, "voice and accompaniment magnitudes directly (ReLU head, as the report)"),
    "end-to-end-softplus": (2, "magnitudes directly through a softplus head that cannot die"),
}
KINDS = tuple(network_kinds())  # the records of nets/kinds/
# old names of a kind, still read from configs and saved models (the records' aliases)
LEGACY_KINDS = kind_aliases()
SAMPLING = ("per_clip", "uniform")
# train --precision, separate --precision and the config's device.precision
PRECISIONS = ("auto", "fp32", "bf16")
# the values of the deprecated train --amp / TrainConfig(amp=...) -> the precision each means
AMP_PRECISIONS = {"auto": "auto", "off": "fp32", "bf16": "bf16"}
DEVICES = ("auto", "cpu", "cuda")  # --device choices (hardware.resolve_device takes cuda:N too)
RESUME = ("match", "free", "warn")


def setting(
    default,
    help: str,
    *,
    choices: tuple | None = None,
    aliases: dict | None = None,
    metavar: str | None = None,
    execution: bool = False,
    resume: str = "match",
    steps: bool = False,
    per_scale: bool = False,
    minimum: float | None = None,
    exclusive_minimum: float | None = None,
    exclusive_maximum: float | None = None,
    min_items: int = 0,
) -> Field:
    """A dataclass field that is a setting (see the module docstring for the metadata)."""
    if resume not in RESUME:
        raise ValueError(f"resume={resume!r}: choose one of {RESUME}")
    meta = dict(
        help=help,
        choices=choices,
        aliases=aliases or {},
        metavar=metavar,
        execution=execution,
        resume=resume,
        steps=steps,
        per_scale=per_scale,
        bounds={
            k: v
            for k, v in (
                ("minimum", minimum),
                ("exclusiveMinimum", exclusive_minimum),
                ("exclusiveMaximum", exclusive_maximum),
            )
            if v is not None
        },
        min_items=min_items,
    )
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- the settings
@dataclass(frozen=True)
class ArchConfig:
    """Everything that defines a network's shape.  Saved inside every checkpoint and model.

    The defaults are the report's "Ours": 4 stacks, F=64, +64 channels per pooling.
    """

    kind: str = setting(
        "hourglass",
        "network family: "
        + "; ".join(f"{k.name} ({k.description})" for k in network_kinds().values()),
        choices=KINDS,
        aliases=LEGACY_KINDS,
    )
    stacks: int = setting(4, "hourglass stacks (unet, open-unmix: 1)", minimum=1)
    channels: int = setting(
        64,
        "first-level hourglass channels (F); unet: first encoder width; open-unmix: hidden size",
        minimum=1,
    )
    growth: int = setting(64, "channels added per pooling (0 = constant width)", minimum=0)
    stem: tuple[int, ...] = setting(
        (64, 128, 128),
        "stem widths before the F-channel conv (comma-separated)",
        minimum=1,
        min_items=1,
    )
    poolings: int = setting(
        5,
        "poolings per hourglass (the report's: 5; park-original: 4); unet: encoder layers "
        "(paper: 6); open-unmix: BLSTM layers (paper: 3)",
        minimum=1,
    )
    target: str = setting("masks", "what the network predicts", choices=tuple(TARGETS))

    def __post_init__(self):
        """Normalise (tuple stem, current kind name), then check the bounds, the choices and
        the kind's own rules (its record in ``nets/kinds/``)."""
        object.__setattr__(self, "stem", tuple(int(s) for s in self.stem))
        _apply_aliases(self)
        problems = _choice_problems(self) + _bound_problems(self)
        if self.kind in KINDS:
            problems += network_kind(self.kind).problems(self)
        if problems:
            raise ValueError("invalid architecture: " + "; ".join(problems))

    @property
    def outputs(self) -> int:
        return TARGETS[self.target][0]

    @property
    def time_multiple(self) -> int:
        """Input frames must be a multiple of this: the kind's rule, else 2 ** poolings (the
        pooling grid); a recurrent network (``open-unmix``) takes any length."""
        rule = network_kind(self.kind).time_multiple
        return int(rule(self)) if rule is not None else 2**self.poolings

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stem"] = list(self.stem)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ArchConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown architecture keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig:
    """Every training setting.  The defaults are the report's "Ours" schedule (a constant
    lr of 0.01, per-clip sampling, 15,000 steps of 4 patches of 64 frames); Park's decaying
    schedule is spelled out in config.yaml's park-original variant.
    """

    iterations: int = setting(15000, "training steps", resume="free", steps=True, minimum=1)
    lr: float = setting(0.01, "initial Adam learning rate", exclusive_minimum=0)
    lr_decay_every: int = setting(
        0,
        "multiply the lr by lr_decay_factor every this many steps (0 = constant lr)",
        steps=True,
        minimum=0,
    )
    lr_decay_factor: float = setting(0.2, "factor of each lr decay", exclusive_minimum=0)
    batch: int = setting(4, "patches per step", minimum=1)
    frames: int = setting(64, "patch length (frames); 512 bins x frames", minimum=1)
    sampling: str = setting(
        "per_clip",
        "per_clip: Park's (a permutation of clips per epoch, random start); uniform: the "
        "report's (uniform over all (clip, start) pairs)",
        choices=SAMPLING,
    )
    seed: int = setting(0, "random seed of the initial weights and of every patch")
    precise_bn: int = setting(
        0,
        "before saving the model and each snapshot, re-estimate the BatchNorm statistics as "
        "the plain mean over N batches of training patches (0 = keep the running averages, "
        "the report's way)",
        metavar="N",
        per_scale=True,
        minimum=0,
    )
    weight_average: float = setting(
        0.0,
        "save the exponential moving average of the weights (decay D, e.g. 0.99; needs "
        "precise_bn) instead of the last step's weights (0 = off, the report's way)",
        metavar="D",
        per_scale=True,
        minimum=0,
        exclusive_maximum=1,
    )
    grad_clip: float = setting(
        0.0,
        "clip the gradients' global L2 norm to this value before each Adam step (0 = off, "
        "the report's way)",
        metavar="NORM",
        minimum=0,
    )
    # ---- execution: set per job, not per variant
    checkpoint_every: int = setting(
        500,
        "write a resumable checkpoint to the work directory every N steps (0 = never)",
        execution=True,
        resume="free",
        minimum=0,
    )
    snapshots: tuple[int, ...] = setting(
        (),
        "comma-separated steps at which to also save <stem>@<step>.pt beside the model",
        execution=True,
        resume="free",
    )
    log_every: int = setting(
        50, "history.csv row every N steps (+ the last)", execution=True, resume="free", minimum=1
    )
    device: str = setting("auto", "where to train", choices=DEVICES, execution=True, resume="warn")
    threads: int | None = setting(
        None,
        "CPU threads (default: OMP_NUM_THREADS, else all cores); keep it fixed for "
        "bit-identical CPU runs",
        execution=True,
        resume="warn",
        minimum=1,
    )
    precision: str = setting(
        "auto",
        "auto: bf16 autocast where the GPU/CPU computes bf16 natively (AVX512-BF16, AMX), "
        "else fp32; fp32: no autocast (bit-reproducible); bf16: bf16 autocast",
        choices=PRECISIONS,
        execution=True,
        resume="warn",
    )
    allow_cpu: bool = setting(
        False,
        "with --device cuda and no visible GPU, fall back to the CPU with a warning instead "
        "of failing",
        execution=True,
        resume="free",
    )
    # deprecated: the old name of ``precision`` (auto|off|bf16, off = fp32); not a field
    amp: InitVar[str | None] = None

    def __post_init__(self, amp: str | None):
        """Normalise (sorted snapshots, ``amp`` -> ``precision``), then check the bounds and
        choices and the rules that tie fields together."""
        object.__setattr__(self, "snapshots", tuple(sorted({int(s) for s in self.snapshots})))
        problems = []
        if amp is not None:
            warnings.warn(
                "TrainConfig(amp=...) is deprecated: give precision (auto|fp32|bf16; amp off "
                "is fp32)",
                DeprecationWarning,
                stacklevel=3,
            )
            new = AMP_PRECISIONS.get(amp, amp)
            if self.precision not in ("auto", new):
                problems.append(f"amp={amp!r} (deprecated) and precision={self.precision!r}")
            object.__setattr__(self, "precision", new)
        problems += _choice_problems(self) + _bound_problems(self)
        averaged = _within(self.weight_average, {"exclusiveMinimum": 0, "exclusiveMaximum": 1})
        if averaged and not self.precise_bn:
            problems.append(
                f"weight_average {self.weight_average:g} needs precise_bn > 0 (BatchNorm "
                "statistics must be re-estimated for averaged weights: the running averages "
                "belong to the raw weights)"
            )
        bad = [s for s in self.snapshots if not 1 <= s <= self.iterations]
        if bad:
            problems.append(f"snapshots {bad} (must lie in 1..iterations={self.iterations})")
        if problems:
            raise UserError("invalid training settings: " + "; ".join(problems))

    def lr_at(self, step: int) -> float:
        """Learning rate of the step with 0-based index ``step``."""
        if not self.lr_decay_every:
            return float(self.lr)
        return float(self.lr * self.lr_decay_factor ** (step // self.lr_decay_every))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["snapshots"] = list(self.snapshots)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """The settings of a record (train.json, a model); an old record's ``amp`` is read."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        if "precision" not in d and d.get("amp") in AMP_PRECISIONS:
            values["precision"] = AMP_PRECISIONS[d["amp"]]
        return cls(**values)


SETTINGS = (ArchConfig, TrainConfig)


def _apply_aliases(obj) -> None:
    """Replace an old value of a field (its ``aliases``) by its current name, in place."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, str) and value in f.metadata["aliases"]:
            object.__setattr__(obj, f.name, f.metadata["aliases"][value])


def _choice_problems(obj) -> list[str]:
    """``name=value (choose ...)`` for every field whose value is not one of its choices."""
    out = []
    for f in fields(obj):
        choices = f.metadata.get("choices")
        value = getattr(obj, f.name)
        if choices is not None and value not in choices:
            out.append(f"{f.name}={value!r} (choose {', '.join(choices)})")
    return out


# the bounds' JSON Schema keywords: how a message says them, how a value is compared
_BOUNDS = {
    "minimum": (">=", operator.ge),
    "exclusiveMinimum": (">", operator.gt),
    "exclusiveMaximum": ("<", operator.lt),
}


def _within(value, bounds: dict) -> bool:
    """``value`` is a finite number inside ``bounds`` (JSON Schema keywords)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(x) and all(_BOUNDS[k][1](x, b) for k, b in bounds.items())


def _bound_problems(obj) -> list[str]:
    """``name=value (must be ...)`` for every field outside its bounds (None is unset)."""
    out = []
    for f in fields(obj):
        bounds, min_items = f.metadata["bounds"], f.metadata["min_items"]
        value = getattr(obj, f.name)
        if value is None or not (bounds or min_items):
            continue
        rule = " and ".join(f"{_BOUNDS[k][0]} {b:g}" for k, b in bounds.items())
        if isinstance(value, tuple):
            if len(value) < min_items or not all(_within(v, bounds) for v in value):
                out.append(f"{f.name}={value} ({min_items} or more numbers, each {rule})")
        elif not _within(value, bounds):
            number = "a finite number " if isinstance(f.default, float) else ""
            out.append(f"{f.name}={value} (must be {number}{rule})")
    return out


# --------------------------------------------------------------------------- field queries
def setting_fields(cls, *, execution: bool | None = None) -> list[Field]:
    """The fields of ``cls``; ``execution`` True/False keeps only job / variant settings."""
    return [
        f for f in fields(cls) if execution is None or bool(f.metadata["execution"]) == execution
    ]


def variant_keys(cls) -> tuple[str, ...]:
    """The keys a config.yaml variant may set under ``arch:`` / ``train:``."""
    return tuple(f.name for f in setting_fields(cls, execution=False))


def variant_defaults(cls) -> dict:
    """A variant's value of every key it does not set (lists for tuples, as in YAML)."""
    return {
        f.name: list(f.default) if isinstance(f.default, tuple) else f.default
        for f in setting_fields(cls, execution=False)
    }


def variant_dict(obj) -> dict:
    """The variant settings of an ``ArchConfig`` / ``TrainConfig`` as config.yaml writes them
    (field order, lists for tuples): the ``arch`` / ``train`` of experiments.json."""
    out = {}
    for f in setting_fields(type(obj), execution=False):
        value = getattr(obj, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def resume_keys(cls, mode: str) -> tuple[str, ...]:
    """Names of the fields of ``cls`` whose ``resume`` metadata is ``mode``."""
    return tuple(f.name for f in fields(cls) if f.metadata["resume"] == mode)


def marked(cls, key: str) -> tuple[str, ...]:
    """Names of the fields of ``cls`` whose boolean metadata ``key`` is set."""
    return tuple(f.name for f in fields(cls) if f.metadata.get(key))


def value_type(cls, name: str) -> str:
    """``int``, ``float``, ``str``, ``bool`` or ``ints`` (a tuple of ints) for a field."""
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return "ints"
    base = args[0] if args and typing.get_origin(hint) is not None else hint
    if base in (bool, int, float, str):
        return base.__name__
    raise TypeError(f"{cls.__name__}.{name}: unsupported setting type {hint}")


def coerce(cls, name: str, value):
    """``value`` as the field's type (YAML gives 1 for 1.0); lists stay lists."""
    kind = value_type(cls, name)
    if value is None or isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, (int, float)):
        return float(value)
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --------------------------------------------------------------------------- config schema
_JSON_TYPES = {"int": "integer", "float": "number", "str": "string", "bool": "boolean"}


def setting_schema(cls, name: str) -> dict:
    """The JSON Schema of field ``name`` of ``cls``: its type (or choices), bounds and help."""
    f = cls.__dataclass_fields__[name]
    meta, kind = f.metadata, value_type(cls, name)
    if meta["choices"] is not None:
        out: dict = {"enum": list(meta["choices"])}
    elif kind == "ints":
        out = {"type": "array", "items": {"type": "integer", **meta["bounds"]}}
        if meta["min_items"]:
            out["minItems"] = meta["min_items"]
    else:
        out = {"type": _JSON_TYPES[kind], **meta["bounds"]}
        if f.default is None:
            out["type"] = [out["type"], "null"]
    return {**out, "description": meta["help"]}


def variant_schema(cls) -> dict:
    """The ``properties`` of a variant's ``arch:`` / ``train:`` mapping in the config schema."""
    return {f.name: setting_schema(cls, f.name) for f in setting_fields(cls, execution=False)}


# --------------------------------------------------------------------------- command line
def flag_of(name: str) -> str:
    """The CLI option of a field: ``lr_decay_every`` -> ``--lr-decay-every``."""
    return "--" + name.replace("_", "-")


def int_list(text) -> tuple[int, ...]:
    """``"64,128,128"`` -> ``(64, 128, 128)`` (argparse type of tuple settings)."""
    if isinstance(text, (tuple, list)):
        return tuple(int(x) for x in text)
    text = str(text).strip()
    try:
        return tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _format(value) -> str:
    """A setting's value on a command line: ``0.01``, ``0``, ``64,128,128``."""
    if isinstance(value, (tuple, list)):
        return ",".join(str(int(x)) for x in value)
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


def add_setting_arguments(
    group, cls, *, execution: bool | None = None, show_defaults: bool = True
) -> None:
    """One option per field of ``cls`` (see :func:`setting_fields` for ``execution``).

    ``show_defaults=False``: every option defaults to None (so a caller can tell which were
    given) and the help text names the field's default instead.
    """
    for f in setting_fields(cls, execution=execution):
        meta, kind = f.metadata, value_type(cls, f.name)
        kw: dict = {"help": meta["help"]}
        if kind == "bool":
            group.add_argument(flag_of(f.name), action="store_true", **kw)
            continue
        default = _format(f.default) if kind == "ints" else f.default
        if not show_defaults:
            kw["help"] += f" (default {_format(f.default) if f.default is not None else 'none'})"
            default = None
        if meta["choices"] is not None:
            kw["choices"] = list(meta["choices"]) + list(meta["aliases"])
        if meta["metavar"]:
            kw["metavar"] = meta["metavar"]
        convert = {"int": int, "float": float, "str": str, "ints": int_list}[kind]
        group.add_argument(flag_of(f.name), type=convert, default=default, **kw)


def from_namespace(cls, args: argparse.Namespace, *, given_only: bool = False):
    """``cls`` built from the parsed options of :func:`add_setting_arguments`.

    ``given_only``: options left at None take the field's default.
    """
    values = {}
    for f in fields(cls):
        if not hasattr(args, f.name):
            continue
        value = getattr(args, f.name)
        if value is None and given_only:
            continue
        if value_type(cls, f.name) == "ints" and value is not None:
            value = int_list(value)
        values[f.name] = value
    return cls(**values)


def setting_flags(cls, values: dict) -> str:
    """The CLI flags that pass ``values`` (the keys of ``cls`` among them, in field order)."""
    parts = []
    for f in fields(cls):
        if f.name not in values or values[f.name] is None:
            continue
        value = values[f.name]
        if value_type(cls, f.name) == "bool":
            parts += [flag_of(f.name)] if value else []
        else:
            parts.append(f"{flag_of(f.name)} {_format(value)}")
    return " ".join(parts)


__all__ = [
    "AMP_PRECISIONS",
    "DEVICES",
    "KINDS",
    "LEGACY_KINDS",
    "PRECISIONS",
    "SAMPLING",
    "TARGETS",
    "ArchConfig",
    "TrainConfig",
    "add_setting_arguments",
    "from_namespace",
    "setting",
    "setting_flags",
    "setting_schema",
    "variant_defaults",
    "variant_dict",
    "variant_keys",
    "variant_schema",
]

"""Workflow config validation: one JSON schema, defaults filled in, errors that name the key.

The schema lives in ``workflow/schemas/config.schema.yaml``; the Snakefile calls
:func:`validate_config` right after loading the config, so a typo stops the run
before any job starts, with a message like::

    config error at dataset.source: 'mir1kk' is not one of ['mir1k', 'local', 'synthetic']

The parts of the schema that another module owns are not written in the file but filled in by
:func:`load_schema`: a variant's ``arch:`` / ``train:`` keys (types, bounds, choices: the fields
of ``ArchConfig`` / ``TrainConfig``, the network kinds among them), the per-scale settings of
``scale:``, the precisions and the scoring backends.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import jsonschema
import yaml

from hourglass_sep.nets.settings import (
    LEGACY_KINDS,
    PRECISIONS,
    ArchConfig,
    TrainConfig,
    marked,
    setting_schema,
    variant_schema,
)
from hourglass_sep.plan.experiments import ConfigError, resolve, variant_kinds

# old key -> new key inside every ``variants.<name>.evaluate[i]`` entry
LEGACY_EVALUATE_KEYS = {"seed_row": "report_row"}


class ConfigDeprecationWarning(FutureWarning):
    """An old config key or value that is still read (shown by default, unlike
    DeprecationWarning, so that a workflow user sees it)."""


def upgrade_legacy(config: dict) -> list[str]:
    """Rename old keys and values of ``config`` in place; one message per change.

    ``evaluate[i].seed_row`` became ``report_row`` and ``arch.kind: seed`` became
    ``hourglass`` (both named after "the seed", the course report's code); both are still read.
    Giving the old and the new key together is an error.
    """
    notes = []
    for name, spec in (config.get("variants") or {}).items():
        if not isinstance(spec, dict):
            continue
        for k, ev in enumerate(spec.get("evaluate") or []):
            if not isinstance(ev, dict):
                continue
            where = f"variants.{name}.evaluate[{k}]"
            for old, new in LEGACY_EVALUATE_KEYS.items():
                if old not in ev:
                    continue
                if new in ev:
                    raise ConfigError(
                        f"config error at {where}: both {old} (the old name) and {new} are given; "
                        f"keep {new} only"
                    )
                ev[new] = ev.pop(old)
                notes.append(f"{where}.{old} is deprecated: rename it to {new}")
        arch = spec.get("arch")
        if isinstance(arch, dict) and arch.get("kind") in LEGACY_KINDS:
            old, arch["kind"] = arch["kind"], LEGACY_KINDS[arch["kind"]]
            notes.append(
                f"variants.{name}.arch.kind: {old!r} is deprecated: write {arch['kind']!r}"
            )
    return notes


def load_schema(schema_path: str | Path) -> dict:
    """The config schema: the YAML file, with what other modules own filled in from there.

    A variant's ``kind`` is one of the network kinds' or training-free methods' records; its
    ``arch:`` / ``train:`` properties are the fields of ``ArchConfig`` /
    ``TrainConfig`` (type, bounds, choices, help: ``settings.variant_schema``; the kinds are the
    records of ``nets/kinds/``); ``scale:``'s per-scale settings take their type and bounds
    from their field (the file gives their description and default, which
    tests/test_settings.py compares with the field's); ``device.precision`` is
    ``settings.PRECISIONS``; every ``backend`` enum is the scoring registry's.  So a bound or a
    choice changed in one place cannot leave the schema behind.
    """
    from hourglass_sep.scoring.backends import BACKENDS  # the scorers' records

    schema = yaml.safe_load(Path(schema_path).read_text())
    props = schema["properties"]
    variant = props["variants"]["additionalProperties"]["properties"]
    for section, cls in (("arch", ArchConfig), ("train", TrainConfig)):
        variant[section]["properties"] = variant_schema(cls)
    scale = props["scale"]["properties"]
    for name in marked(TrainConfig, "per_scale"):  # the file: description and default
        scale[name] = {**setting_schema(TrainConfig, name), **scale.get(name, {})}
    props["device"]["properties"]["precision"]["enum"] = list(PRECISIONS)
    for section in (props["evaluation"], variant["evaluation"]):
        section["properties"]["backend"]["enum"] = list(BACKENDS)
    variant["kind"]["enum"] = variant_kinds()
    return schema


def _with_defaults(validator_class):
    """A validator that also fills each property's ``default`` (objects recursively)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = _copy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _copy(x):
    return copy.deepcopy(x)


def _path(error) -> str:
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path]
    return ".".join(parts).replace(".[", "[") or "(top level)"


def check_claims(config: dict) -> None:
    """The ``claims:`` section, checked by the claims schema and validator: an unknown run,
    step or metric stops the workflow before any job starts, naming the claim."""
    if not config.get("claims"):
        return
    from hourglass_sep.claims.runs import known_runs_from_config
    from hourglass_sep.claims.spec import validate_claims
    from hourglass_sep.errors import UserError

    try:
        validate_claims(config["claims"], known_runs_from_config(config))
    except UserError as exc:
        raise ConfigError(f"config error at {exc}") from None


def validate_config(config: dict, schema_path: str | Path) -> dict:
    """Validate ``config`` in place (filling defaults) and check the variant table.

    Raises :class:`ConfigError` naming the first bad key.  Old key names (see
    :func:`upgrade_legacy`) are renamed in place with a :class:`ConfigDeprecationWarning`.
    """
    for note in upgrade_legacy(config):
        warnings.warn(f"config: {note}", ConfigDeprecationWarning, stacklevel=2)
    schema = load_schema(schema_path)
    Validator = _with_defaults(jsonschema.Draft7Validator)
    # fill defaults first (a pass over the whole document), then report errors by position
    errors = sorted(
        Validator(schema).iter_errors(config), key=lambda e: list(map(str, e.absolute_path))
    )
    if errors:
        e = errors[0]
        msg = e.message
        if e.validator == "additionalProperties":
            msg += (
                " (check the spelling; the known keys are listed in "
                "workflow/schemas/config.schema.yaml)"
            )
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(f"config error at {_path(e)}: {msg}{more}")
    if config["dataset"]["source"] == "local" and not config["dataset"].get("local"):
        raise ConfigError(
            "config error at dataset.local: source is 'local' but no folder or zip is given"
        )
    resolve(config)  # variant-level checks (steps within iterations, names, ...)
    check_claims(config)
    ex = config.get("example_variant")
    if ex and ex not in config["variants"]:
        raise ConfigError(
            f"config error at example_variant: {ex!r} is not a variant "
            f"(known: {sorted(config['variants'])})"
        )
    return config

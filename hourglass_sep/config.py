"""Workflow config validation: one JSON schema, defaults filled in, errors that name the key.

The schema lives in ``workflow/schemas/config.schema.yaml``; the Snakefile calls
:func:`validate_config` right after loading the config, so a typo stops the run
before any job starts, with a message like::

    config error at dataset.source: 'mir1kk' is not one of ['mir1k', 'local', 'synthetic']
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

from .experiments import ConfigError, resolve


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
    import copy

    return copy.deepcopy(x)


def _path(error) -> str:
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path]
    return ".".join(parts).replace(".[", "[") or "(top level)"


def validate_config(config: dict, schema_path: str | Path) -> dict:
    """Validate ``config`` in place (filling defaults) and check the variant table.

    Raises :class:`ConfigError` naming the first bad key.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    Validator = _with_defaults(jsonschema.Draft7Validator)
    # fill defaults first (a pass over the whole document), then report errors by position
    errors = sorted(
        Validator(schema).iter_errors(config), key=lambda e: list(map(str, e.absolute_path))
    )
    if errors:
        e = errors[0]
        msg = e.message
        if e.validator == "additionalProperties":
            msg += " (check the spelling; the known keys are listed in workflow/schemas/config.schema.yaml)"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(f"config error at {_path(e)}: {msg}{more}")
    if config["dataset"]["source"] == "local" and not config["dataset"].get("local"):
        raise ConfigError(
            "config error at dataset.local: source is 'local' but no folder or zip is given"
        )
    resolve(config)  # variant-level checks (steps within iterations, names, ...)
    ex = config.get("example_variant")
    if ex and ex not in config["variants"]:
        raise ConfigError(
            f"config error at example_variant: {ex!r} is not a variant (known: {sorted(config['variants'])})"
        )
    return config

"""One definition of every setting: the dataclass fields of hourglass_sep.nets.settings.

The schema, the CLI, the workflow flags and the variant defaults must all agree with the
fields; these tests fail when a setting (its name, type, bounds or choices) is changed in one
place and not the others.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from dataclasses import fields

import jsonschema
import pytest
import yaml
from conftest import REPO

from hourglass_sep.errors import UserError
from hourglass_sep.nets import settings
from hourglass_sep.nets.kind_record import network_kinds
from hourglass_sep.nets.settings import ArchConfig, TrainConfig
from hourglass_sep.pipeline.config import (
    ConfigDeprecationWarning,
    load_schema,
    validate_config,
)
from hourglass_sep.plan import experiments
from hourglass_sep.plan.experiments import ConfigError, resolve_variant

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SECTIONS = [("arch", ArchConfig), ("train", TrainConfig)]


def _variant_schema(schema: dict | None = None) -> dict:
    schema = schema or load_schema(SCHEMA)
    return schema["properties"]["variants"]["additionalProperties"]["properties"]


@pytest.mark.parametrize("section, cls", SECTIONS)
def test_schema_names_exactly_the_variant_settings(section, cls):
    """variants.*.arch / .train in the schema = the fields not marked ``execution``, each with
    the type, bounds and choices of its field; the YAML file does not write them a second time."""
    props = _variant_schema()[section]["properties"]
    assert list(props) == list(settings.variant_keys(cls))
    for name in props:
        assert props[name] == settings.setting_schema(cls, name), name
    raw = _variant_schema(yaml.safe_load(SCHEMA.read_text()))
    assert raw[section]["properties"] == {}, "written in settings.py, filled in by load_schema"
    execution = {f.name for f in fields(cls) if f.metadata["execution"]}
    assert execution.isdisjoint(props)
    if cls is TrainConfig:  # where/how a job runs is not a property of a variant
        assert {"device", "threads", "precision", "allow_cpu"} <= execution


def _probes(cls, f) -> list:
    """Well-typed values at, inside and beyond a field's bounds, or each choice and a wrong one."""
    meta, kind = f.metadata, settings.value_type(cls, f.name)
    if meta["choices"] is not None:
        return [*meta["choices"], "no-such-value"]
    out = [f.default]
    for b in meta["bounds"].values():
        step = 1 if kind in ("int", "ints") else 0.5
        out += [b - step, b, b + step]
    if kind == "ints":
        return [[], *([int(v)] for v in out[1:]), [4, 4]]
    return [int(v) if kind == "int" else float(v) for v in out]


@pytest.mark.parametrize("section, cls", SECTIONS)
def test_schema_and_dataclass_accept_the_same_values(section, cls):
    """Field by field: a value the config schema accepts is a value the dataclass accepts, and
    the other way round (a bound or a choice changed in settings.py reaches both)."""
    props = _variant_schema()[section]["properties"]
    # the other fields at values that let each probe be judged alone (Park's growth 0, BN)
    base = {"growth": 0} if cls is ArchConfig else {"precise_bn": 1}
    for f in settings.setting_fields(cls, execution=False):
        for value in _probes(cls, f):
            in_schema = jsonschema.Draft7Validator(props[f.name]).is_valid(value)
            # a kind's pinned fields (the peers' stacks 1, stem) at its values
            kinds = network_kinds()
            pins = kinds[value].requires if f.name == "kind" and value in kinds else {}
            try:
                cls(**{**base, **pins, f.name: value})
                in_class = True
            except (ValueError, UserError):
                in_class = False
            assert in_schema == in_class, (f.name, value, in_schema, in_class)


def test_schema_kinds_are_the_registered_network_kinds():
    """arch.kind's enum (and --kind's choices) are the records of nets/kinds/, the old name
    'seed' aside (renamed with a warning before the schema sees it)."""
    kind = _variant_schema()["arch"]["properties"]["kind"]
    assert kind["enum"] == list(network_kinds()) == list(settings.KINDS)
    assert "seed" not in kind["enum"] and settings.LEGACY_KINDS == {"seed": "hourglass"}
    action = next(a for a in _train_parser()._actions if a.dest == "kind")
    assert set(action.choices) == {*network_kinds(), "seed"}


def test_schema_scale_section_holds_every_per_scale_setting():
    """scale.precise_bn / weight_average: the field's type and bounds, the file's default equal
    to the field's (the file keeps it: experiments.json records the scale as written)."""
    scale = load_schema(SCHEMA)["properties"]["scale"]["properties"]
    for name in settings.marked(TrainConfig, "per_scale"):
        own = settings.setting_schema(TrainConfig, name)
        assert {k: scale[name][k] for k in own if k != "description"} == {
            k: v for k, v in own.items() if k != "description"
        }, name
        assert scale[name]["default"] == getattr(TrainConfig(), name), name


def test_one_precision_vocabulary():
    """device.precision, train --precision and TrainConfig.precision take the same values."""
    device = load_schema(SCHEMA)["properties"]["device"]["properties"]["precision"]
    assert device["enum"] == list(settings.PRECISIONS)
    action = next(a for a in _train_parser()._actions if a.dest == "precision")
    assert tuple(action.choices) == settings.PRECISIONS
    with pytest.warns(DeprecationWarning, match="give precision"):
        assert TrainConfig(amp="off").precision == "fp32"
    assert TrainConfig.from_dict({"amp": "off"}).precision == "fp32"  # an old record
    with pytest.raises(UserError, match="deprecated"), pytest.warns(DeprecationWarning):
        TrainConfig(amp="off", precision="bf16")


def test_train_amp_is_a_deprecated_alias_of_precision(tmp_path, caplog):
    from hourglass_sep.training import train

    missing = str(tmp_path / "missing.npz")
    args = _train_parser().parse_args(["--cache", missing, "-o", "m.pt", "--amp", "off"])
    with caplog.at_level(logging.WARNING), pytest.raises(UserError, match="missing.npz"):
        train.run(args)  # the option is read (with a warning), then the cache is missing
    assert args.precision == "fp32" and "--amp is deprecated" in caplog.text
    argv = ["--cache", missing, "-o", "m.pt", "--amp", "off", "--precision", "bf16"]
    with pytest.raises(UserError, match="give --precision"):
        train.run(_train_parser().parse_args(argv))


def test_checkpoints_that_record_amp_resume_without_a_warning():
    """A checkpoint written before --precision records its autocast as ``amp``: off = fp32."""
    from hourglass_sep.training.train import _compare_configs

    arch, train = ArchConfig().to_dict(), TrainConfig().to_dict()
    old = {"arch": arch, "train": train, "cache": "c", "execution": {"device": "cpu"}}
    new = {**old, "execution": {"device": "cpu", "precision": "fp32", "threads": 1}}
    old["execution"] = {"device": "cpu", "amp": "off", "threads": 1}
    assert _compare_configs(old, new) == ([], [])
    old["execution"]["amp"] = "bf16"
    assert _compare_configs(old, new) == ([], ["precision: checkpoint 'bf16', now 'fp32'"])


def test_every_setting_has_help_and_a_known_role():
    for cls in settings.SETTINGS:
        for f in fields(cls):
            assert f.metadata["help"].strip(), f.name
            assert f.metadata["resume"] in settings.RESUME, f.name
            settings.value_type(cls, f.name)  # a type the CLI can parse


def _train_parser() -> argparse.ArgumentParser:
    from hourglass_sep.training import train

    p = argparse.ArgumentParser()
    train.add_arguments(p)
    return p


def test_cli_without_flags_trains_like_a_variant_without_keys():
    """The bug this module fixes: `hourglass-sep train` with no flags used to train with
    lr 1e-4 and a decay while a variant without train: keys used lr 0.01, constant."""
    args = _train_parser().parse_args(["--cache", "c.npz", "-o", "m.pt"])
    v = resolve_variant("plain", {}, {})
    assert settings.from_namespace(TrainConfig, args) == v.train
    assert settings.from_namespace(ArchConfig, args) == v.arch
    assert v.train.lr == 0.01 and v.train.lr_decay_every == 0


def test_workflow_flags_reach_the_dataclasses_unchanged():
    """config.yaml -> resolve -> arch_flags/train_flags -> the train CLI -> the same values,
    for every variant of the shipped config (Park's decaying schedule included)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    parser = _train_parser()
    for name, v in experiments.resolve(config).items():
        if v.free:  # training-free: no train job
            continue
        flags = (
            experiments.arch_flags(v.arch)
            + " "
            + experiments.train_flags(v.train, v.snapshot_steps)
        )
        args = parser.parse_args(["--cache", "c", "-o", "m", *flags.split()])
        arch = settings.from_namespace(ArchConfig, args)
        cfg = settings.from_namespace(TrainConfig, args)
        assert arch == v.arch, name
        assert settings.variant_dict(cfg) == settings.variant_dict(v.train), name
        assert list(cfg.snapshots) == v.snapshot_steps, name
    park = experiments.resolve(config)["park-original"].train
    assert (park.lr, park.lr_decay_every, park.lr_decay_factor) == (1e-4, 12000, 0.2)


def test_resume_keys_come_from_the_fields():
    from hourglass_sep.training import train

    assert set(train.TRAJECTORY_KEYS) == {
        "lr",
        "lr_decay_every",
        "lr_decay_factor",
        "batch",
        "frames",
        "sampling",
        "seed",
        "precise_bn",
        "weight_average",
        "grad_clip",
    }
    assert set(train.EXECUTION_KEYS) == {"device", "precision", "threads"}


def test_weight_average_rule_is_checked_by_the_dataclass_only():
    """One rule, one place: the config error (naming the variant) and the CLI error both
    come from TrainConfig."""
    from hourglass_sep.errors import UserError

    with pytest.raises(UserError, match="weight_average 0.9 needs precise_bn > 0"):
        TrainConfig(weight_average=0.9)
    with pytest.raises(ConfigError, match=r"variants\.x\.train: .*needs precise_bn > 0"):
        resolve_variant("x", {"train": {"weight_average": 0.9}}, {})


def test_float_flags_keep_their_value():
    assert settings.setting_flags(TrainConfig, {"lr": 0.0001, "weight_average": 0.0}) == (
        "--lr 0.0001 --weight-average 0"
    )
    assert settings.setting_flags(TrainConfig, {"lr": 0.00123456789}) == "--lr 0.00123456789"


def _config(evaluate: dict, arch: dict | None = None) -> dict:
    spec = {"train": {"iterations": 100}, "evaluate": [{"step": 100, **evaluate}]}
    if arch:
        spec["arch"] = arch
    return {"variants": {"v": spec}}


def test_old_seed_row_key_is_read_with_a_deprecation_warning():
    config = _config({"seed_row": 15})
    with pytest.warns(ConfigDeprecationWarning, match=r"evaluate\[0\]\.seed_row .*report_row"):
        validate_config(config, SCHEMA)
    assert config["variants"]["v"]["evaluate"][0] == {"step": 100, "report_row": 15}
    assert experiments.resolve(config)["v"].evaluations[0].report_row == 15


def test_old_kind_is_read_with_a_deprecation_warning():
    config = _config({}, arch={"kind": "seed", "channels": 8, "growth": 8})
    with pytest.warns(ConfigDeprecationWarning, match="'seed' is deprecated"):
        validate_config(config, SCHEMA)
    assert experiments.resolve(config)["v"].arch.kind == "hourglass"


def test_old_and_new_key_together_is_an_error():
    with pytest.raises(ConfigError, match="both seed_row .* and report_row"):
        validate_config(_config({"seed_row": 15, "report_row": 15}), SCHEMA)


def test_current_keys_give_no_warning():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigDeprecationWarning)
        validate_config(config, SCHEMA)


def test_grad_clip_reaches_the_cli():
    """grad_clip: a setting added by its field, its schema key, its use in train.py and tests."""
    from hourglass_sep.errors import UserError
    from hourglass_sep.training import train as tr

    assert "--grad-clip 0" in settings.setting_flags(TrainConfig, {"grad_clip": 0.0})
    with pytest.raises(UserError, match="grad_clip=-1"):
        TrainConfig(grad_clip=-1.0)
    parser = argparse.ArgumentParser()
    tr.add_arguments(parser)
    assert parser.parse_args(["--cache", "c", "-o", "o", "--grad-clip", "0.5"]).grad_clip == 0.5

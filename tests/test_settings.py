"""One definition of every setting: the dataclass fields of hourglass_sep.nets.settings.

The schema, the CLI, the workflow flags and the variant defaults must all agree with the
fields; these tests fail when a setting is added to one place and not the others.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import fields

import pytest
import yaml
from conftest import REPO

from hourglass_sep.nets import settings
from hourglass_sep.nets.settings import ArchConfig, TrainConfig
from hourglass_sep.pipeline.config import ConfigDeprecationWarning, validate_config
from hourglass_sep.plan import experiments
from hourglass_sep.plan.experiments import ConfigError, resolve_variant

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def _variant_schema() -> dict:
    schema = yaml.safe_load(SCHEMA.read_text())
    return schema["properties"]["variants"]["additionalProperties"]["properties"]


@pytest.mark.parametrize("section, cls", [("arch", ArchConfig), ("train", TrainConfig)])
def test_schema_names_exactly_the_variant_settings(section, cls):
    """variants.*.arch / .train in the schema = the fields not marked ``execution``."""
    in_schema = set(_variant_schema()[section]["properties"])
    assert in_schema == set(settings.variant_keys(cls))
    execution = {f.name for f in fields(cls) if f.metadata["execution"]}
    assert execution.isdisjoint(in_schema)
    if cls is TrainConfig:  # where/how a job runs is not a property of a variant
        assert {"device", "threads", "amp", "allow_cpu"} <= execution


def test_schema_scale_section_holds_every_per_scale_setting():
    scale = yaml.safe_load(SCHEMA.read_text())["properties"]["scale"]["properties"]
    for name in settings.marked(TrainConfig, "per_scale"):
        assert name in scale and scale[name]["default"] == getattr(TrainConfig(), name), name


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
    cli_train = settings.from_namespace(TrainConfig, args).to_dict()
    cli_arch = settings.from_namespace(ArchConfig, args).to_dict()
    v = resolve_variant("plain", {}, {})
    assert {k: cli_train[k] for k in v.train} == v.train
    assert cli_arch == v.arch
    assert v.train["lr"] == 0.01 and v.train["lr_decay_every"] == 0


def test_workflow_flags_reach_the_dataclasses_unchanged():
    """config.yaml -> resolve -> arch_flags/train_flags -> the train CLI -> the same values,
    for every variant of the shipped config (Park's decaying schedule included)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    parser = _train_parser()
    for name, v in experiments.resolve(config).items():
        flags = (
            experiments.arch_flags(v.arch)
            + " "
            + experiments.train_flags(v.train, v.snapshot_steps)
        )
        args = parser.parse_args(["--cache", "c", "-o", "m", *flags.split()])
        arch = settings.from_namespace(ArchConfig, args)
        cfg = settings.from_namespace(TrainConfig, args)
        assert arch.to_dict() == v.arch, name
        assert {k: cfg.to_dict()[k] for k in v.train} == v.train, name
        assert list(cfg.snapshots) == v.snapshot_steps, name
    park = experiments.resolve(config)["park-original"].train
    assert (park["lr"], park["lr_decay_every"], park["lr_decay_factor"]) == (1e-4, 12000, 0.2)


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
    assert set(train.EXECUTION_KEYS) == {"device", "amp", "threads"}


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
    assert experiments.resolve(config)["v"].arch["kind"] == "hourglass"


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

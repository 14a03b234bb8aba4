"""The registry of scoring backends: every module of scoring/scorers/ is found, each record is
complete, the CLI and the config schema offer exactly the registered names."""

from __future__ import annotations

import pkgutil

import pytest
import yaml
from conftest import REPO

from hourglass_sep.errors import UserError
from hourglass_sep.scoring import scorers
from hourglass_sep.scoring.backends import BACKENDS, DEFAULT_BACKEND, REGISTRY, get_backend


def test_every_scorer_module_is_registered_once():
    modules = {m.name for m in pkgutil.iter_modules(scorers.__path__)}
    assert len(modules) == len(REGISTRY) == len(BACKENDS)
    assert DEFAULT_BACKEND in REGISTRY
    for name, rec in REGISTRY.items():
        assert rec.name == name and rec.summary and rec.package and callable(rec.load)


def test_unknown_backend_names_the_choices():
    with pytest.raises(UserError, match="unknown scoring backend 'bss_eval_matlab'.*si_sdr"):
        get_backend("bss_eval_matlab")


def test_score_verb_offers_the_registered_backends():
    import argparse

    from hourglass_sep.scoring.score import add_score_arguments

    p = argparse.ArgumentParser()
    add_score_arguments(p)
    action = next(a for a in p._actions if a.dest == "backend")
    assert tuple(action.choices) == BACKENDS


def test_config_schema_offers_the_registered_backends():
    """The schema's backend enums (workflow and evaluation variants) equal the registry's."""
    from hourglass_sep.pipeline.config import load_schema

    schema = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "backend" in node.get("properties", {}):
                found.append(node["properties"]["backend"]["enum"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    assert found and all(sorted(e) == sorted(BACKENDS) for e in found), found
    raw = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert raw  # the file itself parses

"""The sequential design's inputs that a user or a broken run can get wrong: a look plan that
is missing, unreadable or not a plan, and a look outside the design; each is a UserError
naming the file or the flag (docs/statistics.md, "Sequential replicates")."""

from __future__ import annotations

import argparse

import pytest

from hourglass_sep.claims import look_cli
from hourglass_sep.claims.looks import load_plan
from hourglass_sep.errors import UserError


def test_a_look_plan_that_is_missing_broken_or_not_a_plan_names_the_file(tmp_path):
    missing = tmp_path / "look0.json"
    with pytest.raises(UserError, match=r"look0\.json: sequential look plan not found"):
        load_plan(missing)
    broken = tmp_path / "look1.json"
    broken.write_text("{not json")
    with pytest.raises(UserError, match=r"look1\.json: cannot read the sequential look plan"):
        load_plan(broken)
    other = tmp_path / "look2.json"
    other.write_text('{"verdicts": []}')
    with pytest.raises(UserError, match=r"look2\.json: not a sequential look plan"):
        load_plan(other)
    good = tmp_path / "look3.json"
    good.write_text('{"status": {}, "add": {}}')
    assert load_plan(good) == {"status": {}, "add": {}}


def _args(look: int, looks: int = 3) -> argparse.Namespace:
    """The design's flags of `hourglass-sep claims-look`, at their defaults."""
    return argparse.Namespace(
        look=look, looks=looks, max_replicates=6, start=2, alpha=0.05,
        boundary="obrien-fleming", futility_power=0.5, futility=True,
    )  # fmt: skip


@pytest.mark.parametrize("look", [-1, 3, 7])
def test_a_look_outside_the_design_is_refused(look):
    with pytest.raises(UserError, match=rf"--look {look}: give 0 \.\. 2"):
        look_cli._design(_args(look))


def test_the_looks_inside_the_design_are_accepted():
    for look in range(3):
        assert look_cli._design(_args(look)).looks == 3

"""The ``identical`` claim kind (one module in claims/kinds/): identity checks of two
evaluations are checks -- ``identical`` / ``differs`` with the largest per-clip difference --
not statistical verdicts, and the report counts them apart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_claims import claim, evaluate, run_scores

from hourglass_sep.claims.tables import CHECK_VERDICTS, effects_table, verdict_counts
from hourglass_sep.results import report


@pytest.fixture(scope="module")
def base():
    return np.random.default_rng(7).normal(9, 3, 120)


def _check(a, b, parts=True, **kw):
    c = claim("same", compare={"a": "s1", "b": "s2"}, expect="identical", **kw)
    df = pd.concat([run_scores("s1", 40, a), run_scores("s2", 40, b)])
    return evaluate([c], df, parts=parts)


def test_the_same_numbers_are_identical_and_a_shift_differs(base):
    t = _check(base, base.copy())
    assert list(t["verdict"]) == ["identical", "identical"]
    assert (t["effect"] == 0).all() and t["variance"].eq("none (a check)").all()
    assert t["detail"].str.contains(r"max \|Δ\| = 0 dB over 120 clips").all()
    shifted = base.copy()
    shifted[17] += 1e-3  # one clip off by 0.001 dB: a software difference, found
    t = _check(base, shifted)
    assert list(t["verdict"]) == ["differs", "differs"]
    assert t["effect"].to_numpy() == pytest.approx([1e-3, 1e-3])


def test_margin_is_the_tolerance(base):
    t = _check(base, base + 1e-3, margin=0.01)
    assert list(t["verdict"]) == ["identical", "identical"] and (t["margin"] == 0.01).all()


def test_checks_are_counted_apart_and_kept_out_of_the_forest_plot(base):
    t = _check(base, base.copy(), parts=False)
    assert verdict_counts(t) == {"identical": 1}  # one claim (its two sources are parts)
    assert effects_table(t).empty  # no interval to draw
    assert report.CHECK_VERDICTS == CHECK_VERDICTS  # the report's copy of the vocabulary

"""The claim kinds registry: the schema's ``expect`` values come from it, each claim finds
exactly one kind, keys and compare forms are refused outside their kind, and the
``wins-most-clips`` kind (added as one module) on constructed scores with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from test_claims import KNOWN, claim, run_scores

from hourglass_sep.claims.kinds.registry import expect_values, find_kind, kinds
from hourglass_sep.claims.spec import SCHEMA, claims_schema, validate_claims
from hourglass_sep.claims.verdicts import evaluate_claims
from hourglass_sep.errors import UserError

N = 200


def refused(claims, match):
    with pytest.raises(UserError, match=match):
        validate_claims(claims, KNOWN)


def test_the_schema_expect_enum_is_the_registry():
    names = {k.name for k in kinds()}
    assert {"difference", "margin", "threshold", "silent", "speed-table", "scoring-speed"} < names
    assert len(names) == len(kinds())
    expect = claims_schema()["definitions"]["claim"]["properties"]["expect"]
    assert expect["enum"] == expect_values() == list(dict.fromkeys(expect_values()))
    assert set(expect_values()) == {e for k in kinds() for e in k.expects}
    # the file lists no enum of its own, so it cannot fall behind the kinds
    on_file = yaml.safe_load(SCHEMA.read_text())["definitions"]["claim"]["properties"]["expect"]
    assert "enum" not in on_file


@pytest.mark.parametrize("expect", expect_values())
def test_every_expect_has_exactly_one_kind(expect):
    for timing in (None, "speed-table", "scoring"):
        c = {"expect": expect} if timing is None else {"expect": expect, "timing": timing}
        applying = [k.name for k in kinds() if expect in k.expects and k.applies(c)]
        assert len(applying) <= 1, (expect, timing, applying)
    assert find_kind({"expect": expect}) is not None


def test_an_unknown_expect_or_a_misplaced_key_is_refused_naming_claim_and_key():
    ab = {"a": "s1", "b": "s2"}
    refused([claim("x", compare=ab, expect="bigger")], r"claims\[x\]\.expect: 'bigger' is not one")
    refused(
        [claim("m", compare=ab, expect="greater", margin=0.5)],
        r"claims\[m\]\.margin: used only with expect .*equivalent / not-greater / not-less",
    )
    refused(
        [claim("f", compare=ab, expect="wins-most-clips", factor=2)],
        r"claims\[f\]\.factor: used only with expect .*faster",
    )
    refused(
        [claim("o", compare={**ab, "clips": "own"}, expect="wins-most-clips")],
        r"claims\[o\]\.compare\.clips: 'own' compares two runs",
    )
    refused(
        [claim("t", compare={"a": "s1", "threshold": 0.5}, expect="wins-most-clips")],
        r"claims\[t\]\.compare: expect wins-most-clips needs \{a, b\}",
    )
    refused(
        [claim("c", compare={"chain": ["s1", "s2"]}, expect="equivalent", margin=1)],
        r"claims\[c\]\.compare: expect equivalent needs \{a, b\}",
    )


def _wins(a_values, b_values, **kw):
    df = pd.concat([*a_values, run_scores("s2", 40, b_values)])
    c = [claim(compare={"a": "s1", "b": "s2"}, expect="wins-most-clips", source="voice", **kw)]
    return evaluate_claims(c, df, known_runs=KNOWN, n_perm=200).iloc[0]


def test_wins_most_clips_on_constructed_scores():
    b = np.random.default_rng(7).normal(9, 3, N)
    better = np.where(np.arange(N) < 0.9 * N, 1.0, -1.0)  # A wins on exactly 180 of 200 clips
    out = _wins([run_scores("s1", 40, b + better)], b)
    assert out["verdict"] == "holds" and out["effect"] == pytest.approx(0.9)
    assert 0.5 < out["lo"] < 0.9 < out["hi"] < 1.0
    assert out["unit"] == "share of clips" and out["metric"] == "gnsdr"
    assert out["compare"] == "s1@40 > s2@40 on most clips" and out["n_clips"] == N
    assert out["detail"] == "s1@40 beats s2@40 on 180 of 200 clips" and out["p_value"] < 1e-6
    same = _wins([run_scores("s1", 40, b)], b)  # a tie is not a win: A never beats B
    assert same["verdict"] == "contradicted" and same["effect"] == 0 and same["hi"] < 0.5
    half = _wins([run_scores("s1", 40, b + np.where(np.arange(N) % 2, 1.0, -1.0))], b)
    assert half["verdict"] == "inconclusive" and half["lo"] < 0.5 < half["hi"]
    worse = _wins([run_scores("s1", 40, b - better)], b)
    assert worse["verdict"] == "contradicted" and worse["effect"] == pytest.approx(0.1)


def test_wins_most_clips_averages_the_replicates_per_clip():
    b = np.random.default_rng(8).normal(9, 3, N)
    # replicate 1 loses every clip by 0.5, replicate 0 wins it by 1.5: the mean wins
    reps = [run_scores("s1", 40, b + s, replicate=r) for r, s in enumerate((1.5, -0.5))]
    out = _wins(reps, b)
    assert out["verdict"] == "holds" and out["effect"] == 1.0 and out["n_replicates"] == 1
    df = run_scores("s1", 40, b)  # B not scored: no data, naming the run
    c = [claim(compare={"a": "s1", "b": "s2"}, expect="wins-most-clips", source="voice")]
    empty = evaluate_claims(c, df, known_runs=KNOWN).iloc[0]
    assert empty["verdict"] == "no data" and "s2@40" in empty["detail"]

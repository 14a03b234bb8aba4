"""Timing claims: interleaved repeats, the speed-up's interval over the rounds, the zone of
indifference, too few repeats, "needs GPU" (docs/statistics.md, "Timing claims").

Verdicts are tested on constructed speed tables with known answers; the measurement is tested
for its order (A B A B after a warm-up) with a fake clock, and once on a tiny model for the
table it writes.  No test asserts how long anything took."""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from hourglass_sep.claims.kinds.record import Inputs
from hourglass_sep.claims.kinds.registry import find_kind
from hourglass_sep.claims.kinds.speedup import log_interval, threshold
from hourglass_sep.claims.spec import validate_claims
from hourglass_sep.claims.tables import NEEDS_GPU
from hourglass_sep.claims.verdicts import evaluate_claims
from hourglass_sep.errors import UserError
from hourglass_sep.results import speed
from hourglass_sep.results.run_inputs import load_speed
from hourglass_sep.results.timing import (
    COLUMNS,
    INDIFFERENCE,
    MIN_REPEATS,
    Setup,
    interleave,
    parse_times,
    round_order,
    timing_rows,
)
from hourglass_sep.scoring.signals import SCORE_COLUMNS

REPO = Path(__file__).resolve().parents[1]
A, B = "separate: 4 windows", "separate: 1 window"


def table(ta, tb, device="cpu fp32", group=("g", "g"), audio=64.0) -> pd.DataFrame:
    """A speed table of two rows timed in interleaved rounds (the speed verb's format)."""
    times = {A: list(ta), B: list(tb)}
    protocol = dict(warmup=1, indifference=INDIFFERENCE, audio_seconds=dict.fromkeys(times, audio))
    rows = timing_rows(times, "g", {A: 0, B: 1}, dict.fromkeys(times, device), {}, protocol)
    rows[0]["group"], rows[1]["group"] = group
    return pd.DataFrame(rows, columns=COLUMNS)


def rounds(n, ratio, noise=0.01, seed=0):
    """A's seconds over ``n`` rounds (drifting, as a busy machine does) and B's: ``ratio``
    times A's in the same round, with a little independent noise."""
    rng = np.random.default_rng(seed)
    ta = 0.5 * (1 + 0.3 * np.sin(np.arange(n)))  # drift that pairing must cancel
    return ta, ta * ratio * (1 + noise * rng.standard_normal(n))


def verdict(speed_table, expect="faster", **claim) -> dict:
    """The kind's row for a claim on rows A (and B) of ``speed_table``."""
    cmp = {"a": A} if expect == "real-time" else {"a": A, "b": B}
    c = {"id": "t", "statement": "s", "expect": expect, "compare": cmp, "runs": cmp, **claim}
    inputs = Inputs(pd.DataFrame(), speed_table, {"confidence": 0.95}, {})
    return find_kind(c).row(c, "-", inputs)


# ------------------------------------------------------------------ the measurement


def test_interleaving_is_abab_after_a_warm_up():
    log, ticks = [], iter(range(1000))

    def setup(name):
        def run():
            log.append(name)
            return {f"{name} part": 0.25} if name == "A" else None

        return Setup(
            name, run, lambda: log.append(f"warm {name}"), (f"{name} part",) * (name == "A")
        )

    setups = [setup("A"), setup("B")]
    times = interleave(setups, repeats=5, warmup=1, clock=lambda: next(ticks))
    assert log == ["warm A", "warm B"] + ["A", "B"] * 5
    assert times == {"A": [1] * 5, "B": [1] * 5, "A part": [0.25] * 5}
    assert round_order(setups) == {"A": 0, "A part": 0, "B": 1}


def test_timing_rows_keep_every_repeat_and_read_back(tmp_path):
    ta, tb = rounds(5, 2.0)
    path = tmp_path / "speed.tsv"
    table(ta, tb).to_csv(path, sep="\t", index=False)
    back = load_speed(path)
    assert list(back.columns) == COLUMNS
    assert parse_times(back["times"][0]) == pytest.approx(ta, rel=1e-5)
    assert back["seconds"][0] == pytest.approx(np.median(ta)) and back["repeats"][0] == 5
    assert parse_times(0.5) == [0.5] and parse_times(math.nan) == [] and parse_times("") == []


def test_the_speed_verb_times_a_tiny_model_in_interleaved_rounds(tmp_path):
    """The real path, once, on a tiny network and one short clip: the rows, groups, order and
    repeats it writes (not how long they took)."""
    import torch
    from conftest import write_clip

    from hourglass_sep.nets.inference import MODEL_FORMAT
    from hourglass_sep.nets.model import build_model
    from hourglass_sep.nets.settings import ArchConfig

    arch = ArchConfig(stacks=1, channels=8, growth=4, stem=(8,), poolings=3)
    torch.manual_seed(0)
    model = tmp_path / "model.pt"
    state = {"format": MODEL_FORMAT, "arch": arch.to_dict(), "train": {}, "step": 1}
    torch.save({**state, "state_dict": build_model(arch).state_dict()}, model)
    clip = str(write_clip(tmp_path / "clip.wav", seconds=1.5))
    rows = speed.time_test_run(str(model), [clip], device="cpu", repeats=2, warmup=0)
    df = pd.DataFrame(rows, columns=COLUMNS)
    first = (speed.TEST_RUN_NEW, speed.SEPARATE_CLIPS[4], speed.SCORE_CLIPS["museval"])
    second = (speed.TEST_RUN_OLD, speed.SEPARATE_CLIPS[1], speed.SCORE_CLIPS["mir_eval"])
    want = {**dict.fromkeys(first, 0), **dict.fromkeys(second, 1)}
    assert dict(zip(df["what"], df["order"])) == want
    assert (df["group"] == "test run").all() and (df["repeats"] == 2).all()
    assert all(len(parse_times(t)) == 2 and min(parse_times(t)) > 0 for t in df["times"])
    assert df.set_index("what")["device"][speed.SCORE_CLIPS["mir_eval"]] == "cpu"
    assert df["device"][0].startswith("cpu") and df["audio_seconds"][0] == pytest.approx(1.5)


# ------------------------------------------------------------------ verdicts


def test_a_clear_two_fold_speed_up_over_five_pairs_holds():
    ta, tb = rounds(5, 2.0)
    row = verdict(table(ta, tb))
    assert row["verdict"] == "holds"
    assert row["lo"] < 2.0 < row["hi"] and row["lo"] > threshold(1, INDIFFERENCE)
    assert row["effect"] == pytest.approx(math.exp(np.mean(np.log(tb / ta))))
    assert "5 rounds" in row["variance"] and row["p_value"] < 0.001
    # the same speed-up does not reach a claimed 4x
    assert verdict(table(ta, tb), factor=4)["verdict"] == "contradicted"


def test_a_claimed_factor_is_met_within_the_zone_of_it():
    """ "40 % faster" (factor 1.4): 1.38x is the claimed factor (within 5 % of it), 1.2x is
    short of it although clearly faster."""
    assert threshold(1.4, INDIFFERENCE) == pytest.approx(1.33)
    assert verdict(table(*rounds(6, 1.38, 0.005)), factor=1.4)["verdict"] == "holds"
    assert verdict(table(*rounds(6, 1.2, 0.005)), factor=1.4)["verdict"] == "contradicted"
    assert verdict(table(*rounds(6, 1.2, 0.005)))["verdict"] == "holds"


def test_one_percent_faster_is_inside_the_zone_and_contradicts_faster():
    ta, tb = rounds(8, 1.01, noise=0.002)
    row = verdict(table(ta, tb))
    assert row["lo"] > 1.0 and row["hi"] < 1 + INDIFFERENCE  # faster, but not by 5 %
    assert row["verdict"] == "contradicted" and "zone of indifference" in row["detail"]
    slower = verdict(table(*rounds(8, 0.5)))
    assert slower["verdict"] == "contradicted" and slower["hi"] < 1


def test_a_speed_up_straddling_the_zone_edge_is_inconclusive():
    ta, tb = rounds(5, 1.05, noise=0.05, seed=3)
    row = verdict(table(ta, tb))
    assert row["lo"] < 1.05 < row["hi"] and row["verdict"] == "inconclusive"


def test_three_repeats_are_inconclusive_with_the_reason():
    ta, tb = rounds(3, 2.0)
    row = verdict(table(ta, tb))
    assert row["verdict"] == "inconclusive"
    assert f"3 interleaved repeat(s); a timing verdict needs >= {MIN_REPEATS}" in row["detail"]
    assert "the repeats alone would say holds" in row["detail"]


def test_rows_not_timed_in_the_same_rounds_are_inconclusive():
    ta, tb = rounds(5, 2.0)
    row = verdict(table(ta, tb, group=("song", "test run")))
    assert row["verdict"] == "inconclusive" and "not timed in the same interleaved" in row["detail"]
    assert row["effect"] == pytest.approx(np.median(tb) / np.median(ta))


def test_a_gpu_claim_on_a_cpu_table_needs_gpu():
    ta, tb = rounds(5, 2.0)
    row = verdict(table(ta, tb), needs="gpu")
    assert row["verdict"] == NEEDS_GPU and row["detail"].startswith("on cpu fp32: holds")
    on_gpu = verdict(table(ta, tb, device="cuda bf16 (NVIDIA H200)"), needs="gpu")
    assert on_gpu["verdict"] == "holds"
    assert verdict(table(ta, tb))["verdict"] == "holds"  # no needs: judged on the CPU


def test_real_time_from_the_audio_length():
    fast = rounds(5, 1.0)[0] * 12  # ~6 s for 64 s of audio: about 10x real time
    row = verdict(table(fast, fast), expect="real-time")
    assert row["verdict"] == "holds" and row["lo"] > 5
    at_real_time = 64.0 * (1 + 0.002 * np.random.default_rng(1).standard_normal(6))
    assert verdict(table(at_real_time, at_real_time), expect="real-time")["verdict"] == (
        "contradicted"
    )
    gpu = verdict(table(fast, fast), expect="real-time", needs="gpu")
    assert gpu["verdict"] == NEEDS_GPU and "holds" in gpu["detail"]


def test_missing_rows_are_no_data_and_a_factor_below_one_is_refused():
    assert verdict(None)["verdict"] == "no data"
    ta, tb = rounds(5, 2.0)
    known = {"s1": [(40, 1000)]}
    whats = [A, B]
    c = {
        "id": "f",
        "statement": "s",
        "family": "exploratory",
        "compare": {"a": A, "b": B},
        "expect": "faster",
    }
    with pytest.raises(UserError, match=r"claims\[f\]\.factor: 0.5 is less than the minimum of 1"):
        validate_claims([dict(c, factor=0.5)], known, whats)
    with pytest.raises(UserError, match=r"claims\[f\]\.compare\.b: 'x' is not a row"):
        validate_claims([dict(c, compare={"a": A, "b": "x"})], known, whats)
    rt = {
        "id": "r",
        "statement": "s",
        "family": "exploratory",
        "compare": {"a": A},
        "expect": "real-time",
    }
    assert validate_claims([rt], known, whats)[0]["runs"] == {"a": A}


def test_evaluate_claims_gives_the_timing_verdicts():
    """Through the verdict table (validation, the kind's row, the shared columns)."""
    ta, tb = rounds(5, 2.0)
    claims = [
        {
            "id": "w",
            "statement": "s",
            "family": "exploratory",
            "compare": {"a": A, "b": B},
            "expect": "faster",
        },
        {
            "id": "rt",
            "statement": "s",
            "family": "exploratory",
            "compare": {"a": A},
            "expect": "real-time",
        },
    ]
    scores = pd.DataFrame([dict.fromkeys(SCORE_COLUMNS, 1.0)])  # one clip; unused by timings
    scores = scores.assign(variant="s1", step=40, clip="c_1_01", singer="c", status="ok")
    out = evaluate_claims(claims, scores, known_runs={}, speed=table(ta, tb)).set_index("id")
    assert out.loc["w", "verdict"] == "holds" and out.loc["w", "unit"] == "speed-up (x)"
    assert out.loc["rt", "verdict"] == "holds" and out.loc["rt", "compare"] == f"{A} vs real time"


def test_log_interval_of_identical_ratios_has_no_width():
    out = log_interval(np.log(np.full(5, 2.0)))
    assert out["effect"] == pytest.approx(2.0) and out["lo"] == out["hi"] == pytest.approx(2.0)
    assert math.isnan(log_interval(np.array([0.1]))["lo"])


# ------------------------------------------------------------------ the config


def test_config_speed_keys_are_the_speed_verbs_options_with_their_defaults():
    """Each ``speed:`` key is passed as the option of its name; the defaults live in the
    code, once, and the schema's bracketed hints must show them."""
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    props = schema["properties"]["speed"]["properties"]
    p = argparse.ArgumentParser()
    speed.add_arguments(p)
    for key, spec in props.items():
        assert "default" not in spec, key  # defined once: the option's default
        hint = re.search(r"\[([0-9.]+)\]", " ".join(spec["description"].split()))
        assert hint and float(hint[1]) == p.get_default(key), key
    assert p.get_default("repeats") >= MIN_REPEATS


def test_job_times_sums_the_benchmark_files_by_rule(tmp_path):
    from hourglass_sep.results.speed import job_times

    for name, s in [("train_ours.tsv", 10.0), ("separate_ours_step40_0.tsv", 2.0),
                    ("separate_ours_step40_1.tsv", 3.0), ("not-a-job.txt", 9.0)]:  # fmt: skip
        (tmp_path / name).write_text(f"s\th:m:s\n{s}\t0:00:{int(s):02d}\n")
    rows = {r["what"]: r for r in job_times(tmp_path)}
    assert rows["train: ours"]["seconds"] == 10.0
    assert rows["separate test clips: ours_step40"]["seconds"] == 5.0
    assert rows["separate test clips: ours_step40"]["detail"].startswith("2 job(s)")

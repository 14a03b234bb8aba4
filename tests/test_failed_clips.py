"""Failed, near-silent and non-finite clips never reach a mean, a plot or a verdict.

Score tables are built by hand (on the fixtures of test_results.py): one run whose voice
estimates are all near-silent, one whose "ok" rows carry -inf and NaN (a table written before
the rule, or by another tool), one clip of -inf in an otherwise good run, and a run whose
score table is empty.  Every product step (aggregate, claims, figures, workbook, report)
runs on them, says what failed and why, and never raises.
"""

from __future__ import annotations

import math

import numpy as np
import openpyxl
import pandas as pd
import pytest
import yaml
from test_results import PNG_MAGIC, TEMPLATE, _args, make_fixtures

from hourglass_sep.cli import main
from hourglass_sep.scoring import clip_status, signals
from hourglass_sep.scoring.score import score_clip

SR = 8000
NEAR_SILENT = "near-silent estimate (< -80 dB of the reference): voice"


def _signals(n=SR * 2, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    voice = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.2 * np.sin(2 * np.pi * 3 * t))
    acc = 0.2 * rng.standard_normal(n)
    return np.stack([voice, acc])


# ----------------------------------------------------------------------------- scoring
@pytest.mark.parametrize("scale", [0.0, 1e-6, 1e-5])
def test_a_silent_or_near_silent_estimate_fails_with_its_own_status(scale):
    refs = _signals()
    ests = refs + 0.01 * np.random.default_rng(1).standard_normal(refs.shape)
    ests[0] *= scale  # voice estimate at -inf, -120 or -100 dB of its reference
    row = score_clip(refs, ests, backend="fast_bss_eval")
    want = signals.SILENT if scale == 0 else signals.NEAR_SILENT
    assert row["status"] == f"{want}: voice", row["status"]
    assert all(math.isnan(row[c]) for c in clip_status.METRIC_COLUMNS)


def test_a_faint_but_audible_estimate_is_scored():
    refs = _signals()
    ests = refs + 0.01 * np.random.default_rng(1).standard_normal(refs.shape)
    ests[0] *= 1e-3  # -60 dB: quiet, not near-silent; SDR is scale-invariant
    row = score_clip(refs, ests, backend="fast_bss_eval")
    assert row["status"] == "ok"
    assert all(np.isfinite(row[c]) for c in clip_status.METRIC_COLUMNS)


def test_screen_turns_non_finite_ok_rows_into_failed_clips():
    df = pd.DataFrame(
        {
            "status": ["ok", "ok", "ok", "silent estimate (all zeros): voice"],
            "voice_sdr": [1.0, -np.inf, np.nan, np.nan],
            "voice_nsdr": [0.5, -np.inf, 2.0, np.nan],
            "accompaniment_sdr": [2.0, 3.0, np.inf, np.nan],
        }
    )
    out = clip_status.screen(df)
    assert list(out["status"]) == [
        "ok",
        "non-finite score: voice sdr, voice nsdr",
        "non-finite score: voice sdr, accompaniment sdr",
        "silent estimate (all zeros): voice",
    ]
    assert list(clip_status.usable(out)) == [True, False, False, False]
    values = out[["voice_sdr", "voice_nsdr", "accompaniment_sdr"]].to_numpy()
    assert not np.isinf(values).any()
    assert df["status"].iloc[1] == "ok"  # the input is left alone


def test_is_silent_counts_silent_and_near_silent_of_the_source():
    status = pd.Series(["ok", "silent estimate (all zeros): voice", NEAR_SILENT, "x: voice"])
    assert list(clip_status.is_silent(status, "voice")) == [False, True, True, False]
    assert not clip_status.is_silent(status, "accompaniment").any()


# ----------------------------------------------------------------------------- products
def _rewrite(path, edit):
    df = pd.read_csv(path, sep="\t")
    edit(df)
    df.to_csv(path, sep="\t", index=False)


def _near_silent(df):
    df["status"] = NEAR_SILENT
    for c in clip_status.METRIC_COLUMNS:
        df[c] = np.nan


def _non_finite(df):
    df["voice_sdr"] = -np.inf
    df["voice_nsdr"] = -np.inf
    df.loc[0, "accompaniment_sir"] = np.nan


def _one_bad_clip(df):
    df.loc[1, "voice_sdr"] = -538.0  # the number a bf16 network's dead mask gave
    df.loc[2, "voice_nsdr"] = -np.inf


@pytest.fixture()
def broken(tmp_path, monkeypatch):
    """The fixtures with failing runs; summary.tsv re-aggregated from the broken scores."""
    monkeypatch.chdir(tmp_path)
    fx = make_fixtures(tmp_path)
    by_name = {p.stem: p for p in fx["scores"]}
    _rewrite(by_name["grow-1stack@10"], _near_silent)
    _rewrite(by_name["acc-mask@10"], _non_finite)
    _rewrite(by_name["ours@150"], _one_bad_clip)
    empty = by_name["ours-lr1e-3@150"]
    pd.read_csv(empty, sep="\t").iloc[:0].to_csv(empty, sep="\t", index=False)
    summary = tmp_path / "summary.tsv"
    scores = [str(p) for p in fx["scores"]]
    assert main(["aggregate", "--scores", *scores, "-o", str(summary)]) == 0
    return fx


def test_aggregate_counts_failed_clips_with_their_reason(broken):
    s = pd.read_csv(broken["summary"], sep="\t").set_index("variant")
    metrics = [c for c in s.columns if c.endswith(("gnsdr", "gsir", "gsar", "gsdr"))]
    assert not np.isinf(s[metrics].to_numpy(dtype=float)).any()
    assert s.loc["grow-1stack", "clips"] == 0 and s.loc["grow-1stack", "failed"] == 4
    assert s.loc["grow-1stack", "failure"] == NEAR_SILENT
    assert s.loc["grow-1stack", metrics].isna().all()
    assert s.loc["acc-mask", "failed"] == 4
    assert s.loc["acc-mask", "failure"].startswith("non-finite score: voice sdr, voice nsdr")
    ours = s[s.index == "ours"].set_index("step").loc[150]
    assert ours["clips"] == 3 and ours["failed"] == 1  # -538 dB is finite: scored as measured
    assert np.isfinite(ours["voice_gnsdr"])
    assert "ours-lr1e-3" not in s.index  # an empty run has no summary row, and no crash


def test_claims_on_failed_runs_say_so(broken, tmp_path):
    claims = [
        {"id": "dead-vs-ok", "statement": "s", "compare": {"a": "grow-1stack", "b": "acc-mask"},
         "metric": "gnsdr", "source": "both", "expect": "greater", "family": "confirmatory"},
        {"id": "ours-vs-parks", "statement": "s", "compare": {"a": "ours@15000", "b": "parks"},
         "metric": "gnsdr", "source": "both", "expect": "not-less", "margin": 0.5,
         "family": "confirmatory"},
        {"id": "empty-run", "statement": "s", "compare": {"a": "ours-lr1e-3", "threshold": 0},
         "metric": "gnsdr", "source": "voice", "expect": "above", "family": "confirmatory"},
        {"id": "dead-is-silent", "statement": "s", "compare": {"a": "grow-1stack"},
         "source": "voice", "expect": "silent", "family": "confirmatory"},
    ]  # fmt: skip
    (tmp_path / "claims.yaml").write_text(yaml.safe_dump({"claims": claims}))
    out = tmp_path / "claims"
    args = ["claims", "--claims", str(tmp_path / "claims.yaml"), "--experiments",
            str(broken["experiments"]), "--scores", *map(str, broken["scores"]),
            "--speed", str(broken["speed"]), "--permutations", "200", "-o",
            str(out / "verdicts.tsv"), "--effects", str(out / "effects.tsv"), "--intervals",
            str(out / "intervals.tsv"), "--figure", str(out / "claims.png")]  # fmt: skip
    assert main(args) == 0
    v = pd.read_csv(out / "verdicts.tsv", sep="\t")
    dead = v[v["id"] == "dead-vs-ok"]
    assert (dead["verdict"] == "no data").all(), dead[["source", "verdict", "detail"]]
    assert v[v["id"] == "empty-run"]["verdict"].iloc[0] == "no data"
    ok = v[v["id"] == "ours-vs-parks"]
    assert np.isfinite(ok["effect"].astype(float)).all()
    silent = v[v["id"] == "dead-is-silent"].iloc[0]
    # its one seed is silent on every clip, but one seed is no verdict
    assert silent["verdict"] == "inconclusive (one seed)" and silent["effect"] == 1.0
    for name in ("effects", "intervals"):
        t = pd.read_csv(out / f"{name}.tsv", sep="\t").select_dtypes("number")
        assert not np.isinf(t.to_numpy(dtype=float)).any(), name
    assert (out / "claims.png").read_bytes()[:8] == PNG_MAGIC


def test_figures_workbook_and_report_show_the_failures(broken, tmp_path):
    figs = tmp_path / "figs"
    assert main(["figures", *_args(broken), "-o", str(figs)]) == 0
    for name in ("metrics", "nsdr_distribution", "training_loss", "speed"):
        assert (figs / f"{name}.png").read_bytes()[:8] == PNG_MAGIC, name
    wb = tmp_path / "result.xlsx"
    assert main(["workbook", *_args(broken), "-o", str(wb)]) == 0
    ws = openpyxl.load_workbook(wb)["experiments"]
    head = [c.value for c in ws[1]]
    status = {r[0]: r[head.index("status")] for r in ws.iter_rows(min_row=2, values_only=True)}
    assert status["grow-1stack"] == f"no result: all 4 clips failed ({NEAR_SILENT})"
    assert status["acc-mask"].startswith("no result: all 4 clips failed (non-finite score")
    report = tmp_path / "report.md"
    args = [*_args(broken), "--figures", str(figs), "--template", str(TEMPLATE)]
    assert main(["report", *args, "-o", str(report)]) == 0
    text = report.read_text()
    assert NEAR_SILENT in text and "non-finite score" in text
    assert "inf" not in text.replace("info", "")


def test_every_run_failed_still_gives_every_product(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fx = make_fixtures(tmp_path)
    for p in fx["scores"]:
        _rewrite(p, _near_silent)
    summary = tmp_path / "summary.tsv"
    assert main(["aggregate", "--scores", *map(str, fx["scores"]), "-o", str(summary)]) == 0
    assert (pd.read_csv(summary, sep="\t")["clips"] == 0).all()
    figs = tmp_path / "figs"
    assert main(["figures", *_args(fx), "-o", str(figs)]) == 0
    for name in ("metrics", "nsdr_distribution"):  # drawn, saying that nothing was usable
        assert (figs / f"{name}.png").read_bytes()[:8] == PNG_MAGIC, name
    assert main(["workbook", *_args(fx), "-o", str(tmp_path / "r.xlsx")]) == 0
    args = [*_args(fx), "--figures", str(figs), "--template", str(TEMPLATE)]
    assert main(["report", *args, "-o", str(tmp_path / "report.md")]) == 0
    assert "all 4 clips failed" in (tmp_path / "report.md").read_text()

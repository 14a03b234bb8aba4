"""The Methods table (``hourglass-sep methods``) and its products: a hand-made experiments.json,
score TSVs, benchmark files and catalogue with known answers (a run whose per-clip NSDR is a
constant c has GNSDR c and a zero-width clip interval; two replicates give their mean; the
oracle fraction is the ratio), then the workbook sheet, the report section and the figure."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_results import PNG_MAGIC, TEMPLATE, _args, make_fixtures

from hourglass_sep.claims.methods_table import (
    COLUMNS,
    methods_table,
    read_method_scores,
    resolve_entries,
)
from hourglass_sep.cli import main
from hourglass_sep.errors import UserError

SINGERS = ["annar", "bobon", "davidson", "fdps", "geniusturtle", "heycat"]
CLIPS = [f"{s}_{k}_01" for s in SINGERS for k in (1, 2)]  # 12 clips, 6 singers
SR = 16_000
CLIP_SECONDS = 10.0  # 12 clips of 10 s: 2 minutes of evaluated audio
STEP = 100


def _row(variant, method, family, trains, parameters, *, base=None, rep=0, seed=0, step=STEP):
    return dict(
        variant=variant, step=step if trains else 0, label=variant.capitalize(),
        base_variant=base or variant, replicate=rep, seed=seed if trains else None,
        method=method, method_family=family, trains=trains, parameters=parameters,
        arch={"kind": method} if trains else None, train=None,
        train_info=f"models/{variant}/train.json" if trains else None,
        history=None, model=variant, method_settings=None if trains else {},
    )  # fmt: skip


ROWS = [
    _row("ours", "hourglass", "hourglass", True, 1000),
    _row("ours.s1", "hourglass", "hourglass", True, 1000, base="ours", rep=1, seed=1),
    _row("unet", "unet", "learned peer", True, 5000),
    _row("repet-sim", "repet-sim", "training-free", False, 0),
    _row("rpca", "rpca", "training-free", False, 0),
    _row("oracle-irm", "oracle-irm", "oracle", False, 0),
]
# run -> per-clip voice NSDR (a constant, or an array) and the constant accompaniment NSDR
VOICE = {
    "ours": 6.0,
    "ours.s1": 8.0,
    "unet": 4.0,
    "repet-sim": np.linspace(1.0, 3.0, len(CLIPS)),
    "oracle-irm": 10.0,
}
ACCOMPANIMENT = {"ours": 5.0, "ours.s1": 5.0, "unet": 3.0, "repet-sim": 1.0, "oracle-irm": 12.0}
WEIGHTS = np.arange(1, len(CLIPS) + 1) * 8000  # scored samples: length-weighted means differ


def _scores(run: str, step: int) -> pd.DataFrame:
    voice = np.broadcast_to(np.asarray(VOICE[run], dtype=float), (len(CLIPS),))
    rec = dict(variant=run, step=step, clip=CLIPS, singer=[c.split("_")[0] for c in CLIPS],
               samples=WEIGHTS, status="ok", seconds=0.1, scorer="museval")  # fmt: skip
    df = pd.DataFrame(rec)
    for src, nsdr in (("voice", voice), ("accompaniment", ACCOMPANIMENT[run])):
        df[f"{src}_nsdr"] = nsdr
        df[f"{src}_sdr"] = nsdr + 1.0
        df[f"{src}_sir"] = nsdr + 5.0
        df[f"{src}_sar"] = nsdr + 3.0
    return df


def _bench(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:{int(seconds) % 60:02d}\t100.0\n")


def make_inputs(root: Path) -> dict:
    """experiments.json, score TSVs (one per run and shard layout as the workflow writes them),
    train.json of ours' replicates, benchmarks and the catalogue under ``root``."""
    exp = root / "experiments.json"
    exp.write_text(json.dumps({"meta": {"preset": "demo"}, "rows": ROWS}))
    scores = []
    for run, rows in _scores_by_run().items():
        p = root / "scores" / run / f"step{rows['step'].iloc[0]}" / "shard0.tsv"
        p.parent.mkdir(parents=True, exist_ok=True)
        rows.to_csv(p, sep="\t", index=False)
        scores.append(p)
    for run, wall in (("ours", 600.0), ("ours.s1", 1200.0)):  # 10 and 20 minutes
        info = root / "models" / run / "train.json"
        info.parent.mkdir(parents=True)
        info.write_text(json.dumps({"steps": STEP, "wall_seconds": wall, "parameters": 1000}))
    bench = root / "benchmarks"
    _bench(bench / "train_unet.tsv", 300.0)  # unet has no train.json: its benchmark, 5 min
    for run, secs in (("ours", 30.0), ("ours.s1", 40.0)):  # two shards each
        for shard in (0, 1):
            _bench(bench / f"separate_{run}_step{STEP}_{shard}.tsv", secs)
    _bench(bench / "separate_oracle-irm_step0_0.tsv", 3.0)
    cat = pd.DataFrame(
        dict(clip=CLIPS + ["amy_1_01"], singer=SINGERS * 2 + ["amy"], song=1,
             split=["test"] * len(CLIPS) + ["train"], samples=int(CLIP_SECONDS * SR), sr=SR,
             path="x.wav", evaluate=True)
    )  # fmt: skip
    catalogue = root / "catalogue.tsv"
    cat.to_csv(catalogue, sep="\t", index=False)
    return dict(experiments=exp, scores=scores, benchmarks=bench, catalogue=catalogue)


def _scores_by_run() -> dict[str, pd.DataFrame]:
    return {r["variant"]: _scores(r["variant"], r["step"]) for r in ROWS if r["variant"] in VOICE}


ENTRIES = [
    {"variant": "ours", "step": STEP},
    {"variant": "unet", "step": STEP},
    {"variant": "repet-sim", "step": 0},
    {"variant": "rpca", "step": 0},
    {"variant": "oracle-irm", "step": 0},
]


def _verb(fx: dict, out: Path, *extra: str) -> pd.DataFrame:
    args = [
        "methods", "--experiments", str(fx["experiments"]), "--scores", *map(str, fx["scores"]),
        "--benchmarks", str(fx["benchmarks"]), "--catalogue", str(fx["catalogue"]),
        "--rows", json.dumps(ENTRIES), "--resamples", "400", "-o", str(out), *extra,
    ]  # fmt: skip
    assert main(args) == 0
    return pd.read_csv(out, sep="\t").set_index("variant")


@pytest.fixture()
def fx(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # experiments.json paths are relative to the working directory
    return make_inputs(tmp_path)


@pytest.fixture()
def table(fx, tmp_path):
    return _verb(fx, tmp_path / "methods.tsv")


# ----------------------------------------------------------------------------- the numbers
def test_constant_nsdr_gives_its_value_with_a_zero_width_interval(table):
    unet = table.loc["unet"]
    assert unet["voice_gnsdr"] == pytest.approx(4.0)
    assert unet["voice_gnsdr_lo"] == pytest.approx(4.0) == unet["voice_gnsdr_hi"]
    assert unet["voice_gsir"] == pytest.approx(9.0) and unet["voice_gsar"] == pytest.approx(7.0)
    assert unet["variance"] == "clips" and unet["replicates"] == 1 and unet["clips"] == 12
    assert unet["resampled_by"] == "singer"  # 6 singers: no fallback


def test_two_replicates_give_their_mean_with_a_seed_term(table):
    ours = table.loc["ours"]
    assert ours["voice_gnsdr"] == pytest.approx(7.0)  # (6 + 8) / 2
    assert ours["voice_gnsdr_lo"] < 7.0 < ours["voice_gnsdr_hi"]
    assert ours["variance"] == "clips + seeds" and ours["replicates"] == 2
    assert str(ours["seeds"]) == "0, 1"
    # the accompaniment is 5 dB in both replicates: no seed or clip variance
    assert ours["accompaniment_gnsdr_lo"] == pytest.approx(5.0) == ours["accompaniment_gnsdr_hi"]


def test_a_deterministic_method_is_length_weighted_over_clips_only(table):
    rep = table.loc["repet-sim"]
    expected = float(np.sum(WEIGHTS * VOICE["repet-sim"]) / WEIGHTS.sum())
    assert rep["voice_gnsdr"] == pytest.approx(expected)
    assert rep["voice_gnsdr_lo"] < expected < rep["voice_gnsdr_hi"]
    assert rep["variance"] == "clips" and not rep["trains"] and math.isnan(rep["seeds"])


def test_oracle_fraction_is_the_ratio_of_gnsdrs(table):
    assert table.loc["ours", "oracle_fraction_voice"] == pytest.approx(0.7)
    assert table.loc["unet", "oracle_fraction_voice"] == pytest.approx(0.4)
    assert table.loc["ours", "oracle_fraction_accompaniment"] == pytest.approx(5.0 / 12.0)
    assert table.loc["oracle-irm", "oracle_fraction_voice"] == pytest.approx(1.0)


def test_training_minutes_and_separation_seconds_per_minute(table):
    assert table.loc["ours", "training_minutes"] == pytest.approx(15.0)  # (10 + 20) / 2
    assert table.loc["unet", "training_minutes"] == pytest.approx(5.0)  # the train benchmark
    assert math.isnan(table.loc["repet-sim", "training_minutes"])  # does not train
    # 2 minutes of audio: ours (30 + 30) / 2 and (40 + 40) / 2 s per minute, mean 35
    assert table.loc["ours", "audio_minutes"] == pytest.approx(2.0)
    assert table.loc["ours", "separation_s_per_min"] == pytest.approx(35.0)
    assert table.loc["oracle-irm", "separation_s_per_min"] == pytest.approx(1.5)
    assert math.isnan(table.loc["unet", "separation_s_per_min"])  # no separate benchmark
    assert "no separate benchmark" in table.loc["unet", "note"]


def test_columns_order_and_parameters(table):
    assert list(table.columns) == [c for c in COLUMNS if c != "variant"]
    assert list(table.index) == [e["variant"] for e in ENTRIES]
    assert table.loc["unet", "parameters"] == 5000 and table.loc["rpca", "parameters"] == 0
    assert table.loc["ours", "family"] == "hourglass" and table.loc["unet", "method"] == "unet"


# ----------------------------------------------------------------------------- missing inputs
def test_a_run_not_scored_leaves_empty_cells_with_a_reason(table, caplog):
    rpca = table.loc["rpca"]
    assert all(math.isnan(rpca[c]) for c in ("voice_gnsdr", "voice_gnsdr_lo", "accompaniment_gsar"))
    assert "not scored" in rpca["note"]


def test_missing_files_are_logged_not_fatal(fx, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    out = tmp_path / "m.tsv"
    args = [
        "methods", "--experiments", str(fx["experiments"]),
        "--scores", str(tmp_path / "nope.tsv"), "--benchmarks", str(tmp_path / "none"),
        "--rows", json.dumps(ENTRIES[:2]), "-o", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    t = pd.read_csv(out, sep="\t").set_index("variant")
    assert t["voice_gnsdr"].isna().all() and t["separation_s_per_min"].isna().all()
    assert t.loc["ours", "training_minutes"] == pytest.approx(15.0)  # train.json still read
    assert "nope.tsv" in caplog.text and "benchmark folder not found" in caplog.text


def test_an_unknown_variant_is_a_user_error_listing_the_known(fx, tmp_path, capsys):
    args = ["methods", "--experiments", str(fx["experiments"]), "--rows",
            '[{"variant": "demucs", "step": 0}]', "-o", str(tmp_path / "m.tsv")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "'demucs'" in err and "oracle-irm, ours, repet-sim, rpca, unet" in err
    with pytest.raises(UserError, match="no evaluated step 7"):
        resolve_entries([{"variant": "ours", "step": 7}], ROWS)


def test_default_rows_and_oracle_outside_the_entries(fx):
    """Without --rows: every base variant at its last step; an oracle not among the entries
    still gives the fractions."""
    entries = resolve_entries(None, ROWS)
    assert [e.variant for e in entries] == ["ours", "unet", "repet-sim", "rpca", "oracle-irm"]
    assert [r["variant"] for r in entries[0].runs] == ["ours", "ours.s1"]
    scores = read_method_scores(fx["scores"], ROWS)
    oracle = entries[-1]
    t = methods_table(entries[1:2], scores, oracle_entry=oracle, n_boot=200)
    assert t.loc[0, "oracle_fraction_voice"] == pytest.approx(0.4)
    t = methods_table(entries[1:2], scores, oracle="nothing", n_boot=200)
    assert math.isnan(t.loc[0, "oracle_fraction_voice"])


def test_a_replicate_not_scored_is_said(fx, tmp_path):
    fx["scores"] = [p for p in fx["scores"] if "ours.s1" not in str(p)]
    t = _verb(fx, tmp_path / "m.tsv")
    assert t.loc["ours", "voice_gnsdr"] == pytest.approx(6.0) and t.loc["ours", "replicates"] == 1
    assert "replicates [1] not scored" in t.loc["ours", "note"]


# ----------------------------------------------------------------------------- products
@pytest.fixture()
def products(fx, tmp_path):
    """methods.tsv from the verb, and the results fixtures of test_results beside it."""
    methods = tmp_path / "methods.tsv"
    _verb(fx, methods)
    res = make_fixtures(tmp_path / "run")
    return res, methods


def test_workbook_has_a_methods_sheet(products, tmp_path):
    import openpyxl

    res, methods = products
    out = tmp_path / "result.xlsx"
    assert main(["workbook", *_args(res), "--methods", str(methods), "-o", str(out)]) == 0
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames[:2] == ["experiments", "methods"]
    ws = wb["methods"]
    header = [c.value for c in ws[1]]
    assert header == COLUMNS
    ours = next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[1] == "ours")
    assert ours[header.index("voice_gnsdr")] == pytest.approx(7.0)
    assert ours[header.index("oracle_fraction_voice")] == pytest.approx(0.7)


def test_report_has_a_methods_section(products, tmp_path):
    res, methods = products
    figs = tmp_path / "figs"
    assert main(["figures", *_args(res), "--methods", str(methods), "-o", str(figs)]) == 0
    out = tmp_path / "report.md"
    args = [*_args(res), "--methods", str(methods), "--figures", str(figs)]
    assert main(["report", *args, "--template", str(TEMPLATE), "-o", str(out)]) == 0
    text = out.read_text()
    assert text.index("## Methods") < text.index("## Speed")
    section = text.split("## Methods")[1].split("## Speed")[0]
    unet = next(x for x in section.splitlines() if x.startswith("| Unet"))
    assert "4.00 [4.00, 4.00]" in unet and "5.0 min" in unet and "0.40 / 0.25" in unet
    ours = next(x for x in section.splitlines() if x.startswith("| Ours"))
    assert "7.00 [" in ours and "2 (0, 1)" in ours and "35.00 s" in ours and "15.0 min" in ours
    oracle = next(x for x in section.splitlines() if "oracle-irm" in x)
    assert oracle.startswith("| _Oracle-irm (`oracle-irm`) (ceiling)_")
    assert "ceilings, not methods" in section and "12 test clips" in section
    assert "1–2 seed(s)" in section and "process start-up" in section
    assert "Rpca: " in section and "not scored" in section  # why its cells are empty
    assert "](figs/methods.png)" in section


def test_figure_written_and_products_without_methods_unchanged(products, tmp_path):
    res, methods = products
    figs = tmp_path / "figs"
    assert main(["figures", *_args(res), "--methods", str(methods), "-o", str(figs)]) == 0
    png = figs / "methods.png"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
    assert main(["figures", *_args(res), "-o", str(figs)]) == 0
    assert not png.exists()  # no methods table: no (stale) figure
    out = tmp_path / "plain.md"
    assert main(["report", *_args(res), "--template", str(TEMPLATE), "-o", str(out)]) == 0
    assert "## Methods" not in out.read_text()


def test_rows_are_json_text_of_any_length_or_a_file(tmp_path):
    """The rule passes the rows inline: nine entries are longer than a file name may be."""
    from hourglass_sep.claims.methods_table import read_rows_spec
    from hourglass_sep.errors import UserError

    long = [{"variant": f"method-number-{i}", "step": 15000} for i in range(9)]
    text = json.dumps(long)
    assert len(text) > 255 and read_rows_spec(text) == long
    f = tmp_path / "rows.json"
    f.write_text(text)
    assert read_rows_spec(str(f)) == long
    with pytest.raises(UserError, match="no such file"):
        read_rows_spec(str(tmp_path / "missing.json"))

"""The peers in the workflow: training-free methods and an oracle added to the tiny run by
config entries alone train nothing, are separated by rule separate_method, and reach the
Methods table, its sheet, its figure and the report (docs/methods.md)."""

from __future__ import annotations

import csv
import shutil

import openpyxl
from conftest import snakemake

EXTRA = """\
run_variants: [ours, voice-mask, repet-sim, oracle-irm]
methods_table:
  oracle: oracle-irm
  rows: [{variant: ours, step: 15000}, voice-mask, repet-sim, rpca, oracle-irm]
"""


def test_training_free_methods_run_without_training_and_fill_the_methods_table(tiny_run, tmp_path):
    work = tmp_path / "run"
    shutil.copytree(tiny_run, work, symlinks=True)  # the shared run stays as it is
    extra = tmp_path / "methods.yaml"
    extra.write_text(EXTRA)
    args = ("--configfile", "configs/tiny.yaml", str(extra))
    dry = snakemake(work, "-n", *args)
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out[-3000:]
    assert "rule train:" not in out  # nothing retrains: the methods are training-free
    assert out.count("rule separate_method:") == 4  # two methods x two shards
    assert "rule methods_table:" in out
    r = snakemake(work, "--cores", "2", *args)
    assert r.returncode == 0, (r.stdout + r.stderr)[-5000:]
    res = work / "results" / "tiny"
    with open(res / "methods.tsv", newline="") as f:
        rows = {row["variant"]: row for row in csv.DictReader(f, delimiter="\t")}
    # rpca is in the rows but not run by this preset: left out, the others in order
    assert list(rows) == ["ours", "voice-mask", "repet-sim", "oracle-irm"]
    assert rows["repet-sim"]["family"] == "training-free"
    assert rows["oracle-irm"]["family"] == "oracle"
    assert rows["repet-sim"]["parameters"] == "0" and rows["ours"]["parameters"] != "0"
    assert float(rows["oracle-irm"]["oracle_fraction_voice"]) == 1.0
    for name in ("repet-sim", "oracle-irm"):
        assert float(rows[name]["voice_gnsdr_lo"]) <= float(rows[name]["voice_gnsdr"])
        assert float(rows[name]["voice_gnsdr"]) <= float(rows[name]["voice_gnsdr_hi"])
        assert not (res / "models" / name).exists()  # no model, no training folder
    report = (res / "report.md").read_text()
    assert "## Methods" in report and "figures/methods.png" in report
    assert (res / "figures" / "methods.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "methods" in openpyxl.load_workbook(res / "result.xlsx").sheetnames

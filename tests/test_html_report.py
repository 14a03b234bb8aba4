"""``snakemake --report``: the README advertises Snakemake's HTML report for a finished run.

Built from the tiny preset's run (the session's ``tiny_run`` fixture, shared with
test_workflow.py); every product marked ``report(...)`` in workflow/rules/results.smk must
be in it, with its caption rendered for the preset (a missing caption file fails the build).
"""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

from conftest import snakemake

# the products marked report(...) in workflow/rules/results.smk
PRODUCTS = [
    "result.xlsx",
    "report.md",
    "speed.tsv",
    *(
        f"figures/{n}.png"
        for n in ("metrics", "nsdr_distribution", "training_loss", "example", "speed", "claims")
    ),
]


def _embedded_results(html: str) -> dict:
    """The report's table of results (path -> name, caption, data URI...) embedded as JSON."""
    m = re.search(r"var results = (\{.*?\});\s*\n", html)
    assert m, "no results table in the HTML report (did Snakemake's report layout change?)"
    return json.loads(m.group(1))


def test_html_report_names_every_product(tiny_run: Path, tmp_path: Path):
    out = tmp_path / "report.html"
    r = snakemake(tiny_run, "--report", str(out), "--configfile", "configs/tiny.yaml")
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    html = out.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>") and "</html>" in html[-200:]
    HTMLParser().feed(html)  # raises on markup it cannot tokenise

    results = _embedded_results(html)
    res = tiny_run / "results" / "tiny"
    expected = {f"results/tiny/{p}" for p in PRODUCTS}
    assert set(results) == expected
    for key, entry in results.items():
        assert entry["caption"].strip(), f"{key}: empty caption"
        assert "tiny" in entry["caption"], f"{key}: caption does not name the preset"
        assert "{{" not in entry["caption"], f"{key}: caption template left unrendered"
        payload = entry["data_uri"].split("base64,", 1)[1]
        assert base64.b64decode(payload) == (res / key.split("results/tiny/", 1)[1]).read_bytes()
    # the workflow description names the preset and links the categories
    assert "Preset" in html and "showCategory('Results')" in html

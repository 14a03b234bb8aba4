"""The claims' readable products: the report's evidence as a sentence, the report's Claims
section grouped by family with each claim's parts under it, the Claims HTML page and the
forest plot with one panel (and x range) per claim.  Hand-made tables: no scores, no torch."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from hourglass_sep.claims.evidence import (
    claim_rows,
    evidence_sentence,
    reported_from_config,
    reported_from_experiments,
)
from hourglass_sep.claims.forest import forest_plot, panel_range
from hourglass_sep.results import report

REPO = Path(__file__).resolve().parents[1]


def _rep(label, voice, accompaniment, note=""):
    return {"label": label, "voice": voice, "accompaniment": accompaniment, "note": note}


# row -> what the report printed, as reported_from_* give it ([GNSDR, GSIR, GSAR] per source)
REPORTED = {
    15: _rep("Ours", [10.284, 15.74, 12.254], [9.819, 14.159, 12.299]),
    16: _rep("Park's", [10.433, 15.426, 12.618], [9.772, 13.745, 12.642]),
    17: _rep("Park's paper", [10.51, 16.01, 12.53], [9.88, 14.24, 12.36]),
    19: _rep("Ours' best", [10.944, 17.355, 12.531], [9.916, 14.259, 12.601]),
    12: _rep("end-to-end", None, None, "failed: all zeros"),
}
PAIR = {
    "id": "ours-vs-parks",
    "compare": {"a": "ours@15000", "b": "parks"},
    "metric": "gnsdr",
    "source": "both",
    "expect": "equivalent",
    "rows": [15, 16],
}


# ----------------------------------------------------------------------------- evidence
def test_evidence_sentence_of_a_pair_names_numbers_and_rows():
    assert evidence_sentence(PAIR, REPORTED, source="voice") == (
        "Ours 10.28 vs Park's 10.43 dB voice GNSDR (rows 15, 16)"
    )
    assert evidence_sentence(PAIR, REPORTED) == (
        "Ours 10.28 vs Park's 10.43 dB voice GNSDR; 9.82 vs 9.77 dB accompaniment GNSDR "
        "(rows 15, 16)"
    )
    # the verdict table's "15, 16" and an older claims file's evidence rows are read alike,
    # and the evidence's words follow the numbers
    old = {**PAIR, "rows": None, "evidence": {"rows": [15, 16], "note": "one seed each"}}
    assert claim_rows(old) == claim_rows({**PAIR, "rows": "15, 16"}) == [15, 16]
    assert evidence_sentence(old, REPORTED, source="accompaniment", metric="gsar") == (
        "Ours 12.30 vs Park's 12.64 dB accompaniment GSAR (rows 15, 16); one seed each"
    )


def test_evidence_sentence_of_a_threshold_names_the_row_it_comes_from():
    claim = {
        "id": "best-beats-park",
        "compare": {"a": "best", "threshold": {"voice": 12.53, "accompaniment": 12.36}},
        "metric": "gsar",
        "source": "voice",
        "rows": [19, 17],
    }
    # 12.531 vs 12.53: two decimals would print them alike, so three
    assert evidence_sentence(claim, REPORTED) == (
        "Ours' best 12.531 dB voice GSAR vs the threshold 12.53 dB (Park's paper) (rows 19, 17)"
    )
    zero = {"id": "z", "compare": {"a": "x", "threshold": 0}, "metric": "gnsdr", "rows": [16]}
    assert evidence_sentence(zero, REPORTED, source="voice") == (
        "Park's 10.43 dB voice GNSDR vs the threshold 0 dB (row 16)"
    )


def test_evidence_sentence_without_numbers_says_what_the_report_says():
    silent = {"id": "e2e", "compare": {"a": "end-to-end"}, "expect": "silent", "rows": [12]}
    assert evidence_sentence(silent, REPORTED) == "failed: all zeros (row 12)"
    said = {**silent, "evidence": {"row": 12, "result": "output all zeros"}, "rows": None}
    assert evidence_sentence(said, REPORTED) == "output all zeros (row 12)"
    assert evidence_sentence({"id": "new", "compare": {"a": "x"}}, REPORTED) == ""


def test_reported_rows_from_the_experiment_log():
    rows = [
        {"variant": "ours", "step": 75, "paper_step": 15000, "label": "Ours @75",
         "report_row": 15, "reported": {"voice": {"gnsdr": 10.0, "gsir": 15.0, "gsar": 12.0},
                                        "accompaniment": None}},
        {"variant": "park-original", "step": 75, "paper_step": 15000, "label": "Park's original",
         "report_row": 17, "reported": {"voice": {"gnsdr": 10.51, "gsir": 16.01, "gsar": 12.53},
                                        "accompaniment": None}},
    ]  # fmt: skip
    rep = reported_from_experiments(rows)
    assert rep[15]["label"] == "Ours @15000"  # the paper-scale step the numbers belong to
    assert rep[15]["voice"] == [10.0, 15.0, 12.0] and rep[15]["accompaniment"] is None
    assert rep[17]["label"] == "Park's paper"  # its numbers are the paper's, not the run's
    assert rep[16]["label"] == "Park's" and rep[16]["voice"][0] == 10.433  # not run: printed
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    by_id = {c["id"]: c for c in config["claims"]}
    text = evidence_sentence(by_id["ours-vs-parks"], reported_from_config(config), "voice")
    assert text.startswith("Ours @15000 10.28 vs Park's 10.43 dB voice GNSDR (rows 15, 16)")


# ----------------------------------------------------------------------------- report section
def _row(id_, level, family, verdict, source="both", metric="gnsdr", **kw):
    base = dict(
        id=id_, level=level, family=family, statement=f"{id_} statement", sentence_zh="",
        sentence_en="", rows="", source=source, metric=metric, expect="greater", compare="a - b",
        verdict=verdict, effect=0.4, lo=0.1, hi=0.7, unit="dB", margin=0.0, p_value=0.01,
        p_method="t", n_clips=60, n_dropped=0, n_replicates=3, variance="clips + seeds",
        detail="", evidence="", pairs="",
    )  # fmt: skip
    return {**base, **kw}


EVIDENCE = "Ours 10.28 vs Park's 10.43 dB (rows 15, 16)"


def new_table() -> pd.DataFrame:
    rows = [
        _row("explore-1", "claim", "exploratory", "inconclusive", source="voice",
             sentence_en="Not run by the report.", adjusted_verdict="inconclusive"),
        _row("claim-a", "claim", "confirmatory", "holds", sentence_en="Ours is on par.",
             sentence_zh="我们的模型与Park的相当", evidence=EVIDENCE,
             adjusted_verdict="holds", p_adjusted=0.012, adjustment="Holm", mde=0.31,
             seeds_needed=5),
        _row("claim-a", "part", "confirmatory", "holds", source="voice", evidence="voice part"),
        _row("claim-a", "part", "confirmatory", "holds", source="accompaniment"),
        _row("same", "claim", "exploratory", "identical", effect=0.0, lo=float("nan"),
             hi=float("nan"), variance="none (a check)"),
        _row("same", "part", "exploratory", "identical", source="voice", effect=0.0),
        _row("same", "part", "exploratory", "identical", source="accompaniment", effect=0.0),
    ]  # fmt: skip
    return pd.DataFrame(rows)


def _section(table: pd.DataFrame) -> dict:
    return report.claims_section(SimpleNamespace(claims=table), figdir=None)


def test_claims_section_groups_families_and_puts_parts_under_their_claim():
    sec = _section(new_table())
    text = sec["table"]
    conf, expl, checks = (text.index(f"### {t}") for t in report.CLAIM_SECTIONS.values())
    assert conf < expl < checks  # confirmatory first, checks last, whatever the table order
    lines = [x for x in text.splitlines() if x.startswith("| ")]
    claim_a = next(i for i, x in enumerate(lines) if x.startswith("| **claim-a**"))
    assert "Ours is on par. (tested: claim-a statement)" in lines[claim_a]
    assert lines[claim_a + 1].startswith("| ↳ voice GNSDR |")
    assert lines[claim_a + 2].startswith("| ↳ accompaniment GNSDR |")
    # the claim's sentence stands once, on the claim's line (the part's would repeat it)
    assert "Ours 10.28 vs Park's 10.43 dB (rows 15, 16)" in lines[claim_a]
    assert "voice part" not in text
    # adjusted verdict, MDE and seeds needed: columns of their own, filled where given
    assert "| adjusted verdict | MDE / seeds needed |" in text
    # no line of the other sections has one (an unadjusted exploratory claim repeats its own)
    assert "adjusted verdict" not in text.split("### Exploratory")[1]
    assert "holds (p 0.012, Holm)" in lines[claim_a] and "MDE 0.31 dB; 5 seeds needed" in text
    assert (
        "+0.40 [+0.10, +0.70] dB (a - b, interval over clips + seeds, 60 clips, 3 seeds)"
        in (lines[claim_a])
    )
    # one count per claim (not per part); the checks apart; the adjusted verdicts after
    assert sec["n"] == 3
    assert sec["counts"] == (
        "1 holds, 1 inconclusive; identity checks: 1 identical; "
        "confirmatory claims after the multiplicity adjustment: 1 holds"
    )


def test_claims_section_of_an_old_table_without_the_new_columns():
    """verdicts.tsv before claims had levels and families: one row per claim and source."""
    new = new_table()
    old = new[(new["level"] == "part") | (new["id"] == "explore-1")].drop(
        columns=["level", "family", "sentence_zh", "sentence_en", "rows", "adjusted_verdict",
                 "p_adjusted", "adjustment", "mde", "seeds_needed"]
    )  # fmt: skip
    old["evidence"] = json.dumps({"rows": [15, 16], "ours": {"voice": [10.284]}})
    sec = _section(old)
    text = sec["table"]
    assert "### Exploratory" not in text and "adjusted verdict" not in text
    assert "MDE" not in text and "↳" not in text  # every row is its own claim
    assert "| **claim-a**: claim-a statement (voice) |" in text
    assert "| **claim-a**: claim-a statement (accompaniment) |" in text
    assert "rows: [15, 16]; ours: {voice: [10.284]}" in text  # the JSON made compact
    assert sec["n"] == len(old) == 5
    assert sec["counts"] == "2 holds, 1 inconclusive; identity checks: 2 identical"


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_claims_page_is_one_html_table_per_family():
    table = new_table()
    table.loc[0, "statement"] = "A < B & more"
    page = report.claims_page(table, "Claims")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    parser = _Tags()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    assert tags.count("h2") == tags.count("table") == 3
    classes = [a.get("class") for t, a in parser.tags if t == "tr" and a.get("class")]
    assert classes.count("claim") == 3 and classes.count("part") == 4
    assert "A &lt; B &amp; more" in page and "我们的模型与Park的相当" in page
    assert "no claims" in report.claims_page(None)


# ----------------------------------------------------------------------------- forest plot
def _effects() -> pd.DataFrame:
    rows = [
        ("small", "voice", 0.12, -0.18, 0.42, 0.5, "equivalent", "holds"),
        ("small", "accompaniment", -0.05, -0.33, 0.23, 0.5, "equivalent", "holds"),
        ("wide", "voice", 1.3, -18.7, 21.3, 0.0, "greater", "inconclusive (one seed)"),
        ("above", "voice", 9.1, 8.9, 9.3, 0.0, "above", "holds"),
    ]
    return pd.DataFrame(
        [
            dict(id=i, source=s, label=f"{i} [{s}] a - b", effect=e, lo=lo, hi=hi, margin=m,
                 expect=x, verdict=v)
            for i, s, e, lo, hi, m, x, v in rows
        ]
    )  # fmt: skip


def test_forest_plot_gives_each_claim_its_own_x_range(tmp_path):
    import matplotlib.pyplot as plt

    effects = _effects()
    fig = forest_plot(effects)
    try:
        axes = fig.axes
        assert [ax.get_title(loc="left") for ax in axes] == ["small", "wide", "above"]
        (s0, s1), (w0, w1), (a0, a1) = (ax.get_xlim() for ax in axes)
        assert w0 < -18.7 and w1 > 21.3  # the wide interval is whole
        assert s0 < -0.5 and s1 > 0.5 and s1 - s0 < 1.5  # the small ones fill their panel
        assert a0 <= 0 < 9.3 < a1  # a threshold effect keeps 0 in view
        assert (0.42 + 0.18) / (s1 - s0) > 0.4  # ... and is not a dot
        texts = [t.get_text() for t in axes[1].texts]
        assert "+1.30 [-18.70, +21.30]" in texts  # numbers printed: the scales differ
        assert [t.get_text() for t in axes[0].get_yticklabels()] == [
            "[accompaniment] a - b",
            "[voice] a - b",
        ]
    finally:
        plt.close(fig)
    png = forest_plot(effects, tmp_path / "claims.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = forest_plot(effects.iloc[:0], tmp_path / "empty.png")
    assert empty.stat().st_size > 0


def test_panel_range_of_identical_runs_and_missing_bounds():
    flat = _effects().iloc[:1].assign(effect=0.0, lo=0.0, hi=0.0, margin=0.0)
    lo, hi = panel_range(flat)
    assert lo < -0.2 and hi > 0.2  # a zero-width interval still gets an axis
    open_ = _effects().iloc[2:3].assign(lo=float("nan"), hi=float("inf"))
    lo, hi = panel_range(open_)
    assert lo < 0 < 1.3 < hi and hi < 5  # the point and 0, not the missing bounds
    assert panel_range(open_) == pytest.approx(panel_range(open_.assign(hi=float("nan"))))

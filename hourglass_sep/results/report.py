"""The Markdown report: the report's tables regenerated from the measured numbers.

Rendered from a Jinja2 template (``reports/report.md.j2``); this module computes
every table as Markdown and hands the template a context of strings and small
dicts, so the template holds the prose and the layout only.

Tables (each run: a *measured* line, the line the report / Park's paper
printed, and their difference at paper scale; at a reduced scale, where that
difference would only measure the scale gap, the run's rank among the runs of its
paper-scale step, measured / reported):

- Table 1: "Ours" (report row 15) vs "Park's" (row 16): parameters + 6 metrics;
- Table 2: the best runs (rows 18, 19) vs Park's paper (row 17);
- ablations: every other evaluated run;
- Methods (with ``--methods``): our networks beside the peer methods and the oracles, each
  metric with its 95 % interval (:func:`methods_section`).

Runs are found in ``experiments.json`` by ``report_row``.  A table's run that this
configuration did not run (or that failed) is said so in the table.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import html
import json
import logging
import math
import os
from pathlib import Path

from hourglass_sep import __version__
from hourglass_sep.data.audio import atomic_path
from hourglass_sep.errors import UserError
from hourglass_sep.results import published as refs
from hourglass_sep.results.run_inputs import (
    inputs_from_args,
    Inputs,
    add_inputs_arguments,
    load_inputs,
    reported_values,
    scale_info,
)
from hourglass_sep.results.run_inputs import num as _num
from hourglass_sep.results.speed import is_ratio
from hourglass_sep.results.workbook import DASH, experiment_table, metric_col

log = logging.getLogger(__name__)

METRIC_HEADERS = [
    f"{'Voice' if s == 'voice' else 'Acc.'} {refs.METRIC_NAMES[m]}"
    for s in refs.SOURCES
    for m in refs.METRICS
]
FIGURE_TITLES = {
    "metrics": "GNSDR / GSIR / GSAR per run, with the reported values",
    "nsdr_distribution": "Per-clip NSDR per run",
    "training_loss": "Training loss",
    "example": "An example test clip: spectrogram, masks, estimates",
    "speed": "Timings",
}


# ----------------------------------------------------------------------------- formatting
def fmt(v, digits: int = 3) -> str:
    v = _num(v)
    return DASH if v is None else f"{v:.{digits}f}"


def fmt_diff(v, digits: int = 3) -> str:
    v = _num(v)
    return DASH if v is None else f"{v:+.{digits}f}"


def txt(v) -> str:
    """Text of a cell; the dash for None / NaN / empty."""
    if v is None or (isinstance(v, float) and v != v) or str(v) == "":
        return DASH
    return str(v)


def fmt_int(v) -> str:
    v = _num(v)
    return DASH if v is None else f"{int(round(v)):,}"


def fmt_seconds(v) -> str:
    v = _num(v)
    if v is None:
        return DASH
    if v < 60:
        return f"{v:.2f} s"
    if v < 3600:
        return f"{v:,.0f} s ({v / 60:.1f} min)"
    return f"{v:,.0f} s ({v / 3600:.2f} h)"


def md_escape(s) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def md_table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A GitHub-flavoured Markdown table; ``align`` is one of l/r/c per column."""
    align = align or ("l" + "r" * (len(headers) - 1))
    sep = {"l": "---", "r": "---:", "c": ":---:"}
    lines = [
        "| " + " | ".join(md_escape(h) for h in headers) + " |",
        "|" + "|".join(sep[a] for a in align) + "|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(md_escape(c) for c in r) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- tables
def _metrics(rec: dict | None, kind: str = "") -> list:
    return [
        None if rec is None else rec.get(metric_col(s, m, kind))
        for s in refs.SOURCES
        for m in refs.METRICS
    ]


def _reported_metrics(rep: dict | None) -> list:
    out = []
    for s in refs.SOURCES:
        for m in refs.METRICS:
            out.append(None if not rep or not rep.get(s) else rep[s].get(m))
    return out


def _diffs(meas: list, rep: list) -> list:
    return [
        None if _num(a) is None or _num(b) is None else _num(a) - _num(b) for a, b in zip(meas, rep)
    ]


class Tables:
    """The report's tables, built from the inputs."""

    def __init__(self, inputs: Inputs):
        self.inputs = inputs
        self.exp = experiment_table(inputs)
        self.reduced = scale_info(inputs.meta, inputs.rows)["reduced"]
        self.recs = self.exp.to_dict("records")
        self.by_row: dict[int, list[tuple[dict, dict]]] = {}
        for row, rec in zip(inputs.rows, self.recs):
            if row.get("report_row") is not None:
                self.by_row.setdefault(int(row["report_row"]), []).append((row, rec))

    def _measured(self, rec: dict) -> bool:
        return any(_num(v) is not None for v in _metrics(rec))

    def _block(
        self,
        name: str,
        mid: list,
        row: dict | None,
        rec: dict | None,
        report_row: int | None,
        rep_mid: list,
        rep_label: str | None = None,
        mid_diff: list | None = None,
    ) -> list[list]:
        """Three lines: measured, reported, difference (or explanations when a piece is missing).

        ``mid``/``rep_mid``: the formatted middle columns (parameters, step, ...) of the
        measured and the reported line; ``mid_diff``: those of the difference line.
        """
        rep = reported_values(row) if row is not None else refs.reported_of(report_row)
        rep_vals = _reported_metrics(rep)
        lines = []
        if rec is None:
            lines.append(
                [
                    f"**{name}**",
                    "measured: not run in this configuration",
                    *[DASH] * len(mid),
                    *[DASH] * 6,
                ]
            )
        elif not self._measured(rec):
            lines.append([f"**{name}**", f"measured: {rec['status']}", *mid, *[DASH] * 6])
        else:
            lines.append([f"**{name}**", "measured", *mid, *[fmt(v) for v in _metrics(rec)]])
        src = rep_label or (
            f"the report, row {report_row}" if report_row is not None else "reported"
        )
        if rep is None:
            note = (row or {}).get("reported_note") or (
                refs.REPORT_BY_ROW[report_row].note if report_row in refs.REPORT_BY_ROW else ""
            )
            lines.append(["", f"{src}: {note or 'no value printed'}", *rep_mid, *[DASH] * 6])
        else:
            lines.append(["", src, *rep_mid, *[fmt(v) for v in rep_vals]])
        if rec is not None and rep is not None and self._measured(rec) and self.reduced:
            rank = self._rank_line(rec, len(mid))
            lines += [rank] if rank else []
        elif rec is not None and rep is not None and self._measured(rec):
            md = mid_diff if mid_diff is not None else [""] * len(mid)
            lines.append(
                [
                    "",
                    "difference (measured − reported)",
                    *md,
                    *[fmt_diff(v) for v in _diffs(_metrics(rec), rep_vals)],
                ]
            )
        return lines

    @staticmethod
    def _rank_line(rec: dict, n_mid: int) -> list | None:
        """Reduced scale: the run's rank among the runs of its paper-scale step, measured /
        reported, per metric (the comparable part when the values are not); None when the
        run is alone in its step."""
        pairs = [
            (
                _num(rec.get(metric_col(s, m, "rank"))),
                _num(rec.get(metric_col(s, m, "reported rank"))),
            )
            for s in refs.SOURCES
            for m in refs.METRICS
        ]
        among = _num(rec.get("ranked among"))
        if among is None or all(a is None for a, _ in pairs):
            return None
        step = int(_num(rec.get("paper-scale step")) or 0)
        label = f"rank of {int(among)} runs at paper step {step:,} (measured / reported)"
        cells = [DASH if a is None or b is None else f"{int(a)} / {int(b)}" for a, b in pairs]
        return ["", label, *[""] * n_mid, *cells]

    def _pick(self, report_row: int) -> tuple[dict | None, dict | None]:
        hits = self.by_row.get(report_row) or []
        if not hits:
            return None, None
        hits = sorted(hits, key=lambda h: not self._measured(h[1]))  # prefer a measured one
        return hits[0]

    def table1(self) -> str:
        rows = []
        for report_row in refs.TABLE1_ROWS:
            row, rec = self._pick(report_row)
            name = (row or {}).get("label") or refs.TABLE_LABELS[report_row]
            name = name.split(" @")[0]
            sr = refs.REPORT_BY_ROW[report_row]
            mid = [fmt_int(rec.get("parameters"))] if rec else [DASH]
            pdiff = None
            if rec and _num(rec.get("parameters")) is not None and sr.parameters:
                pdiff = [f"{int(_num(rec['parameters']) - sr.parameters):+,}"]
            rows += self._block(
                name, mid, row, rec, report_row, [fmt_int(sr.parameters)], mid_diff=pdiff
            )
        return md_table(["Model", "", "Parameters", *METRIC_HEADERS], rows, "ll" + "r" * 7)

    def table2(self) -> str:
        rows = []
        for report_row in refs.TABLE2_ROWS:
            row, rec = self._pick(report_row)
            sr = refs.REPORT_BY_ROW[report_row]
            name = refs.TABLE_LABELS[report_row]
            if row is not None and row.get("label"):
                name = row["label"].split(" @")[0]
            mid = [self._iter_text(row)] if row else [DASH]
            rows += self._block(name, mid, row, rec, report_row, [fmt_int(sr.iterations)])
        # Park's paper: the printed values, and the measured faithful re-implementation when it ran
        pp = refs.PARK_PAPER
        row, rec = self._pick(refs.PARK_PAPER_ROW)
        if row is None:
            rows.append(
                [
                    "**Park's paper**",
                    f"{refs.PARK_ARXIV} (report row {pp.row})",
                    fmt_int(pp.iterations),
                    *[fmt(v) for v in _reported_metrics(pp.reported())],
                ]
            )
            rows.append(
                [
                    "",
                    "measured: Park's original network not run in this configuration",
                    DASH,
                    *[DASH] * 6,
                ]
            )
        else:
            name = (row.get("label") or "Park's original").split(" @")[0]
            rows += self._block(
                name,
                [self._iter_text(row)],
                row,
                rec,
                pp.row,
                [fmt_int(pp.iterations)],
                rep_label=f"Park's paper ({refs.PARK_ARXIV}), report row {pp.row}",
            )
        return md_table(["Model", "", "Iterations", *METRIC_HEADERS], rows, "ll" + "r" * 7)

    @staticmethod
    def _iter_text(row: dict) -> str:
        step, paper = row["step"], row.get("paper_step", row["step"])
        return f"{step:,}" if step == paper else f"{step:,} (paper: {int(paper):,})"

    def ablations(self) -> tuple[str, int]:
        main = set(refs.TABLE1_ROWS) | set(refs.TABLE2_ROWS) | {refs.PARK_PAPER_ROW}
        rows, n = [], 0
        for row, rec in zip(self.inputs.rows, self.recs):
            sr = row.get("report_row")
            if sr is not None and int(sr) in main:
                continue
            n += 1
            ref = refs.REPORT_BY_ROW.get(int(sr)) if sr is not None else None
            name = row.get("label") or row["variant"]
            mid = [
                str(sr) if sr is not None else "new",
                self._iter_text(row),
                fmt_int(rec.get("parameters")),
            ]
            rep_mid = [
                str(sr) if sr is not None else DASH,
                fmt_int(ref.iterations) if ref else DASH,
                fmt_int(ref.parameters) if ref else DASH,
            ]
            rows += self._block(
                name,
                mid,
                row,
                rec,
                int(sr) if sr is not None else None,
                rep_mid,
                rep_label=None if sr is not None else "reported",
            )
        if not rows:
            return "_No other runs in this configuration._", 0
        return md_table(
            ["Run", "", "Report row", "Step", "Parameters", *METRIC_HEADERS], rows, "ll" + "r" * 9
        ), n

    def ablation_notes(self) -> list[str]:
        main = set(refs.TABLE1_ROWS) | set(refs.TABLE2_ROWS) | {refs.PARK_PAPER_ROW}
        out = []
        for row in self.inputs.rows:
            sr = row.get("report_row")
            if sr is not None and int(sr) in main:
                continue
            out.append(
                f"**{row.get('label') or row['variant']}** "
                f"(`{row['variant']}`, step {row['step']:,}): "
                f"{row.get('note') or 'no description'}"
            )
        return out

    def not_reproduced(self) -> list[str]:
        ran = set(self.by_row)
        return [f"row {r.row} ({r.change})" for r in refs.REPORT_ROWS if r.row not in ran]

    def all_runs(self) -> str:
        rows = []
        for rec in self.recs:
            rows.append(
                [
                    rec["label"],
                    f"`{rec['variant']}`",
                    DASH if _num(rec["report row"]) is None else str(int(rec["report row"])),
                    rec["status"],
                    fmt_int(rec["parameters"]),
                    fmt_int(rec["iterations"]),
                    DASH if _num(rec["lr"]) is None else f"{rec['lr']:g}",
                    txt(rec["sampling"]),
                    txt(rec["device"]),
                    fmt_seconds(rec["train time (s)"]),
                    fmt_int(rec["test clips"]),
                    fmt_seconds(rec["test time (s)"]),
                ]
            )
        return md_table(
            [
                "Run",
                "Variant",
                "Report row",
                "Status",
                "Parameters",
                "Step",
                "lr",
                "Sampling",
                "Device",
                "Train time",
                "Test clips",
                "Scoring time",
            ],
            rows,
            "llrlrrrllrrr",
        )


def speed_section(inputs: Inputs, tables: Tables) -> dict:
    claims = [
        f"{c.what}: **{fmt_seconds(c.seconds)}** on a {c.device} "
        f"({c.source}{'; ' + c.note if c.note else ''})"
        for c in refs.TIMING_CLAIMS
    ]
    measured = None
    if inputs.speed is not None and len(inputs.speed):
        rows = []
        for _, r in inputs.speed.iterrows():
            dev = r.get("device")
            det = r.get("detail")
            value = f"{float(r['seconds']):.2f}x" if is_ratio(r) else fmt_seconds(r["seconds"])
            rows.append([txt(r["what"]), txt(dev), value, txt(det)])
        measured = md_table(["What", "Device", "Time", "Detail"], rows, "llrl")
    train = []
    for rec in tables.recs:
        if _num(rec["train time (s)"]) is not None:
            train.append(
                [
                    rec["label"],
                    f"{int(rec['iterations']):,}",
                    txt(rec["device"]),
                    fmt_seconds(rec["train time (s)"]),
                ]
            )
    scoring = []
    for rec in tables.recs:
        if _num(rec["test time (s)"]) is not None:
            clips = _num(rec["test clips"])
            per = rec["test time (s)"] / clips if clips else None
            scoring.append(
                [
                    rec["label"],
                    fmt_int(clips),
                    fmt_seconds(rec["test time (s)"]),
                    DASH if per is None else f"{per:.2f} s",
                ]
            )
    return {
        "claims": claims,
        "measured": measured,
        "training": md_table(["Run", "Steps", "Device", "Train time"], train, "lrlr")
        if train
        else None,
        "scoring": md_table(
            ["Run", "Clips", "Scoring time (sum over clips)", "Per clip"], scoring, "lrrr"
        )
        if scoring
        else None,
    }


def figure_links(figdir: str | Path | None, out: Path) -> list[dict]:
    """The figures present in ``figdir`` with links relative to the report's folder."""
    if not figdir:
        return []
    figdir = Path(figdir)
    out_dir = out.resolve().parent
    links = []
    for name, title in FIGURE_TITLES.items():
        p = figdir / f"{name}.png"
        entry = {"name": name, "title": title, "exists": p.exists()}
        entry["link"] = Path(os.path.relpath(p.resolve(), out_dir)).as_posix()
        links.append(entry)
    return links


def provenance(inputs: Inputs) -> list[str]:
    meta = inputs.meta
    sc = scale_info(meta, inputs.rows)
    items = [
        f"Generated {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} "
        f"by hourglass-sep {__version__}."
    ]
    if sc["preset"]:
        items.append(f"Preset: `{sc['preset']}`.")
    items.append(f"Scale: {sc['name']}" + (f" ({sc['details']})." if sc["details"] else "."))
    ds = meta.get("dataset")
    source = ds.get("source") if isinstance(ds, dict) else ds
    if source == "synthetic":
        desc = "synthetic MIR-1K-format corpus (built-in generator), not MIR-1K"
    elif source in ("mir1k", "local"):
        how = "downloaded" if source == "mir1k" else "local copy"
        desc = f"MIR-1K ({how}; train = abjones + amy, test = the rest)"
    elif source:
        desc = str(source)
    else:
        desc = (
            "not recorded in experiments.json (MIR-1K protocol: train = abjones + amy, "
            "test = the rest)"
        )
    tc = sc["test_clips"]
    items.append(f"Dataset: {desc}; evaluated test clips: {tc if tc else 'all'}.")
    if "scorer" in inputs.summary.columns:
        scorers = sorted({str(s) for s in inputs.summary["scorer"].dropna()})
        if scorers:
            items.append(
                "Scorer: "
                + ", ".join(f"`{s}`" for s in scorers)
                + " (BSS Eval v3 sources, whole clip)."
            )
    if meta.get("date"):
        items.append(
            f"Experiment table written {meta['date']}"
            + (f" by hourglass-sep {meta['version']}." if meta.get("version") else ".")
        )
    for k, v in meta.items():
        if k in (
            "preset",
            "scale",
            "scale_settings",
            "dataset",
            "test_clips",
            "date",
            "version",
            "title",
        ):
            continue
        if isinstance(v, (str, int, float)) and len(str(v)) < 200:
            items.append(f"{k}: {v}")
    items.append(
        f"Inputs: `{inputs.sources.get('experiments')}`, `{inputs.sources.get('summary')}`"
        + (f", `{inputs.sources.get('speed')}`" if inputs.sources.get("speed") else "")
        + "."
    )
    items.append(f"References: {refs.PARK_CITATION}; report code {refs.REPORT_CODE}.")
    return items


# ----------------------------------------------------------------------------- claims
VERDICT_MARKS = {"holds": "**holds**", "contradicted": "**contradicted**"}
# the verdicts of checks (claims.tables.CHECK_VERDICTS; a test keeps the two equal: the
# report reads the claims tables as data and sits below the claims floor)
CHECK_VERDICTS = ("identical", "differs")
# the report's sections of claims, in order (the verdict table's ``family``, then the checks)
CLAIM_SECTIONS = {
    "confirmatory": "Confirmatory claims (the report states them)",
    "exploratory": "Exploratory claims (our reading of the log, questions it leaves open)",
    "checks": "Checks (identical / differs)",
}


def _given(v) -> bool:
    """A cell with something in it (not None, NaN or blank)."""
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and str(v).strip() != ""


def _evidence_text(evidence) -> str:
    """The report's evidence of a claim: the verdict table's sentence as it is, or an older
    table's JSON dump made compact (without quotes and braces noise)."""
    if not _given(evidence):
        return DASH
    try:
        ev = json.loads(evidence) if isinstance(evidence, str) else evidence
    except json.JSONDecodeError:
        return str(evidence)
    if not isinstance(ev, dict):
        return str(ev)
    return "; ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in ev.items()).replace(
        '"', ""
    )


def _our_evidence(r: dict) -> str:
    """Effect [95 % interval] with its unit, the variance it covers and the sample sizes."""
    eff = r.get("effect")
    if not _given(eff):
        return str(r.get("detail") or DASH)
    unit = r.get("unit") or ""
    sign = "+" if unit == "dB" else ""
    text = f"{eff:{sign}.2f}"
    if _given(r.get("lo")) and _given(r.get("hi")):
        text += f" [{r['lo']:{sign}.2f}, {r['hi']:{sign}.2f}]"
    extra = [str(r.get("compare") or "")]
    if _given(r.get("variance")):
        extra.append(f"interval over {r['variance']}")
    if _given(r.get("n_clips")):
        extra.append(f"{int(r['n_clips'])} clips")
    if _given(r.get("n_replicates")):
        n = int(r["n_replicates"])
        extra.append(f"{n} seed{'s' if n != 1 else ''}")
    return f"{text} {unit} ({', '.join(x for x in extra if x)})"


def _adjusted_text(r: dict) -> str:
    """The verdict after the multiplicity adjustment, with its adjusted p and method."""
    if not _given(r.get("adjusted_verdict")):
        return ""
    if str(r["adjusted_verdict"]) == str(r.get("verdict")) and not _given(r.get("p_adjusted")):
        return ""  # not adjusted (exploratory, a check, no test): nothing to add
    how = [f"p {float(r['p_adjusted']):.3g}" if _given(r.get("p_adjusted")) else ""]
    how.append(str(r["adjustment"]) if _given(r.get("adjustment")) else "")
    how = [x for x in how if x]
    return str(r["adjusted_verdict"]) + (f" ({', '.join(how)})" if how else "")


def _power_text(r: dict) -> str:
    """The smallest effect this design detects and the seeds a decision would need."""
    parts = []
    if _given(r.get("mde")):
        parts.append(f"MDE {float(r['mde']):.2f} dB")
    seeds = r.get("seeds_needed")
    if _given(seeds):
        n = _num(seeds)
        parts.append(f"{int(n)} seeds needed" if n is not None else str(seeds))
    if _given(r.get("power_note")):
        parts.append(str(r["power_note"]))
    return "; ".join(parts)


def claim_groups(v) -> list[tuple[dict, list[dict]]]:
    """(claim-level row, its part rows) in table order.  A table without ``level`` (written
    before claims had claim-level rows): every row is its own claim; a part whose claim row
    is missing stands alone."""
    recs = v.to_dict("records")
    if "level" not in v.columns:
        return [(r, []) for r in recs]
    heads = {r["id"] for r in recs if r.get("level") != "part"}
    parts: dict = {}
    for r in recs:
        if r.get("level") == "part" and r["id"] in heads:
            parts.setdefault(r["id"], []).append(r)
    groups, seen = [], set()
    for r in recs:
        if r.get("level") == "part" and r["id"] in heads:
            continue
        first = r["id"] not in seen and r.get("level") != "part"
        seen.add(r["id"])
        groups.append((r, parts.get(r["id"], []) if first else []))
    return groups


def _section_of(head: dict, parts: list[dict]) -> str:
    """Checks apart (identity of two evaluations is no statistical verdict), then the family;
    an older table without one counts its claims as confirmatory."""
    if any(str(r.get("verdict")) in CHECK_VERDICTS for r in [head, *parts]):
        return "checks"
    family = str(head.get("family") or "").strip()
    return family if family in CLAIM_SECTIONS else "confirmatory"


def _claim_line(head: dict, level_column: bool) -> dict:
    """The claim-level row as the report prints it (texts, unformatted)."""
    said = head.get("sentence_en") if _given(head.get("sentence_en")) else head.get("statement")
    words = str(said or "")
    if _given(head.get("sentence_en")) and str(head.get("statement") or "") not in ("", words):
        words += f" (tested: {head['statement']})"
    if not level_column and str(head.get("source")) not in ("-", "nan", ""):
        words += f" ({head['source']})"  # an older table: one row per source
    return {
        "level": "claim",
        "id": str(head["id"]),
        "text": words,
        "zh": str(head.get("sentence_zh") or "") if _given(head.get("sentence_zh")) else "",
        "evidence": _evidence_text(head.get("evidence")),
        "ours": _our_evidence(head),
        "verdict": str(head["verdict"]),
        "adjusted": _adjusted_text(head),
        "power": _power_text(head),
    }


def _part_line(part: dict, head_evidence: bool) -> dict:
    """A part (one source, metric or link) under its claim; its evidence only when the
    claim-level row has none (it would repeat the claim's sentence)."""
    name = " ".join(
        str(part.get(k)).upper() if k == "metric" else str(part.get(k))
        for k in ("source", "metric")
        if _given(part.get(k)) and str(part.get(k)) != "-"
    )
    return {
        "level": "part",
        "id": str(part["id"]),
        "text": name or str(part.get("compare") or ""),
        "zh": "",
        "evidence": "" if head_evidence else _evidence_text(part.get("evidence")),
        "ours": _our_evidence(part),
        "verdict": str(part["verdict"]),
        "adjusted": _adjusted_text(part),
        "power": _power_text(part),
    }


def claim_sections(v) -> list[dict]:
    """The verdict table as the report's sections: ``{key, title, lines}`` in the order of
    ``CLAIM_SECTIONS``, each line a claim followed by its parts (dicts of texts that the
    Markdown and the HTML page format each their own way)."""
    level_column = "level" in v.columns
    by_section: dict[str, list[dict]] = {k: [] for k in CLAIM_SECTIONS}
    for head, parts in claim_groups(v):
        line = _claim_line(head, level_column)
        by_section[_section_of(head, parts)].append(line)
        has_evidence = line["evidence"] != DASH
        by_section[_section_of(head, parts)] += [_part_line(p, has_evidence) for p in parts]
    return [
        {"key": k, "title": CLAIM_SECTIONS[k], "lines": lines}
        for k, lines in by_section.items()
        if lines
    ]


CLAIM_HEADERS = ["claim", "the report's evidence", "our evidence", "verdict"]
# columns only a newer verdict table fills (line key, header), shown where a line has them
OPTIONAL_COLUMNS = [("adjusted", "adjusted verdict"), ("power", "MDE / seeds needed")]


def _optional_columns(lines: list[dict]) -> list[tuple[str, str]]:
    """The optional columns some line of a section fills."""
    return [(k, h) for k, h in OPTIONAL_COLUMNS if any(line[k] for line in lines)]


def _md_line(line: dict, optional: list[tuple[str, str]]) -> list[str]:
    if line["level"] == "claim":
        claim = f"**{line['id']}**: {line['text']}"
    else:
        claim = f"\u21b3 {line['text']}"  # an arrow: a part under the claim above
    verdict = VERDICT_MARKS.get(line["verdict"], line["verdict"])
    extra = [line[k] or DASH for k, _ in optional]
    return [claim, line["evidence"] or "", line["ours"], verdict, *extra]


def _counts(v) -> str:
    """Verdicts of the claims (the claim-level rows), checks counted apart, then the
    verdicts after adjustment where the table has them."""
    heads = v[v["level"] != "part"] if "level" in v.columns else v
    checks = heads["verdict"].isin(CHECK_VERDICTS)

    def counted(col, rows) -> str:  # holds, contradicted, then the others, most first
        found = rows[col].map(lambda x: x if _given(x) else None).dropna().value_counts()
        first = {"holds": 0, "contradicted": 1}
        order = sorted(found.items(), key=lambda kn: (first.get(kn[0], 2), -kn[1], kn[0]))
        return ", ".join(f"{n} {k}" for k, n in order)

    parts = [counted("verdict", heads[~checks])]
    if checks.any():  # identity checks are not statistical verdicts: counted apart
        parts.append(f"identity checks: {counted('verdict', heads[checks])}")
    tested = heads[~checks]  # the family the adjustment is over: the confirmatory claims
    if "family" in tested.columns:
        tested = tested[tested["family"].map(lambda f: str(f) in ("confirmatory", "", "nan"))]
    if "adjusted_verdict" in heads.columns and counted("adjusted_verdict", tested):
        parts.append(
            f"confirmatory claims after the multiplicity adjustment: "
            f"{counted('adjusted_verdict', tested)}"
        )
    return "; ".join(p for p in parts if p)


def claims_section(inputs: Inputs, figdir=None, out: Path = Path("report.md")) -> dict | None:
    """The Claims section: one table per family (confirmatory, exploratory, checks), each
    claim on a line (claim · the report's evidence · ours · verdict [· adjusted · power])
    with its parts under it, and the verdict counts; None when the run has no claims."""
    v = inputs.claims
    if v is None or v.empty:
        return None
    tables = []
    for sec in claim_sections(v):
        optional = _optional_columns(sec["lines"])
        heads = CLAIM_HEADERS + [h for _, h in optional]
        rows = [_md_line(line, optional) for line in sec["lines"]]
        tables.append(f"### {sec['title']}\n\n{md_table(heads, rows, 'l' * len(heads))}")
    n_claims = len(v[v["level"] != "part"]) if "level" in v.columns else len(v)
    return {
        "table": "\n\n".join(tables),
        "counts": _counts(v),
        "n": n_claims,
        "figure": _claims_figure(figdir, out),
    }


# ----------------------------------------------------------------------------- claims page
PAGE_STYLE = """
body { font-family: sans-serif; font-size: 14px; margin: 1em 2em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; text-align: left; }
th { background: #f2f2f2; }
tr.claim td { border-top: 2px solid #888; }
tr.part td:first-child { padding-left: 2em; color: #444; }
.zh { color: #555; font-size: 13px; }
.holds { color: #1b9e77; font-weight: bold; }
.contradicted { color: #d95f02; font-weight: bold; }
"""


def _html_line(line: dict, optional: list[tuple[str, str]]) -> str:
    esc = html.escape
    if line["level"] == "claim":
        claim = f"<b>{esc(line['id'])}</b>: {esc(line['text'])}"
        if line["zh"]:
            claim += f'<div class="zh" lang="zh">{esc(line["zh"])}</div>'
    else:
        claim = f"\u21b3 {esc(line['text'])}"
    verdict = f'<span class="{esc(line["verdict"].split()[0])}">{esc(line["verdict"])}</span>'
    cells = [claim, esc(line["evidence"]), esc(line["ours"]), verdict]
    cells += [esc(line[k] or DASH) for k, _ in optional]
    tds = "".join(f"<td>{c}</td>" for c in cells)
    return f'<tr class="{line["level"]}">{tds}</tr>'


def _html_section(sec: dict) -> str:
    esc = html.escape
    optional = _optional_columns(sec["lines"])
    ths = "".join(f"<th>{esc(h)}</th>" for h in CLAIM_HEADERS + [h for _, h in optional])
    rows = "\n".join(_html_line(line, optional) for line in sec["lines"])
    return f"<h2>{esc(sec['title'])}</h2>\n<table>\n<tr>{ths}</tr>\n{rows}\n</table>"


def claims_page(verdicts, title: str = "Claims") -> str:
    """The Claims table as one HTML page (the Snakemake report's "Claims" category shows it
    on its own): the Markdown section's sections, lines and counts, plus the report's
    Chinese sentences."""
    esc = html.escape
    body = [f"<h1>{esc(title)}</h1>"]
    if verdicts is None or verdicts.empty:
        body.append("<p>This configuration has no claims.</p>")
    else:
        body.append(f"<p>{esc(_counts(verdicts))}</p>")
        body += [_html_section(sec) for sec in claim_sections(verdicts)]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n<style>{PAGE_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def write_claims_page(inputs: Inputs, out: str | Path) -> Path:
    out = Path(out)
    with atomic_path(out) as tmp:
        tmp.write_text(claims_page(inputs.claims, "Claims: verdicts"), encoding="utf-8")
    log.info("wrote %s", out)
    return out


def _claims_figure(figdir, out: Path) -> str | None:
    """Link to the forest plot (figures/claims.png) when it exists."""
    p = Path(figdir) / "claims.png" if figdir else None
    if p is None or not p.exists():
        return None
    return Path(os.path.relpath(p.resolve(), out.resolve().parent)).as_posix()


def intervals_section(inputs: Inputs) -> str | None:
    """GNSDR / GSIR / GSAR of every run with its 95 % interval: over clips per replicate
    (bootstrap), and across replicates where there are several (t interval)."""
    t = inputs.intervals
    if t is None or t.empty:
        return None
    rows = []
    for (variant, step, rep), g in t.groupby(["variant", "step", "replicate"], sort=False):
        cells = []
        for src in ("voice", "accompaniment"):
            for m in ("gnsdr", "gsir", "gsar"):
                x = g[(g["source"] == src) & (g["metric"] == m)]
                cells.append(
                    "—"
                    if x.empty
                    else f"{x['estimate'].iloc[0]:.2f} [{x['lo'].iloc[0]:.2f}, "
                    f"{x['hi'].iloc[0]:.2f}]"
                )
        what = "seeds" if str(rep) == "all" else "clips"
        rows.append([f"`{variant}`", fmt_int(step), str(rep), what, *cells])
    heads = ["run", "step", "replicate", "interval over"] + [
        f"{s} {m}" for s in ("voice", "acc.") for m in ("GNSDR", "GSIR", "GSAR")
    ]
    return md_table(heads, rows)


# ----------------------------------------------------------------------------- methods
METHOD_HEADERS = [
    "Method", "Family", "Parameters", "Seeds", "Training", "Separation (s per min of audio)",
    *METRIC_HEADERS, "Of the oracle's GNSDR (voice / acc.)",
]  # fmt: skip
# where the Methods section goes when the template does not place it: before the first of these
METHODS_BEFORE = ("\n## Speed", "\n## Figures", "\n## Provenance")


def interval_text(rec: dict, col: str) -> str:
    """``9.81 [9.52, 10.10]``: a value with its 95 % interval (the value alone without one)."""
    v, lo, hi = (_num(rec.get(f"{col}{k}")) for k in ("", "_lo", "_hi"))
    if v is None:
        return DASH
    return f"{v:.2f}" if lo is None or hi is None else f"{v:.2f} [{lo:.2f}, {hi:.2f}]"


def _method_cells(rec: dict) -> list[str]:
    """One line of the Methods table; an oracle is marked as the ceiling it is."""
    oracle = str(rec.get("family")) == "oracle"
    name = f"{rec['label']} (`{rec['method']}`)" if _given(rec.get("method")) else rec["label"]
    trains = str(rec.get("trains")).lower() not in ("false", "0")
    seeds = txt(rec.get("seeds")) if trains and _given(rec.get("seeds")) else "deterministic"
    n = _num(rec.get("replicates"))
    if trains and n is not None:
        seeds = f"{int(n)} ({seeds})"
    minutes, rate = _num(rec.get("training_minutes")), _num(rec.get("separation_s_per_min"))
    frac = [_num(rec.get(f"oracle_fraction_{s}")) for s in refs.SOURCES]
    return [
        f"_{name} (ceiling)_" if oracle else name,
        txt(rec.get("family")),
        fmt_int(rec.get("parameters")),
        seeds,
        DASH if minutes is None else f"{minutes:,.1f} min",
        DASH if rate is None else f"{rate:,.2f} s",
        *[interval_text(rec, f"{s}_{m}") for s in refs.SOURCES for m in refs.METRICS],
        DASH if None in frac else f"{frac[0]:.2f} / {frac[1]:.2f}",
    ]


def _methods_scale(inputs: Inputs, recs: list[dict]) -> str:
    """The line under the table: scale, clips, seeds, what the intervals and times cover."""
    sc = scale_info(inputs.meta, inputs.rows)
    clips = sorted({int(n) for n in (_num(r.get("clips")) for r in recs) if n is not None})
    minutes = max((_num(r.get("audio_minutes")) or 0.0 for r in recs), default=0.0)
    seeds = sorted(
        {int(_num(r["replicates"])) for r in recs
         if str(r.get("trains")).lower() not in ("false", "0") and _num(r.get("replicates"))}
    )  # fmt: skip
    seeds_text = DASH if not seeds else f"{seeds[0]}" + (f"–{seeds[-1]}" if len(seeds) > 1 else "")
    units = sorted({str(r["resampled_by"]) for r in recs if _given(r.get("resampled_by"))})
    scale = sc["name"] + (f" ({sc['details']})" if sc["details"] else "")
    return (
        f"Scale: {scale}; {'/'.join(map(str, clips)) or DASH} test clips"
        + (f" ({minutes:.1f} min of audio)" if minutes else "")
        + f"; learned methods: {seeds_text} "
        "seed(s) each.  Each number is the mean over the seeds of the length-weighted metric "
        "(dB) with its 95 % interval over the test clips, resampled by "
        f"{'/'.join(units) or 'singer'}, and, with several seeds, the seed-to-seed variance "
        "(t interval); training-free and oracle methods are deterministic (clips only).  "
        "**Oracle rows separate with the true sources: they are ceilings, not methods.**  "
        "Separation: the separate jobs' wall seconds summed over shards per minute of "
        "evaluated audio, process start-up and model loading included."
    )


def methods_section(inputs: Inputs, figdir=None, out: Path = Path("report.md")) -> str | None:
    """The "## Methods" section (Markdown): the table, the line on scale and intervals, the
    reasons of empty cells and the figure; None without a methods table."""
    m = inputs.methods
    if m is None or m.empty:
        return None
    recs = m.to_dict("records")
    table = md_table(METHOD_HEADERS, [_method_cells(r) for r in recs], "ll" + "r" * 11)
    parts = ["## Methods", table, _methods_scale(inputs, recs)]
    notes = [f"- {r['label']}: {r['note']}" for r in recs if _given(r.get("note"))]
    if notes:
        parts.append("Notes (empty cells, resampling):\n\n" + "\n".join(notes))
    p = Path(figdir) / "methods.png" if figdir else None
    if p is not None and p.exists():
        link = Path(os.path.relpath(p.resolve(), out.resolve().parent)).as_posix()
        parts.append(f"![Voice GNSDR vs parameters, 95 % intervals; oracle = ceiling]({link})")
    return "\n\n".join(parts) + "\n"


def place_section(text: str, section: str | None) -> str:
    """``text`` with ``section`` before the first heading of ``METHODS_BEFORE`` (at the end
    without one), unless the template placed it already (its ``{{ methods }}``)."""
    if not section or section.splitlines()[0] in text.splitlines():
        return text
    at = min((i for i in (text.find(h) for h in METHODS_BEFORE) if i >= 0), default=-1)
    if at < 0:
        return text.rstrip("\n") + "\n\n" + section
    return text[: at + 1] + section + "\n" + text[at + 1 :]


def build_context(inputs: Inputs, figdir=None, out: str | Path = "report.md") -> dict:
    out = Path(out)
    t = Tables(inputs)
    sc = scale_info(inputs.meta, inputs.rows)
    abl, n_abl = t.ablations()
    statuses = [r for r in t.recs if not str(r["status"]).startswith("ok")]
    return {
        "title": inputs.meta.get("title")
        or "Singing-voice separation with stacked hourglass networks on MIR-1K",
        "scale": sc,
        "reduced": sc["reduced"],
        "table1": t.table1(),
        "table2": t.table2(),
        "ablations": abl,
        "n_ablations": n_abl,
        "ablation_notes": t.ablation_notes(),
        "not_reproduced": t.not_reproduced(),
        "all_runs": t.all_runs(),
        "problems": [
            f"`{r['variant']}` step {int(r['iterations']):,}: {r['status']}" for r in statuses
        ],
        "speed": speed_section(inputs, t),
        "claims": claims_section(inputs, figdir, out),
        "intervals": intervals_section(inputs),
        "methods": methods_section(inputs, figdir, out),
        "figures": figure_links(figdir, out),
        "figures_dir": str(figdir) if figdir else None,
        "provenance": provenance(inputs),
        "park": {"arxiv": refs.PARK_ARXIV, "citation": refs.PARK_CITATION},
        "version": __version__,
        "meta": inputs.meta,
    }


def render(context: dict, template: str | Path) -> str:
    import jinja2

    template = Path(template)
    if not template.exists():
        raise UserError(
            f"{template}: report template not found (the repository ships reports/report.md.j2)"
        )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template.resolve().parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    try:
        return env.get_template(template.name).render(**context)
    except jinja2.TemplateError as exc:
        where = f"{template}:{exc.lineno}" if getattr(exc, "lineno", None) else str(template)
        raise UserError(f"{where}: cannot render the report template ({exc})") from None


def write_report(inputs: Inputs, template: str | Path, out: str | Path, figdir=None) -> Path:
    out = Path(out)
    context = build_context(inputs, figdir, out)
    text = place_section(render(context, template), context["methods"])
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    log.info("wrote %s", out)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs_arguments(p)
    p.add_argument(
        "--figures",
        default=None,
        metavar="DIR",
        help="folder holding the PNG figures (linked relatively)",
    )
    p.add_argument(
        "--template", default="reports/report.md.j2", metavar="J2", help="Jinja2 Markdown template"
    )
    p.add_argument("-o", "--output", required=True, metavar="MD", help="report to write")
    p.add_argument(
        "--claims-html",
        default=None,
        metavar="HTML",
        help="also write the Claims table as an HTML page (the Snakemake report's Claims page)",
    )


def run(args: argparse.Namespace) -> int:
    inputs = inputs_from_args(args)
    if args.figures and not Path(args.figures).is_dir():
        log.warning(
            "%s: figures folder not found; the report lists the figures as missing", args.figures
        )
    write_report(inputs, args.template, args.output, args.figures)
    if args.claims_html:
        write_claims_page(inputs, args.claims_html)
    return 0

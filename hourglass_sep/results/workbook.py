"""``result.xlsx``: the experiment log of the report, regenerated from measured numbers.

The inputs are read by :mod:`hourglass_sep.results.run_inputs` (shared with ``figures`` and
``report``); :func:`experiment_table` is also the report's table of every run.

Sheets:

- ``experiments``: one row per (variant, evaluated step): the report's log columns
  (architecture, parameters, training settings, device, train time, test clips,
  scoring time) and the six metrics, each beside the value the report (or
  Park's paper) printed and, at paper scale, the difference measured - reported; at a
  reduced scale that difference would measure the scale gap, so it is replaced by what
  stays comparable: each run's rank among the runs of the same paper-scale step,
  measured and reported (:func:`add_ranks`);
- ``per_clip``: every per-clip score row;
- ``training``: the loss histories in long format;
- ``speed``: measured timings (``speed.tsv``) and the report's timing claims;
- ``methods`` (with ``--methods``): the Methods table of ``hourglass-sep methods``, our
  networks beside the peer methods and the oracles, each metric with its 95 % interval;
- ``references``: the 19 rows of the report's log and Park's paper, with sources;
- ``about``: provenance (preset, scale, dataset, inputs, date, package version).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import math
from pathlib import Path

import pandas as pd

from hourglass_sep import __version__
from hourglass_sep.data.audio import atomic_path
from hourglass_sep.errors import UserError
from hourglass_sep.nets.settings import TARGETS
from hourglass_sep.results import published as refs
from hourglass_sep.results.run_inputs import (
    inputs_from_args,
    Inputs,
    add_inputs_arguments,
    load_inputs,
    reported_comment,
    reported_source,
    reported_value,
    scale_info,
)
from hourglass_sep.results.run_inputs import num as _num

log = logging.getLogger(__name__)

METRICS = refs.METRICS
SOURCES = refs.SOURCES
MN = refs.METRIC_NAMES
DASH = "—"
# outputs of the network per training target (settings is torch-free)
TARGET_OUTPUTS = {name: outputs for name, (outputs, _what) in TARGETS.items()}


def metric_col(src: str, metric: str, kind: str = "") -> str:
    """Column name of a metric in the experiments table: ``voice GNSDR``
    (+ `` reported`` / `` diff``)."""
    base = f"{src} {MN[metric]}"
    return f"{base} {kind}" if kind else base


# ----------------------------------------------------------------------------- derived values
def _lr_decay(train: dict) -> str:
    every = train.get("lr_decay_every") or 0
    if not every:
        return "none"
    return f"x{train.get('lr_decay_factor', 0.2):g} every {int(every):,}"


def train_seconds(inputs: Inputs, row: dict) -> tuple[float | None, str]:
    """Training time up to the evaluated step, and how it was obtained."""
    info = inputs.train_info(row) or {}
    wall = _num(info.get("wall_seconds"))
    steps = _num(info.get("steps"))
    step = row["step"]
    if wall is not None and (steps is None or step >= steps):
        return wall, "train.json wall_seconds"
    hist = inputs.history(row)
    if hist is not None and "seconds" in hist.columns:
        sec = pd.to_numeric(hist["seconds"], errors="coerce")
        if sec.notna().all() and sec.is_monotonic_increasing:
            upto = hist["step"] <= step
            if upto.any():
                return float(
                    sec[upto].iloc[-1]
                ), f"history.csv at step {int(hist['step'][upto].iloc[-1])}"
    if wall is not None and steps:
        return wall * step / steps, "train.json wall_seconds, pro rata"
    return None, "no train.json"


def row_status(inputs: Inputs, row: dict, summ: dict | None) -> str:
    status = row.get("status")
    if status and str(status) != "ok":
        return str(status)
    if summ is None:
        if inputs.train_info(row):
            return "trained, not scored"
        return "not trained" if row.get("train_info") else "no results"
    failed = int(_num(summ.get("failed")) or 0)
    if not failed:
        return "ok"
    total = failed + int(_num(summ.get("clips")) or 0)
    why = summ["failure"].strip() if isinstance(summ.get("failure"), str) else ""  # from aggregate
    if failed == total:
        return f"no result: all {total} clips failed{f' ({why})' if why else ''}"
    return f"ok ({failed} of {total} clips failed{f': {why}' if why else ''})"


def experiment_table(inputs: Inputs) -> pd.DataFrame:
    """The ``experiments`` sheet as a DataFrame (one row per experiments.json row):
    ``diff`` columns at paper scale, rank columns (:func:`add_ranks`) at a reduced one."""
    reduced = scale_info(inputs.meta, inputs.rows)["reduced"]
    recs = []
    for row in inputs.rows:
        arch = row.get("arch") or {}
        train = row.get("train") or {}
        summ = inputs.summary_row(row)
        info = inputs.train_info(row) or {}
        secs, _ = train_seconds(inputs, row)
        clips = inputs.clip_scores(row)
        test_time = None
        if clips is not None and "seconds" in clips.columns:
            test_time = float(pd.to_numeric(clips["seconds"], errors="coerce").sum())
        target = arch.get("target", "masks")
        rec = {
            "label": row.get("label") or row["variant"],
            "variant": row["variant"],
            "note": row.get("note", ""),
            "report row": row.get("report_row"),
            "status": row_status(inputs, row, summ),
            "stacks": arch.get("stacks"),
            "first-level channels": arch.get("channels"),
            "growth": arch.get("growth"),
            "outputs / target": f"{TARGET_OUTPUTS.get(target, '?')} ({target})",
            "parameters": row.get("parameters")
            if row.get("parameters") is not None
            else info.get("parameters"),
            "iterations": row["step"],
            "paper-scale step": row.get("paper_step", row["step"]),
            "lr": train.get("lr"),
            "lr decay": _lr_decay(train),
            "sampling": train.get("sampling"),
            "BN statistics": (
                f"precise ({train['precise_bn']} batches)"
                if train.get("precise_bn")
                else "running averages"
            ),
            "weights": (
                f"moving average (decay {train['weight_average']:g})"
                if train.get("weight_average")
                else "last step"
            ),
            "device": info.get("device"),
            "train time (s)": secs,
            "test clips": None if summ is None else _num(summ.get("clips")),
            "failed clips": None if summ is None else _num(summ.get("failed")),
            "test time (s)": test_time,
        }
        rec.update(_metric_cells(row, summ, with_diff=not reduced))
        rec["reported source"] = reported_source(row) or (row.get("reported_note") or "")
        rec["scorer"] = None if summ is None else summ.get("scorer")
        recs.append(rec)
    df = pd.DataFrame.from_records(recs)
    return add_ranks(df) if reduced else df


def _metric_cells(row: dict, summ: dict | None, with_diff: bool) -> dict:
    """The six metrics of a run: measured, reported and (paper scale) measured - reported."""
    cells = {}
    for src in SOURCES:
        for m in METRICS:
            meas = None if summ is None else _num(summ.get(f"{src}_{m}"))
            rep = reported_value(row, src, m)
            cells[metric_col(src, m)] = meas
            cells[metric_col(src, m, "reported")] = rep
            if with_diff:
                cells[metric_col(src, m, "diff")] = (
                    None if meas is None or rep is None else meas - rep
                )
    return cells


def add_ranks(df: pd.DataFrame) -> pd.DataFrame:
    """Rank columns for a reduced-scale table: per metric, ``<metric> rank`` and
    ``<metric> reported rank`` (1 = highest) among the runs of the same paper-scale step
    that have both a measured and a reported value, and ``ranked among`` (how many).

    The report compared runs trained for the same number of iterations (1,000 for the
    ablations, 15,000 for its main rows); a reduced-scale run keeps that grouping through
    its paper-scale step, so the orderings compare where the absolute values cannot.
    A group of one is not an ordering: its cells stay empty.
    """
    df = df.copy()
    group = df["paper-scale step"]
    among = None  # the group sizes shown: those of the first metric
    for src in SOURCES:
        for m in METRICS:
            meas, rep = metric_col(src, m), metric_col(src, m, "reported")
            both = df[meas].notna() & df[rep].notna()
            size = both.groupby(group).transform("sum")
            ok = both & (size >= 2)
            for col, kind in ((meas, "rank"), (rep, "reported rank")):
                ranks = df[col].where(ok).groupby(group).rank(ascending=False, method="min")
                df[metric_col(src, m, kind)] = ranks.where(ok)
            if among is None:
                among = size.where(ok)
    df["ranked among"] = among
    order = []  # each metric's ranks beside its values, where the diff would be
    for c in df.columns:
        if c.endswith(" rank") or c == "ranked among":
            continue
        order.append(c)
        src_m = [(s, m) for s in SOURCES for m in METRICS if c == metric_col(s, m, "reported")]
        if src_m:
            order += [metric_col(*src_m[0], "rank"), metric_col(*src_m[0], "reported rank")]
        if c == "paper-scale step":
            order.append("ranked among")
    return df[order]


def training_table(inputs: Inputs) -> pd.DataFrame:
    """All loss histories, long format: variant, step, loss, loss_stack1..N, lr, seconds."""
    frames, seen = [], set()
    for row in inputs.rows:
        if row["variant"] in seen:
            continue
        seen.add(row["variant"])
        h = inputs.history(row)
        if h is not None and len(h):
            frames.append(
                pd.concat([pd.DataFrame({"variant": [row["variant"]] * len(h)}), h], axis=1)
            )
    if not frames:
        return pd.DataFrame(
            {
                "note": [
                    "no loss history was found (no variant trained, or history.csv paths missing)"
                ]
            }
        )
    df = pd.concat(frames, ignore_index=True)
    stack_cols = sorted(
        (c for c in df.columns if c.startswith("loss_stack")), key=lambda c: (len(c), c)
    )
    first = ["variant", "step", "loss", *stack_cols]
    return df[first + [c for c in df.columns if c not in first]]


def speed_table(inputs: Inputs) -> pd.DataFrame:
    """Measured timings (speed.tsv) followed by the report's timing claims."""
    claims = pd.DataFrame(
        [
            {
                "what": c.what,
                "device": c.device,
                "seconds": c.seconds,
                "detail": c.note,
                "source": c.source,
            }
            for c in refs.TIMING_CLAIMS
        ]
    )
    if inputs.speed is None:
        note = pd.DataFrame(
            [
                {
                    "what": "(no speed table was given: measured timings not available)",
                    "source": "measured",
                }
            ]
        )
        return pd.concat([note, claims], ignore_index=True)
    meas = inputs.speed.copy()
    meas["source"] = "measured"
    return pd.concat([meas, claims], ignore_index=True)


def about_table(inputs: Inputs) -> pd.DataFrame:
    sc = scale_info(inputs.meta, inputs.rows)
    items = [
        ("generated", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("package", f"hourglass-sep {__version__}"),
        ("preset", sc["preset"] or ""),
        ("scale", sc["name"] + (f" ({sc['details']})" if sc["details"] else "")),
        (
            "reduced scale",
            "yes: measured values are not comparable with the reported ones; the rank columns "
            "compare orderings within a paper-scale step"
            if sc["reduced"]
            else "no",
        ),
    ]
    for k, v in inputs.meta.items():
        if k in ("preset",):
            continue
        items.append(
            (f"meta.{k}", json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else str(v))
        )
    for k, v in inputs.sources.items():
        items.append((f"input.{k}", ", ".join(v) if isinstance(v, list) else (v or "")))
    items.append(("reference", refs.PARK_CITATION))
    items.append(("report code", refs.REPORT_CODE))
    return pd.DataFrame(items, columns=["key", "value"])


# ----------------------------------------------------------------------------- writing
METHODS_FORMATS = {
    "training_minutes": "#,##0.00",
    "separation_s_per_min": "#,##0.00",
    "audio_minutes": "#,##0.00",
    "replicates": "0",
    "oracle_fraction_voice": "0.000",
    "oracle_fraction_accompaniment": "0.000",
}


def _formats_for(sheet: str, col: str) -> str | None:
    lc = col.lower()
    if sheet == "methods" and lc in METHODS_FORMATS:
        return METHODS_FORMATS[lc]
    if lc.endswith(" rank") or lc == "ranked among":
        return "0"
    if any(lc.startswith(f"{s} {MN[m].lower()}") for s in SOURCES for m in METRICS):
        return "0.000"
    if any(lc.startswith(f"{s}_") for s in SOURCES):  # per-clip metrics
        return "0.000"
    if lc == "parameters":
        return "#,##0"
    if lc in ("train time (s)", "test time (s)"):
        return "#,##0.0"
    if lc == "seconds":
        return "#,##0.000" if sheet == "speed" else "#,##0.00"
    if lc in (
        "iterations",
        "paper-scale step",
        "step",
        "samples",
        "test clips",
        "failed clips",
        "report row",
        "row",
        "clips",
        "failed",
        "total_samples",
    ):
        return "#,##0"
    if lc == "loss" or lc.startswith("loss_stack"):
        return "0.000000"
    return None


def _display_len(v) -> int:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return 0
    if isinstance(v, float):
        return len(f"{v:,.3f}")
    if isinstance(v, int):
        return len(f"{v:,}")
    return len(str(v))


def _style_sheet(
    ws, df: pd.DataFrame, sheet: str, freeze: str = "A2", comments: dict | None = None
) -> None:
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    head_fill = PatternFill("solid", start_color="DDE3EA", end_color="DDE3EA")
    for j, col in enumerate(df.columns, start=1):
        cell = ws.cell(row=1, column=j)
        cell.font = Font(bold=True)
        cell.fill = head_fill
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        fmt = _formats_for(sheet, str(col))
        if fmt:
            for i in range(2, len(df) + 2):
                ws.cell(row=i, column=j).number_format = fmt
        values = df[col].tolist()[:2000]
        width = max([min(len(str(col)), 18)] + [_display_len(v) for v in values]) + 2
        if str(col) in ("note", "reported source", "source", "change", "value", "detail"):
            width = min(width, 60)
        ws.column_dimensions[get_column_letter(j)].width = max(
            7, min(width, 45 if str(col) not in ("note", "value") else 70)
        )
    ws.row_dimensions[1].height = 32
    ws.freeze_panes = freeze
    if len(df.columns) and len(df):
        ws.auto_filter.ref = f"A1:{get_column_letter(len(df.columns))}{len(df) + 1}"
    for (r, c), text in (comments or {}).items():
        cm = Comment(text, "hourglass-sep")
        cm.width, cm.height = 260, 80
        ws.cell(row=r, column=c).comment = cm


HEADER_NOTES = {
    "report row": "row of the report's result.xlsx this run reproduces (references sheet)",
    "iterations": "training step of the evaluated model (at this run's scale)",
    "paper-scale step": "the step the report evaluated (before scaling)",
    "parameters": "trainable parameters of the network at this run's scale",
    "train time (s)": (
        "wall-clock training time up to the evaluated step (train.json / history.csv)"
    ),
    "test time (s)": "scoring time: sum of the per-clip BSS Eval seconds",
    "test clips": "test clips scored (length-weighted means over them)",
    "ranked among": (
        "reduced scale: how many runs of this paper-scale step have both a measured and a "
        "reported value (the rank columns order them)"
    ),
}


CLAIMS_SHEET_COLUMNS = [
    "id", "statement", "source", "metric", "compare", "expect", "verdict", "effect", "lo", "hi",
    "unit", "margin", "p_value", "p_method", "n_clips", "n_replicates", "variance", "detail",
    "evidence",
]  # fmt: skip


def claims_sheet(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdicts table without its per-pair JSON (that stays in the claims TSV)."""
    return verdicts[[c for c in CLAIMS_SHEET_COLUMNS if c in verdicts.columns]]


def _workbook_sheets(inputs: Inputs, exp: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The sheets in workbook order: claims (when given) first, methods (when given) after
    experiments, intervals (when given) last."""
    per_clip = (
        inputs.scores
        if inputs.scores is not None
        else pd.DataFrame({"note": ["no per-clip score tables were given"]})
    )
    sheets = {
        "experiments": exp,
        "per_clip": per_clip,
        "training": training_table(inputs),
        "speed": speed_table(inputs),
        "references": pd.DataFrame.from_records(refs.reference_records()),
        "about": about_table(inputs),
    }
    if inputs.methods is not None:  # beside the experiments: the same runs, compared as methods
        sheets = {"experiments": exp, "methods": inputs.methods, **sheets}
    if inputs.claims is not None:  # the verdicts first: they are what a reader looks for
        sheets = {"claims": claims_sheet(inputs.claims), **sheets}
    if inputs.intervals is not None:
        sheets["intervals"] = inputs.intervals
    return sheets


_COLUMN_NOTES = {
    "diff": "measured - reported (dB); green >= 0, red < 0",
    "rank": (
        "rank of the measured value (1 = highest) among the runs of the same paper-scale step "
        "that have a reported value; at a reduced scale the orderings compare, the values do "
        "not; green: same rank as reported"
    ),
    "reported rank": "rank of the reported value among the same runs (1 = highest)",
}


def _experiment_comments(inputs: Inputs, cols: list[str]) -> dict[tuple[int, int], str]:
    """Cell comments of the experiments sheet, keyed by (row, column), 1-based.

    Headers say what each column measures and where it comes from; the reported cells say
    which source printed the number, so a reader can check it without the docs.
    """
    comments: dict[tuple[int, int], str] = {}
    for name, text in HEADER_NOTES.items():
        if name in cols:
            comments[(1, cols.index(name) + 1)] = text
    for src in SOURCES:
        for m in METRICS:
            comments[(1, cols.index(metric_col(src, m)) + 1)] = (
                f"measured {src} {MN[m]} (dB): length-weighted mean over the test clips "
                "(summary.tsv)"
            )
            comments[(1, cols.index(metric_col(src, m, "reported")) + 1)] = (
                f"{src} {MN[m]} (dB) printed by the report / Park's paper for this row "
                "(references sheet)"
            )
            for kind, text in _COLUMN_NOTES.items():
                if metric_col(src, m, kind) in cols:
                    comments[(1, cols.index(metric_col(src, m, kind)) + 1)] = text
    for i, row in enumerate(inputs.rows):
        text = reported_comment(row)
        for src in SOURCES:
            for m in METRICS:
                comments[(i + 2, cols.index(metric_col(src, m, "reported")) + 1)] = text
        if row.get("note"):
            comments[(i + 2, 1)] = str(row["note"])
    return comments


def _highlight_experiments(ws, exp: pd.DataFrame) -> None:
    """Colour the measured - reported columns (green >= 0, red < 0) and bold the measured
    ones, so the comparison with the report reads at a glance."""
    from openpyxl.formatting.rule import FormulaRule
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    cols = list(exp.columns)
    green = PatternFill("solid", start_color="C6EFCE", end_color="C6EFCE")
    red = PatternFill("solid", start_color="FFC7CE", end_color="FFC7CE")
    n = len(exp) + 1
    for src in SOURCES:
        for m in METRICS:
            if metric_col(src, m, "diff") in cols:
                L = get_column_letter(cols.index(metric_col(src, m, "diff")) + 1)
                good, bad = f"{L}2>=0", f"{L}2<0"
            else:  # reduced scale: the measured rank agrees with the reported one, or not
                L = get_column_letter(cols.index(metric_col(src, m, "rank")) + 1)
                R = get_column_letter(cols.index(metric_col(src, m, "reported rank")) + 1)
                good, bad = f"{L}2={R}2", f"{L}2<>{R}2"
            rng = f"{L}2:{L}{max(n, 2)}"
            for cond, fill in ((good, green), (bad, red)):
                ws.conditional_formatting.add(
                    rng, FormulaRule(formula=[f"AND(ISNUMBER({L}2),{cond})"], fill=fill)
                )
            jm = cols.index(metric_col(src, m)) + 1
            for i in range(2, n + 1):
                ws.cell(row=i, column=jm).font = Font(bold=True)


def write_workbook(inputs: Inputs, out: str | Path) -> Path:
    """Write ``result.xlsx`` atomically; returns its path."""
    out = Path(out)
    exp = experiment_table(inputs)
    sheets = _workbook_sheets(inputs, exp)
    comments = _experiment_comments(inputs, list(exp.columns))
    with atomic_path(out) as tmp:
        with pd.ExcelWriter(tmp, engine="openpyxl") as xw:
            for name, df in sheets.items():
                df.to_excel(xw, sheet_name=name, index=False)
                ws = xw.sheets[name]
                _style_sheet(
                    ws,
                    df,
                    name,
                    freeze="C2" if name == "experiments" else "A2",
                    comments=comments if name == "experiments" else None,
                )
            _highlight_experiments(xw.sheets["experiments"], exp)
    log.info("wrote %s (%d experiment rows)", out, len(exp))
    return out


# ----------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs_arguments(p)
    p.add_argument(
        "-o", "--output", required=True, metavar="XLSX", help="workbook to write (result.xlsx)"
    )


def run(args: argparse.Namespace) -> int:
    if not str(args.output).lower().endswith(".xlsx"):
        raise UserError(f"{args.output}: the workbook must end in .xlsx")
    inputs = inputs_from_args(args)
    write_workbook(inputs, args.output)
    return 0

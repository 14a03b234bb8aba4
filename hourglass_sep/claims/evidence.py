"""The report's evidence for a claim as one sentence with its numbers and rows, e.g.
``Ours @15000 10.28 vs Park's 10.43 dB voice GNSDR (rows 15, 16)``.

A claim names the rows of the report's experiment log it rests on (its ``rows: [15, 16]``; an
older claims file: ``evidence: {rows: [...]}`` or ``{row: 11}``), and its ``evidence`` may add
a remark (``note``, ``result``...).  The numbers of those rows are not copied again here:
they come from the experiment log itself, one mapping row -> ``{label, voice, accompaniment,
note}`` (:func:`reported_from_experiments`, :func:`reported_from_config`), over the
published numbers of :mod:`hourglass_sep.results.published` for rows this configuration does
not run.  The verdict table's ``evidence`` column then reads like the report's own comparison
instead of a JSON dump, and a number cannot drift from the log it was taken from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from hourglass_sep.results import published as refs

METRIC_INDEX = {m: i for i, m in enumerate(refs.METRICS)}  # the report prints no GSDR
TEXT_KEYS = ("note", "result", "source")  # evidence remarks printed without their key


# ----------------------------------------------------------------------------- the rows
def _values(vals) -> list | None:
    """[GNSDR, GSIR, GSAR] of one source, from the config's list or experiments.json's dict."""
    if vals is None:
        return None
    if isinstance(vals, Mapping):
        return [vals.get(m) for m in refs.METRICS]
    return list(vals)


def _entry(label: str, reported, note=None) -> dict:
    rep = reported or {}
    return {
        "label": label,
        **{s: _values(rep.get(s)) for s in refs.SOURCES},
        "note": note or "",
    }


def published_rows() -> dict[int, dict]:
    """Every row of the report's log as printed, labelled as the report's tables do (else by
    the row's change): the fallback for rows a configuration does not run."""
    return {
        r.row: _entry(refs.TABLE_LABELS.get(r.row) or r.change, r.reported(), r.note)
        for r in refs.REPORT_ROWS
    }


def _row_label(n: int, label: str) -> str:
    """The run's label, except for Park's paper: its row's numbers are the paper's, whatever
    run of this configuration re-implements it."""
    return refs.TABLE_LABELS[n] if n == refs.PARK_PAPER_ROW else label


def _paper_label(row: dict) -> str:
    """experiments.json's label with its step at paper scale (the step the report's numbers
    were printed for), not the preset's reduced one."""
    label = str(row.get("label") or row["variant"])
    base, at, _ = label.rpartition(" @")
    if not at:
        return label
    return f"{base} @{int(row.get('paper_step') or row['step'])}"


def _put(out: dict, n: int, entry: Mapping, label: str) -> None:
    """Row ``n``'s numbers (the entry's ``reported``, else the published table's) with its
    label and note, over what ``out`` holds."""
    rep = entry["reported"] if "reported" in entry else refs.reported_of(n)
    note = entry.get("reported_note") or out.get(n, {}).get("note")
    out[n] = _entry(_row_label(n, label), rep, note)


def reported_from_experiments(rows: Iterable[dict]) -> dict[int, dict]:
    """row -> ``{label, voice, accompaniment, note}`` from experiments.json's rows (those with
    a ``report_row``), over :func:`published_rows`."""
    out = published_rows()
    for r in rows:
        if r.get("report_row") is None:
            continue
        _put(out, int(r["report_row"]), r, _paper_label(r))
    return out


def _config_label(name: str, spec: Mapping, entry: Mapping, steps: set) -> str:
    label = str(spec.get("label") or name)
    if entry.get("replicate"):
        label = f"{label} (replicate {int(entry['replicate'])})"
    return f"{label} @{int(entry['step'])}" if len(steps) > 1 else label


def reported_from_config(config: Mapping) -> dict[int, dict]:
    """row -> ``{label, voice, accompaniment, note}`` from config.yaml's variants (each
    ``evaluate`` entry with a ``report_row``: paper-scale steps), over :func:`published_rows`."""
    out = published_rows()
    for name, spec in (config.get("variants") or {}).items():
        entries = spec.get("evaluate") or []
        steps = {int(e["step"]) for e in entries}
        for e in entries:
            if e.get("report_row") is None:
                continue
            _put(out, int(e["report_row"]), e, _config_label(name, spec, e, steps))
    return out


# ----------------------------------------------------------------------------- the sentence
def claim_rows(claim: Mapping) -> list[int]:
    """The report rows a claim rests on: its ``rows`` (a list or "15, 16", as the verdict
    table writes it), else its evidence's ``rows`` or ``row``."""
    given = claim.get("rows")
    ev = claim.get("evidence")
    if not given and isinstance(ev, Mapping):
        given = ev.get("rows", ev.get("row"))
    if given is None or (isinstance(given, float) and math.isnan(given)):
        return []
    if isinstance(given, str):
        given = [x for x in given.replace(";", ",").split(",") if x.strip()]
    elif not isinstance(given, (list, tuple)):
        given = [given]
    return [int(x) for x in given]


def _number(entry: Mapping | None, source: str, metric: str) -> float | None:
    vals = (entry or {}).get(source)
    i = METRIC_INDEX.get(metric)
    if vals is None or i is None or i >= len(vals) or vals[i] is None:
        return None
    return float(vals[i])


def _digits(values: Iterable[float]) -> int:
    """Two decimals, three where two decimals would print different numbers alike (the
    report's GSAR 12.531 vs Park's 12.53)."""
    vals = set(values)
    return 2 if len({round(v, 2) for v in vals}) == len(vals) else 3


def _threshold(claim: Mapping, source: str, metric: str) -> float | None:
    """The claim's threshold for one source (and metric, for a claim on several)."""
    t = (claim.get("compare") or {}).get("threshold")
    if isinstance(t, Mapping):
        t = t.get(source)
    if isinstance(t, Mapping):
        t = t.get(metric)
    return None if t is None else float(t)


def _clause(claim, source, metric, rows, reported, first: bool) -> str | None:
    """``A 10.28 vs B 10.43 dB voice GNSDR`` (labels only in the first clause of a sentence),
    or ``A -1.60 dB accompaniment GNSDR vs the threshold 0 dB``; None without numbers."""
    items = [
        (reported.get(r, {}).get("label") or f"row {r}", _number(reported.get(r), source, metric))
        for r in rows
    ]
    items = [(label, v) for label, v in items if v is not None]
    if not items:
        return None
    t = _threshold(claim, source, metric)
    named = [label for label, v in items if t is not None and v == t]  # the threshold's row
    shown = [(label, v) for label, v in items if label not in named] or items
    d = _digits([v for _, v in shown] + ([] if t is None else [t]))
    parts = [f"{label} {v:.{d}f}" if first else f"{v:.{d}f}" for label, v in shown]
    what = f"dB {source} {refs.METRIC_NAMES.get(metric, metric.upper())}"
    if t is None:
        return f"{' vs '.join(parts)} {what}"
    by = ", ".join(named) or claim.get("threshold_source") or ""
    return f"{', '.join(parts)} {what} vs the threshold {t:g} dB" + (f" ({by})" if by else "")


def _remarks(evidence) -> list[str]:
    """The evidence's words (``note``, ``result``, ``same_config_rerun``...), in its order."""
    if isinstance(evidence, str):
        return [evidence]
    if not isinstance(evidence, Mapping):
        return []
    out = []
    for key, value in evidence.items():
        if isinstance(value, str) and value.strip():
            out.append(value if key in TEXT_KEYS else f"{key.replace('_', ' ')}: {value}")
    return out


def _parts(claim: Mapping, source: str | None, metric: str | None) -> list[tuple[str, str]]:
    """(source, metric) of each clause: the given ones, else the claim's sources x metrics."""
    src = source or claim.get("source") or "both"
    sources = list(refs.SOURCES) if src == "both" else [src] if src in refs.SOURCES else []
    metrics = [metric] if metric else list(claim.get("metrics") or [claim.get("metric") or ""])
    return [(s, m) for m in metrics for s in sources]


def evidence_sentence(
    claim: Mapping,
    reported: Mapping[int, Mapping],
    source: str | None = None,
    metric: str | None = None,
) -> str:
    """The report's evidence for ``claim`` as one sentence: the printed numbers of its rows
    for its metric(s) and source(s), the rows, then the evidence's remarks.  ``source`` /
    ``metric``: one of them, for a part row of the verdict table (None: the claim's own, for
    its claim-level row).  Empty when the claim names no row and says nothing (a claim the
    report did not make)."""
    rows = claim_rows(claim)
    clauses: list[str] = []
    for s, m in _parts(claim, source, metric):
        c = _clause(claim, s, m, rows, reported, first=not clauses)
        clauses += [c] if c else []
    where = ""
    if rows:
        where = f"row{'s' if len(rows) > 1 else ''} {', '.join(str(r) for r in rows)}"
    remarks = _remarks(claim.get("evidence"))
    if not clauses:  # nothing printed for this metric: the remarks or the rows' notes say why
        notes = [reported[r]["note"] for r in rows if reported.get(r, {}).get("note")]
        head = "; ".join(dict.fromkeys(remarks or notes))
        return f"{head} ({where})" if head and where else head or where
    sentence = "; ".join(clauses) + (f" ({where})" if where else "")
    return "; ".join([sentence, *remarks])

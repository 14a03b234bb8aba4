"""The reader of a run's results inputs, shared by ``workbook``, ``figures`` and ``report``.

Inputs: ``experiments.json`` (the resolved variants, one row per evaluated step),
``summary.tsv`` (``hourglass-sep aggregate``), the per-clip score TSVs, ``speed.tsv``, and
each variant's ``train.json`` and ``history.csv`` (read lazily, on first use).
:func:`load_inputs` reads them once into :class:`Inputs`; a missing or malformed file is a
``UserError`` naming it.  The row-level values derived from the experiments rows (the
reported numbers and where they come from, the run's scale) live here too, since all three
outputs print them.  Pure pandas: no torch, no plotting.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from hourglass_sep.errors import UserError
from hourglass_sep.results import published as refs
from hourglass_sep.scoring.clip_status import screen

log = logging.getLogger(__name__)

SCORE_REQUIRED = ["variant", "step", "clip"]
SUMMARY_REQUIRED = ["variant", "step"]
SPEED_REQUIRED = ["what", "seconds"]


# ----------------------------------------------------------------------------- reading
def _read_text(path: Path, what: str, hint: str) -> str:
    if not path.exists():
        raise UserError(f"{path}: {what} not found; {hint}")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected the {what} file")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the {what} ({exc})") from None


def load_experiments(path: str | Path) -> tuple[dict, list[dict]]:
    """``(meta, rows)`` of an ``experiments.json``: a list of rows or
    ``{"meta": .., "rows": [..]}``."""
    path = Path(path)
    text = _read_text(
        path, "experiment table (experiments.json)", "the workflow writes it from config.yaml"
    )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}: not valid JSON ({exc}); expected the experiments.json the workflow writes"
        ) from None
    if isinstance(data, dict):
        meta, rows = data.get("meta") or {}, data.get("rows")
        if not isinstance(meta, dict):
            raise UserError(f"{path}: 'meta' must be an object, got {type(meta).__name__}")
    else:
        meta, rows = {}, data
    if not isinstance(rows, list):
        raise UserError(
            f"{path}: expected a list of experiment rows or an object "
            "{'meta': ..., 'rows': [...]}"
        )
    out = []
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or "variant" not in r or "step" not in r:
            raise UserError(f"{path}: row {i} is not an object with 'variant' and 'step'")
        try:
            step = int(r["step"])
        except (TypeError, ValueError):
            raise UserError(
                f"{path}: row {i} ({r['variant']}): step {r['step']!r} is not an integer"
            ) from None
        out.append({**r, "variant": str(r["variant"]), "step": step})
    if not out:
        raise UserError(f"{path}: the experiment table holds no rows")
    return meta, out


def read_tsv(path: str | Path, what: str, required: list[str], hint: str = "") -> pd.DataFrame:
    """A TSV as a DataFrame; ``UserError`` naming the file when missing, unreadable or
    lacking columns."""
    path = Path(path)
    _read_text(path, what, hint or "check the path")
    try:
        df = pd.read_csv(path, sep="\t")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(
            f"{path}: cannot read the {what} as a tab-separated table ({exc})"
        ) from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UserError(
            f"{path}: not a {what} (missing columns {missing}; found {list(df.columns)})"
        )
    if "variant" in df.columns:
        df["variant"] = df["variant"].astype(str)
    if "step" in df.columns:
        try:
            df["step"] = pd.to_numeric(df["step"]).astype(int)
        except (ValueError, TypeError):
            raise UserError(f"{path}: the 'step' column of the {what} holds non-integers") from None
    return df


def load_summary(path: str | Path) -> pd.DataFrame:
    return read_tsv(path, "summary table", SUMMARY_REQUIRED, "`hourglass-sep aggregate` writes it")


def load_scores(paths) -> pd.DataFrame | None:
    frames = [
        read_tsv(p, "per-clip score table", SCORE_REQUIRED, "`hourglass-sep score` writes it")
        for p in paths or []
    ]
    frames = [screen(f) for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else None


def load_speed(path: str | Path | None) -> pd.DataFrame | None:
    if not path:
        return None
    df = read_tsv(path, "speed table", SPEED_REQUIRED, "the workflow's speed rule writes it")
    df["seconds"] = pd.to_numeric(df["seconds"], errors="coerce")
    return df


def _resolve(p: str | None, base: Path) -> Path | None:
    """A path from experiments.json: as given (workflow working directory), else beside
    experiments.json."""
    if not p:
        return None
    p = Path(p)
    if p.exists():
        return p
    alt = base / p
    return alt if alt.exists() else None


@dataclass
class Inputs:
    """Everything the results modules read, loaded once."""

    meta: dict
    rows: list[dict]
    summary: pd.DataFrame
    scores: pd.DataFrame | None = None
    speed: pd.DataFrame | None = None
    base: Path = Path(".")
    sources: dict = field(default_factory=dict)  # input name -> path (provenance)
    claims: pd.DataFrame | None = None  # verdicts TSV of `hourglass-sep claims`
    intervals: pd.DataFrame | None = None  # its --intervals TSV
    methods: pd.DataFrame | None = None  # methods.tsv of `hourglass-sep methods`
    _info: dict = field(default_factory=dict, repr=False)
    _hist: dict = field(default_factory=dict, repr=False)

    def train_info(self, row: dict) -> dict | None:
        """The row's ``train.json`` as a dict, or None (logged) when missing or unreadable."""
        key = row.get("train_info")
        if key in self._info:
            return self._info[key]
        info = None
        path = _resolve(key, self.base)
        if key and path is None:
            log.info("%s: train.json %s not found (variant not trained?)", row["variant"], key)
        elif path is not None:
            try:
                info = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(info, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as exc:
                log.warning(
                    "%s: cannot read %s (%s); its training columns stay empty",
                    row["variant"],
                    path,
                    exc,
                )
                info = None
        self._info[key] = info
        return info

    def history(self, row: dict) -> pd.DataFrame | None:
        """The row's ``history.csv`` (step, loss, loss_stack1..N, lr, seconds), or None."""
        key = row.get("history")
        if key in self._hist:
            return self._hist[key]
        hist = None
        path = _resolve(key, self.base)
        if key and path is None:
            log.info("%s: loss history %s not found", row["variant"], key)
        elif path is not None:
            try:
                hist = pd.read_csv(path)
                if "step" not in hist.columns or "loss" not in hist.columns:
                    raise ValueError(f"columns {list(hist.columns)} lack step/loss")
                hist = hist.sort_values("step", kind="stable").reset_index(drop=True)
            except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
                log.warning(
                    "%s: cannot read %s (%s); no loss curve for it", row["variant"], path, exc
                )
                hist = None
        self._hist[key] = hist
        return hist

    def summary_row(self, row: dict) -> dict | None:
        s = self.summary
        hit = s[(s["variant"] == row["variant"]) & (s["step"] == row["step"])]
        return None if hit.empty else hit.iloc[0].to_dict()

    def clip_scores(self, row: dict) -> pd.DataFrame | None:
        if self.scores is None:
            return None
        s = self.scores
        hit = s[(s["variant"] == row["variant"]) & (s["step"] == row["step"])]
        return None if hit.empty else hit


def load_claims_tables(claims=None, intervals=None) -> tuple:
    """The verdicts and intervals tables of ``hourglass-sep claims`` (None when not given)."""
    hint = "the workflow's rule claims writes it"
    verdicts = None if not claims else read_tsv(claims, "verdicts table", ["id", "verdict"], hint)
    inter = (
        None
        if not intervals
        else read_tsv(intervals, "intervals table", ["variant", "step", "estimate"], hint)
    )
    return verdicts, inter


def load_methods(path=None) -> pd.DataFrame | None:
    """The Methods table of ``hourglass-sep methods`` (None when not given: no Methods
    products)."""
    if not path:
        return None
    hint = "the workflow's rule methods_table writes it (`hourglass-sep methods`)"
    return read_tsv(path, "methods table", ["label", "variant", "step", "voice_gnsdr"], hint)


def inputs_from_args(args) -> Inputs:
    """:func:`load_inputs` of the flags :func:`add_inputs_arguments` defines (workbook,
    figures and report read the same tables)."""
    return load_inputs(
        args.experiments,
        args.summary,
        args.scores,
        args.speed,
        args.claims,
        args.intervals,
        args.methods,
    )


def load_inputs(
    experiments, summary, scores=(), speed=None, claims=None, intervals=None, methods=None
) -> Inputs:
    meta, rows = load_experiments(experiments)
    inputs = Inputs(
        meta=meta,
        rows=rows,
        summary=load_summary(summary),
        scores=load_scores(scores),
        speed=load_speed(speed),
        base=Path(experiments).resolve().parent,
        sources={
            "experiments": str(experiments),
            "summary": str(summary),
            "scores": [str(p) for p in scores or []],
            "speed": str(speed) if speed else None,
            "claims": str(claims) if claims else None,
            **({"methods": str(methods)} if methods else {}),
        },
    )
    inputs.claims, inputs.intervals = load_claims_tables(claims, intervals)
    inputs.methods = load_methods(methods)
    known = {(r["variant"], r["step"]) for r in rows}
    extra = sorted(
        {(v, int(s)) for v, s in zip(inputs.summary["variant"], inputs.summary["step"])} - known
    )
    if extra:
        log.warning("summary rows %s have no entry in %s; they are left out", extra, experiments)
    return inputs


# ----------------------------------------------------------------------------- derived values
def num(x) -> float | None:
    """A finite float, or None (None, NaN, text)."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def reported_values(row: dict) -> dict | None:
    """The row's reported numbers: experiments.json's ``reported``, else the report row's
    (references)."""
    if "reported" in row:
        rep = row.get("reported")
    else:
        rep = refs.reported_of(row.get("report_row"))
    return rep or None


def reported_value(row: dict, src: str, metric: str) -> float | None:
    rep = reported_values(row)
    if not rep or not rep.get(src):
        return None
    return num(rep[src].get(metric))


def reported_source(row: dict) -> str | None:
    if row.get("reported_source"):
        src = str(row["reported_source"])
    else:
        src = refs.source_of(row.get("report_row"))
    if row.get("report_row") is not None and int(row["report_row"]) == refs.PARK_PAPER_ROW:
        src = refs.PARK_PAPER.source
    return src


def reported_comment(row: dict) -> str:
    if reported_values(row) is None:
        note = row.get("reported_note") or "no published value for this run"
        return f"no reported value: {note}"
    sr = row.get("report_row")
    if sr is not None and int(sr) == refs.PARK_PAPER_ROW:
        return f"value printed in Park's paper ({refs.PARK_ARXIV}), quoted by the report, row {sr}"
    if sr is not None:
        return f"value printed by the report, row {sr}"
    return f"reported value ({reported_source(row) or 'source not given'})"


def _settings_parts(settings: dict) -> tuple[bool, list[str]]:
    """(reduced?, the settings in words): smaller widths, stem or iterations make a reduced
    scale; precise BN and averaged weights are said, but evaluate paper widths as well."""
    div = num(settings.get("width_divisor")) or 1.0
    it = num(settings.get("iterations")) or 1.0
    parts = []
    if div != 1:
        parts.append(f"widths / {div:g}")
    if settings.get("stem"):
        parts.append(f"stem {list(settings['stem'])}")
    if it != 1:
        parts.append(f"iterations x {it:g}")
    reduced = bool(parts)
    if num(settings.get("precise_bn")):
        parts.append(
            f"BatchNorm statistics re-estimated over {int(settings['precise_bn'])} batches "
            "before evaluation (the report kept the running averages)"
        )
    if num(settings.get("weight_average")):
        parts.append(
            "moving average of the weights "
            f"(decay {float(settings['weight_average']):g}) saved "
            "instead of the last step's weights"
        )
    return reduced, parts


def scale_info(meta: dict, rows: list[dict]) -> dict:
    """``{"name", "preset", "reduced", "details"}``: the run's scale and whether it is reduced.

    Accepts ``meta["scale"]`` as a name ("demo" / "cpu" / "paper") or as the scale
    settings dict, ``meta["scale_settings"]`` (the settings beside a name), or a
    per-row ``"scale"`` when the meta holds none.
    """
    scale = meta.get("scale")
    if scale is None:
        scale = next((r.get("scale") for r in rows if r.get("scale") is not None), None)
    settings = meta.get("scale_settings")
    name = None
    if isinstance(scale, dict):
        settings, name = scale, scale.get("name")
    elif scale is not None:
        name = str(scale)
    preset = meta.get("preset")
    reduced, parts = False, []
    if isinstance(settings, dict):
        reduced, parts = _settings_parts(settings)
    elif name is not None:
        reduced = name.lower() != "paper"
    name = str(name or preset or ("reduced" if reduced else "unknown"))
    if any(str(x).lower() in ("demo", "cpu", "tiny") for x in (name, preset) if x):
        reduced = True
    dataset = meta.get("dataset")
    synthetic = dataset == "synthetic" or (
        isinstance(dataset, dict) and dataset.get("source") == "synthetic"
    )
    if synthetic:
        reduced = True
        parts.append("synthetic corpus")
    test_clips = meta.get("test_clips") or (
        dataset.get("test_clips") if isinstance(dataset, dict) else None
    )
    if test_clips:
        parts.append(f"{test_clips} test clips")
    details = ", ".join(parts) or ("paper widths and iterations" if not reduced else "")
    return {
        "name": name,
        "preset": preset,
        "reduced": reduced,
        "details": details,
        "synthetic": synthetic,
        "test_clips": test_clips,
    }


# ----------------------------------------------------------------------------- CLI
def add_inputs_arguments(p: argparse.ArgumentParser, scores_required: bool = False) -> None:
    p.add_argument(
        "--experiments",
        required=True,
        metavar="JSON",
        help="experiments.json written by the workflow",
    )
    p.add_argument(
        "--summary", required=True, metavar="TSV", help="summary.tsv from `hourglass-sep aggregate`"
    )
    p.add_argument(
        "--scores",
        nargs="+" if scores_required else "*",
        default=[],
        metavar="TSV",
        help="per-clip score tables from `hourglass-sep score`",
    )
    p.add_argument(
        "--speed",
        default=None,
        metavar="TSV",
        help="timings (what, device, seconds, detail); optional",
    )
    p.add_argument(
        "--claims", default=None, metavar="TSV", help="verdicts of `hourglass-sep claims`"
    )
    p.add_argument(
        "--intervals",
        default=None,
        metavar="TSV",
        help="95 %% intervals of every run's metrics (`hourglass-sep claims --intervals`)",
    )
    p.add_argument(
        "--methods",
        default=None,
        metavar="TSV",
        help="the Methods table (`hourglass-sep methods`): a Methods sheet, section and figure",
    )

"""``hourglass-sep methods``: the Methods table, our networks beside the peer methods.

One row per entry of ``--rows`` (a base variant at a step; its runs are its replicates):
what the method costs (parameters, training minutes, separation seconds per minute of
audio) and what it reaches (GNSDR / GSIR / GSAR of both sources, each with the 95 %
interval the claims give a run, and the fraction of the oracle's GNSDR).

The intervals come from :func:`hourglass_sep.claims.stats.compare_threshold` at threshold 0:
the length-weighted mean over the clips every replicate scored, a bootstrap over singers
(songs, then clips, when there are too few: :func:`~hourglass_sep.claims.stats.resolve_units`)
and, with several replicates, the seed-to-seed variance added (a t interval).  A method that
does not train is deterministic: one replicate, no seed term.  So a reader compares a peer
with the same yardstick the claims use.

A missing input (a run not scored, no benchmark file, no train.json) leaves its cells empty,
logged and said in the row's ``note``; only an entry naming an unknown variant or step is an
error (the table would silently lack a row).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.experiments_io import as_replicates, replicate_map
from hourglass_sep.errors import UserError

log = logging.getLogger(__name__)

SOURCES = ("voice", "accompaniment")
METRICS = ("gnsdr", "gsir", "gsar")
ORACLE = "oracle-irm"
METRIC_COLUMNS = [f"{s}_{m}{k}" for s in SOURCES for m in METRICS for k in ("", "_lo", "_hi")]
COLUMNS = [
    "label", "variant", "step", "method", "family", "trains", "parameters", "replicates",
    "seeds", "training_minutes", "separation_s_per_min", *METRIC_COLUMNS,
    "oracle_fraction_voice", "oracle_fraction_accompaniment", "clips", "audio_minutes",
    "variance", "resampled_by", "note",
]  # fmt: skip


@dataclass
class Entry:
    """One row of the table: a base variant at a step and its runs (replicate 0 first)."""

    variant: str
    step: int
    runs: list[dict]
    label: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def first(self) -> dict:
        return self.runs[0]

    @property
    def trains(self) -> bool:
        """Old rows have no ``trains``: a row with a network trains."""
        flag = self.first.get("trains")
        return bool(flag) if flag is not None else self.first.get("arch") is not None

    def of(self, run: dict) -> str:
        """``"ours.s1: "`` before a replicate's reason; nothing for a single run."""
        return f"{run['variant']}: " if len(self.runs) > 1 else ""

    def say(self, why: str) -> None:
        """A reason for an empty cell: logged, and kept for the row's ``note``."""
        log.warning("%s@%s: %s", self.variant, self.step, why)
        self.notes.append(why)


# ----------------------------------------------------------------------------- entries
def _read_rows_file(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"--rows {path}: no such file (give a JSON file or a JSON list)")
    return path.read_text(encoding="utf-8")


def read_rows_spec(spec: str | None) -> list[dict] | None:
    """``--rows``: a JSON file or JSON text, a list of ``{"variant": .., "step": ..}``
    (``step`` optional: the variant's last evaluated step; ``label`` optional)."""
    if spec is None:
        return None
    # JSON text starts with "[" (and may be longer than a file name may be): not a path
    inline = spec.lstrip().startswith("[")
    text = spec if inline else _read_rows_file(Path(spec))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--rows {spec!r}: neither a JSON file nor JSON text ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) and "variant" in d for d in data):
        raise UserError(f"--rows {spec!r}: expected a list of objects with a 'variant'")
    return data


def _by_base(rows: list[dict]) -> dict[str, dict[int, list[dict]]]:
    """base variant -> step -> its runs' rows, replicate 0 first (experiments.json order)."""
    out: dict[str, dict[int, list[dict]]] = {}
    for r in rows:
        base = str(r.get("base_variant") or r["variant"])
        out.setdefault(base, {}).setdefault(int(r["step"]), []).append(r)
    for steps in out.values():
        for runs in steps.values():
            runs.sort(key=lambda r: int(r.get("replicate") or 0))
    return out


def resolve_entries(spec: list[dict] | None, rows: list[dict]) -> list[Entry]:
    """The table's entries, in order; every base variant at its last step without ``spec``.
    An unknown variant or step is a ``UserError`` naming the known ones."""
    known = _by_base(rows)
    spec = spec if spec is not None else [{"variant": v} for v in known]
    out = []
    for i, item in enumerate(spec):
        name = str(item["variant"])
        if name not in known:
            raise UserError(
                f"--rows entry {i} names variant {name!r}, which experiments.json does not "
                f"hold (known: {', '.join(sorted(known))})"
            )
        steps = known[name]
        step = int(item["step"]) if item.get("step") is not None else max(steps)
        if step not in steps:
            raise UserError(
                f"--rows entry {i}: variant {name!r} has no evaluated step {step} "
                f"(its steps: {', '.join(map(str, sorted(steps)))})"
            )
        out.append(Entry(name, step, steps[step], label=item.get("label")))
    return out


# ----------------------------------------------------------------------------- inputs
def read_method_scores(paths, rows: list[dict]) -> pd.DataFrame | None:
    """The per-clip scores of every given file that exists (a missing one is logged), the
    replicate runs folded into their base variant as the claims read them."""
    from hourglass_sep.results.aggregate import read_scores

    found = []
    for p in paths or []:
        if Path(p).is_file():
            found.append(p)
        else:
            log.warning("%s: score table not found; its run's cells stay empty", p)
    if not found:
        return None
    scores = pd.concat([read_scores([p]) for p in found], ignore_index=True)
    return st.prepare_scores(as_replicates(scores, replicate_map(rows)))


def evaluated_minutes(catalogue) -> tuple[float | None, int | None]:
    """(minutes, clips) of the evaluated test clips in the catalogue (None when not given)."""
    if not catalogue:
        return None, None
    if not Path(catalogue).is_file():
        log.warning("%s: catalogue not found; seconds per minute of audio stay empty", catalogue)
        return None, None
    from hourglass_sep.data.catalogue import evaluated_clips, read_catalogue

    test = evaluated_clips(read_catalogue(catalogue))
    seconds = pd.to_numeric(test["samples"]) / pd.to_numeric(test["sr"])
    return float(seconds.sum()) / 60.0, int(len(test))


def bench_seconds(path: Path) -> float | None:
    """Wall seconds of one Snakemake benchmark file (column ``s``, last repeat)."""
    try:
        return float(pd.read_csv(path, sep="\t")["s"].iloc[-1])
    except (OSError, KeyError, IndexError, ValueError, pd.errors.ParserError):
        log.warning("%s: not a Snakemake benchmark file (no column s)", path)
        return None


# ----------------------------------------------------------------------------- cost columns
def training_minutes(entry: Entry, base: Path, bench: Path | None) -> float | None:
    """Mean over the replicates of the training wall time up to the step, in minutes:
    train.json's ``wall_seconds`` (the loop, resumed sessions summed; pro rata or
    history.csv before the last step), else the Snakemake benchmark of the train job
    (which adds process start-up).  Empty for a method that does not train."""
    if not entry.trains:
        return None
    from hourglass_sep.results.run_inputs import Inputs
    from hourglass_sep.results.workbook import train_seconds

    reader = Inputs(meta={}, rows=entry.runs, summary=pd.DataFrame(), base=base)
    secs = []
    for run in entry.runs:
        value, how = train_seconds(reader, run)
        model = str(run.get("model") or run["variant"])
        if value is None and bench is not None and (bench / f"train_{model}.tsv").is_file():
            value = bench_seconds(bench / f"train_{model}.tsv")
        if value is None:
            entry.say(f"{entry.of(run)}no training time ({how}, no train_{model}.tsv)")
            continue
        secs.append(value)
    return float(np.mean(secs)) / 60.0 if secs else None


def separation_rate(entry: Entry, bench: Path | None, minutes: float | None) -> float | None:
    """Seconds to separate one minute of audio: the wall seconds of the run's ``separate``
    jobs summed over their shards (Snakemake benchmarks, so *including process start-up and
    model loading*) over the minutes of evaluated test audio; mean over the replicates."""
    if bench is None or not minutes:
        entry.say("separation time: " + ("no --benchmarks" if bench is None else "no catalogue"))
        return None
    rates = []
    for run in entry.runs:
        name = re.escape(str(run["variant"]))
        pattern = re.compile(rf"^separate_{name}_step{entry.step}_(\d+)\.tsv$")
        files = sorted(p for p in bench.glob("separate_*.tsv") if pattern.match(p.name))
        shards = sorted(int(pattern.match(p.name)[1]) for p in files)
        if not files or shards != list(range(len(shards))):
            why = "no separate benchmark" if not files else f"separate shards {shards} only"
            entry.say(entry.of(run) + why)
            continue
        secs = [bench_seconds(p) for p in files]
        if None not in secs:
            rates.append(sum(secs) / minutes)
    return float(np.mean(rates)) if rates else None


# ----------------------------------------------------------------------------- quality columns
def _run_scores(scores: pd.DataFrame | None, entry: Entry) -> pd.DataFrame | None:
    """The entry's score rows (one replicate for a method that does not train)."""
    if scores is None:
        entry.say("not scored: no score table given")
        return None
    rows = scores[(scores["variant"] == entry.variant) & (scores["step"] == entry.step)]
    if rows.empty:
        entry.say(f"not scored: no scores of {entry.variant}@{entry.step}")
        return None
    reps = sorted(rows["replicate"].unique())
    if not entry.trains and len(reps) > 1:  # deterministic: the replicates repeat each other
        entry.say(f"does not train: replicate {reps[0]} only, not {len(reps)}")
        rows = rows[rows["replicate"] == reps[0]]
    expected = {int(r.get("replicate") or 0) for r in entry.runs}
    absent = sorted(expected - set(rows["replicate"])) if entry.trains else []
    if absent:
        entry.say(f"replicates {absent} not scored; the mean is over {len(reps)}")
    return rows


def quality_cells(scores, entry: Entry, unit: str, n_boot: int, seed: int) -> dict:
    """GNSDR / GSIR / GSAR of both sources with their intervals, as the claims compute a
    run's interval (:func:`~hourglass_sep.claims.stats.compare_threshold` at 0)."""
    rows = _run_scores(scores, entry)
    if rows is None:
        return {}
    cells: dict = {}
    for source in SOURCES:
        for metric in METRICS:
            try:
                eff = st.compare_threshold(
                    rows, (entry.variant, entry.step), 0.0, metric, source, unit,
                    n_boot=n_boot, seed=seed,
                )  # fmt: skip
            except UserError as exc:
                entry.say(f"{source} {metric}: {exc}")
                continue
            cells[f"{source}_{metric}"] = eff.estimate
            cells[f"{source}_{metric}_lo"], cells[f"{source}_{metric}_hi"] = eff.lo, eff.hi
            if "clips" not in cells:
                cells.update(clips=eff.n_clips, variance=eff.variance)
                cells.update(replicates=eff.replicates[0], resampled_by=eff.resampled_by)
                cells["seeds"] = _seeds(entry, rows)
                if eff.unit_note:
                    entry.notes.append(eff.unit_note)
                if eff.n_dropped:
                    entry.say(f"{eff.n_dropped} clips left out (not ok in every replicate)")
    return cells


def _seeds(entry: Entry, rows: pd.DataFrame) -> str:
    """The training seeds of the scored replicates ("" for a method that does not train)."""
    if not entry.trains:
        return ""
    seed_of = {int(r.get("replicate") or 0): r.get("seed") for r in entry.runs}
    seeds = [seed_of.get(int(r)) for r in sorted(rows["replicate"].unique())]
    return ", ".join(str(s) for s in seeds if s is not None)


# ----------------------------------------------------------------------------- the table
def _describe(entry: Entry) -> dict:
    first = entry.first
    method = first.get("method") or (first.get("arch") or {}).get("kind") or ""
    label = entry.label or first.get("label") or entry.variant
    return {
        "label": label,
        "variant": entry.variant,
        "step": entry.step,
        "method": method,
        "family": first.get("method_family") or "",
        "trains": entry.trains,
        "parameters": first.get("parameters"),
        "replicates": len(entry.runs),
    }


def _oracle_gnsdr(table: pd.DataFrame, oracle: str, compute) -> dict[str, float] | None:
    """The oracle's GNSDR per source: its row of the table, else computed at its last step
    (``compute``); None (logged) when it is unknown or not scored."""
    hit = table[table["variant"] == oracle]
    cells = hit.iloc[0].to_dict() if len(hit) else compute(oracle)
    if cells is None:
        log.warning("oracle %s not scored: oracle fractions stay empty", oracle)
        return None
    values = {s: cells.get(f"{s}_gnsdr") for s in SOURCES}
    if any(v is None or not math.isfinite(float(v)) or float(v) <= 0 for v in values.values()):
        log.warning("oracle %s has no positive GNSDR: oracle fractions stay empty", oracle)
        return None
    return {s: float(v) for s, v in values.items()}


def methods_table(
    entries: list[Entry],
    scores: pd.DataFrame | None,
    *,
    experiments_dir: Path = Path("."),
    bench: Path | None = None,
    minutes: float | None = None,
    oracle: str = ORACLE,
    oracle_entry=None,
    unit: str = st.DEFAULT_UNIT,
    n_boot: int = st.N_BOOT,
    seed: int = 0,
) -> pd.DataFrame:
    """The Methods table (``COLUMNS``), one row per entry in order.  ``oracle_entry``: the
    oracle's :class:`Entry` when it is not among ``entries`` (None: no fractions)."""
    recs = []
    for entry in entries:
        rec = _describe(entry)
        rec["training_minutes"] = training_minutes(entry, experiments_dir, bench)
        rec["separation_s_per_min"] = separation_rate(entry, bench, minutes)
        rec.update(quality_cells(scores, entry, unit, n_boot, seed))
        rec["audio_minutes"] = minutes
        rec["note"] = "; ".join(entry.notes)
        recs.append(rec)
    table = pd.DataFrame.from_records(recs).reindex(columns=COLUMNS)

    def compute(name):
        if oracle_entry is None:
            log.warning("oracle %s is not in experiments.json: no oracle fractions", name)
            return None
        return quality_cells(scores, oracle_entry, unit, n_boot, seed) or None

    ceiling = _oracle_gnsdr(table, oracle, compute)
    for s in SOURCES:
        col = f"oracle_fraction_{s}"
        table[col] = np.nan if ceiling is None else table[f"{s}_gnsdr"] / ceiling[s]
    return table


# ----------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiments", required=True, metavar="JSON", help="experiments.json")
    p.add_argument(
        "--scores", nargs="*", default=[], metavar="TSV",
        help="per-clip score TSVs of the compared runs, every replicate",
    )  # fmt: skip
    p.add_argument(
        "--benchmarks", metavar="DIR",
        help="Snakemake benchmark folder (separate_*/train_*.tsv): seconds of the jobs",
    )  # fmt: skip
    p.add_argument(
        "--catalogue", metavar="TSV", help="catalogue.tsv: minutes of evaluated test audio"
    )
    p.add_argument(
        "--rows", metavar="JSON",
        help='the entries in order, a JSON file or text: [{"variant": V, "step": S}, ...] '
        "(a base variant; its runs are its replicates; default: every variant, last step)",
    )  # fmt: skip
    p.add_argument(
        "--oracle", default=ORACLE, metavar="NAME",
        help="base variant whose GNSDR is the ceiling of the oracle fractions",
    )  # fmt: skip
    p.add_argument("--resamples", type=int, default=st.N_BOOT, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    p.add_argument(
        "--unit", choices=st.UNITS, default=st.DEFAULT_UNIT,
        help="resampling unit (fewer than 5 among the clips: the next finer one)",
    )  # fmt: skip
    p.add_argument("-o", "--output", required=True, metavar="TSV", help="methods.tsv to write")


def run(args: argparse.Namespace) -> int:
    from hourglass_sep.data.catalogue import write_table
    from hourglass_sep.results.run_inputs import load_experiments

    _, rows = load_experiments(args.experiments)
    entries = resolve_entries(read_rows_spec(args.rows), rows)
    oracle = next((e for e in resolve_entries(None, rows) if e.variant == args.oracle), None)
    bench = Path(args.benchmarks) if args.benchmarks else None
    if bench is not None and not bench.is_dir():
        log.warning("%s: benchmark folder not found; time columns stay empty", bench)
        bench = None
    minutes, _ = evaluated_minutes(args.catalogue)
    table = methods_table(
        entries,
        read_method_scores(args.scores, rows),
        experiments_dir=Path(args.experiments).resolve().parent,
        bench=bench,
        minutes=minutes,
        oracle=args.oracle,
        oracle_entry=oracle,
        unit=args.unit,
        n_boot=args.resamples,
        seed=args.seed,
    )
    write_table(table, args.output)
    print(f"{args.output}: {len(table)} methods")
    return 0

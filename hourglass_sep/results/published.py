"""The published numbers this benchmark is compared with, each with its source.

Two sources:

- the report (a course report re-implementing Park et al. in PyTorch,
  github.com/ZYFZYF/Music-Source-Separation): the 19 rows of its experiment log
  ``result.xlsx``; rows 15/16 are its Table 1 ("Ours" vs "Park's"), rows 18/19
  its Table 2 (best runs) and row 17 Park's paper as the report quotes it;
- Park et al., *Music Source Separation Using Stacked Hourglass Networks*
  (ISMIR 2018, arXiv:1805.08559): the 4-stack network's MIR-1K results.

Metrics are (GNSDR, GSIR, GSAR) in dB for the singing voice and the
accompaniment, length-weighted means over the test clips.  Parameter counts are
those of the report's result.xlsx (every one reproduced from the architecture
description); row 17's count is that of Park's TensorFlow network.

The workflow config attaches each variant's reported numbers to
``experiments.json``; the workbook's ``references`` sheet and the report's
Park's-paper row come from here.  Pure Python: no torch, no pandas.
"""

from __future__ import annotations

from dataclasses import dataclass

METRICS = ("gnsdr", "gsir", "gsar")
METRIC_NAMES = {"gnsdr": "GNSDR", "gsir": "GSIR", "gsar": "GSAR"}
SOURCES = ("voice", "accompaniment")

PARK_ARXIV = "arXiv:1805.08559"
PARK_CITATION = (
    "Sungheon Park, Taehoon Kim, Kyogu Lee, Nojun Kwak: Music Source Separation Using "
    "Stacked Hourglass Networks, ISMIR 2018, arXiv:1805.08559"
)
REPORT_CODE = "github.com/ZYFZYF/Music-Source-Separation"
PARK_CODE = "github.com/sungheonpark/music_source_sepearation_SH_net"

#: the report's table numbers (its result.xlsx rows)
TABLE1_ROWS = (15, 16)  # "Ours" vs "Park's" (the report's PyTorch version of Park's widths)
TABLE2_ROWS = (18, 19)  # "Ours' best" at 15,000 and 20,000 steps
PARK_PAPER_ROW = 17  # Park's paper, as the report quotes it


@dataclass(frozen=True)
class ReportRow:
    """One row of the report's experiment log (result.xlsx)."""

    row: int
    change: str
    stacks: int | None
    channels: int | None  # first-level channels F
    growth: int | None  # channels added per pooling
    outputs: int | None
    parameters: int | None
    iterations: int | None
    lr: float | None
    test_clips: int | None
    voice: tuple[float, float, float] | None  # GNSDR, GSIR, GSAR (dB)
    accompaniment: tuple[float, float, float] | None
    note: str = ""

    @property
    def source(self) -> str:
        if self.row == PARK_PAPER_ROW:
            return (
                f"Park et al., {PARK_ARXIV}, MIR-1K results (4-stack network), as quoted in "
                f"the report's Table 2 (result.xlsx row {self.row})"
            )
        where = f"report result.xlsx row {self.row}"
        if self.row in TABLE1_ROWS:
            where += " (report Table 1)"
        elif self.row in TABLE2_ROWS:
            where += " (report Table 2)"
        return where

    def reported(self) -> dict | None:
        """``{"voice": {"gnsdr": .., "gsir": .., "gsar": ..}, "accompaniment": {...}}`` or None."""
        if self.voice is None and self.accompaniment is None:
            return None
        out = {}
        for src in SOURCES:
            vals = getattr(self, src)
            out[src] = None if vals is None else dict(zip(METRICS, vals))
        return out


_P = {  # parameter counts of the report's networks (result.xlsx)
    (4, 64, 64, 2): 34_689_752,
    (4, 256, 0, 2): 42_752_792,
    (1, 64, 64, 2): 8_868_038,
    (2, 64, 64, 2): 17_475_276,
    (3, 64, 64, 2): 26_082_514,
    (2, 64, 0, 2): 1_608_396,
    (4, 64, 0, 2): 2_955_992,
    (1, 64, 64, 1): 8_867_459,
}
PARK_ORIGINAL_PARAMETERS = (
    34_176_776  # Park's TensorFlow network (4 stacks, 256 channels, no BatchNorm)
)


def _row(row, change, arch, iterations, lr, clips, voice, acc, note=""):
    params = _P.get(arch) if arch else None
    stacks, channels, growth, outputs = arch if arch else (None, None, None, None)
    return ReportRow(
        row,
        change,
        stacks,
        channels,
        growth,
        outputs,
        params,
        iterations,
        lr,
        clips,
        voice,
        acc,
        note,
    )


REPORT_ROWS: tuple[ReportRow, ...] = (
    _row(
        1,
        "baseline, one window per forward, mir_eval",
        (2, 64, 0, 2),
        1000,
        0.1,
        100,
        (5.291, 7.699, 10.999),
        (6.372, 17.14, 7.553),
    ),
    _row(
        2,
        "4 windows per forward + museval",
        (2, 64, 0, 2),
        1000,
        0.1,
        100,
        (8.103, 12.049, 11.555),
        (8.746, 16.754, 9.946),
    ),
    _row(
        3,
        "channels grow (+64 per pooling)",
        (2, 64, 64, 2),
        1000,
        0.1,
        100,
        (8.724, 13.681, 11.315),
        (8.314, 11.953, 11.489),
    ),
    _row(
        4,
        "1 stack",
        (1, 64, 64, 2),
        1000,
        0.1,
        100,
        (8.033, 12.277, 11.32),
        (8.556, 15.173, 10.136),
    ),
    _row(
        5,
        "3 stacks",
        (3, 64, 64, 2),
        1000,
        0.1,
        100,
        (8.771, 14.244, 11.133),
        (8.636, 15.478, 10.112),
    ),
    _row(
        6,
        "4 stacks",
        (4, 64, 64, 2),
        1000,
        0.1,
        100,
        (8.862, 13.439, 11.765),
        (8.605, 14.882, 10.299),
    ),
    _row(
        7,
        "4 stacks, larger test set",
        (4, 64, 64, 2),
        1000,
        0.1,
        800,
        (8.194, 13.037, 10.776),
        (7.57, 12.84, 9.989),
    ),
    _row(
        8,
        "channels constant, 4 stacks",
        (4, 64, 0, 2),
        1000,
        0.1,
        100,
        (7.874, 11.857, 11.219),
        (8.632, 15.175, 10.204),
    ),
    _row(
        9,
        "channels constant, 4 stacks, larger test set",
        (4, 64, 0, 2),
        1000,
        0.1,
        800,
        (7.575, 11.476, 10.761),
        (8.02, 13.744, 10.138),
    ),
    _row(
        10,
        "accompaniment mask only (voice = mixture - accompaniment)",
        (1, 64, 64, 1),
        1000,
        0.1,
        100,
        (-1.856, 0.303, 6.24),
        (8.048, 13.966, 9.903),
    ),
    _row(
        11,
        "voice mask only (accompaniment = mixture - voice)",
        (1, 64, 64, 1),
        1000,
        0.1,
        100,
        (8.537, 13.158, 11.386),
        (-1.599, -0.01, 7.162),
    ),
    _row(
        12,
        "end to end: predict magnitudes, no mask",
        (1, 64, 64, 2),
        1000,
        0.1,
        None,
        None,
        None,
        note="failed: the network output all zeros",
    ),
    _row(
        13,
        "more iterations, lower lr",
        (4, 64, 64, 2),
        15000,
        0.01,
        825,
        (10.649, 16.66, 12.402),
        (9.75, 13.969, 12.457),
    ),
    _row(
        14,
        "more iterations, lower lr, 30,000 steps",
        (4, 64, 64, 2),
        30000,
        0.01,
        825,
        (10.645, 16.839, 12.323),
        (9.868, 14.621, 12.257),
    ),
    _row(
        15,
        '"Ours" (report Table 1)',
        (4, 64, 64, 2),
        15000,
        0.01,
        825,
        (10.284, 15.74, 12.254),
        (9.819, 14.159, 12.299),
    ),
    _row(
        16,
        "\"Park's\" widths in the report's network (report Table 1)",
        (4, 256, 0, 2),
        15000,
        0.01,
        825,
        (10.433, 15.426, 12.618),
        (9.772, 13.745, 12.642),
    ),
    ReportRow(
        17,
        "Park's paper, as quoted by the report",
        4,
        256,
        0,
        2,
        PARK_ORIGINAL_PARAMETERS,
        15000,
        None,
        825,
        (10.51, 16.01, 12.53),
        (9.88, 14.24, 12.36),
        note="parameter count: Park's TensorFlow network (not printed in the paper)",
    ),
    _row(
        18,
        'uniform sampling + lr 0.001, 15,000 steps (report Table 2, "Ours\' best")',
        (4, 64, 64, 2),
        15000,
        0.001,
        825,
        (10.724, 16.6, 12.516),
        (10.03, 14.95, 12.426),
    ),
    _row(
        19,
        'uniform sampling + lr 0.001, 20,000 steps (report Table 2, "Ours\' best")',
        (4, 64, 64, 2),
        20000,
        0.001,
        825,
        (10.944, 17.355, 12.531),
        (9.916, 14.259, 12.601),
    ),
)
REPORT_BY_ROW: dict[int, ReportRow] = {r.row: r for r in REPORT_ROWS}

#: Park's paper (the 4-stack network on MIR-1K), the numbers the report quotes
PARK_PAPER = REPORT_BY_ROW[PARK_PAPER_ROW]

#: the row labels the report's tables print
TABLE_LABELS = {15: "Ours", 16: "Park's", 17: "Park's paper", 18: "Ours' best", 19: "Ours' best"}


@dataclass(frozen=True)
class TimingClaim:
    what: str
    seconds: float
    device: str
    source: str
    note: str = ""


TIMING_CLAIMS: tuple[TimingClaim, ...] = (
    TimingClaim(
        "separate a 64-s song (annar_4)",
        6.0,
        "GTX 1060",
        "report, speed section",
        "the report's implementation, 4 windows per forward pass",
    ),
    TimingClaim(
        "separate a 64-s song (annar_4), Park's implementation",
        16.0,
        "GTX 1060",
        "report, speed section",
        "Park's TensorFlow code, same conditions",
    ),
    TimingClaim(
        "separate + score the 825 test clips",
        32 * 60.0,
        "GTX 1060",
        "report (experiment log)",
        "about 32 min; scoring is ~80% of it",
    ),
    TimingClaim(
        'train 4-stack "Ours", 15,000 iterations',
        3 * 3600.0,
        "GTX 1060",
        "report (experiment log)",
        "about 3 h",
    ),
)


def reported_of(row: int | None) -> dict | None:
    """The report's numbers of one result.xlsx row (None when unknown or not printed)."""
    if row is None:
        return None
    r = REPORT_BY_ROW.get(int(row))
    return None if r is None else r.reported()


def source_of(row: int | None) -> str | None:
    if row is None:
        return None
    r = REPORT_BY_ROW.get(int(row))
    return None if r is None else r.source


def reference_records() -> list[dict]:
    """One flat dict per published row (the workbook's ``references`` sheet)."""
    out = []
    for r in REPORT_ROWS:
        rec = {
            "row": r.row,
            "label": TABLE_LABELS.get(r.row, ""),
            "change": r.change,
            "stacks": r.stacks,
            "first-level channels": r.channels,
            "growth": r.growth,
            "outputs": r.outputs,
            "parameters": r.parameters,
            "iterations": r.iterations,
            "lr": r.lr,
            "test clips": r.test_clips,
        }
        for src in SOURCES:
            vals = getattr(r, src)
            for i, m in enumerate(METRICS):
                rec[f"{src} {METRIC_NAMES[m]}"] = None if vals is None else vals[i]
        rec["note"] = r.note
        rec["source"] = r.source
        out.append(rec)
    return out

"""Forest plot of the claims' effects: one small panel per claim, one line per compared pair
in it (sources, chain links), its 95 % interval, the zero line and the equivalence margins,
coloured by verdict (matplotlib, Agg backend).

Why one panel per claim, each with its own x range: the intervals differ by two orders of
magnitude.  A comparison of two models trained once, with the seed noise of a 3-seed run
borrowed on few degrees of freedom, can span +-20 dB, while a paired comparison over clips
spans +-0.3 dB; on one shared axis the small ones shrink to dots, and clipping the large one
at the bulk's range hides where it ends.  Per-claim scaling keeps every interval whole and
its position against 0 and the margins readable; what a reader can no longer do is compare
lengths across panels, so every line also prints its numbers ("+0.05 [-0.21, +0.31]") at the
right, and the x label says the scales differ.  (A broken axis was the alternative: it keeps
one scale but needs two x ranges per panel and still prints the clipped numbers.)

The input is :func:`hourglass_sep.claims.tables.effects_table`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from hourglass_sep.claims.tables import ONE_SEED
from hourglass_sep.data.audio import atomic_path

DPI = 150
VERDICT_COLORS = {
    "holds": "#1b9e77",
    "contradicted": "#d95f02",
    "inconclusive": "#7570b3",
    ONE_SEED: "#c2c0de",
    "needs paper scale": "#999999",
}
ROW_INCH = 0.26  # height of one line of a panel
PANEL_INCH = 0.42  # a panel's title and ticks
MIN_HALF_SPAN = 0.25  # dB: a panel of zero-width intervals still shows +-0.25 dB around them


def _margin_lines(expect: str, margin: float) -> tuple[float, ...]:
    """Where the margin matters: both sides for equivalence, one for not-greater/not-less."""
    if not margin or math.isnan(margin):
        return ()
    return {"not-greater": (margin,), "not-less": (-margin,)}.get(expect, (-margin, margin))


def panel_range(effects: pd.DataFrame) -> tuple[float, float]:
    """The x range of one claim's panel: its intervals, effects, margin lines and 0, padded;
    infinite or missing bounds are left out (the point is still drawn)."""
    xs = [0.0]
    for r in effects.itertuples(index=False):
        xs += [float(v) for v in (r.effect, r.lo, r.hi) if v is not None and np.isfinite(v)]
        xs += list(_margin_lines(r.expect, float(r.margin)))
    lo, hi = min(xs), max(xs)
    mid, half = (lo + hi) / 2, max((hi - lo) / 2, MIN_HALF_SPAN)
    return mid - 1.12 * half, mid + 1.12 * half


def _numbers(r) -> str:
    """The line's effect and interval, printed beside it (the panels' scales differ)."""
    text = f"{r.effect:+.2f}"
    if np.isfinite(r.lo) and np.isfinite(r.hi):
        text += f" [{r.lo:+.2f}, {r.hi:+.2f}]"
    return text


def _draw_panel(ax, claim_id: str, effects: pd.DataFrame) -> None:
    """One claim: its lines top-down, each with its interval, point, margins and numbers."""
    n = len(effects)
    for i, r in enumerate(effects.itertuples(index=False)):
        y = n - 1 - i  # first line on top
        color = VERDICT_COLORS.get(r.verdict, "black")
        if np.isfinite(r.lo) and np.isfinite(r.hi):
            ax.plot([r.lo, r.hi], [y, y], color=color, linewidth=1.6, solid_capstyle="butt")
        if np.isfinite(r.effect):
            ax.plot([r.effect], [y], "o", color=color, markersize=4)
        for x in _margin_lines(r.expect, float(r.margin)):
            ax.plot([x, x], [y - 0.4, y + 0.4], color="grey", linestyle="--", linewidth=0.8)
        ax.text(
            1.01,
            y,
            _numbers(r),
            transform=ax.get_yaxis_transform(),
            fontsize=6.5,
            va="center",
            ha="left",
            color="#333333",  # the pale one-seed colour is not legible as text
        )
    labels = [str(lab).removeprefix(f"{claim_id} ") for lab in effects["label"]]
    ax.set_yticks(range(n))
    ax.set_yticklabels(labels[::-1], fontsize=6.5)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlim(*panel_range(effects))
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.grid(axis="x", alpha=0.3)
    ax.tick_params(axis="x", labelsize=6.5, pad=1)
    ax.locator_params(axis="x", nbins=5)
    ax.set_title(claim_id, fontsize=7.5, loc="left", pad=2)


def _legend(fig, verdicts) -> None:
    from matplotlib.lines import Line2D

    shown = [v for v in VERDICT_COLORS if v in set(verdicts)]
    handles = [
        Line2D([], [], marker="o", linestyle="", color=VERDICT_COLORS[v], label=v) for v in shown
    ]
    handles.append(Line2D([], [], color="grey", linestyle="--", label="margin"))
    fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=len(handles), frameon=False)


def _claims(effects: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The effects of each claim, claims in table order."""
    ids = list(dict.fromkeys(effects["id"]))
    return [(i, effects[effects["id"] == i]) for i in ids]


def _figure(groups: list[tuple[str, pd.DataFrame]]):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    if not groups:
        return plt.subplots(figsize=(9, 1.6))
    heights = [len(g) + PANEL_INCH / ROW_INCH for _, g in groups]
    fig, axes = plt.subplots(
        len(groups),
        1,
        figsize=(9, 1.0 + ROW_INCH * sum(heights)),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    return fig, list(axes[:, 0])


def forest_plot(effects: pd.DataFrame, path: str | Path | None = None, title: str | None = None):
    """Draw the effects (columns ``id label effect lo hi margin expect verdict``), one panel
    per claim; write a PNG to ``path`` and return the path, or return the matplotlib figure
    when ``path`` is None."""
    import matplotlib.pyplot as plt

    groups = _claims(effects)
    fig, axes = _figure(groups)
    if not groups:
        axes.text(0.5, 0.5, "no effects to show (no claim has scores yet)", ha="center")
        axes.set_axis_off()
        axes.set_title(title or "Claims of the report", fontsize=9)
        fig.tight_layout()
    else:
        for ax, (claim_id, g) in zip(axes, groups):
            _draw_panel(ax, claim_id, g)
        axes[-1].set_xlabel(
            "effect (dB): A - B, or A - threshold; bars: 95 % intervals; "
            "each claim has its own scale",
            fontsize=7,
        )
        _legend(fig, effects["verdict"])
        fig.suptitle(title or "Claims of the report: effects and 95 % intervals", fontsize=9)
        fig.tight_layout(rect=(0, 0.35 / fig.get_figheight(), 0.86, 1))
    if path is None:
        return fig
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)

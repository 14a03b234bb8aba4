"""Forest plot of the claims' effects: one row per compared pair, its 95 % interval, the zero
line and the equivalence margins, coloured by verdict (matplotlib, Agg backend).

The input is :func:`hourglass_sep.claims.tables.effects_table`; a reader sees at a glance which
intervals clear zero (or stay within their margins) and which straddle them.
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


def _axes(n_rows: int):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(9, 1.2 + 0.34 * max(n_rows, 1)))


def _margin_lines(expect: str, margin: float) -> tuple[float, ...]:
    """Where the margin matters: both sides for equivalence, one for not-greater/not-less."""
    if not margin or math.isnan(margin):
        return ()
    return {"not-greater": (margin,), "not-less": (-margin,)}.get(expect, (-margin, margin))


def x_limit(effects: pd.DataFrame) -> float:
    """Half-width of the x axis: the bulk of the intervals and margins, so that one far
    threshold effect (e.g. +9 dB over 0) does not squash the sub-dB differences."""
    cols = [
        effects[c].astype(float).replace([np.inf, -np.inf], np.nan).fillna(0).abs().to_numpy()
        for c in ("lo", "hi", "margin")
    ]
    reach = np.maximum.reduce(cols)
    bulk = float(np.quantile(reach, 0.8)) if len(reach) else 1.0
    return max(1.15 * min(float(reach.max()), 3 * bulk), 0.5)


def _draw_rows(ax, effects: pd.DataFrame, limit: float) -> None:
    n = len(effects)
    for i, r in enumerate(effects.itertuples(index=False)):
        y = n - 1 - i  # first row on top
        color = VERDICT_COLORS.get(r.verdict, "black")
        lo, hi = max(r.lo, -limit), min(r.hi, limit)
        ax.plot([lo, hi], [y, y], color=color, linewidth=1.5)
        if -limit <= r.effect <= limit:
            ax.plot([r.effect], [y], "o", color=color, markersize=4)
        if r.hi > limit or r.lo < -limit:  # off the axis: say where it is
            x, ha = (limit, "right") if r.hi > limit else (-limit, "left")
            arrow = "\u2192" if ha == "right" else "\u2190"
            ax.text(
                x,
                y + 0.15,
                f"{r.effect:.2f} [{r.lo:.2f}, {r.hi:.2f}] {arrow}",
                ha=ha,
                va="bottom",
                fontsize=6,
                color=color,
            )
        for x in _margin_lines(r.expect, float(r.margin)):
            ax.plot([x, x], [y - 0.4, y + 0.4], color="grey", linestyle="--", linewidth=0.8)
    ax.set_yticks(range(n))
    ax.set_yticklabels(list(effects["label"])[::-1], fontsize=7)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(-limit, limit)


def _legend(ax, verdicts) -> None:
    from matplotlib.lines import Line2D

    shown = [v for v in VERDICT_COLORS if v in set(verdicts)]
    handles = [
        Line2D([], [], marker="o", linestyle="", color=VERDICT_COLORS[v], label=v) for v in shown
    ]
    handles.append(Line2D([], [], color="grey", linestyle="--", label="equivalence margin"))
    ax.legend(handles=handles, fontsize=7, loc="lower right", framealpha=0.9)


def forest_plot(effects: pd.DataFrame, path: str | Path | None = None, title: str | None = None):
    """Draw the effects (columns ``label effect lo hi margin verdict``); write a PNG to
    ``path`` and return the path, or return the matplotlib figure when ``path`` is None."""
    import matplotlib.pyplot as plt

    fig, ax = _axes(len(effects))
    if effects.empty:
        ax.text(0.5, 0.5, "no effects to show (no claim has scores yet)", ha="center")
        ax.set_axis_off()
    else:
        _draw_rows(ax, effects, x_limit(effects))
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel("effect (dB): A - B, or A - threshold; bars: 95 % intervals")
        ax.grid(axis="x", alpha=0.3)
        _legend(ax, effects["verdict"])
    ax.set_title(title or "Claims of the report: effects and 95 % intervals", fontsize=9)
    fig.tight_layout()
    if path is None:
        return fig
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)

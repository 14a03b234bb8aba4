"""Forest plot of the claims' effects: one row per compared pair, its 95 % interval, the zero
line and the equivalence margins, coloured by verdict (matplotlib, Agg backend).

The input is :func:`hourglass_sep.claims.effects_table`; a reader sees at a glance which
intervals clear zero (or stay within their margins) and which straddle them.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .audio import atomic_path

DPI = 150
VERDICT_COLORS = {
    "holds": "#1b9e77",
    "contradicted": "#d95f02",
    "inconclusive": "#7570b3",
    "needs paper scale": "#999999",
}


def _axes(n_rows: int):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(9, 1.2 + 0.34 * max(n_rows, 1)))


def _draw_rows(ax, effects: pd.DataFrame) -> None:
    n = len(effects)
    for i, r in enumerate(effects.itertuples(index=False)):
        y = n - 1 - i  # first row on top
        color = VERDICT_COLORS.get(r.verdict, "black")
        ax.errorbar(
            r.effect,
            y,
            xerr=[[r.effect - r.lo], [r.hi - r.effect]],
            fmt="o",
            color=color,
            ecolor=color,
            capsize=3,
            markersize=4,
        )
        margin = float(r.margin) if r.margin is not None and not math.isnan(r.margin) else 0.0
        if margin > 0:
            for x in (-margin, margin):
                ax.plot([x, x], [y - 0.4, y + 0.4], color="grey", linestyle="--", linewidth=0.8)
    ax.set_yticks(range(n))
    ax.set_yticklabels(list(effects["label"])[::-1], fontsize=7)
    ax.set_ylim(-0.7, n - 0.3)


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
        _draw_rows(ax, effects)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel("effect (dB): A - B, or A - threshold; bars = 95 % interval")
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

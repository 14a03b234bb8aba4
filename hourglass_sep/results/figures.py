"""The PNG figures of the results (matplotlib, Agg backend, 150 dpi).

- ``metrics.png``: voice and accompaniment GNSDR / GSIR / GSAR per evaluated run
  (bars), with the values the report / Park's paper printed (markers);
- ``nsdr_distribution.png``: per-clip NSDR per run, voice and accompaniment (box plots);
- ``training_loss.png``: training loss per variant (log scale);
- ``example.png``: one test clip: mixture spectrogram, the two masks, the two estimates
  (from ``--example-npz``, or computed with ``--example-model`` + a clip);
- ``speed.png``: measured timings beside the report's claims;
- ``methods.png`` (with ``--methods``): voice GNSDR vs parameters per method with 95 %
  intervals, the training-free methods on a strip of their own, the oracle as a ceiling.

A figure whose input is missing is skipped with a logged note; the others are
always written.  :func:`example_arrays` computes the example figure's arrays
from a trained model (torch is imported there only).
"""

from __future__ import annotations

import argparse
import logging
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from hourglass_sep.data.audio import atomic_path
from hourglass_sep.errors import UserError
from hourglass_sep.results import published as refs
from hourglass_sep.results.run_inputs import (
    inputs_from_args,
    Inputs,
    add_inputs_arguments,
    load_inputs,
    reported_value,
    scale_info,
)
from hourglass_sep.results.speed import is_ratio
from hourglass_sep.scoring.clip_status import failure_note

log = logging.getLogger(__name__)

DPI = 150
SR = 8000  # features.SR / N_FFT / HOP, repeated here so that plotting never imports torch
N_FFT = 1024
HOP = 256
EXAMPLE_KEYS = ("mixture", "voice_mask", "accompaniment_mask", "voice", "accompaniment")
FIGURES = ("metrics", "nsdr_distribution", "training_loss", "example", "speed", "methods")
SRC_COLORS = {"voice": "#d95f02", "accompaniment": "#1b9e77"}
SRC_NAMES = {"voice": "voice", "accompaniment": "accompaniment"}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 9,
            "axes.titlesize": 10,
            "figure.titlesize": 12,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    )
    return plt


def _save(fig, path: Path) -> Path:
    plt = _plt()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png")
    plt.close(fig)
    log.info("wrote %s", path)
    return path


def _message_figure(path: Path, title: str, lines: list[str]) -> Path:
    """A figure that says why there is nothing to plot (the workflow still gets its PNG)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.3 * len(lines)))
    ax.set_axis_off()
    ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=8, family="monospace")
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def _failure_lines(inputs: Inputs, rows: list[dict]) -> list[str]:
    """One line per run: its label and why none of its clips is usable."""
    out = []
    for r in rows:
        s = inputs.clip_scores(r)
        note = "no score rows" if s is None else failure_note(s)
        out.append(f"{_run_label(r)}: {note}")
    return out


def _failed_suffix(summ: dict) -> str:
    """ "  (2 of 60 clips failed)" for a summary row with failed clips, else ""."""
    failed, ok = (pd.to_numeric(summ.get(k), errors="coerce") for k in ("failed", "clips"))
    failed, ok = (int(x) if pd.notna(x) else 0 for x in (failed, ok))
    if not failed:
        return ""
    total = failed + ok
    return f"  ({failed} of {total} clips failed)"


def _run_label(row: dict) -> str:
    lab = row.get("label") or row["variant"]
    if row.get("report_row") is not None:
        lab += f"  [row {row['report_row']}]"
    return lab


def _scale_note(inputs: Inputs, markers: bool = False, width: int = 110) -> str:
    """What scale the figure shows, wrapped so a long preset description does not widen
    the figure."""
    sc = scale_info(inputs.meta, inputs.rows)
    if sc["reduced"]:
        note = f"reduced-scale run ({sc['name']}{': ' + sc['details'] if sc['details'] else ''})"
        note += "; markers = published values at paper scale" if markers else ""
    else:
        note = f"scale: {sc['name']}"
    return textwrap.fill(note, width=width)


# ----------------------------------------------------------------------------- metrics
BAR_H = 0.38  # bar height of the metrics figure (rows are 1 apart; two sources a row)


def _measured_bars(ax, inputs: Inputs, rows: list[dict], src: str, m: str, ys) -> None:
    """One source's measured means as bars, each labelled with its value."""
    vals = np.array([inputs.summary_row(r).get(f"{src}_{m}", np.nan) for r in rows], dtype=float)
    ax.barh(
        ys,
        np.nan_to_num(vals),
        height=BAR_H,
        color=SRC_COLORS[src],
        alpha=0.85,
        label=f"{src} (measured)",
    )
    for yi, v in zip(ys, vals):
        finite = np.isfinite(v)
        ax.text(
            v if finite else 0.0,
            yi,
            f" {v:.2f}" if finite else " no usable clip",
            va="center",
            ha="left" if not finite or v >= 0 else "right",
            fontsize=7,
            color="black" if finite else "0.4",
        )


def _reported_marks(ax, rows: list[dict], src: str, m: str, ys, legend: bool) -> None:
    """The report's (or Park's paper's) numbers as diamonds beside each bar, and the paper's
    figure as a dotted line: the targets the measured bars are read against."""
    rep = np.array(
        [np.nan if reported_value(r, src, m) is None else reported_value(r, src, m) for r in rows]
    )
    ok = np.isfinite(rep)
    if ok.any():
        ax.scatter(
            rep[ok],
            ys[ok],
            marker="D",
            s=22,
            color="black",
            zorder=3,
            label="reported (report / Park's paper)" if legend else None,
        )
    pv = refs.PARK_PAPER.voice if src == "voice" else refs.PARK_PAPER.accompaniment
    ax.axvline(
        pv[refs.METRICS.index(m)],
        color=SRC_COLORS[src],
        ls=":",
        lw=1.2,
        label=f"Park's paper, {src}",
    )


def plot_metrics(inputs: Inputs, path: Path) -> Path | None:
    """One panel per metric: measured bars per run and source against the reported numbers."""
    plt = _plt()
    rows = [r for r in inputs.rows if inputs.summary_row(r) is not None]
    missing = [r["variant"] + f"@{r['step']}" for r in inputs.rows if inputs.summary_row(r) is None]
    if not rows:
        log.warning("metrics.png skipped: the summary holds none of the experiment rows")
        return None
    n = len(rows)
    fig, axes = plt.subplots(1, 3, figsize=(13, 1.2 + 0.42 * n + 0.6), sharey=True)
    y = np.arange(n)
    for ax, m in zip(axes, refs.METRICS):
        for k, src in enumerate(refs.SOURCES):
            ys = y + ((-BAR_H / 2) if k == 0 else (BAR_H / 2))
            _measured_bars(ax, inputs, rows, src, m, ys)
            _reported_marks(ax, rows, src, m, ys, legend=k == 0)
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_title(refs.METRIC_NAMES[m])
        ax.set_xlabel(f"{refs.METRIC_NAMES[m]} (dB)")
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(y, [_run_label(r) + _failed_suffix(inputs.summary_row(r)) for r in rows])
    axes[0].invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=5,
        bbox_to_anchor=(0.5, -0.01 - 0.25 / max(n, 1)),
        frameon=False,
        fontsize=8,
    )
    title = "Separation quality per run (length-weighted means over the test clips)"
    sub = _scale_note(inputs, markers=True)
    if missing:
        sub += f"; not scored: {', '.join(missing)}"
    fig.suptitle(f"{title}\n{sub}", fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(fig, path)


# ----------------------------------------------------------------------------- per-clip NSDR
def _nsdr_data(inputs: Inputs) -> list[tuple[dict, dict[str, np.ndarray]]]:
    """(experiment row, {source: NSDR of its ok clips}) for rows with any per-clip NSDR."""
    data = []
    for r in inputs.rows:
        s = inputs.clip_scores(r)
        if s is None:
            continue
        if "status" in s.columns:
            s = s[s["status"].astype(str) == "ok"]
        vals = {
            src: pd.to_numeric(s.get(f"{src}_nsdr"), errors="coerce").dropna().to_numpy()
            if f"{src}_nsdr" in s.columns
            else np.array([])
            for src in refs.SOURCES
        }
        if any(len(v) for v in vals.values()):
            data.append((r, vals))
    return data


def _nsdr_panel(ax, series: list[np.ndarray], src: str) -> None:
    """Horizontal box plots of one source's per-clip NSDR, one per run, with clip counts."""
    pos = np.arange(len(series))
    kw = dict(
        positions=pos,
        widths=0.6,
        patch_artist=True,
        showmeans=True,
        meanprops=dict(marker="^", markerfacecolor="white", markeredgecolor="black", markersize=5),
        medianprops=dict(color="black"),
        flierprops=dict(marker=".", markersize=3, alpha=0.5),
    )
    try:  # matplotlib >= 3.10
        bp = ax.boxplot(series, orientation="horizontal", **kw)
    except TypeError:
        bp = ax.boxplot(series, vert=False, **kw)
    for patch in bp["boxes"]:
        patch.set_facecolor(SRC_COLORS[src])
        patch.set_alpha(0.6)
    for p, v in zip(pos, series):
        ax.text(
            1.0,
            p,
            f"n={np.isfinite(v).sum()}",
            transform=ax.get_yaxis_transform(),
            fontsize=7,
            va="center",
            ha="right",
            color="0.35",
        )
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_title(f"{SRC_NAMES[src]} NSDR per clip")
    ax.set_xlabel("NSDR (dB): SDR of the estimate - SDR of the mixture")
    ax.grid(axis="y", visible=False)


def plot_nsdr_distribution(inputs: Inputs, path: Path) -> Path | None:
    """Per-clip NSDR spread per run: the means alone hide failing clips."""
    plt = _plt()
    if inputs.scores is None:
        log.warning("nsdr_distribution.png skipped: no per-clip score tables given (--scores)")
        return None
    data = _nsdr_data(inputs)
    if not data:
        scored = [r for r in inputs.rows if inputs.clip_scores(r) is not None]
        if not scored:
            log.warning(
                "nsdr_distribution.png skipped: the score tables hold none of the experiment rows"
            )
            return None
        log.warning("nsdr_distribution.png: no run has a usable clip score")
        return _message_figure(
            path, "Per-clip NSDR: no run has a usable clip score", _failure_lines(inputs, scored)
        )
    n = len(data)
    fig, axes = plt.subplots(1, 2, figsize=(12, 1.4 + 0.45 * n), sharey=True)
    for ax, src in zip(axes, refs.SOURCES):
        series = [d[1][src] if len(d[1][src]) else np.array([np.nan]) for d in data]
        _nsdr_panel(ax, series, src)
    axes[0].set_yticks(np.arange(n), [_run_label(d[0]) for d in data])
    axes[0].invert_yaxis()
    shown = {id(d[0]) for d in data}
    dead = [_run_label(r) for r in inputs.rows
            if id(r) not in shown and inputs.clip_scores(r) is not None]  # fmt: skip
    note = f"\nno usable clip (not shown): {', '.join(dead)}" if dead else ""
    fig.suptitle(
        "Per-clip NSDR (box: quartiles, line: median, triangle: unweighted mean)\n"
        + _scale_note(inputs)
        + textwrap.fill(note, width=110, replace_whitespace=False),
        fontsize=11,
    )
    fig.tight_layout()
    return _save(fig, path)


# ----------------------------------------------------------------------------- loss
def plot_training_loss(inputs: Inputs, path: Path) -> Path | None:
    plt = _plt()
    curves, seen = [], set()
    for r in inputs.rows:
        if r["variant"] in seen:
            continue
        seen.add(r["variant"])
        h = inputs.history(r)
        if h is not None and len(h):
            loss = pd.to_numeric(h["loss"], errors="coerce")
            curves.append((r, h["step"].to_numpy(), loss.to_numpy()))
    if not curves:
        log.warning("training_loss.png skipped: no history.csv found for any variant")
        return None
    fig, ax = plt.subplots(figsize=(10, 5.5))
    cmap = plt.get_cmap("tab20" if len(curves) > 10 else "tab10")
    for i, (r, step, loss) in enumerate(curves):
        color = cmap(i % cmap.N)
        ok = np.isfinite(loss) & (loss > 0)
        step, loss = step[ok], loss[ok]
        if not len(loss):
            continue
        win = max(1, len(loss) // 50)
        smooth = pd.Series(loss).rolling(win, min_periods=1, center=True).mean().to_numpy()
        if win > 1:
            ax.plot(step, loss, color=color, alpha=0.2, lw=0.7)
        lab = (r.get("label") or r["variant"]).split(" @")[0]
        if lab != r["variant"]:
            lab = f"{lab} ({r['variant']})"
        ax.plot(step, smooth, color=color, lw=1.6, label=lab)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss: sum over stacks of mean |estimate - target| (log scale)")
    ax.set_title(
        "Training loss per variant (faint: raw, solid: running mean)\n" + _scale_note(inputs)
    )
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


# ----------------------------------------------------------------------------- example clip
def example_arrays(model_path: str | Path, audio_path: str | Path) -> dict:
    """Mixture, masks and estimates (normalised magnitudes, 512 x T) of one clip separated
    by a model.

    Keys: ``mixture``, ``voice_mask``, ``accompaniment_mask``, ``voice``,
    ``accompaniment`` (float32 512 x T) and ``clip`` (the audio file's stem).
    The whole clip goes through the network in one pass (padded in time to a
    multiple of the architecture's ``time_multiple``).  For single-mask and
    end-to-end targets the masks shown are the implied ones (estimate / mixture).
    """
    import torch

    from hourglass_sep.data.audio import read_audio
    from hourglass_sep.data.features import clip_features
    from hourglass_sep.nets.inference import load_model
    from hourglass_sep.nets.model import sources_from_prediction
    from hourglass_sep.separation.windowing import predict_whole

    model_path, audio_path = Path(model_path), Path(audio_path)
    if not model_path.exists():
        raise UserError(f"{model_path}: model not found; train it with `hourglass-sep train`")
    bundle = load_model(model_path, device="cpu", precision="fp32")
    audio, sr = read_audio(audio_path)
    mix = clip_features(audio, sr, with_sources=False).mixture
    pred = torch.from_numpy(predict_whole(bundle, [mix])[0])[None]
    voice, acc = sources_from_prediction(
        pred, torch.from_numpy(mix)[None, None], bundle.arch.target
    )
    voice = voice[0, 0].numpy()
    acc = acc[0, 0].numpy()
    denom = np.where(mix > 1e-8, mix, np.inf)
    return {
        "mixture": mix.astype(np.float32),
        "voice_mask": (voice / denom).astype(np.float32),
        "accompaniment_mask": (acc / denom).astype(np.float32),
        "voice": voice.astype(np.float32),
        "accompaniment": acc.astype(np.float32),
        "clip": audio_path.stem,
    }


def save_example_npz(arrays: dict, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                **{k: arrays[k] for k in EXAMPLE_KEYS},
                clip=np.array(str(arrays.get("clip", ""))),
            )
    return path


def load_example_npz(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: example npz not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in EXAMPLE_KEYS if k not in z.files]
            if missing:
                raise UserError(
                    f"{path}: example npz lacks {missing} (keys: {', '.join(EXAMPLE_KEYS)}, clip)"
                )
            out = {k: np.asarray(z[k], dtype=np.float32) for k in EXAMPLE_KEYS}
            out["clip"] = str(z["clip"]) if "clip" in z.files else path.stem
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - zip/pickle/format errors
        raise UserError(f"{path}: cannot read as an npz ({exc})") from None
    shapes = {k: out[k].shape for k in EXAMPLE_KEYS}
    if len(set(shapes.values())) != 1 or out["mixture"].ndim != 2:
        raise UserError(
            f"{path}: the example arrays must all be 2-D of the same shape (bins x frames), "
            f"got {shapes}"
        )
    return out


def plot_example(arrays: dict, path: Path, title_extra: str = "") -> Path:
    plt = _plt()
    from matplotlib.gridspec import GridSpec

    mix = arrays["mixture"]
    bins, T = mix.shape
    extent = (0, T * HOP / SR, 0, bins * SR / N_FFT / 1000)
    floor = -80.0

    def db(a):
        a = np.maximum(np.asarray(a, dtype=np.float64), 0)
        ref = max(float(mix.max()), 1e-12)
        return np.maximum(20 * np.log10(np.maximum(a, 1e-12) / ref), floor)

    fig = plt.figure(figsize=(12, 10))
    gs = GridSpec(3, 2, figure=fig, hspace=0.45, wspace=0.18)
    panels = [
        (gs[0, :], "mixture", "mixture magnitude", "db"),
        (gs[1, 0], "voice_mask", "voice mask", "mask"),
        (gs[1, 1], "accompaniment_mask", "accompaniment mask", "mask"),
        (gs[2, 0], "voice", "voice estimate (mask x mixture)", "db"),
        (gs[2, 1], "accompaniment", "accompaniment estimate (mask x mixture)", "db"),
    ]
    for spec, key, title, kind in panels:
        ax = fig.add_subplot(spec)
        ax.grid(False)
        if kind == "db":
            im = ax.imshow(
                db(arrays[key]),
                origin="lower",
                aspect="auto",
                extent=extent,
                cmap="magma",
                vmin=floor,
                vmax=0,
                interpolation="nearest",
            )
            cb = fig.colorbar(im, ax=ax, pad=0.01)
            cb.set_label("dB re. mixture max")
        else:
            im = ax.imshow(
                np.clip(arrays[key], 0, 1),
                origin="lower",
                aspect="auto",
                extent=extent,
                cmap="viridis",
                vmin=0,
                vmax=1,
                interpolation="nearest",
            )
            cb = fig.colorbar(im, ax=ax, pad=0.01)
            cb.set_label("mask (0-1, clipped)")
        ax.set_title(title)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (kHz)")
    clip = arrays.get("clip") or "example clip"
    fig.suptitle(
        f"Example test clip {clip}: spectrogram, masks and estimates (8 kHz, STFT 1024/256)"
        + (f"\n{title_extra}" if title_extra else "")
    )
    return _save(fig, path)


# ----------------------------------------------------------------------------- speed
def plot_speed(inputs: Inputs, path: Path) -> Path | None:
    plt = _plt()
    if inputs.speed is None or inputs.speed["seconds"].dropna().empty:
        log.warning("speed.png skipped: no speed table given (--speed)")
        return None
    sp = inputs.speed.dropna(subset=["seconds"])
    labels, secs, colors, hatches = [], [], [], []
    for _, r in sp.iterrows():
        if is_ratio(r):  # a speed-up, not a time: it is in the report's table
            continue
        dev = r.get("device")
        lab = str(r["what"]) + (f" [{dev}]" if isinstance(dev, str) and dev else "")
        labels.append(lab)
        secs.append(float(r["seconds"]))
        colors.append("#4c72b0")
        hatches.append("")
    for c in refs.TIMING_CLAIMS:
        labels.append(f"report: {c.what} [{c.device}]")
        secs.append(c.seconds)
        colors.append("0.75")
        hatches.append("//")
    n = len(labels)
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.42 * n))
    y = np.arange(n)
    bars = ax.barh(y, secs, color=colors, edgecolor="0.3", height=0.65)
    for b, hch in zip(bars, hatches):
        b.set_hatch(hch)
    for yi, s in zip(y, secs):
        txt = (
            f" {s:.2f} s"
            if s < 60
            else (f" {s / 60:.1f} min" if s < 3600 else f" {s / 3600:.2f} h")
        )
        ax.text(s, yi, txt, va="center", fontsize=8)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    positive = [s for s in secs if s > 0]
    if positive and max(positive) / max(min(positive), 1e-9) > 50:
        ax.set_xscale("log")
        ax.set_xlabel("seconds (log scale)")
    else:
        ax.set_xlabel("seconds")
    ax.set_xlim(right=max(secs) * (8 if ax.get_xscale() == "log" else 1.2))
    ax.grid(axis="y", visible=False)
    ax.set_title(
        "Timings: measured (blue) and the report's claims (grey, hatched)\n" + _scale_note(inputs)
    )
    fig.tight_layout()
    return _save(fig, path)


# ----------------------------------------------------------------------------- methods
FAMILY_COLORS = {
    "hourglass": "#d95f02",
    "learned peer": "#1b9e77",
    "training-free": "#7570b3",
    "oracle": "0.35",
}


def _methods_points(ax, df: pd.DataFrame, x) -> None:
    """Voice GNSDR of ``df``'s methods at ``x`` with their interval bars, labelled."""
    for xi, (_, r) in zip(x, df.iterrows()):
        v, lo, hi = (float(r[f"voice_gnsdr{k}"]) for k in ("", "_lo", "_hi"))
        err = [[v - lo if np.isfinite(lo) else 0.0], [hi - v if np.isfinite(hi) else 0.0]]
        color = FAMILY_COLORS.get(str(r.get("family")), "#4c72b0")
        ax.errorbar([xi], [v], yerr=err, fmt="o", color=color, capsize=3, ms=5)
        ax.annotate(str(r["label"]), (xi, v), xytext=(5, 3), textcoords="offset points", fontsize=7)


def _oracle_lines(axes, oracles: pd.DataFrame) -> None:
    """The oracles' voice GNSDR as horizontal ceilings (their intervals as a faint band), one
    line style each and named in a legend: oracles sit within a dB of each other, where
    labels written on the lines would overlap."""
    styles = ("--", ":", "-.", (0, (5, 1, 1, 1)))
    for i, (_, r) in enumerate(oracles.iterrows()):
        v, lo, hi = (float(r[f"voice_gnsdr{k}"]) for k in ("", "_lo", "_hi"))
        for ax in axes:
            ax.axhline(
                v,
                color=FAMILY_COLORS["oracle"],
                ls=styles[i % len(styles)],
                lw=1,
                label=f"{r['label']} (ceiling) {v:.2f} dB" if ax is axes[-1] else None,
            )
            if np.isfinite(lo) and np.isfinite(hi):
                ax.axhspan(lo, hi, color=FAMILY_COLORS["oracle"], alpha=0.08, lw=0)
    if len(oracles):
        axes[-1].legend(loc="lower right", fontsize=7, frameon=False)


def _methods_frame(methods: pd.DataFrame) -> pd.DataFrame:
    """The scored rows of the methods table with numeric columns (absent ones NaN)."""
    df = methods.copy()
    for c in ("voice_gnsdr", "voice_gnsdr_lo", "voice_gnsdr_hi", "parameters"):
        df[c] = pd.to_numeric(df[c], errors="coerce") if c in df.columns else np.nan
    df["family"] = df["family"].fillna("").astype(str) if "family" in df.columns else ""
    df["label"] = df["label"].astype(str)
    return df[np.isfinite(df["voice_gnsdr"])]


def plot_methods(inputs: Inputs, path: Path) -> Path | None:
    """Voice GNSDR vs parameters (log scale) with 95 % interval bars; methods without
    parameters (training-free) on a strip of their own at the left, since 0 has no place on
    a log axis; the oracles as horizontal ceilings across both."""
    if inputs.methods is None:
        log.info("methods.png skipped: no methods table given (--methods)")
        return None
    df = _methods_frame(inputs.methods)
    if df.empty:
        log.warning("methods.png skipped: no method of the methods table was scored")
        return None
    oracle = df["family"] == "oracle"
    free = ~oracle & ((df["parameters"] == 0) | (df["family"] == "training-free"))
    sized = df[~oracle & ~free & (df["parameters"] > 0)]
    unsized = df[~oracle & ~free & ~(df["parameters"] > 0)]
    if len(unsized):
        log.warning("methods.png: no parameter count for %s", ", ".join(unsized["label"]))
    plt = _plt()
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(10, 5), sharey=True, gridspec_kw={"width_ratios": [1, 4]}
    )
    _methods_points(left, df[free], np.arange(int(free.sum())))
    left.set_xlim(-0.6, max(int(free.sum()), 1) - 0.4)
    left.set_xticks([])
    left.set_xlabel("training-free\n(0 parameters)")
    left.set_ylabel("voice GNSDR (dB)")
    _methods_points(right, sized, sized["parameters"].to_numpy(dtype=float))
    if len(sized):
        right.set_xscale("log")
        lo, hi = sized["parameters"].min(), sized["parameters"].max()
        right.set_xlim(lo / 2, hi * 4)
    right.set_xlabel("trainable parameters (log scale)")
    _oracle_lines((left, right), df[oracle])
    fig.suptitle(
        "Methods: voice GNSDR vs parameters (95 % intervals over clips and seeds)\n"
        + _scale_note(inputs),
        fontsize=11,
    )
    fig.tight_layout()
    return _save(fig, path)


# ----------------------------------------------------------------------------- driver
def write_figures(
    inputs: Inputs, outdir: str | Path, example: dict | None = None
) -> dict[str, Path | None]:
    """Write every figure whose inputs exist; returns ``{name: path or None (skipped)}``."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    done: dict[str, Path | None] = {}
    jobs = {
        "metrics": lambda p: plot_metrics(inputs, p),
        "nsdr_distribution": lambda p: plot_nsdr_distribution(inputs, p),
        "training_loss": lambda p: plot_training_loss(inputs, p),
        "example": lambda p: plot_example(example, p) if example is not None else None,
        "speed": lambda p: plot_speed(inputs, p),
        "methods": lambda p: plot_methods(inputs, p),
    }
    for name, job in jobs.items():
        path = outdir / f"{name}.png"
        if name == "example" and example is None:
            log.warning(
                "example.png skipped: no example given (--example-npz, or --example-model "
                "with a clip)"
            )
        done[name] = job(path)
        if done[name] is None and path.exists():  # never leave a stale figure from an earlier run
            path.unlink()
            log.info("removed the stale %s", path)
    return done


def _example_from_args(args) -> dict | None:
    if args.example_npz:
        p = Path(args.example_npz)
        if not p.exists():
            log.warning("example.png skipped: %s not found", p)
            return None
        return load_example_npz(p)
    if not args.example_model:
        return None
    model = Path(args.example_model)
    if not model.exists():
        log.warning("example.png skipped: model %s not found (variant not trained?)", model)
        return None
    audio = args.example_audio
    if audio is None and args.catalogue:
        from hourglass_sep.data.catalogue import read_catalogue, select

        cat = read_catalogue(args.catalogue)
        test = select(cat, "test")
        if args.example_clip:
            test = test[test["clip"] == args.example_clip]
            if test.empty:
                raise UserError(
                    f"{args.catalogue}: no evaluated test clip named {args.example_clip!r}"
                )
        if test.empty:
            log.warning("example.png skipped: %s lists no test clip", args.catalogue)
            return None
        audio = test.iloc[0]["path"]
    if audio is None:
        raise UserError(
            "--example-model needs a clip: give --example-audio FILE or --catalogue catalogue.tsv"
        )
    arrays = example_arrays(model, audio)
    if args.save_example:
        save_example_npz(arrays, args.save_example)
    return arrays


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs_arguments(p)
    g = p.add_argument_group("example clip (example.png)")
    g.add_argument(
        "--example-npz",
        default=None,
        metavar="NPZ",
        help="arrays of one clip: mixture, voice_mask, accompaniment_mask, voice, "
        "accompaniment (512 x T), clip",
    )
    g.add_argument(
        "--example-model", default=None, metavar="PT", help="or compute them with this model.pt ..."
    )
    g.add_argument(
        "--example-audio", default=None, metavar="AUDIO", help="... on this audio file ..."
    )
    g.add_argument(
        "--catalogue",
        default=None,
        metavar="TSV",
        help="... or on the first evaluated test clip of this catalogue",
    )
    g.add_argument(
        "--example-clip",
        default=None,
        metavar="CLIP",
        help="with --catalogue: this clip instead of the first",
    )
    g.add_argument(
        "--save-example", default=None, metavar="NPZ", help="also save the computed example arrays"
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="folder receiving the PNG files"
    )


def run(args: argparse.Namespace) -> int:
    inputs = inputs_from_args(args)
    example = _example_from_args(args)
    done = write_figures(inputs, args.output, example)
    skipped = [k for k, v in done.items() if v is None]
    if skipped:
        log.info("figures skipped (inputs missing): %s", ", ".join(skipped))
    return 0

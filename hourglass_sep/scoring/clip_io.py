"""Reading what scoring needs: the catalogue, a clip's references (voice = right channel,
accompaniment = left), the estimates files of a separation (one npz per shard, opened once),
and mixture baseline tables.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hourglass_sep.errors import UserError
from hourglass_sep.scoring.signals import BASELINE_COLUMNS, CHANNEL, MIX_COLUMNS, SOURCES, ClipError

log = logging.getLogger(__name__)

_NPZ_CACHE: dict[tuple, Any] = {}  # open estimates / reference cache files of this process


def load_catalogue(path: str | os.PathLike):
    from hourglass_sep.data.catalogue import read_catalogue

    df = read_catalogue(path)
    if "evaluate" not in df.columns:
        raise UserError(
            f"{path}: catalogue has no 'evaluate' column; write it with `hourglass-sep catalogue`"
        )
    return df


def read_references(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """``(2, n)`` float64 (voice = right channel, accompaniment = left channel) and the rate."""
    from hourglass_sep.data.audio import read_audio

    try:
        x, sr = read_audio(path)
    except UserError as exc:
        raise ClipError(f"unreadable reference: {exc}") from None
    if x.shape[0] != 2:
        raise ClipError(f"reference is not stereo ({x.shape[0]} channels): {path}")
    return np.stack([x[CHANNEL[s]] for s in SOURCES]).astype(np.float64), sr


class EstimatesIndex:
    """Which estimates file holds which clip (one or several npz files, e.g. one per shard)."""

    def __init__(self, paths: Sequence[str | os.PathLike]):
        self.where: dict[str, str] = {}
        self.meta: dict[str, Any] = {}
        for p in paths:
            p = Path(p)
            if not p.exists():
                raise UserError(
                    f"{p}: estimates file not found; "
                    "write it with `hourglass-sep separate --estimates`"
                )
            if p.is_dir():
                raise UserError(
                    f"{p}: is a directory; "
                    "--estimates expects the .npz written by `hourglass-sep separate`"
                )
            try:
                with np.load(p, allow_pickle=False) as z:
                    keys = set(z.files)
                    if "clips" not in keys:
                        raise UserError(
                            f"{p}: not an estimates file "
                            f"(no 'clips' array; has {sorted(keys)[:5]}); "
                            "expected the .npz written by `hourglass-sep separate --estimates`"
                        )
                    clips = [str(c) for c in np.atleast_1d(z["clips"])]
                    if "meta" in keys:
                        with contextlib.suppress(Exception):
                            self.meta[str(p)] = json.loads(str(z["meta"]))
            except UserError:
                raise
            except Exception as exc:
                raise UserError(
                    f"{p}: cannot read as an estimates .npz ({type(exc).__name__}: {exc}); "
                    "expected the file written by `hourglass-sep separate --estimates`"
                ) from None
            for c in clips:
                if all(f"{s}__{c}" in keys for s in SOURCES):
                    self.where.setdefault(c, str(p))

    def __contains__(self, clip: str) -> bool:
        return clip in self.where


def close_npz_cache() -> None:
    for z in _NPZ_CACHE.values():
        with contextlib.suppress(Exception):
            z.close()
    _NPZ_CACHE.clear()


def _open_npz(path: str):
    """The open ``NpzFile`` of ``path`` (kept open across the clips a worker scores)."""
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)  # a rewritten file is opened afresh
    z = _NPZ_CACHE.get(key)
    if z is None:
        if len(_NPZ_CACHE) >= 8:
            close_npz_cache()
        z = _NPZ_CACHE[key] = np.load(path, allow_pickle=False)
    return z


def read_estimates(path: str, clip: str) -> np.ndarray:
    z = _open_npz(path)
    arrs = [np.asarray(z[f"{s}__{clip}"]) for s in SOURCES]
    if any(a.ndim != 1 for a in arrs):
        raise ClipError(f"estimates must be 1-D waveforms; got shapes {[a.shape for a in arrs]}")
    if arrs[0].shape != arrs[1].shape:
        raise ClipError(
            f"length mismatch: voice estimate has {arrs[0].size} samples, "
            f"accompaniment {arrs[1].size}"
        )
    return np.stack(arrs).astype(np.float64)


def read_baselines(paths: Sequence[str | os.PathLike]):
    """Concatenate baseline shard tables (``hourglass-sep baseline`` outputs), one row per clip."""
    import pandas as pd

    frames = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise UserError(
                f"{p}: baseline table not found; write it with `hourglass-sep baseline`"
            )
        try:
            df = pd.read_csv(p, sep="\t")
        except Exception as exc:
            raise UserError(
                f"{p}: cannot read as a TSV table ({type(exc).__name__}: {exc})"
            ) from None
        missing = [c for c in ("clip", "samples", "status", *MIX_COLUMNS) if c not in df.columns]
        if missing:
            raise UserError(
                f"{p}: not a baseline table (missing columns {missing}); "
                "write it with `hourglass-sep baseline --catalogue ... --shard I/N -o FILE`"
            )
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=BASELINE_COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    df["clip"] = df["clip"].astype(str)
    dup = df["clip"].duplicated()
    if dup.any():
        log.warning(
            "%d clips appear in more than one baseline file; keeping the first", int(dup.sum())
        )
        df = df[~dup]
    return df.set_index("clip", drop=False)


def check_paths(clips, catalogue) -> None:
    missing = [p for p in clips["path"].astype(str) if not Path(p).exists()]
    if missing:
        raise UserError(
            f"{catalogue}: {len(missing)} clip files listed in the catalogue do not exist "
            f"(e.g. {missing[0]}); rebuild the catalogue where the data lives"
        )

"""The reference cache: per-shard file of the references' BSS Eval factorisations.

The references of a test clip are the same for the mixture baseline, every model and every
training step, so the reference side of BSS Eval v3 (auto/cross-correlations and Cholesky
factors of their Gram matrix, see ``hourglass_sep.scoring.bss_eval``) is computed once per dataset
shard and read back by ``hourglass-sep baseline --references`` and ``hourglass-sep score
--references`` (backend ``cached``).

File layout (an uncompressed ``.npz``; float64 throughout): ``clips``, ``samples``,
``status`` (one row per clip of the shard; ``ok`` or why the clip has no factors), ``meta``
(JSON: format version, filter length, shard) and, per ``ok`` clip, ``auto__<clip>`` (2, 512),
``cross__<clip>`` (1023,) and ``chol__<clip>`` (3, 131328): three packed lower triangles,
about 3.2 MB per clip.  The file is written entry by entry as the workers finish, so memory
stays at a few clips whatever the shard size.

Build it with ``hourglass-sep references --catalogue C --shard I/N -o FILE``
(the Snakemake rule ``references`` does).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hourglass_sep.data.audio import atomic_path
from hourglass_sep.data.catalogue import evaluated_clips, parse_shard
from hourglass_sep.data.npz_map import map_npz
from hourglass_sep.errors import UserError
from hourglass_sep.scoring import bss_eval
from hourglass_sep.scoring.clip_io import check_paths, load_catalogue, read_references
from hourglass_sep.scoring.signals import ClipError, check_signals
from hourglass_sep.scoring.workers import default_workers, iter_tasks

log = logging.getLogger(__name__)

FORMAT = "hourglass-sep reference cache 1"
NOT_PD = "reference correlations not positive definite (scored without the cache)"
# stored energies vs the audio read when scoring: a different clip differs by far more
ENERGY_RTOL = 1e-9


# --------------------------------------------------------------------------- building


def _factor_task(task: dict) -> dict:
    """Read one clip's references and factorise them (runs in a worker)."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"clip": task["clip"], "samples": task["samples"], "arrays": None}
    try:
        refs, _sr = read_references(task["path"])
        out["samples"] = refs.shape[1]
        check_signals(refs, refs)  # silence, NaN, too short: the policies of every backend
        out["arrays"] = bss_eval.factorise(refs).to_arrays()
        out["status"] = "ok"
    except ClipError as exc:
        out["status"] = str(exc)
    except np.linalg.LinAlgError:
        out["status"] = NOT_PD
    out["seconds"] = time.perf_counter() - t0
    return out


def _write_array(zf: zipfile.ZipFile, name: str, arr: np.ndarray) -> None:
    with zf.open(name + ".npy", "w", force_zip64=True) as f:
        np.lib.format.write_array(f, np.asarray(arr), allow_pickle=False)


def build_cache(clips, output: str | os.PathLike, workers: int = 1, progress: bool = False):
    """Factorise the references of catalogue rows ``clips`` into ``output``; returns the
    per-clip ``(clip, samples, status, seconds)`` rows."""
    tasks = [
        {"clip": str(r.clip), "path": str(r.path), "samples": int(r.samples)}
        for r in clips.itertuples(index=False)
    ]
    rows = []
    with (
        atomic_path(output) as tmp,
        zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf,
    ):
        for res in iter_tasks(_factor_task, tasks, workers, "cached", progress, "references"):
            arrays = res.pop("arrays")
            for key, arr in (arrays or {}).items():
                _write_array(zf, f"{key}__{res['clip']}", arr)
            rows.append(res)
        rows.sort(key=lambda r: r["clip"])
        _write_array(zf, "clips", np.array([r["clip"] for r in rows], dtype=str))
        _write_array(zf, "samples", np.array([r["samples"] for r in rows], dtype=np.int64))
        _write_array(zf, "status", np.array([r["status"] for r in rows], dtype=str))
        meta = {"format": FORMAT, "filter_len": bss_eval.FILTER_LEN, "clips": len(rows)}
        _write_array(zf, "meta", np.array(json.dumps(meta)))
    return rows


# --------------------------------------------------------------------------- reading


class ReferenceCache:
    """Which cache file holds which clip (one or several shard files)."""

    def __init__(self, paths: Sequence[str | os.PathLike]):
        self.where: dict[str, tuple[str, int, str]] = {}  # clip -> (file, samples, status)
        for p in paths:
            self._index(Path(p))

    def _index(self, p: Path) -> None:
        hint = "build it with the `references` rule (hourglass-sep references)"
        if not p.is_file():
            raise UserError(f"{p}: reference cache not found; {hint}")
        try:
            with np.load(p, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                clips, samples, status = z["clips"], z["samples"], z["status"]
        except Exception as exc:
            raise UserError(
                f"{p}: not a reference cache ({type(exc).__name__}: {exc}); {hint}"
            ) from None
        if meta.get("format") != FORMAT or meta.get("filter_len") != bss_eval.FILTER_LEN:
            raise UserError(
                f"{p}: reference cache of another format ({meta.get('format')}, filter length "
                f"{meta.get('filter_len')}; this version reads {FORMAT!r}, "
                f"{bss_eval.FILTER_LEN}); rebuild it"
            )
        for c, n, s in zip(clips, samples, status):
            self.where.setdefault(str(c), (str(p), int(n), str(s)))

    def __contains__(self, clip: str) -> bool:
        return clip in self.where

    def missing(self, clips: Sequence[str]) -> list[str]:
        return [c for c in clips if c not in self.where]

    def entry(self, clip: str) -> dict | None:
        """``{"path", "samples"}`` of a clip with factors (for a task), else ``None``."""
        path, samples, status = self.where[clip]
        return {"path": path, "samples": samples} if status == "ok" else None


_MAPS: dict[tuple, dict[str, np.ndarray]] = {}


def _members(path: str) -> dict[str, np.ndarray]:
    """The cache file's factors read in place (:func:`npz_map.map_npz`; np.load would copy and
    checksum 3 MB a clip), kept across the clips a worker scores."""
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)  # a rebuilt file is mapped afresh
    if key not in _MAPS:
        if len(_MAPS) >= 8:
            _MAPS.clear()  # arrays still in use keep their map alive
        _MAPS[key] = map_npz(path, "rebuild it with `hourglass-sep references`")
    return _MAPS[key]


def load_factors(path: str, clip: str, samples: int) -> bss_eval.ReferenceFactors:
    """One clip's factors from an ``ok`` entry of the cache file ``path`` (in a worker)."""
    members = _members(path)
    arrays = [members[f"{key}__{clip}"] for key in ("auto", "cross", "chol")]
    return bss_eval.ReferenceFactors(int(samples), *arrays)


def check_matches(factors: bss_eval.ReferenceFactors, refs: np.ndarray, where: str) -> None:
    """``UserError`` when the cached factors were not computed from ``refs`` (a stale cache)."""
    energy = np.einsum("it,it->i", refs, refs)
    if refs.shape[1] != factors.samples or not np.allclose(
        energy, factors.auto[:, 0], rtol=ENERGY_RTOL, atol=0
    ):
        raise UserError(
            f"{where}: the cached references ({factors.samples} samples) are not those of the "
            f"clip's audio ({refs.shape[1]} samples); the cache is stale: rebuild it"
        )


# --------------------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--catalogue", required=True, help="catalogue TSV (hourglass-sep catalogue)")
    p.add_argument("--shard", default="0/1", help="shard I/N (0-based) of the evaluated test clips")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (one BLAS thread each); default: $OMP_NUM_THREADS or the CPUs",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-o", "--output", required=True, help="reference cache .npz to write")


def run(args: argparse.Namespace) -> int:
    clips = evaluated_clips(load_catalogue(args.catalogue), parse_shard(args.shard))
    check_paths(clips, args.catalogue)
    workers = default_workers() if args.workers is None else args.workers
    if workers < 1:
        raise UserError(f"--workers {workers}: need at least 1")
    t0 = time.perf_counter()
    rows = build_cache(clips, args.output, workers, progress=not args.no_progress)
    ok = sum(r["status"] == "ok" for r in rows)
    size = Path(args.output).stat().st_size / 2**20
    print(
        f"{args.output}: reference factorisations of {len(rows)} clips ({ok} ok), "
        f"{size:.0f} MiB, {time.perf_counter() - t0:.1f} s"
    )
    for r in rows:
        if r["status"] != "ok":
            log.warning("%s: %s", r["clip"], r["status"])
    return 0

"""Stale Snakemake locks: a run killed by SIGKILL (or a power loss) leaves ``.snakemake/locks``
behind, and the next ``snakemake`` refuses to start until the user runs ``--unlock``.

The workflow calls :func:`clear_stale_locks` while it is parsed, in the main Snakemake process
only: when locks exist and *no other Snakemake process on this machine works in the same
folder* (read from ``/proc``), the locks can only be a killed run's, and they are removed
with a log line.  Where ``/proc`` is missing, or another Snakemake runs here, nothing is
touched and Snakemake's own lock check decides.  A run on another host sharing the folder
(a cluster's second login node) is not visible from here; docs/slurm.md says to run one
Snakemake per results folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

PROC = Path("/proc")


def _ancestors(pid: int) -> set[int]:
    """``pid`` and its parents (the shell and launcher of this Snakemake)."""
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            stat = (PROC / str(pid) / "stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return seen


def _is_snakemake(argv: list[str]) -> bool:
    """``snakemake ...``, ``python .../bin/snakemake ...`` or ``python -m snakemake ...``."""
    return any(Path(a).name == "snakemake" for a in argv[:2]) or argv[1:3] == ["-m", "snakemake"]


def other_snakemakes(workdir: str | os.PathLike) -> list[int] | None:
    """PIDs of Snakemake processes other than this one (and its parents) whose working
    directory is ``workdir``; ``None`` when this system has no ``/proc`` to ask."""
    if not (PROC / "self" / "cmdline").exists():
        return None
    here = os.path.realpath(workdir)
    mine = _ancestors(os.getpid())
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if _is_snakemake(argv) and os.path.realpath(entry / "cwd") == here:
                found.append(int(entry.name))
        except OSError:  # gone, or another user's process
            continue
    return found


def clear_stale_locks(
    workdir: str | os.PathLike, log: Callable[[str], object] = print
) -> list[Path]:
    """Remove ``workdir/.snakemake/locks/*`` when no other Snakemake works in ``workdir``;
    return the removed files (none when there were none, or when they may be live)."""
    locks = sorted((Path(workdir) / ".snakemake" / "locks").glob("*.lock"))
    if not locks:
        return []
    others = other_snakemakes(workdir)
    if others is None or others:
        return []
    for f in locks:
        f.unlink(missing_ok=True)
    log(
        f"removed {len(locks)} stale Snakemake lock(s) in {Path(workdir) / '.snakemake/locks'}: "
        "left by a killed run (no other Snakemake works in this folder); resuming"
    )
    return locks

"""Scoring many clips: one process per core with one BLAS thread each (spawned workers), or
this process when one worker is asked for; results stream back as clips finish.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

from hourglass_sep.scoring.backends import get_backend

BLAS_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def default_workers() -> int:
    """Snakemake's ``threads`` (it exports OMP_NUM_THREADS) or the number of CPUs."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    try:
        n = int(env)
    except ValueError:
        n = 0
    return n if n > 0 else (os.cpu_count() or 1)


@contextlib.contextmanager
def _single_blas_thread_env():
    old = {k: os.environ.get(k) for k in BLAS_ENV}
    os.environ.update({k: "1" for k in BLAS_ENV})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _limit_blas_here():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _init_worker(backend: str) -> None:
    # the environment already says one thread (set before the worker started, i.e. before
    # numpy was imported there); threadpoolctl, when present, makes sure of it
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    get_backend(backend)  # load once per worker, outside the timed tasks


def run_tasks(
    fn: Callable[[dict], dict],
    tasks: list[dict],
    workers: int,
    backend: str,
    progress: bool = False,
    desc: str = "clips",
) -> list[dict]:
    """``fn`` applied to each task (see :func:`iter_tasks`), in completion order."""
    return list(iter_tasks(fn, tasks, workers, backend, progress, desc))


def iter_tasks(
    fn: Callable[[dict], dict],
    tasks: list[dict],
    workers: int,
    backend: str,
    progress: bool = False,
    desc: str = "clips",
):
    """Yield ``fn(task)`` for each task as it finishes: in this process when ``workers <= 1``,
    else in a ``ProcessPoolExecutor`` of spawned workers with one BLAS thread each.  A
    result is not kept once yielded (the reference cache streams megabytes per clip)."""
    from tqdm import tqdm

    get_backend(backend)  # a missing backend is reported before any work starts
    workers = max(1, min(int(workers), len(tasks)))
    bar = tqdm(
        total=len(tasks),
        desc=desc,
        unit="clip",
        disable=not progress,
        mininterval=1.0,
        file=sys.stderr,
    )
    try:
        if workers <= 1:
            with _limit_blas_here():
                for t in tasks:
                    result = fn(t)
                    bar.update()
                    yield result
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with (
                _single_blas_thread_env(),
                ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=mp.get_context("spawn"),
                    initializer=_init_worker,
                    initargs=(backend,),
                ) as pool,
            ):
                futures = {pool.submit(fn, t) for t in tasks}
                try:
                    for fut in as_completed(futures):
                        futures.discard(fut)
                        bar.update()
                        yield fut.result()
                finally:  # an error (or an abandoned generator) stops the queued clips
                    for fut in futures:
                        fut.cancel()
    finally:
        bar.close()

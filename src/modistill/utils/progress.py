"""Progress bars (tqdm: rate and ETA) and an order-free parallel map used by the long data jobs."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from tqdm.auto import tqdm


def progress(it: Iterable, total: int | None = None, desc: str = "", unit: str = "it", disable: bool = False):
    return tqdm(it, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True)


@contextmanager
def worker_pool(workers: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()):
    """A process pool of ``workers`` (each first runs ``initializer(*initargs)``), or None for ``workers <= 1``.

    One pool can serve several passes of a job: each pool start costs a fraction of a second (forkserver)."""
    if workers <= 1:
        yield None
        return
    ctx = mp.get_context("forkserver") if "forkserver" in mp.get_all_start_methods() else mp.get_context("spawn")
    with ctx.Pool(workers, initializer, initargs) as pool:
        yield pool


def run_parallel(fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int = 1,
                 initializer: Callable[..., None] | None = None, initargs: tuple = (), pool=None) -> Iterator[Any]:
    """Yield ``fn(job)`` results as they complete: in ``pool`` when given, else in a new pool of ``workers``
    processes (each first runs ``initializer(*initargs)``) when ``workers > 1``, else in this process."""
    if pool is not None:
        yield from pool.imap_unordered(fn, jobs, chunksize=1)
        return
    if workers <= 1 or len(jobs) <= 1:
        for j in jobs:
            yield fn(j)
        return
    with worker_pool(min(workers, len(jobs)), initializer, initargs) as new:
        yield from new.imap_unordered(fn, jobs, chunksize=1)

"""Progress bars (tqdm: rate and ETA) and an order-free parallel map used by the long data jobs."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from tqdm.auto import tqdm


def progress(it: Iterable, total: int | None = None, desc: str = "", unit: str = "it", disable: bool = False):
    return tqdm(it, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True)


def run_parallel(fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int,
                 initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> Iterator[Any]:
    """Yield ``fn(job)`` results as they complete, in a process pool when ``workers > 1`` (each worker first runs
    ``initializer(*initargs)``)."""
    if workers <= 1 or len(jobs) <= 1:
        for j in jobs:
            yield fn(j)
        return
    ctx = mp.get_context("forkserver") if "forkserver" in mp.get_all_start_methods() else mp.get_context("spawn")
    with ctx.Pool(min(workers, len(jobs)), initializer, initargs) as pool:
        yield from pool.imap_unordered(fn, jobs, chunksize=1)

"""Progress bars (tqdm: rate and ETA) and an order-free parallel map used by the long data jobs.

The map survives a worker that dies (killed for memory, a decoder crash): the pool is restarted, the jobs that
were running are retried one by one, and a job that kills its worker again is reported through ``on_crash``
instead of hanging the run (``multiprocessing.Pool`` waits forever for such a job).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from tqdm.auto import tqdm


def progress(it: Iterable | None, total: int | None = None, desc: str = "", unit: str = "it", disable: bool = False):
    """A tqdm bar over ``it``, or one updated by hand when ``it`` is None."""
    return tqdm(it, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True)


def _context():
    return mp.get_context("forkserver") if "forkserver" in mp.get_all_start_methods() else mp.get_context("spawn")


class WorkerPool:
    """``workers`` processes (each first runs ``initializer(*initargs)``), restarted when one of them dies."""

    def __init__(self, workers: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()):
        self.workers, self.initializer, self.initargs = workers, initializer, initargs
        self._ex: ProcessPoolExecutor | None = None

    def _executor(self, workers: int | None = None) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            workers or self.workers, mp_context=_context(), initializer=self.initializer, initargs=self.initargs
        )

    def close(self) -> None:
        if self._ex is not None:
            self._ex.shutdown(wait=True, cancel_futures=True)
            self._ex = None

    def map_unordered(
        self, fn: Callable[[Any], Any], jobs: Sequence[Any], on_crash: Callable[[Any], Any] | None = None
    ) -> Iterator[Any]:
        """Yield ``fn(job)`` as jobs finish, one job per worker in flight. A job whose worker died twice (once
        among the running jobs, once alone) yields ``on_crash(job)``, or raises when ``on_crash`` is None."""
        queue = list(jobs)[::-1]
        suspects: list[Any] = []
        while queue or suspects:
            if suspects:  # alone in a fresh one-worker pool, so a crash can only be this job's
                job = suspects.pop()
                single = self._executor(1)
                try:
                    yield single.submit(fn, job).result()
                except BrokenProcessPool:
                    if on_crash is None:
                        raise
                    yield on_crash(job)
                finally:
                    single.shutdown(wait=True, cancel_futures=True)
                continue
            if self._ex is None:
                self._ex = self._executor()
            running: dict[Future, Any] = {}
            try:
                while queue or running:
                    while queue and len(running) < self.workers:
                        job = queue.pop()
                        running[self._ex.submit(fn, job)] = job
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for f in done:
                        result = f.result()  # a crash raises here, with the job still among the running
                        del running[f]
                        yield result
            except BrokenProcessPool:
                suspects = list(running.values())
                self._ex.shutdown(wait=True, cancel_futures=True)
                self._ex = None


@contextmanager
def worker_pool(workers: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()):
    """A :class:`WorkerPool` of ``workers``, or None for ``workers <= 1``. One pool can serve several passes of a
    job: each pool start costs a fraction of a second (forkserver)."""
    if workers <= 1:
        yield None
        return
    pool = WorkerPool(workers, initializer, initargs)
    try:
        yield pool
    finally:
        pool.close()


def run_parallel(
    fn: Callable[[Any], Any],
    jobs: Sequence[Any],
    workers: int = 1,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    pool: WorkerPool | None = None,
    on_crash: Callable[[Any], Any] | None = None,
) -> Iterator[Any]:
    """Yield ``fn(job)`` results as they complete: in ``pool`` when given, else in a new pool of ``workers``
    processes (each first runs ``initializer(*initargs)``) when ``workers > 1``, else in this process.
    ``on_crash(job)`` stands for the result of a job that kills its worker (see :class:`WorkerPool`)."""
    if pool is not None:
        yield from pool.map_unordered(fn, jobs, on_crash)
        return
    if workers <= 1 or len(jobs) <= 1:
        for j in jobs:
            yield fn(j)
        return
    with worker_pool(min(workers, len(jobs)), initializer, initargs) as new:
        yield from new.map_unordered(fn, jobs, on_crash)

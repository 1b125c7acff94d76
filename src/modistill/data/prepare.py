"""``modistill prepare``: videos into a compact cache (the format is :mod:`modistill.data.cache`) — the one entry
the command line and the API call (:func:`prepare`), and the engine both readers share: worker processes that
each know the modalities being encoded, a record per video (never an exception for bad data), the manifest written
once at the end, the summary. The readers are :mod:`modistill.data.prepare_ntu` and :mod:`modistill.data.pairs`.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from modistill.data import video
from modistill.data.cache import write_manifest
from modistill.data.modalities import import_modules, modules_of
from modistill.data.options import PrepareOptions
from modistill.errors import UserError
from modistill.utils.progress import progress, run_parallel, worker_pool

log = logging.getLogger(__name__)


def prepare(dataset: str, root: str | Path, out: str | Path, opts: PrepareOptions, show_progress: bool = True) -> dict:
    """Build or resume a cache from an NTU RGB+D tree (``ntu``) or a pairs CSV (``pairs``), for the command line
    and the API alike. Returns the summary ``modistill prepare`` prints."""
    if dataset == "pairs":
        from modistill.data.pairs import prepare_pairs

        return prepare_pairs(root, out, opts, show_progress)
    if dataset != "ntu":
        raise UserError(f"prepare: the dataset is ntu or pairs, got {dataset!r}")
    from modistill.data.prepare_ntu import prepare_ntu

    return prepare_ntu(root, out, opts, show_progress)


def worker_setup(threads: int, modules: tuple[str, ...]) -> None:
    """A prepare worker's start: its decoders' threads, and the modules of the modalities it encodes (a modality
    registered by another module than the built-ins is unknown to a freshly started process)."""
    video.set_decode_threads(threads)
    import_modules(modules)


def prepare_pool(opts: PrepareOptions, jobs: int):
    """The worker pool of a prepare (None for one worker: the work runs in this process)."""
    setup = (video.threads_per_worker(opts.workers), modules_of(opts.modalities))
    return worker_pool(min(opts.workers, max(jobs, 1)), worker_setup, setup)


def process_videos(
    fn,
    jobs: list,
    job_name: Callable[[Any], str],
    cache: Path,
    records: dict[str, dict],
    n_videos: int,
    opts: PrepareOptions,
    show_progress: bool,
    t0: float,
    pool=None,
) -> dict:
    """Run ``fn`` over the jobs in parallel (each returns a manifest record, and writes its clip with its record),
    write the manifest index once at the end (the per-clip records are the durable state, so the index is never
    rewritten during the run) and return the summary every prepare command prints. ``pool``: an open
    :func:`worker_pool` to use instead of starting one. A video whose worker dies fails as "worker crashed"."""

    def crashed(job) -> dict:
        return {
            "name": job_name(job),
            "status": "failed",
            "reason": "worker crashed while preparing this video (out of memory, or a decoder crash)",
        }

    with prepare_pool(opts, len(jobs)) if pool is None else nullcontext(pool) as pool:
        for rec in progress(
            run_parallel(fn, jobs, opts.workers, pool=pool, on_crash=crashed),
            total=len(jobs),
            desc="prepare",
            unit="video",
            disable=not show_progress,
        ):
            records[rec["name"]] = rec
    write_manifest(cache, records)
    elapsed = time.time() - t0
    counts: dict[str, int] = defaultdict(int)
    for r in records.values():
        counts[r["status"]] += 1
    failed = [r for r in records.values() if r["status"] == "failed"]
    for r in failed[:20]:
        log.warning("failed: %s: %s", r["name"], r["reason"])
    return {
        "videos": n_videos,
        "processed": len(jobs),
        "counts": dict(counts),
        "seconds": elapsed,
        "videos_per_s": len(jobs) / elapsed if elapsed > 0 and jobs else 0.0,
        "failed": [(r["name"], r["reason"]) for r in failed],
        "unused": [(r["name"], r["reason"]) for r in records.values() if r["status"] == "skipped"],
    }

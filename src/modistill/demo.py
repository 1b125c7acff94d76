"""The demo: the synthetic RGB-D benchmark in the NTU layout → prepare → every step and the demo's ablations →
the report, on CPU in minutes (``make demo``). ``quick`` uses tiny sizes (what the tests run)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("modistill")

QUICK: dict[str, Any] = {
    "synth": dict(
        classes=4, subjects=4, cameras=2, replications=1, frames=12, rgb_size=(192, 108), depth_size=(128, 106)
    ),
    "size": 48,
    "frames": 5,
    "crop": "person",
    "overrides": [
        "train.epochs=1",
        "train.step_epochs={}",
        "data.val_performers=1",
        "model.width=8",
        "train.batch_size=4",
        "train.log_every_n_steps=1",
        "variants=[step3_noconn]",
    ],
}
# 26 performers (12 train after the 2 validation performers, 12 test: 360 test videos, so that one seed's draw of
# test performers and the test videos' binomial error move the results less). Person crops (prepare --crop person):
# the person fills the network's input instead of part of the field of view, and the step-1 RGB stream leaves its
# initial plateau within 3 epochs (on the fov crop it took more than 5, and the runs differed most in when;
# docs/calibration.md).
# 24-frame videos (the generator's default is 32): the network sees 5 evenly spaced frames either way, and the time
# budget goes to training instead of rendering.
FULL: dict[str, Any] = {
    "synth": dict(classes=10, subjects=26, cameras=3, replications=1, frames=24),
    "size": 96,
    "frames": 5,
    "crop": "person",
    "overrides": [],
}


# The proof run (``make demo-proof``): can distillation be told from longer training? The demo's sizes on a benchmark
# whose colour camera is harder (sensor noise and motion blur, which depth does not share: chosen so that converged
# step-1 RGB is 0.90-0.96 of converged step-1 depth on the validation split of calibration seeds, as the paper's
# 66.52 / 70.44 = 0.94; docs/calibration.md), every step trained until its validation accuracy has not improved for
# a while (20 epochs for the streams that start from random init and can sit on a plateau, as calibrated; 3 for the
# later steps, which fine-tune converged streams, at most 10 epochs each), the paper's rows and both budget-matched
# controls.
PROOF_CAMERA: dict[str, Any] = dict(rgb_noise=7.0, motion_blur=2.5)
PROOF_SEEDS = (700, 701, 702, 703, 704)  # never run before the proof: named in its Makefile target first
PROOF_MODALITIES = ("depth", "pose", "depth_pose")
PROOF_STOP_GRACE_S = 10.0  # how long a stopped run may take to unwind (closing its loaders) before SIGKILL
PROOF_VARIANTS = "variants=[hoffman_eq7, rgb_budget, rgb_ensemble, rgb_ensemble_indep]"
# Another modality's run adopts the depth run's steps that see RGB alone (same cache, same fingerprints: step 1 RGB
# and the controls) and adds its own main chain; Hoffman et al. (row 5) runs with depth only.
PROOF_VARIANTS_OTHER = "variants=[rgb_budget, rgb_ensemble, rgb_ensemble_indep]"
PROOF: dict[str, Any] = FULL | {
    "synth": FULL["synth"] | PROOF_CAMERA,
    "overrides": [
        "train.patience=3",
        "train.step_patience={step1_rgb: 20, step1_depth: 20, ens_rgb2_indep: 20}",
        "train.epochs=10",
        "train.step_epochs={step1_rgb: 100, step1_depth: 100}",
    ],
}
QUICK_PROOF: dict[str, Any] = QUICK | {
    "synth": QUICK["synth"] | PROOF_CAMERA,
    "overrides": [*QUICK["overrides"], "train.patience=1", "train.epochs=2"],
}


def demo_dirs(out: Path, privileged: str, arch: str | None = None) -> tuple[Path, Path, Path]:
    """(cache, run, demo.json) of the demo with this privileged modality. Depth keeps the plain names; another
    modality gets its own cache and run beside them, on the same synthetic data (``data/``). Another backbone
    (``arch``) gets its own run on the same cache."""
    cache, run, record = (
        (out / "cache", out / "run", out / "demo")
        if privileged == "depth"
        else (out / f"cache_{privileged}", out / f"run_{privileged}", out / f"demo_{privileged}")
    )
    if arch is not None:
        run, record = run.with_name(f"{run.name}_{arch}"), record.with_name(f"{record.name}_{arch}")
    return cache, run, record.with_suffix(".json")


def arch_overrides(arch: str, frames: int, size: int) -> list[str]:
    """``demo --arch``: the main chain only (Table 2 rows 1, 2, 8, 13 and 15) on another backbone, on the demo's
    cache. A backbone that takes frames in groups (Swin3D: 2) reads the largest such number of the cached frames;
    a size it would pad is refused before anything is written."""
    from modistill.models.backbone import backbone_class, check_clip

    step = backbone_class(arch).clip_multiples[0]
    used = frames // step * step
    check_clip(arch, used, size, f"demo --arch {arch}")
    return [f"model.arch={arch}", f"data.frames={used}", "variants=[]"]


# Rows 3, 4, 9-12 and C2i, which make demo leaves out to stay within 10 minutes (demo --all-rows adds them).
ALL_ROWS = (
    "hoffman_eq3",
    "hoffman_eq5",
    "step2_noconn",
    "step3_noconn_eq3",
    "step3_eq3",
    "step3_eq5",
    "rgb_ensemble_indep",
)


def all_rows_override(overrides: list[str] | tuple[str, ...] = ()) -> str:
    """``variants=[...]``: the demo's variants (after ``overrides``) and :data:`ALL_ROWS` (``demo --all-rows``)."""
    from modistill.config import CONFIG_DIR, load_config

    variants = load_config(CONFIG_DIR / "demo.yaml", ["data.cache=.", *overrides])["variants"]
    return f"variants=[{', '.join(dict.fromkeys([*ALL_ROWS, *variants]))}]"


def run_demo(
    out: str | Path,
    quick: bool = False,
    seed: int = 0,
    workers: int = 2,
    overrides: list[str] | tuple[str, ...] = (),
    privileged: str = "depth",
    arch: str | None = None,
) -> Path:
    """Run the demo into ``out`` (data/, cache/, run/; see :func:`demo_dirs` for another privileged modality or
    backbone) and return the report's path. ``arch``: only the main chain, on that backbone."""
    mode = QUICK if quick else FULL
    out = Path(out)
    cache, run, record = demo_dirs(out, privileged, arch)
    backbone = [] if arch is None else arch_overrides(arch, mode["frames"], mode["size"])
    return _demo(out, mode, seed, workers, [*backbone, *overrides], privileged, (cache, run, record))


def _demo(
    out: Path,
    mode: dict[str, Any],
    seed: int,
    workers: int,
    overrides: list[str],
    privileged: str,
    dirs: tuple[Path, Path, Path],
    modalities: tuple[str, ...] | None = None,
    reuse_from: tuple[Path, ...] = (),
) -> Path:
    """Synthetic data → cache (``modalities``: what it holds, default RGB and ``privileged``) → training of
    ``dirs``' run (adopting the finished steps of ``reuse_from`` runs that it would train identically) → report.
    Every stage skips its finished work."""
    from modistill.config import CONFIG_DIR, load_config
    from modistill.data import modalities as registry
    from modistill.data.options import PrepareOptions
    from modistill.data.prepare_ntu import prepare_ntu
    from modistill.evaluation.report import evaluate_run
    from modistill.synthetic import SynthConfig, generate
    from modistill.training.runner import run_training

    t0 = time.time()
    data = out / "data"
    cache, run, record = dirs
    modality = [] if privileged == "depth" else [f"model.privileged={privileged}"]
    if not registry.get(privileged).noise_in_units:  # Table 3's noise is then on its encoded images
        modality.append("evaluate.noise_on=encoded")
    cfg = load_config(
        CONFIG_DIR / "demo.yaml",  # checked before any work, with the cache path it will have
        [f"data.cache={cache}", f"seed={seed}", *mode["overrides"], *modality, *overrides],
    )
    log.info("demo 1/4: synthetic RGB-D benchmark (NTU layout) → %s", data)
    generate(SynthConfig(seed=seed, **mode["synth"]), data, workers=workers)
    log.info("demo 2/4: align, crop and cache → %s", cache)
    s = prepare_ntu(
        data,
        cache,
        PrepareOptions(
            size=mode["size"],
            frames=mode["frames"],
            workers=workers,
            modalities=modalities or ("rgb", cfg.model.privileged),
            crop=mode["crop"],
        ),
    )
    log.info("prepared %s", s["counts"])
    log.info("demo 3/4: training steps %s + variants %s", cfg.steps, cfg.variants)
    run_training(cfg, run, reuse_from=reuse_from)
    log.info("demo 4/4: evaluation")
    report = evaluate_run(run)
    record.write_text(json.dumps({"seconds": time.time() - t0, "report": str(report)}))
    return report


def run_demo_seeds(
    out: str | Path,
    seeds: list[int],
    quick: bool = False,
    workers: int = 2,
    overrides: list[str] | tuple[str, ...] = (),
    readme: str | Path | None = None,
    privileged: tuple[str, ...] = ("depth",),
) -> Path:
    """The demo once per seed and privileged modality (each seed with its own synthetic data, shared by the
    modalities) into ``out/seed_S``, then per modality the mean ± sd summary with the claims table
    (``out/seeds.md`` for depth, ``out/<modality>/seeds.md`` for another), and with several modalities their
    side-by-side table (``out/modalities.md``); ``readme``: also write these into that page's results sections
    (docs/results.md).
    Every seed goes through :func:`run_demo` again, whose stages skip finished work: an interrupted run resumes,
    and a finished one gains the steps a newer config adds (instead of summarising runs that lack them). Returns
    the first modality's summary."""
    from modistill.evaluation.seeds import write_modality_table, write_seed_summary

    out = Path(out)
    summaries: dict[str, Path] = {}
    for p in privileged:
        runs = []
        for k, seed in enumerate(seeds, 1):
            log.info("demo seeds %d/%d: seed %d, privileged %s", k, len(seeds), seed, p)
            run_demo(out / f"seed_{seed}", quick, seed, workers, overrides, p)
            runs.append(demo_dirs(out / f"seed_{seed}", p)[1])
        summaries[p] = write_seed_summary(runs, out if p == "depth" else out / p)
        if readme is not None and p == privileged[0]:
            from modistill.evaluation.readme import write_results_section

            write_results_section(readme, summaries[p], runs)
    if len(privileged) > 1:
        table = write_modality_table(summaries, out / "modalities.md")
        if readme is not None:
            from modistill.evaluation.readme import write_modalities_section

            write_modalities_section(readme, table)
    return summaries[privileged[0]]


def _proof_job(args: tuple, threads: int, log_file: Path) -> None:
    """One proof run in a process of its own (``run_proof(jobs=N)``, started by :func:`_in_own_group`):
    ``threads`` torch threads, its output and logs into ``log_file`` (several runs writing progress bars to one
    terminal would be unreadable). A user error ends it with its one line in the log and exit code 2."""
    import os
    import sys

    import torch

    from modistill.cli import _setup_logging
    from modistill.errors import UserError

    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    _setup_logging(False, "demo")
    torch.set_num_threads(threads)
    try:
        _demo(*args)
    except UserError as e:
        log.error("%s", e)
        sys.exit(2)


def _proof_args(out: Path, mode: dict[str, Any], seed: int, workers: int, p: str, privileged: tuple[str, ...]) -> tuple:
    """``_demo``'s arguments for seed ``seed``'s run with ``p`` as the privileged modality: the seed's one cache
    holding every modality; another modality than depth adopts the depth run's steps that see RGB alone."""
    base = out / f"seed_{seed}"
    _, run, record = demo_dirs(base, p)  # the demo's names; the cache is the seed's one for every modality
    variants = PROOF_VARIANTS if p == "depth" else PROOF_VARIANTS_OTHER
    reuse = () if p == "depth" else (base / "run",)
    return (base, mode, seed, workers, [variants], p, (base / "cache", run, record), ("rgb", *privileged), reuse)


def _proof_runs(
    out: Path,
    mode: dict[str, Any],
    seeds: list[int] | tuple[int, ...],
    workers: int,
    privileged: tuple[str, ...],
    jobs: int,
    finished: Callable[[str, list[Path]], None],
    target: Callable[..., None] = _proof_job,
) -> None:
    """Every proof run, the depth runs of all seeds first; ``finished(p, runs)`` once modality ``p``'s runs have
    all finished. ``jobs`` > 1: that many runs at once, each in its own process on an equal share of the cores
    (small networks use two cores in one process less well than two processes one core each), a seed's other
    modalities once its depth run has finished (they adopt its steps); ``target``: what such a process runs
    (:func:`_proof_job`)."""
    import os

    from modistill.training.progress import clock

    order = [(seed, p) for p in privileged for seed in seeds]
    runs = {p: {seed: demo_dirs(out / f"seed_{seed}", p)[1] for seed in seeds} for p in privileged}
    left = {p: set(seeds) for p in privileged}
    t0, done = time.time(), 0

    def one_finished(seed: int, p: str) -> None:
        nonlocal done
        done += 1
        left[p].discard(seed)
        log.info(
            "proof %d/%d runs finished: seed %d, privileged %s (elapsed %s)",
            done,
            len(order),
            seed,
            p,
            clock(time.time() - t0),
        )
        if not left[p]:
            finished(p, [runs[p][s] for s in seeds])

    if jobs <= 1:
        for k, (seed, p) in enumerate(order, 1):
            log.info("proof %d/%d: seed %d, privileged %s", k, len(order), seed, p)
            _demo(*_proof_args(out, mode, seed, workers, p, privileged))
            one_finished(seed, p)
        return
    threads = max(1, (os.cpu_count() or jobs) // jobs)
    inner = max(1, workers // jobs)

    def job(seed: int, p: str) -> tuple[Callable, tuple, Path]:
        log_file = out / f"seed_{seed}" / f"{demo_dirs(Path(), p)[1].name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log.info("proof: seed %d, privileged %s, its log: %s", seed, p, log_file)
        return target, (_proof_args(out, mode, seed, inner, p, privileged), threads, log_file), log_file

    queue = [(seed, "depth") for seed in seeds]
    for seed, p in _in_processes(queue, jobs, job):
        one_finished(seed, p)
        if p == "depth":  # the seed's other modalities adopt its steps: queued behind the depth runs
            queue += [(seed, other) for other in privileged[1:]]


def _in_processes(
    queue: list[tuple[int, str]], jobs: int, job: Callable[[int, str], tuple[Callable, tuple, Path]]
) -> Iterator[tuple[int, str]]:
    """Run ``queue``'s entries (which may grow while it runs) ``jobs`` at a time, each ``job(entry)``'s target in
    a spawned process, yielding each entry once its process has ended well. A failed run, Ctrl-C or SIGTERM stops
    the running ones (SIGTERM, then after :data:`PROOF_STOP_GRACE_S` SIGKILL to their process groups: a step
    resumes exactly from its last checkpoint) and starts no other."""
    import os
    import signal
    from multiprocessing import get_context
    from multiprocessing.connection import wait

    from modistill.errors import UserError

    ctx = get_context("spawn")
    running: dict[Any, tuple[tuple[int, str], Path]] = {}
    try:
        while queue or running:
            while queue and len(running) < jobs:
                entry = queue.pop(0)
                target, args, log_file = job(*entry)
                proc = ctx.Process(target=_in_own_group, args=(target, args))
                proc.start()
                running[proc] = (entry, log_file)
            wait([proc.sentinel for proc in running])
            for proc in [proc for proc in running if proc.exitcode is not None]:
                entry, log_file = running.pop(proc)
                if proc.exitcode != 0:
                    lines = log_file.read_text(errors="replace").strip().splitlines() if log_file.exists() else []
                    why = lines[-1] if lines else f"exit code {proc.exitcode}"
                    raise UserError(f"proof: seed {entry[0]}, privileged {entry[1]} failed: {why} (log: {log_file})")
                yield entry
    finally:
        for proc in running:
            proc.terminate()
        deadline = time.time() + PROOF_STOP_GRACE_S
        for proc in running:
            proc.join(max(0.0, deadline - time.time()))
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # a run that did not end in time, and what it started
            except (ProcessLookupError, PermissionError):  # its group is gone, or it never made one
                proc.kill()
            proc.join()


def _in_own_group(target: Callable[..., None], args: tuple) -> None:
    """A proof run's spawned process: a process group of its own (the parent can kill it with all it started),
    Ctrl-C left to the parent, and SIGTERM, the parent's stop, unwinding it as it unwinds the command line, so that
    its loaders' worker processes and semaphores are closed (exit code 143)."""
    import os
    import signal
    import sys

    from modistill.cli import _raise_interrupted
    from modistill.errors import Interrupted

    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        target(*args)
    except Interrupted:
        log.warning("stopped by the proof (another run failed, or the proof was stopped); finished work is kept")
        sys.exit(143)


def run_proof(
    out: str | Path,
    seeds: list[int] | tuple[int, ...] = PROOF_SEEDS,
    quick: bool = False,
    workers: int = 2,
    readme: str | Path | None = None,
    privileged: tuple[str, ...] = PROOF_MODALITIES,
    jobs: int = 1,
) -> Path:
    """The proof run (``make demo-proof``) into ``out/seed_S``: per seed one synthetic dataset and one cache holding
    every modality, the depth run (``run``: the paper's rows and both controls) and each other modality's run
    (``run_<modality>``: its main chain, with the steps that see RGB alone adopted from the depth run), all steps
    converged (:data:`PROOF`); then each modality's summary over the seeds, their side-by-side table
    (``out/modalities.md``) and, with ``readme``, the results page's proof section. The depth runs of every seed
    come first: the question whether distillation beats the controls is answered before the other modalities'
    rows, and the page's section is written as soon as they have finished (and again as each other modality
    finishes). ``jobs``: runs at once (see :func:`_proof_runs`). Interrupted, it resumes where it stopped. Returns
    the depth summary."""
    from modistill.evaluation.seeds import write_modality_table, write_seed_summary

    out = Path(out)
    privileged = tuple(dict.fromkeys(("depth", *privileged)))
    summaries: dict[str, Path] = {}
    depth_runs: list[Path] = []

    def finished(p: str, runs: list[Path]) -> None:
        summaries[p] = write_seed_summary(runs, out if p == "depth" else out / p)
        if p == "depth":
            depth_runs.extend(runs)
        done = {q: summaries[q] for q in privileged if q in summaries}
        table = write_modality_table(done, out / "modalities.md") if len(done) > 1 else None
        if readme is not None and "depth" in done:
            from modistill.evaluation.readme import write_proof_section

            write_proof_section(readme, done["depth"], depth_runs, table, [q for q in privileged if q not in done])

    _proof_runs(out, QUICK_PROOF if quick else PROOF, seeds, workers, privileged, jobs, finished)
    return summaries["depth"]

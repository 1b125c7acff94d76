"""Runs the steps of a config in dependency order under ``runs/<name>/<step>/``, skipping finished steps and
resuming an interrupted one from its last checkpoint: the orchestration. What the run folder holds is
:mod:`modistill.training.run`, when a finished step is reused :mod:`modistill.training.fingerprint`, the splits and
loaders :mod:`modistill.training.data`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import lightning as L
import torch

from modistill.config import Config, epochs_for, patience_for
from modistill.data.modalities import as_privileged
from modistill.errors import NonFiniteError, UserError
from modistill.models.backbone import backbone_class, check_clip
from modistill.models.pretrained import pretrained_file
from modistill.training.checkpoint_io import AtomicCheckpointIO
from modistill.training.data import check_modalities, dataset_splits, make_loader, step_seed
from modistill.training.fingerprint import data_fingerprint, step_records
from modistill.training.loggers import check_loggers, make_loggers
from modistill.training.module import StepModule
from modistill.training.progress import StderrProgressBar, StepClock
from modistill.training.run import (
    RUN_JSON,
    absolute_paths,
    adopt_steps,
    check_steps,
    clip_lengths,
    deploy_crop,
    is_finished,
    migrate_state,
    remove_steps,
    run_lock,
    run_metadata,
    step_metrics,
    step_weights,
    write_run,
    write_step_result,
    write_step_start,
)
from modistill.training.steps import STEPS, init_for, resolve_order
from modistill.utils.io import load_tensors
from modistill.utils.memory import keep_freed_memory, process_owned

log = logging.getLogger(__name__)


def _precision(cfg: Config) -> str:
    p = cfg.train.precision
    if p == "auto":
        return "bf16-mixed" if torch.cuda.is_available() else "32-true"
    return str(p)


def _init_from(module: StepModule, run_dir: Path, step: str) -> None:
    """Copy each stream's weights from the earlier step it is initialised from (tensors only, no pickle)."""
    for stream, src in init_for(module.spec, module.cfg.distill.hall_init).items():
        if src is None:
            continue
        src_step, src_stream = src
        state = step_weights(run_dir, src_step)
        prefix = f"net.streams.{src_stream}."
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        module.net.streams[stream].load_state_dict(sub)
        log.info("%s: %s stream initialised from %s/%s", step, stream, src_step, src_stream)


def train_step(
    cfg: Config, run_dir: Path, step: str, splits: dict, meta: dict, record: dict, extra_callbacks: tuple = ()
) -> dict:
    step_dir = run_dir / step
    step_dir.mkdir(parents=True, exist_ok=True)
    write_step_start(step_dir, record, cfg)
    seed = step_seed(cfg, step)
    L.seed_everything(seed, workers=True, verbose=False)
    module = StepModule(step, cfg, meta["num_classes"])
    if any(src is None for src in module.spec.init.values()) and not cfg.model.pretrained:
        log.warning("%s: no ImageNet weights given (model.pretrained); streams start from RANDOM init", step)
    _init_from(module, run_dir, step)
    mods = tuple(module.modalities)
    t = cfg.train
    if t.compile:
        module.net.compile()  # in place: the state dict keeps its keys, so checkpoints and weights.pt are unchanged
    has_val = bool(splits["val"])
    ckpt_dir = step_dir / "checkpoints"
    selection, callbacks = _checkpoints(ckpt_dir, has_val)
    if patience := patience_for(cfg, step):
        if not has_val:
            raise UserError(
                f"{step}: train.patience stops on validation accuracy, and this run has no validation split"
            )
        callbacks.append(_early_stopping(patience))
    if t.progress:
        callbacks.append(StderrProgressBar())
    callbacks.extend(extra_callbacks)
    last = ckpt_dir / "last.ckpt"
    for stale in ckpt_dir.glob(".*.tmp"):  # a write cut short by a kill; the previous checkpoint is intact
        stale.unlink()
    most = epochs_for(cfg, step)
    if last.exists():
        resumed = load_tensors(last, f"delete it to restart {step} from its first epoch")
        if _stopped_early(resumed):  # killed after it stopped: restore its state and train no further epoch
            most = int(resumed["epoch"]) + 1
    trainer = _trainer(cfg, step, callbacks, make_loggers(cfg, run_dir, step), most)
    t0 = time.time()
    trainer.fit(
        module,
        make_loader(cfg, splits["train"], True, mods, seed),
        make_loader(cfg, splits["val"], False, mods, seed) if has_val else None,
        ckpt_path=str(last) if last.exists() else None,
    )
    chosen = _selected(ckpt_dir, has_val)
    best = load_tensors(chosen, f"delete {ckpt_dir} to retrain {step}")
    state = migrate_state(best["state_dict"])
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise NonFiniteError(
            f"{step}: the selected weights ({chosen.name}) hold NaN or infinite values ({bad[0]}); "
            f"the step is not marked done (try a lower train.lr)"
        )
    module.load_state_dict(state)
    module.adopt_ema()
    module.test_records = []
    trainer.test(module, make_loader(cfg, splits["test"], False, mods, seed), verbose=False)
    res = module.test_results()
    spec = module.spec
    res.update(
        step=step,
        loss=spec.loss,
        train_seconds=time.time() - t0,
        selected=chosen.name,
        best_val_acc=float(best_score) if (best_score := selection.best_model_score) is not None else None,
        epochs_trained=int(trainer.current_epoch),
        max_epochs=epochs_for(cfg, step),
        selected_epoch=int(best["epoch"]) + 1,
        test_names=[splits["test"][i] for i in res["index"]],
    )
    if trainer.is_global_zero:
        write_step_result(step_dir, module.state_dict(), res)
    trainer.strategy.barrier("step-done")  # under DDP, later steps read these files on every rank
    return res


def _checkpoints(ckpt_dir: Path, has_val: bool) -> tuple[L.pytorch.callbacks.ModelCheckpoint, list[L.Callback]]:
    """Two checkpoints: the best by validation accuracy (model selection) and the latest epoch (resumption).
    Lightning's own save_last only refreshes last.ckpt when a new best is saved, which would lose the epochs after
    the best one on a resume."""
    selection = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best",
        monitor="val/acc" if has_val else None,
        mode="max",
        save_top_k=1,
        enable_version_counter=False,
    )
    last = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1, enable_version_counter=False
    )
    return selection, [selection, last]


def _early_stopping(patience: int) -> L.Callback:
    """Lightning's early stopping on validation accuracy, checked after each validation like model selection; its
    state (best score, epochs waited) travels in every checkpoint, so a resumed step stops where it would have."""
    return L.pytorch.callbacks.EarlyStopping(
        monitor="val/acc", mode="max", patience=patience, check_on_train_epoch_end=False, strict=True
    )


def _stopped_early(checkpoint: dict) -> bool:
    """Whether the step in ``checkpoint`` had already decided to stop (a kill after its last epoch)."""
    return any(
        k.startswith("EarlyStopping") and int(v.get("stopped_epoch", 0)) > 0
        for k, v in checkpoint.get("callbacks", {}).items()
    )


def _trainer(cfg: Config, step: str, callbacks: list[L.Callback], loggers: list, max_epochs: int) -> L.Trainer:
    t = cfg.train
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        num_nodes=t.num_nodes,
        precision=_precision(cfg),  # type: ignore[arg-type]  # one of config.PRECISIONS
        callbacks=callbacks,
        logger=loggers,
        log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=t.progress,
        limit_train_batches=t.limit_train_batches,
        enable_model_summary=False,
        deterministic=False,
        num_sanity_val_steps=0,
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,
    )


def _selected(ckpt_dir: Path, has_val: bool) -> Path:
    """The checkpoint a finished step keeps: the best on validation, or the last epoch without a validation split."""
    best = ckpt_dir / "best.ckpt"
    return best if (has_val and best.exists()) else ckpt_dir / "last.ckpt"


def open_run(
    cfg: Config, run_dir: str | Path, retrain_from: str | None = None, reuse_from: tuple[Path, ...] = ()
) -> tuple[Config, list[str], dict, dict, dict[str, dict]]:
    """Check the config against the data and against the steps already in ``run_dir``, then write the run's own
    description and adopt the finished steps of the ``reuse_from`` runs that this config would train identically.
    Returns the resolved config, the steps in order, the splits, the cache metadata and every step's record.
    Nothing is written when a check fails."""
    run_dir = Path(run_dir)
    cfg = absolute_paths(cfg)
    order = resolve_order(list(cfg.steps) + list(cfg.variants))
    check_loggers(cfg.train.loggers)
    if cfg.model.pretrained:  # located now, so that a missing file is reported before anything is written
        pretrained_file(cfg.model.pretrained, cfg.model.arch)
    if cfg.data.exclude_list and not Path(cfg.data.exclude_list).is_file():
        raise UserError(f"{cfg.data.exclude_list}: data.exclude_list is not a file")
    splits, meta, labels, records = dataset_splits(cfg)
    check_modalities(cfg, meta, order)
    check_clip(cfg.model.arch, cfg.data.frames, meta["size"], f"{cfg.data.cache} with data.frames")
    if not backbone_class(cfg.model.arch).per_frame and cfg.model.temporal:
        log.info("model.arch=%s convolves over time itself: no temporal convs are added", cfg.model.arch)
    data_fp = data_fingerprint(meta, splits, labels)
    crop = deploy_crop(meta, records, splits["train"], cfg.data.cache_dir())
    step_recs = step_records(cfg, _precision(cfg), data_fp)
    if retrain_from is not None:
        for gone in remove_steps(run_dir, retrain_from):
            log.info("%s: removed for retraining (--retrain-from %s)", gone, retrain_from)
    check_steps(run_dir, step_recs)
    for donor in reuse_from:
        if not (donor / RUN_JSON).exists():
            raise UserError(f"{donor}: --reuse-from needs a run folder (no run.json there)")
    write_run(run_dir, cfg, run_metadata(cfg, meta, crop, data_fp, clip_lengths(records, splits["train"])), splits)
    for said in adopt_steps(run_dir, reuse_from, step_recs, order):
        log.info("%s: reused, its fingerprint is this run's", said)
    return cfg, order, splits, meta, step_recs


def run_training(
    cfg: Config,
    run_dir: str | Path,
    retrain_from: str | None = None,
    callbacks: tuple = (),
    reuse_from: tuple[str | Path, ...] = (),
) -> dict[str, dict]:
    """Run every configured step and variant; returns each step's metrics.

    A step already in the run folder is reused only when its fingerprint matches this config; otherwise the run
    is refused before anything is written, unless ``retrain_from`` names a step to delete and retrain with all the
    steps that depend on it. A step this run lacks is copied from a ``reuse_from`` run that finished it with the
    same fingerprint instead of being trained again."""
    run_dir = Path(run_dir)
    with run_lock(run_dir, "train"):
        return _run_steps(cfg, run_dir, retrain_from, callbacks, tuple(Path(r) for r in reuse_from))


def _run_steps(
    cfg: Config, run_dir: Path, retrain_from: str | None, callbacks: tuple, reuse_from: tuple[Path, ...]
) -> dict[str, dict]:
    cfg, order, splits, meta, step_recs = open_run(cfg, run_dir, retrain_from, reuse_from)
    on_cpu = cfg.train.accelerator == "cpu" or not torch.cuda.is_available()
    # The allocator setting lasts as long as the process: made only where modistill owns it (the command line).
    if on_cpu and cfg.train.cpu_keep_freed_memory and process_owned() and keep_freed_memory():
        log.info("CPU run: malloc keeps freed memory for reuse (train.cpu_keep_freed_memory=false to turn off)")
    benchmark = torch.backends.cudnn.benchmark
    if not on_cpu:
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels once
    try:
        return _train_in_order(cfg, run_dir, callbacks, order, splits, meta, step_recs)
    finally:
        torch.backends.cudnn.benchmark = benchmark  # a notebook's own setting comes back


def _train_in_order(
    cfg: Config, run_dir: Path, callbacks: tuple, order: list[str], splits: dict, meta: dict, step_recs: dict
) -> dict[str, dict]:
    log.info(
        "run %s: %d train / %d val / %d test videos, %d classes",
        run_dir,
        len(splits["train"]),
        len(splits["val"]),
        len(splits["test"]),
        meta["num_classes"],
    )
    results = {}
    todo = [s for s in order if not is_finished(run_dir, s)]
    clock = StepClock(len(todo))
    for step in order:
        if step not in todo:
            log.info("%s: already done, skipping", step)
            results[step] = step_metrics(run_dir, step)
            continue
        log.info("%s, %s", clock.start(step), as_privileged(STEPS[step].title, cfg.model.privileged))
        results[step] = train_step(cfg, run_dir, step, splits, meta, step_recs[step], callbacks)
        clock.finish()
        log.info("%s: test accuracy %.2f%%", step, 100 * results[step]["accuracy"])
    return results

"""The data a run trains on: the cache checked against the config, its train/validation/test split with the
labels, and the loaders that feed a step (their order and augmentation a function of the seed and epoch)."""

from __future__ import annotations

import logging
import os
import signal
import sys

import numpy as np
import torch
from torch.utils.data import DataLoader

from modistill.config import Config, DataSection
from modistill.data.cache import check_not_preparing, load_cache_meta, load_manifest
from modistill.data.dataset import ClipDataset, sample_label
from modistill.data.modalities import cache_modalities
from modistill.data.pairs import split_pairs
from modistill.data.splits import read_name_list, split_ntu
from modistill.errors import UserError
from modistill.training.sampler import EpochSampler
from modistill.training.steps import STEPS, stream_inputs

log = logging.getLogger(__name__)


def dataset_splits(cfg: Config) -> tuple[dict[str, list[str]], dict, dict[str, int], dict[str, dict]]:
    """Train/val/test names, the cache's metadata, every used sample's label and the manifest records; refuses a
    cache that cannot give what the config asks."""
    d = cfg.data
    cache = d.cache_dir()
    meta = load_cache_meta(cache)
    check_not_preparing(cache)
    if meta["benchmark"] != "pairs" and meta["benchmark"] != d.benchmark:
        raise UserError(
            f"{d.cache}: prepared as {meta['benchmark']}, the config says data.benchmark="
            f"{d.benchmark}; set data.benchmark={meta['benchmark']}"
        )
    if d.train_sampling != "even" and meta["frames"] <= d.frames:
        raise UserError(
            f"{d.cache}: data.train_sampling={d.train_sampling} draws {d.frames} of the stored "
            f"frames, but the "
            f"cache stores only {meta['frames']}: it would always take the same ones; prepare with more "
            f"--frames (e.g. {2 * d.frames}) or use data.train_sampling=even"
        )
    if d.frames > meta["frames"]:
        raise UserError(
            f"{d.cache}: stores {meta['frames']} frames per video, config data.frames={d.frames}"
            f" asks for more; prepare with --frames {d.frames} or lower data.frames"
        )
    records = load_manifest(cache)
    if meta["benchmark"] == "pairs":
        sp = split_pairs(records)
    else:
        names = [n for n, r in records.items() if r["status"] == "ok"]
        exclude = read_name_list(d.exclude_list) if d.exclude_list else None
        sp = split_ntu(names, d.benchmark, d.protocol, d.validation, exclude, d.val_per_class, d.val_performers)
    if not sp["train"] or not sp["test"]:
        raise UserError(f"{d.cache}: the {d.protocol} split has no train or no test videos")
    labels = {n: sample_label(n, records.get(n, {})) for part in sp.values() for n in part}
    bad = next((n for n, y in labels.items() if not 0 <= y < meta["num_classes"]), None)
    if bad is not None:
        raise UserError(
            f"{d.cache}: sample {bad} has label {labels[bad]}, outside the cache's "
            f"{meta['num_classes']} classes; re-prepare the cache"
        )
    _warn_thin_split(sp, labels, meta["class_names"], d)
    return sp, meta, labels, records


MIN_TRAIN_PER_CLASS = 5


def _warn_thin_split(sp: dict[str, list[str]], labels: dict[str, int], names: list[str], d: DataSection) -> None:
    """A split that leaves a class almost no training videos trains nothing useful: say so, with the numbers."""
    counts = np.bincount([labels[n] for n in sp["train"]], minlength=len(names))
    thin = [(names[c], int(k)) for c, k in enumerate(counts) if k < MIN_TRAIN_PER_CLASS]
    if thin:
        shown = ", ".join(f"{n} ({k})" for n, k in thin[:5]) + (" ..." if len(thin) > 5 else "")
        log.warning(
            "the %s split leaves fewer than %d training videos for %d of %d classes: %s; %d train / %d "
            "validation videos in all%s",
            d.protocol,
            MIN_TRAIN_PER_CLASS,
            len(thin),
            len(names),
            shown,
            len(sp["train"]),
            len(sp["val"]),
            " (data.validation=null keeps them for training)" if sp["val"] else "",
        )


def _exit_quietly(_signum, _frame) -> None:
    os._exit(0)  # 0: the main process's loader does not report a crashed worker on top of the signal's one line


def _quiet_worker(_worker_id: int) -> None:
    """Loader workers leave Ctrl-C (sent to the whole process group) to the main process, which reports once. A
    SIGTERM ends them at once and quietly: it is how the main process stops them (``terminate()`` in the loader's
    shutdown and in multiprocessing's exit handler), so a worker that ignored it would keep the exit waiting
    forever; sent to the whole group, it ends them beside the main process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_quietly)
    sys.excepthook = _peer_gone_quietly


def _peer_gone_quietly(kind, value, tb) -> None:
    """A worker hands batches to the main process through multiprocessing's resource sharer, whose thread reports
    errors with ``sys.excepthook``: when the main process stops on a signal in the middle of a hand-over, the
    broken connection is expected and is not printed over the command's one line."""
    if not issubclass(kind, ConnectionError):
        sys.__excepthook__(kind, value, tb)


def loader_workers(setting: int | str) -> int:
    """``data.workers``: a number, or auto: this process's share of the cores (one process per device under DDP),
    one core left to the training loop, at most 8."""
    if setting != "auto":
        return int(setting)
    per_device = (os.cpu_count() or 2) // max(1, torch.cuda.device_count())
    return max(0, min(8, per_device - 1))


def step_seed(cfg: Config, step: str) -> int:
    """The seed of a step's initialisation and clip order: the run's, or for a control's second network the run's
    plus its offset."""
    return int(cfg.seed) + (STEPS[step].seed_offset if step in STEPS else 0)


def make_loader(cfg: Config, names: list[str], train: bool, modalities: tuple[str, ...], seed: int) -> DataLoader:
    """The clips of ``names`` in batches: in training, an order and augmentations that follow from ``seed`` and
    the epoch alone (exact resume), in evaluation, the videos in order without augmentation."""
    d, t = cfg.data, cfg.train
    workers = loader_workers(d.workers)
    scale = (d.crop_scale[0], d.crop_scale[1]) if d.crop_scale else None
    ds = ClipDataset(d.cache_dir(), names, d.frames, train, d.train_sampling, d.flip, modalities, scale)
    return DataLoader(
        ds,
        batch_size=t.batch_size,
        sampler=EpochSampler(len(ds), seed, shuffle=train),
        num_workers=workers,
        persistent_workers=workers > 0,
        worker_init_fn=_quiet_worker if workers > 0 else None,
        pin_memory=torch.cuda.is_available(),
        drop_last=False,
    )


def check_modalities(cfg: Config, meta: dict, order: list[str]) -> None:
    """Every modality the steps read is in the cache, or one line saying how to prepare one that holds it."""
    held = cache_modalities(meta)
    wanted = {m for s in order for m in stream_inputs(STEPS[s], cfg.model.privileged).values()}
    missing = sorted(wanted - set(held))
    if missing:
        raise UserError(
            f"{cfg.data.cache}: the cache holds {', '.join(held)}, not {', '.join(missing)} "
            f"(model.privileged={cfg.model.privileged}); prepare one with "
            f"--modalities {','.join(dict.fromkeys([*held, *missing]))}"
        )

"""The run folder's own description, so that it travels with the run.

``run.json`` holds everything a later stage needs: input size, frames and how they are sampled, the modality
encodings, the RGB crop policy and the deploy crop, the class names, the cache (absolute path and a fingerprint
of its settings and of the split). ``STEP/step.json`` holds the step's fingerprint: a hash of the resolved
config keys that affect the step, of the data and of its parents' fingerprints. Export, predict and evaluate
read these files, never the cache's metadata or the training config. A rerun reuses a step only when its
fingerprint is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from modistill.config import epochs_for
from modistill.data.modalities import settings_fields
from modistill.errors import UserError
from modistill.training.steps import STEPS, StepSpec, connections_for, init_for, source_steps
from modistill.utils.io import atomic_write_text, read_json
from modistill.utils.lock import exclusive_lock
from modistill.utils.ranks import is_launch_process

RUN_FORMAT = "modistill-run/1"
FULL_FRAME = [0.0, 0.0, 1.0, 1.0]
# Config keys that change what every step learns. Hardware, logging and worker settings are left out: they do
# not change the result on one device type (the precision, which does, is resolved and included).
STEP_KEYS = (
    "seed",
    "data.benchmark",
    "data.protocol",
    "data.validation",
    "data.val_per_class",
    "data.exclude_list",
    "data.frames",
    "data.train_sampling",
    "data.flip",
    "model.arch",
    "model.width",
    "model.temporal",
    "train.optimizer",
    "train.lr",
    "train.weight_decay",
    "train.lr_drop_epoch",
    "train.lr_drop_factor",
    "train.batch_size",
    "train.epochs",
    "train.precision",
    "train.limit_train_batches",
)
# Training levers added after the first runs: in a step's fingerprint only when set to something other than their
# default, so that the steps of a run that does not use them keep their fingerprints.
RECIPE_KEYS = (
    "data.val_performers",
    "data.crop_scale",
    "model.zero_init_residual",
    "train.schedule",
    "train.warmup_epochs",
    "train.label_smoothing",
    "train.ema_decay",
    "train.patience",
)
DISTILL_KEYS = (
    "distill.alpha",
    "distill.lambda",
    "distill.temperature",
    "distill.t2_scaling",
    "distill.hall_layers",
    "distill.hall_reduction",
    "distill.hall_weight",
)

# Keys in a step's fingerprint only where the step uses them (step_keys says when): its start, its connection, the
# modality of its privileged stream, where its hallucination stream starts, its epochs.
CONDITIONAL_KEYS = (
    "model.pretrained",
    "model.connection",
    "model.privileged",
    "distill.hall_init",
    "train.step_epochs",
)
# Keys that set how many processes share a step, and so its global batch: in the fingerprint as the resolved world
# size when it is above 1 (a one-process step keeps the fingerprint it had).
GLOBAL_BATCH_KEYS = ("train.devices", "train.num_nodes")
# Keys of the run, not of a step: its name, its cache (whose content the data fingerprint holds), which steps it
# trains, and how it is evaluated.
RUN_KEYS = ("name", "data.cache", "steps", "variants", "evaluate.noise_sigma2", "evaluate.void", "evaluate.noise_on")
# Keys that change how a step runs, not what it learns.
NO_EFFECT_KEYS = (
    "data.workers",
    "train.accelerator",
    "train.strategy",
    "train.log_every_n_steps",
    "train.loggers",
    "train.progress",
    "train.compile",
    "train.cpu_keep_freed_memory",
)
# Every config key has exactly one of these roles (a test checks it): a new key must say whether a step that
# trained without it can be reused.
FINGERPRINT_ROLES = {
    "step": STEP_KEYS,
    "step, when set": RECIPE_KEYS,
    "step, when distilling": DISTILL_KEYS,
    "step, when used": CONDITIONAL_KEYS,
    "step, as the world size": GLOBAL_BATCH_KEYS,
    "run": RUN_KEYS,
    "none": NO_EFFECT_KEYS,
}


def world_size(cfg: dict) -> int:
    """How many processes train a step: torchrun's or the scheduler's WORLD_SIZE, else the configured devices
    (auto and -1: every visible GPU, or one process on the CPU) times the nodes."""
    if os.environ.get("WORLD_SIZE", "").isdigit():
        return max(1, int(os.environ["WORLD_SIZE"]))
    t = cfg["train"]
    devices = t["devices"]
    if isinstance(devices, list):
        n = len(devices)
    elif devices in ("auto", -1, "-1"):
        import torch

        gpu = t["accelerator"] in ("auto", "gpu", "cuda") and torch.cuda.is_available()
        n = torch.cuda.device_count() if gpu else 1
    else:
        n = int(devices)
    return max(1, n) * int(t["num_nodes"])


RUN_LOCK = ".lock"


@contextmanager
def run_lock(run_dir: str | Path, command: str) -> Iterator[None]:
    """Hold ``run_dir`` for a ``train``, ``tune`` or ``evaluate`` that writes it; a second one refuses in one line
    naming the holder's pid. The folders created only for the lock (the run folder and any missing parents, such
    as the default ``runs/``) are removed again when nothing else was written."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir}: --run-dir is a file, not a folder")
    if not is_launch_process():
        yield
        return
    created = [p for p in (run_dir, *run_dir.parents) if not p.exists()]  # innermost first
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive_lock(
            run_dir / RUN_LOCK,
            f"{run_dir}: in use by another modistill train, tune or evaluate "
            f"(pid {{pid}}); wait for it to end, or use another run folder",
            f"{run_dir}: cannot write",
        ):
            yield
    finally:
        if created and [p.name for p in run_dir.iterdir()] in ([], [RUN_LOCK]):
            (run_dir / RUN_LOCK).unlink(missing_ok=True)
            for folder in created:
                if any(folder.iterdir()):  # something else wrote there meanwhile
                    break
                folder.rmdir()


def _get(cfg: dict, dotted: str) -> Any:
    cur: Any = cfg
    for part in dotted.split("."):
        cur = cur[part]
    return cur


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def absolute_paths(cfg: dict) -> dict:
    """The config with its file paths made absolute (against the working directory at the start of the run), so
    the run folder stays valid from any folder."""
    from modistill.models.pretrained import is_named

    out = json.loads(json.dumps(cfg))
    for sec, key in (("data", "cache"), ("data", "exclude_list"), ("model", "pretrained")):
        if out[sec][key] and not is_named(out[sec][key]):
            out[sec][key] = str(Path(out[sec][key]).expanduser().resolve())
    return out


def data_fingerprint(cache_meta: dict, splits: dict[str, list[str]], labels: dict[str, int]) -> str:
    """What the data gives a step: the cache's settings and class names, and the exact split with its labels."""
    settings = {
        k: cache_meta.get(k) for k in ("version", "size", "frames", "depth_encoding", "benchmark", "class_names")
    }
    if cache_meta.get("crop"):  # only caches with a person crop: the others keep their fingerprints
        settings["crop"] = cache_meta["crop"]
    settings |= settings_fields(cache_meta)  # a modality's own settings (pose images'), where it has any
    return _hash({"cache": settings, "splits": {k: [[n, labels[n]] for n in v] for k, v in splits.items()}})


def deploy_crop(cache_meta: dict, records: dict[str, dict], train_names: list[str], cache: str) -> dict:
    """The RGB region (fractions of the frame) a camera image is cropped to before resizing, and the policy it
    stands for. NTU-style caches hold skeleton-aligned crops: the deploy crop is the median of the training
    videos' crops. Pairs caches hold whole frames. A person-crop cache gives its rule instead of a box. A cache
    whose records lost their crops is refused."""
    crop = cache_meta.get("crop") or {"policy": "fov"}
    if crop["policy"] == "person":
        from modistill.data.person_box import DEFAULT_DETECTOR, DETECTOR_SCORE, PERSON_RULE

        return {
            "policy": f"person: {PERSON_RULE}",
            "box": {
                "rule": "person",
                "padding": crop["padding"],
                "detector": DEFAULT_DETECTOR,
                "score": DETECTOR_SCORE,
            },
            "source": "per video: the tight box around every person (in training from its skeleton, box columns "
            "or keypoints; at deploy time from a detector or given boxes), padded and squared by the rule",
        }
    if cache_meta.get("benchmark") == "pairs":
        return {
            "policy": "full frame (pairs caches store whole frames)",
            "box": FULL_FRAME,
            "source": "full frame, as in training",
        }
    recs = [records[n] for n in train_names if records.get(n, {}).get("crop_rgb") and records[n].get("rgb_size")]
    if not recs:
        raise UserError(
            f"{cache}: no training video has a crop record in manifest.json (was the manifest "
            f"rebuilt?); re-prepare the cache into a new folder"
        )
    boxes = np.array([np.array(r["crop_rgb"]) / np.tile(r["rgb_size"], 2) for r in recs])
    box = [round(float(v), 4) for v in np.median(boxes, 0)]
    return {
        "policy": "per video: the RGB box whose skeleton-aligned depth view lies inside the depth frame",
        "box": box,
        "source": f"median of {len(recs)} of {len(train_names)} training crops",
    }


def clip_lengths(records: dict[str, dict], train_names: list[str]) -> dict | None:
    """How long the training videos were (frames: shortest, median, longest; their frame rate when the cache
    recorded it): what a window over a long video must span for the model to see an action at the speed it
    learned (``predict --mode windows``). None when the cache's records lack the frame counts."""
    n = [records[k]["rgb_frames"] for k in train_names if isinstance(records.get(k, {}).get("rgb_frames"), int)]
    if not n:
        return None
    rates = [float(records[k]["fps"]) for k in train_names if records.get(k, {}).get("fps")]
    return {
        "frames": {"min": int(min(n)), "median": int(np.median(n)), "max": int(max(n))},
        "fps": round(float(np.median(rates)), 3) if rates else None,
        "source": f"{len(n)} training videos" + (f", {len(rates)} with a frame rate" if rates else ""),
    }


def describe_crop(inp: dict) -> str:
    """``, person crops`` / ``, full frames`` / ``, fov crop`` from a run's ``input`` record, read back from what
    :func:`deploy_crop` wrote (empty for runs made before it was kept): the crop decides what the network sees, so
    every report and summary says it."""
    if "rgb_crop" not in inp:
        return ""
    box = inp.get("deploy_crop")
    if isinstance(box, dict) and box.get("rule") == "person":
        return ", person crops"
    return ", full frames" if str(inp["rgb_crop"]).startswith("full frame") else ", fov crop"


def versions() -> dict[str, str]:
    import lightning
    import torch
    import torchvision

    from modistill import __version__

    return {
        "modistill": __version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
    }


def run_metadata(cfg: dict, cache_meta: dict, crop: dict, fingerprint: str, clips: dict | None = None) -> dict:
    d, m = cfg["data"], cfg["model"]
    return {
        "format": RUN_FORMAT,
        "data": {
            "cache": d["cache"],
            "fingerprint": fingerprint,
            "benchmark": cache_meta["benchmark"],
            "protocol": d["protocol"] if cache_meta["benchmark"] != "pairs" else "split column",
            "num_classes": cache_meta["num_classes"],
            "class_names": cache_meta["class_names"],
            "origin": cache_meta.get("origin"),  # synthetic | ntu | pairs; None for caches made before it was kept
        },
        "input": {
            "size": cache_meta["size"],
            "frames": d["frames"],
            "stored_frames": cache_meta["frames"],
            "sampling": "frames = evenly_spaced(video frames, stored_frames)[evenly_spaced(stored_frames, "
            "frames)], evenly_spaced(n, k) = int(linspace(0, n - 1, k))",
            "train_sampling": d["train_sampling"],
            "modalities": _modality_words(cache_meta),
            "rgb_crop": crop["policy"],
            "deploy_crop": crop["box"],
            "deploy_crop_source": crop["source"],
            "clip_lengths": clips,
        },
        "model": {k: m[k] for k in ("arch", "width", "temporal", "connection", "pretrained", "privileged")},
        "versions": versions(),
    }


def _modality_words(cache_meta: dict) -> dict[str, str]:
    from modistill.data.modalities import cache_modalities, get

    return {m: get(m).words_for(cache_meta) for m in cache_modalities(cache_meta)}


def step_keys(cfg: dict, spec: StepSpec, precision: str, data_fp: str) -> dict[str, Any]:
    """The resolved config values that decide what this step learns."""
    from modistill.config import SCHEMA

    keys = {k: _get(cfg, k) for k in STEP_KEYS}
    keys.update({k: _get(cfg, k) for k in RECIPE_KEYS if _get(cfg, k) != SCHEMA[k].default})
    keys["train.epochs"] = epochs_for(cfg, spec.name)
    keys["train.precision"] = precision
    keys["data.fingerprint"] = data_fp
    if (processes := world_size(cfg)) > 1:
        keys["train.world_size"] = processes
    if any(src is None for src in spec.init.values()):
        keys["model.pretrained"] = cfg["model"]["pretrained"]
    if spec.connection and spec.direction is None:
        keys["model.connection"] = cfg["model"]["connection"]
    if "depth" in spec.inputs.values() and cfg["model"]["privileged"] != "depth":
        keys["model.privileged"] = cfg["model"]["privileged"]
    if spec.loss != "ce":
        keys.update({k: _get(cfg, k) for k in DISTILL_KEYS})
    if spec.hall_rgb is not None and cfg["distill"]["hall_init"] != "depth":
        keys["distill.hall_init"] = cfg["distill"]["hall_init"]
    return keys


def step_records(cfg: dict, precision: str, data_fp: str) -> dict[str, dict]:
    """``step.json`` content of every known step under this config: keys, parents' fingerprints, fingerprint,
    and what the step's model is (streams and connections), for the stages that load it."""
    out: dict[str, dict] = {}

    def visit(name: str) -> dict:
        if name not in out:
            spec = STEPS[name]
            init = init_for(spec, cfg["distill"]["hall_init"])
            parents = {src[0]: visit(src[0])["fingerprint"] for src in init.values() if src is not None}
            keys = step_keys(cfg, spec, precision, data_fp)
            out[name] = {
                "step": name,
                "fingerprint": _hash({"keys": keys, "parents": parents}),
                "keys": keys,
                "parents": parents,
                "streams": list(spec.streams),
                "connections": [list(c) for c in connections_for(spec, cfg["model"]["connection"])],
            }
        return out[name]

    for name in STEPS:
        visit(name)
    return out


def dependants(step: str) -> list[str]:
    """``step`` and every step initialised (directly or not) from it."""
    out = [step]
    changed = True
    while changed:
        changed = False
        for name, spec in STEPS.items():
            if name not in out and any(src in out for src in source_steps(spec)):
                out.append(name)
                changed = True
    return out


def existing_steps(run_dir: Path) -> list[str]:
    return [p.name for p in sorted(run_dir.iterdir()) if p.is_dir() and p.name in STEPS] if run_dir.is_dir() else []


def check_steps(run_dir: Path, records: dict[str, dict]) -> None:
    """Refuse to go on when a step folder of this run was produced by another config or other data."""
    for name in existing_steps(run_dir):
        path = run_dir / name / "step.json"
        if not path.exists():
            raise UserError(f"{run_dir / name}: no step.json (made by an older modistill); train into a new --run-dir")
        old = read_json(path, "delete this step folder to retrain it")
        new = records[name]
        if old.get("fingerprint") == new["fingerprint"]:
            continue
        old_keys = old.get("keys", {})
        diff = [f"{k}: {old_keys.get(k)!r} → {v!r}" for k, v in new["keys"].items() if old_keys.get(k) != v]
        diff += [f"{k}: no longer set" for k in old_keys if k not in new["keys"]]
        if not diff:
            changed = [p for p, fp in new["parents"].items() if old.get("parents", {}).get(p) != fp]
            diff = [f"parent step {', '.join(changed)} changed"]
        raise UserError(
            f"{run_dir}: {name} was trained with another config ({'; '.join(diff)}); train into a "
            f"new --run-dir, or retrain with --retrain-from {name}"
        )


def remove_steps(run_dir: Path, first: str) -> list[str]:
    """Delete the folders of ``first`` and of every step that depends on it (what ``--retrain-from`` asks)."""
    if first not in STEPS:
        raise UserError(f"--retrain-from: unknown step {first!r}; known: {sorted(STEPS)}")
    gone = [s for s in dependants(first) if (run_dir / s).is_dir()]
    for s in gone:
        shutil.rmtree(run_dir / s)
    return gone


def write_step_record(step_dir: Path, record: dict) -> None:
    atomic_write_text(step_dir / "step.json", json.dumps(record, indent=1))


class RunInfo:
    """A finished run as later stages see it: ``run.json`` and the steps' ``step.json`` and ``metrics.json``."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        if not self.dir.is_dir():
            raise UserError(f"{self.dir}: not a run folder (not a directory)")
        path = self.dir / "run.json"
        if not path.exists():
            raise UserError(
                f"{self.dir}: no run.json (input size, crop and class names of the run); it is not a "
                f"run folder or was made by an older modistill: retrain into a new --run-dir"
            )
        self.meta = read_json(path, "retrain into a new --run-dir")
        if self.meta.get("format") != RUN_FORMAT:
            raise UserError(f"{path}: run format {self.meta.get('format')!r}, this version reads {RUN_FORMAT!r}")

    @property
    def privileged(self) -> str:
        """The modality the privileged stream saw (runs made before ``model.privileged`` existed saw depth)."""
        return self.meta.get("model", {}).get("privileged") or "depth"

    def step(self, name: str) -> dict:
        """A finished step's record; a one-line error when it is missing or unfinished."""
        step_dir = self.dir / name
        if not (step_dir / "metrics.json").exists() or not (step_dir / "weights.pt").exists():
            raise UserError(
                f"{self.dir}: {name} is not finished (no {name}/metrics.json or weights.pt); train it first"
            )
        return read_json(step_dir / "step.json", f"retrain {name} (--retrain-from {name})")

    def metrics(self) -> dict[str, dict]:
        out = {}
        for p in sorted(self.dir.glob("*/metrics.json")):
            if p.parent.name in STEPS:
                out[p.parent.name] = read_json(p, f"delete {p.parent} and rerun `modistill train` to redo it")
        return out

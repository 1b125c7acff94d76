"""The run folder's format: what a run writes, reads back and locks, so that it travels with the run.

Files: ``run.json`` (below), ``config.yaml`` (the resolved config), ``splits.json``; per step ``step.json`` (its
fingerprint, :mod:`modistill.training.fingerprint`), ``config.yaml``, ``checkpoints/``, ``logs/``, ``weights.pt``
(the selected model's tensors, what later steps start from) and ``metrics.json`` (written last: the step is done).

``run.json`` holds everything a later stage needs: input size, frames and how they are sampled, the modality
encodings, the RGB crop policy and the deploy crop, the class names, the cache (absolute path and a fingerprint
of its settings and of the split). ``STEP/step.json`` holds the step's fingerprint: a hash of the resolved
config keys that affect the step, of the data and of its parents' fingerprints. Export, predict and evaluate
read these files, never the cache's metadata or the training config. A rerun reuses a step only when its
fingerprint is unchanged.
"""

from __future__ import annotations

import json
import platform
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from modistill.config import Config
from modistill.errors import UserError
from modistill.training.steps import PRIVILEGED, STEPS, dependants
from modistill.utils.io import atomic_write, atomic_write_text, load_tensors, read_json
from modistill.utils.lock import exclusive_lock
from modistill.utils.ranks import is_launch_process

RUN_FORMAT = "modistill-run/1"
CONFIG, RUN_JSON, SPLITS = "config.yaml", "run.json", "splits.json"
STEP_JSON, METRICS, WEIGHTS = "step.json", "metrics.json", "weights.pt"
FULL_FRAME = [0.0, 0.0, 1.0, 1.0]
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


def absolute_paths(cfg: Config) -> Config:
    """The config with its file paths made absolute (against the working directory at the start of the run), so
    the run folder stays valid from any folder."""
    from modistill.models.pretrained import is_named

    out = json.loads(json.dumps(cfg))
    for sec, key in (("data", "cache"), ("data", "exclude_list"), ("model", "pretrained")):
        if out[sec][key] and not is_named(out[sec][key]):
            out[sec][key] = str(Path(out[sec][key]).expanduser().resolve())
    return Config(out)


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


def run_metadata(cfg: Config, cache_meta: dict, crop: dict, fingerprint: str, clips: dict | None = None) -> dict:
    d = cfg.data
    return {
        "format": RUN_FORMAT,
        "data": {
            "cache": d.cache,
            "fingerprint": fingerprint,
            "benchmark": cache_meta["benchmark"],
            "protocol": d.protocol if cache_meta["benchmark"] != "pairs" else "split column",
            "num_classes": cache_meta["num_classes"],
            "class_names": cache_meta["class_names"],
            "origin": cache_meta.get("origin"),  # synthetic | ntu | pairs; None for caches made before it was kept
        },
        "input": {
            "size": cache_meta["size"],
            "frames": d.frames,
            "stored_frames": cache_meta["frames"],
            "sampling": "frames = evenly_spaced(video frames, stored_frames)[evenly_spaced(stored_frames, "
            "frames)], evenly_spaced(n, k) = int(linspace(0, n - 1, k))",
            "train_sampling": d.train_sampling,
            "modalities": _modality_words(cache_meta),
            "rgb_crop": crop["policy"],
            "deploy_crop": crop["box"],
            "deploy_crop_source": crop["source"],
            "clip_lengths": clips,
        },
        "model": {k: cfg["model"][k] for k in ("arch", "width", "temporal", "connection", "pretrained", "privileged")},
        "versions": versions(),
    }


def _modality_words(cache_meta: dict) -> dict[str, str]:
    from modistill.data.modalities import cache_modalities, get

    return {m: get(m).words_for(cache_meta) for m in cache_modalities(cache_meta)}


def existing_steps(run_dir: Path) -> list[str]:
    return [p.name for p in sorted(run_dir.iterdir()) if p.is_dir() and p.name in STEPS] if run_dir.is_dir() else []


def check_steps(run_dir: Path, records: dict[str, dict]) -> None:
    """Refuse to go on when a step folder of this run was produced by another config or other data."""
    for name in existing_steps(run_dir):
        path = run_dir / name / STEP_JSON
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


def adopt_steps(run_dir: Path, donors: tuple[Path, ...], records: dict[str, dict], order: list[str]) -> list[str]:
    """Copy into ``run_dir`` every step of ``order`` it lacks that a donor run has finished with the same
    fingerprint (same config keys, data and parents: the step this run would train), e.g. the step-1 RGB stream of a
    depth run for a pose run on the same cache. Each folder is copied whole under a temporary name and renamed, so
    a kill leaves no half step. Returns ``step (from donor)`` for each."""
    adopted = []
    for name in order:
        if (run_dir / name).exists():
            continue
        for donor in donors:
            src = donor / name
            if not is_finished(donor, name) or not (src / STEP_JSON).exists():
                continue
            if read_json(src / STEP_JSON, "delete it").get("fingerprint") != records[name]["fingerprint"]:
                continue
            tmp = run_dir / f".{name}.adopt.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(src, tmp)
            tmp.rename(run_dir / name)
            adopted.append(f"{name} (from {donor})")
            break
    return adopted


def remove_steps(run_dir: Path, first: str) -> list[str]:
    """Delete the folders of ``first`` and of every step that depends on it (what ``--retrain-from`` asks)."""
    if first not in STEPS:
        raise UserError(f"--retrain-from: unknown step {first!r}; known: {sorted(STEPS)}")
    gone = [s for s in dependants(first) if (run_dir / s).is_dir()]
    for s in gone:
        shutil.rmtree(run_dir / s)
    return gone


# Runs made before the privileged stream was named by its role called it ``depth`` (whatever it saw): their tensors
# and metrics read under the role's name, so that such runs keep evaluating, exporting and training on.
LEGACY_STREAM = "depth"


def migrate_state(state: dict) -> dict:
    """A state dict (a step's weights, a checkpoint's, with its averaged copy) with the privileged stream's old name
    replaced by its role."""
    old, new = f"streams.{LEGACY_STREAM}.", f"streams.{PRIVILEGED}."
    return {k.replace(old, new, 1) if old in k else k: v for k, v in state.items()}


def migrate_metrics(metrics: dict) -> dict:
    """A step's ``metrics.json`` with its per-stream entries under the privileged stream's role."""
    for key in ("streams", "scores", "stream_pred"):
        per_stream = metrics.get(key)
        if isinstance(per_stream, dict) and LEGACY_STREAM in per_stream:
            per_stream[PRIVILEGED] = per_stream.pop(LEGACY_STREAM)
    return metrics


def write_run(run_dir: Path, cfg: Config, meta: dict, splits: dict[str, list[str]]) -> None:
    """The run's own description: its resolved config, ``run.json`` (:func:`run_metadata`) and its split."""
    from modistill.config import dump_config

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CONFIG, dump_config(cfg))
    atomic_write_text(run_dir / RUN_JSON, json.dumps(meta, indent=1))
    atomic_write_text(run_dir / SPLITS, json.dumps(splits))


def write_step_record(step_dir: Path, record: dict) -> None:
    atomic_write_text(step_dir / STEP_JSON, json.dumps(record, indent=1))


def write_step_start(step_dir: Path, record: dict, cfg: Config) -> None:
    """A step about to train: its fingerprint record and the config it trains with."""
    from modistill.config import dump_config

    write_step_record(step_dir, record)
    atomic_write_text(step_dir / CONFIG, dump_config(cfg | {"step": step_dir.name}))


def write_step_result(step_dir: Path, state: dict, metrics: dict) -> None:
    """A finished step: its weights, then its metrics, whose presence marks it done."""
    import torch

    atomic_write(step_dir / WEIGHTS, lambda p: torch.save(state, p))
    atomic_write_text(step_dir / METRICS, json.dumps(metrics))


def is_finished(run_dir: Path, step: str) -> bool:
    return (run_dir / step / METRICS).exists()


def step_metrics(run_dir: Path, step: str) -> dict:
    return migrate_metrics(read_json(run_dir / step / METRICS, f"delete {run_dir / step} and rerun to retrain {step}"))


def step_weights(run_dir: Path, step: str) -> dict:
    """A finished step's tensors (no pickle)."""
    return migrate_state(load_tensors(run_dir / step / WEIGHTS, f"retrain {step} (--retrain-from {step})"))


class RunInfo:
    """A finished run as later stages see it: ``run.json`` and the steps' ``step.json`` and ``metrics.json``."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        if not self.dir.is_dir():
            raise UserError(f"{self.dir}: not a run folder (not a directory)")
        path = self.dir / RUN_JSON
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
        if not (step_dir / METRICS).exists() or not (step_dir / WEIGHTS).exists():
            raise UserError(
                f"{self.dir}: {name} is not finished (no {name}/metrics.json or weights.pt); train it first"
            )
        return read_json(step_dir / STEP_JSON, f"retrain {name} (--retrain-from {name})")

    def splits(self) -> dict[str, list[str]]:
        return read_json(self.dir / SPLITS, "retrain into a new --run-dir")

    def weights(self, step: str) -> dict:
        return step_weights(self.dir, step)

    def metrics(self) -> dict[str, dict]:
        out = {}
        for p in sorted(self.dir.glob(f"*/{METRICS}")):
            if p.parent.name in STEPS:
                out[p.parent.name] = step_metrics(self.dir, p.parent.name)
        return out

"""What decides whether a finished step can be reused: its fingerprint, a hash of the resolved config keys that
change what it learns, of the data (the cache's settings, its modalities' own, the exact split with its labels) and
of its parents' fingerprints. Every config key has one declared role here (a test checks it)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from modistill.config import ROLES, SCHEMA, STEP, WHEN_DISTILLING, WHEN_SET, Config, epochs_for, patience_for
from modistill.data.modalities import settings_fields
from modistill.training.steps import PRIVILEGED, STEPS, StepSpec, connections_for, init_for


def _with_role(role: str) -> tuple[str, ...]:
    return tuple(k for k, f in SCHEMA.items() if f.role == role)


# Every config key declares its role in the schema (modistill.config): a new key must say whether a step that
# trained without it can be reused.
STEP_KEYS = _with_role(STEP)  # change what every step learns
RECIPE_KEYS = _with_role(WHEN_SET)  # training levers added later: only when set to other than their default
DISTILL_KEYS = _with_role(WHEN_DISTILLING)
FINGERPRINT_ROLES = {role: _with_role(role) for role in ROLES}


def world_size(cfg: Config) -> int:
    """How many processes train a step: torchrun's or the scheduler's WORLD_SIZE, else the configured devices
    (auto and -1: every visible GPU, or one process on the CPU) times the nodes."""
    if os.environ.get("WORLD_SIZE", "").isdigit():
        return max(1, int(os.environ["WORLD_SIZE"]))
    t = cfg.train
    devices = t.devices
    if isinstance(devices, list):
        n = len(devices)
    elif devices in ("auto", -1, "-1"):
        import torch

        gpu = t.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
        n = torch.cuda.device_count() if gpu else 1
    else:
        n = int(devices)
    return max(1, n) * int(t.num_nodes)


def _get(cfg: dict, dotted: str) -> Any:
    cur: Any = cfg
    for part in dotted.split("."):
        cur = cur[part]
    return cur


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def data_fingerprint(cache_meta: dict, splits: dict[str, list[str]], labels: dict[str, int]) -> str:
    """What the data gives a step: the cache's settings and class names, and the exact split with its labels."""
    settings = {
        k: cache_meta.get(k) for k in ("version", "size", "frames", "depth_encoding", "benchmark", "class_names")
    }
    if cache_meta.get("crop"):  # only caches with a person crop: the others keep their fingerprints
        settings["crop"] = cache_meta["crop"]
    settings |= settings_fields(cache_meta)  # a modality's own settings (pose images'), where it has any
    return _hash({"cache": settings, "splits": {k: [[n, labels[n]] for n in v] for k, v in splits.items()}})


def step_keys(cfg: Config, spec: StepSpec, precision: str, data_fp: str) -> dict[str, Any]:
    """The resolved config values that decide what this step learns."""
    keys = {k: _get(cfg, k) for k in STEP_KEYS}
    keys.update({k: _get(cfg, k) for k in RECIPE_KEYS if _get(cfg, k) != SCHEMA[k].default})
    keys["train.epochs"] = epochs_for(cfg, spec.name)
    if patience := patience_for(cfg, spec.name):  # the same key as when train.patience alone set it
        keys["train.patience"] = patience
    keys["train.precision"] = precision
    keys["data.fingerprint"] = data_fp
    if (processes := world_size(cfg)) > 1:
        keys["train.world_size"] = processes
    if any(src is None for src in spec.init.values()):
        keys["model.pretrained"] = cfg.model.pretrained
    if spec.connection and spec.direction is None:
        keys["model.connection"] = cfg.model.connection
    if PRIVILEGED in spec.inputs.values() and cfg.model.privileged != "depth":
        keys["model.privileged"] = cfg.model.privileged
    if spec.loss != "ce":
        keys.update({k: _get(cfg, k) for k in DISTILL_KEYS})
    if spec.hall_rgb is not None and cfg.distill.hall_init != "depth":
        keys["distill.hall_init"] = cfg.distill.hall_init
    return keys


def step_records(cfg: Config, precision: str, data_fp: str) -> dict[str, dict]:
    """``step.json`` content of every known step under this config: keys, parents' fingerprints, fingerprint,
    and what the step's model is (streams and connections), for the stages that load it."""
    out: dict[str, dict] = {}

    def visit(name: str) -> dict:
        if name not in out:
            spec = STEPS[name]
            init = init_for(spec, cfg.distill.hall_init)
            parents = {src[0]: visit(src[0])["fingerprint"] for src in init.values() if src is not None}
            keys = step_keys(cfg, spec, precision, data_fp)
            out[name] = {
                "step": name,
                "fingerprint": _hash({"keys": keys, "parents": parents}),
                "keys": keys,
                "parents": parents,
                "streams": list(spec.streams),
                "connections": [list(c) for c in connections_for(spec, cfg.model.connection)],
            }
        return out[name]

    for name in STEPS:
        visit(name)
    return out

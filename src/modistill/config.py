"""YAML configs with dotted command-line overrides (``train.epochs=3``), validated against the defaults.

Every key a user can set exists in :data:`DEFAULTS`; an unknown key or a value of the wrong type is a
:class:`~modistill.errors.UserError` (one line, exit code 2), never a silent no-op.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import yaml

from modistill.errors import UserError

DEFAULTS: dict[str, Any] = {
    "name": "run",
    "seed": 0,
    "data": {
        "cache": None,  # folder written by `modistill prepare`
        "benchmark": "ntu60",
        "protocol": "cross-subject",
        "validation": "paper",
        "val_per_class": 31,
        "exclude_list": None,  # e.g. the official missing-skeleton list
        "frames": 5,
        "train_sampling": "even",  # "even" (paper) or "mixed" (released code: 50% random ordered frames)
        "flip": 0.5,
        "workers": 2,
    },
    "model": {
        "arch": "resnet50",
        "width": 64,
        "pretrained": None,  # local torchvision ImageNet state dict (.pth); None = random init
        "temporal": True,
        "connection": "depth_to_rgb",  # depth_to_rgb | rgb_to_depth | none
    },
    "train": {
        "optimizer": "adam",
        "lr": 1.0e-3,
        "weight_decay": 0.0,
        "batch_size": 5,
        "epochs": 40,
        "precision": "auto",  # auto = bf16-mixed on GPU, 32 on CPU
        "devices": "auto",
        "accelerator": "auto",
        "strategy": "auto",
        "num_nodes": 1,
        "log_every_n_steps": 10,
        "limit_train_batches": 1.0,
        "progress": True,
        "cpu_keep_freed_memory": True,  # CPU runs: glibc reuses freed memory instead of unmapping it (faster steps)
    },
    "distill": {
        "alpha": 0.5,
        "lambda": 0.5,
        "temperature": 10.0,
        "t2_scaling": False,
        "hall_layers": ["layer4"],
        "hall_reduction": "mean",  # mean (scale-free, our default) or sum (released code)
        "weighting": "paper",  # paper: eq. 7; released: 0.25 CE + 0.25 soft + 0.005 sum-hall
    },
    "steps": ["step1_rgb", "step1_depth", "step2", "step3", "step4"],
    "variants": [],
    "evaluate": {
        "noise_sigma2": [0.0, 1.0e-3, 1.0e-2, 1.0e-1, 1.0, 10.0],
        "void": True,
    },
}


def _merge(base: dict, new: dict, prefix: str = "") -> dict:
    out = copy.deepcopy(base)
    for k, v in new.items():
        key = f"{prefix}{k}"
        if k not in out:
            raise UserError(f"unknown config key {key!r}")
        if isinstance(out[k], dict):
            if not isinstance(v, dict):
                raise UserError(f"config key {key!r} must be a mapping")
            out[k] = _merge(out[k], v, key + ".")
        else:
            out[k] = _coerce(key, out[k], v)
    return out


def _coerce(key: str, default: Any, value: Any) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise UserError(f"config key {key!r} must be true or false, got {value!r}")
    if isinstance(default, float) and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, int) and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(default, str) and isinstance(value, str):
        return value
    if isinstance(default, list) and isinstance(value, list):
        return value
    if isinstance(default, float) and isinstance(value, str) and not key.endswith("precision"):
        try:  # YAML 1.1 reads 1e-4 (no dot, no sign) as a string; Python reads it as the float it is
            number = float(value)
        except ValueError:
            return _bad(key, default, value)
        if not math.isfinite(number):
            raise UserError(f"config key {key!r} must be a finite number, got {value!r}")
        return number
    if isinstance(default, float | int) and isinstance(value, str):
        return value if key.endswith(("devices", "precision")) else _bad(key, default, value)
    if isinstance(default, str) and isinstance(value, int | float) and key.endswith(("devices", "precision")):
        return value
    return _bad(key, default, value)


def _bad(key, default, value):
    raise UserError(f"config key {key!r} expects {type(default).__name__}, got {value!r}")


def parse_override(item: str) -> dict:
    """``a.b.c=value`` → nested dict; the value is parsed as YAML (numbers, booleans, lists)."""
    if "=" not in item:
        raise UserError(f"override {item!r} must look like key.sub=value")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError:
        value = raw
    out: dict = {}
    cur = out
    parts = key.strip().split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return out


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Defaults ← YAML file ← overrides, validated."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise UserError(f"{path}: config file not found") from None
        except yaml.YAMLError as e:
            raise UserError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise UserError(f"{path}: a config must be a YAML mapping")
        cfg = _merge(cfg, data)
    for item in overrides:
        cfg = _merge(cfg, parse_override(item))
    validate(cfg)
    return cfg


def validate(cfg: dict) -> None:
    choices = {
        ("model", "connection"): ("depth_to_rgb", "rgb_to_depth", "none"),
        ("data", "train_sampling"): ("even", "mixed"),
        ("distill", "hall_reduction"): ("mean", "sum"),
        ("distill", "weighting"): ("paper", "released"),
        ("train", "optimizer"): ("adam", "sgd", "adamw"),
    }
    for (sec, key), allowed in choices.items():
        if cfg[sec][key] not in allowed:
            raise UserError(f"config {sec}.{key}={cfg[sec][key]!r} is not one of {list(allowed)}")
    for sec, key in (("distill", "alpha"), ("distill", "lambda"), ("data", "flip")):
        if not 0.0 <= cfg[sec][key] <= 1.0:
            raise UserError(f"config {sec}.{key} must be in [0, 1], got {cfg[sec][key]}")
    if cfg["distill"]["temperature"] <= 0:
        raise UserError("config distill.temperature must be > 0")
    for sec, key in (("train", "batch_size"), ("train", "epochs"), ("data", "frames")):
        if cfg[sec][key] < 1:
            raise UserError(f"config {sec}.{key} must be at least 1")


def dump_config(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)

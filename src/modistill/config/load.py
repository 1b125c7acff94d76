"""YAML configs with dotted command-line overrides (``train.epochs=3``), merged onto the defaults and validated
against the schema before anything is written; a run folder's config read back by the same rules."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from modistill.config.fields import Field
from modistill.config.schema import DEFAULTS, SCHEMA, Config
from modistill.errors import UserError
from modistill.utils.io import read_text

CONFIG_DIR = Path(__file__).parents[1] / "configs"


def _merge(base: dict, new: dict, prefix: str = "") -> dict:
    out = copy.deepcopy(base)
    for k, v in new.items():
        key = f"{prefix}{k}"
        if not isinstance(k, str) or k not in out:
            raise UserError(f"unknown config key {key!r}{_suggest(key)}")
        if key in SCHEMA and SCHEMA[key].kind == "mapping":  # a value that is a mapping replaces the previous one
            out[k] = _coerce(key, SCHEMA[key], v)
        elif isinstance(out[k], dict):
            if not isinstance(v, dict):
                raise UserError(f"config key {key!r} must be a mapping")
            out[k] = _merge(out[k], v, key + ".")
        else:
            out[k] = _coerce(key, SCHEMA[key], v)
    return out


def _suggest(key: str) -> str:
    """``; did you mean 'train.epochs'?``: the closest known keys, by the whole dotted name or by its last part."""
    import difflib

    whole = difflib.get_close_matches(key, list(SCHEMA), n=3, cutoff=0.6)
    tail = key.rsplit(".", 1)[-1]
    by_tail = [k for k in SCHEMA if difflib.get_close_matches(tail, [k.rsplit(".", 1)[-1]], cutoff=0.75)]
    found = list(dict.fromkeys(whole + by_tail))[:3]
    return f"; did you mean {' or '.join(repr(k) for k in found)}?" if found else ""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _as_float(key: str, v: Any) -> float:
    """YAML 1.1 reads 1e-4 (no dot, no sign) as a string; Python reads it as the float it is."""
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            raise UserError(f"config key {key!r} expects a number, got {v!r}") from None
    if not isinstance(v, int | float) or isinstance(v, bool):
        raise UserError(f"config key {key!r} expects a number, got {v!r}")
    if not math.isfinite(v):
        raise UserError(f"config key {key!r} must be a finite number, got {v!r}")
    return float(v)


SIMPLE_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "bool": (lambda v: isinstance(v, bool), "must be true or false"),
    "int": (_is_int, "expects an integer"),
    "str": (lambda v: isinstance(v, str), "expects text"),
    "path": (lambda v: isinstance(v, str), "expects a path"),
    "list": (lambda v: isinstance(v, list), "expects a list like [a, b]"),
    "mapping": (lambda v: isinstance(v, dict), "expects a mapping like {a: 1}"),
}


def _coerce(key: str, field: Field, v: Any) -> Any:
    """The value in the field's kind, or a one-line error naming the key."""
    if v is None:
        if field.nullable:
            return None
        raise UserError(f"config key {key!r} cannot be empty")
    kind = field.kind
    if kind in SIMPLE_KINDS:
        accepts, words = SIMPLE_KINDS[kind]
        if accepts(v):
            return v
        raise UserError(f"config key {key!r} {words}, got {v!r}")
    if kind == "float":
        return _as_float(key, v)
    if kind == "workers":
        if v == "auto" or (_is_int(v) and 0 <= v <= 256):
            return v
        raise UserError(f"config key {key!r} must be auto or a number of loader processes from 0 to 256, got {v!r}")
    if kind == "precision":
        return str(v)
    if kind == "devices":
        if v == "auto" or (_is_int(v) and (v >= 1 or v == -1)):
            return v
        if isinstance(v, list) and v and all(_is_int(x) and x >= 0 for x in v):
            return v
        raise UserError(
            f"config key {key!r} must be auto, a device count >= 1, -1 (all) or a list of device indices, got {v!r}"
        )
    if kind == "limit":
        if _is_int(v) and v >= 1:
            return v
        f = _as_float(key, v)
        if 0 < f <= 1:
            return f
        raise UserError(f"config key {key!r} must be a fraction in (0, 1] or a number of batches >= 1, got {v!r}")
    raise AssertionError(kind)


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


def read_yaml(path: str | Path, what: str = "config file") -> dict:
    """A YAML mapping (a config, a run's config.yaml), or one line naming the file and the problem."""
    path = Path(path)
    try:
        data = yaml.safe_load(read_text(path, what)) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a {what} must be a YAML mapping")
    return data


def resolve_config_path(name: str | Path) -> Path:
    """A config path, or the name of a bundled config (``demo``, ``ntu60_xsub``, ...)."""
    p = Path(name)
    if p.exists():
        return p
    bundled = CONFIG_DIR / (p.name if p.suffix == ".yaml" else f"{p.name}.yaml")
    if bundled.exists():
        return bundled
    raise UserError(f"{name}: config file not found (bundled: {bundled_configs()})")


def bundled_configs() -> list[str]:
    return sorted(x.stem for x in CONFIG_DIR.glob("*.yaml"))


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults ← YAML file ← overrides, validated."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        cfg = _merge(cfg, read_yaml(path))
    for item in overrides:
        cfg = _merge(cfg, parse_override(item))
    validate(cfg)
    _check_combinations(cfg)
    return Config(cfg)


def load_run_config(run_dir: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """A run folder's resolved config as this version reads it: keys added since the run was made take their
    defaults (each one the behaviour the run had), and the log names them; then validated like any config. Every
    stage that reads a run's config (evaluate, tune, the seeds summary) goes through here."""
    import logging

    path = Path(run_dir) / "config.yaml"
    raw = read_yaml(path, "run config")
    added = [k for k in SCHEMA if not _has(raw, k)]
    if added:
        logging.getLogger(__name__).info("%s: made before keys %s; they take their defaults", path, added)
    return load_config(path, overrides)


def _has(cfg: dict, key: str) -> bool:
    cur: Any = cfg
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False
        cur = cur[part]
    return True


def _check_combinations(cfg: dict) -> None:
    """Keys that are valid alone but contradict each other."""
    t = cfg["train"]
    from modistill.data.modalities import get

    if not get(cfg["model"]["privileged"]).noise_in_units and cfg["evaluate"]["noise_on"] == "depth":
        raise UserError(
            f"config model.privileged={cfg['model']['privileged']} with evaluate.noise_on=depth: Table 3's noise "
            "in millimetres needs depth; set evaluate.noise_on=encoded (noise on the privileged images)"
        )
    if t["precision"] == "16-true":
        raise UserError(
            "config train.precision=16-true keeps the weights in float16, where Adam's epsilon (1e-8) "
            "rounds to 0 and small updates vanish, so training diverges; use 16-mixed or bf16-true"
        )
    if t["schedule"] == "cosine" and t["lr_drop_epoch"]:
        raise UserError(
            "config train.schedule=cosine and train.lr_drop_epoch="
            f"{t['lr_drop_epoch']} contradict each other; set train.lr_drop_epoch=0 or "
            "train.schedule=step"
        )


def validate(cfg: dict) -> None:
    """Each field's constraint."""
    for dotted, spec in SCHEMA.items():
        value = cfg
        for part in dotted.split("."):
            value = value[part]
        if value is not None and spec.check is not None:
            problem = spec.check(value)
            if problem:
                raise UserError(f"config {dotted}={value!r} {problem}")


def dump_config(cfg: dict) -> str:
    return yaml.safe_dump(dict(cfg), sort_keys=False)

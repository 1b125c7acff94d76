"""YAML configs with dotted command-line overrides (``train.epochs=3``), validated against one declared schema.

Every key a user can set is a :class:`Field` in :data:`SCHEMA`, with its default, its kind and its constraint side
by side; :data:`DEFAULTS` is derived from it. An unknown key, a value of the wrong kind or out of range is a
:class:`~modistill.errors.UserError` (one line, exit code 2) raised before anything is written, never a silent
no-op or an error deep inside a library.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modistill.errors import UserError
from modistill.utils.io import read_text

Check = Callable[[Any], str | None]  # returns what is wrong, or None
CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass(frozen=True)
class Field:
    default: Any
    kind: str  # int | float | bool | str | path | list | mapping | devices | precision | limit | workers
    check: Check | None = None
    nullable: bool = False


def _range(lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> Check:
    def check(v):
        if lo is not None and (v <= lo if lo_open else v < lo):
            return f"must be {'>' if lo_open else '>='} {lo:g}"
        if hi is not None and v > hi:
            return f"must be <= {hi:g}"
        return None
    return check


def _one_of(*allowed) -> Check:
    return lambda v: None if v in allowed else f"is not one of {list(allowed)}"


def _arch(v: str) -> str | None:
    from modistill.models.stream import ARCHS

    return None if v in ARCHS else f"is not one of {sorted(ARCHS)}"


def _sampling(v: str) -> str | None:
    from modistill.data.dataset import SAMPLINGS

    return None if v in SAMPLINGS else f"is not one of {list(SAMPLINGS)}"


def _steps(allow_empty: bool) -> Check:
    def check(v):
        from modistill.training.steps import STEPS

        if not v and not allow_empty:
            return "must name at least one step"
        bad = [s for s in v if s not in STEPS]
        return f"has unknown step(s) {bad}; known: {sorted(STEPS)}" if bad else None
    return check


def _step_epochs(v: dict) -> str | None:
    from modistill.training.steps import STEPS

    bad = [k for k in v if k not in STEPS]
    if bad:
        return f"has unknown step(s) {bad}; known: {sorted(STEPS)}"
    wrong = [k for k, n in v.items() if not (isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 100000)]
    return f"must give each step a number of epochs >= 1 ({wrong[0]}: {v[wrong[0]]!r})" if wrong else None


def epochs_for(cfg: dict, step: str) -> int:
    """The epochs ``step`` trains for: its ``train.step_epochs`` entry, else ``train.epochs``."""
    return int(cfg["train"]["step_epochs"].get(step, cfg["train"]["epochs"]))


def describe_epochs(train: dict) -> str:
    """``6 epochs per step`` or ``6 epochs per step (step1_rgb 15, step1_depth 15)``, for reports."""
    n = train["epochs"]
    text = f"{n} epoch{'s' if n != 1 else ''} per step"
    extra = ", ".join(f"{k} {v}" for k, v in train.get("step_epochs", {}).items())
    return f"{text} ({extra})" if extra else text


def describe_recipe(cfg: dict) -> str:
    """The optimiser, learning rate and batch, what the run adds to the paper's recipe (schedule, warm-up,
    regularisation, EMA, augmentation) and the validation split, in words, for reports."""
    t, d = cfg["train"], cfg["data"]
    parts = [f"{t['optimizer']} {t['lr']:g}, batch {t['batch_size']}"]
    if t.get("schedule") == "cosine":
        parts.append("cosine schedule")
    elif t.get("lr_drop_epoch"):
        parts.append(f"×{t['lr_drop_factor']:g} at epoch {t['lr_drop_epoch']}")
    if t.get("warmup_epochs"):
        parts.append(f"{t['warmup_epochs']:g} warm-up epoch{'s' if t['warmup_epochs'] != 1 else ''}")
    for key, words in (("weight_decay", "weight decay"), ("label_smoothing", "label smoothing"),
                       ("ema_decay", "weight EMA")):
        if t.get(key):
            parts.append(f"{words} {t[key]:g}")
    if d.get("crop_scale"):
        parts.append(f"random resized crop {d['crop_scale'][0]:g}-{d['crop_scale'][1]:g}")
    if d.get("train_sampling", "even") != "even":
        parts.append(f"{d['train_sampling']} frame sampling")
    val = d.get("validation")
    parts.append("no validation split" if val is None else
                 f"validation: {d['val_performers']} held-out performer{'s' if d['val_performers'] != 1 else ''}"
                 if val == "performers" else "validation: the paper's split")
    return ", ".join(parts)


def _layers(v: list) -> str | None:
    known = ("layer1", "layer2", "layer3", "layer4")
    if not v:
        return f"must name at least one of {list(known)}"
    bad = [x for x in v if x not in known]
    return f"has unknown layer(s) {bad}; known: {list(known)}" if bad else None


def _sigmas(v: list) -> str | None:
    ok = all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x >= 0 for x in v)
    return None if ok else "must be a list of noise variances >= 0"


def _crop_scale(v: list) -> str | None:
    ok = (len(v) == 2 and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
          and 0 < v[0] <= v[1] <= 1)
    return None if ok else "must be [min, max] with 0 < min <= max <= 1"


PRECISIONS = ("auto", "32", "32-true", "16", "16-mixed", "16-true", "bf16", "bf16-mixed", "bf16-true", "64",
              "64-true")
SCHEMA: dict[str, Field] = {
    "name": Field("run", "str", lambda v: None if v and "/" not in v else "must be a non-empty name without '/'"),
    "seed": Field(0, "int", _range(0, 2**32 - 1)),
    "data.cache": Field(None, "path", nullable=True),  # folder written by `modistill prepare`
    "data.benchmark": Field("ntu60", "str", _one_of("ntu60", "ntu120")),
    "data.protocol": Field("cross-subject", "str", _one_of("cross-subject", "cross-view", "cross-setup")),
    # paper (the supplement's split) | performers (the data.val_performers lowest-numbered training performers,
    # whole performances held out: a larger split for small data) | null (no split)
    "data.validation": Field("paper", "str", lambda v: None if v in ("paper", "performers") else
                             "must be paper, performers or null (no split)", nullable=True),
    "data.val_per_class": Field(31, "int", _range(1)),
    "data.val_performers": Field(1, "int", _range(1)),
    "data.exclude_list": Field(None, "path", nullable=True),  # e.g. the official missing-skeleton list
    "data.frames": Field(5, "int", _range(1, 256)),
    # even (paper) | mixed (released code: 50 % random ordered frames) | jitter (one random stored frame in each of
    # data.frames equal segments, TSN-style); mixed and jitter need a cache storing more frames than data.frames
    "data.train_sampling": Field("even", "str", _sampling),
    "data.flip": Field(0.5, "float", _range(0, 1)),
    # random resized crop in training, one box for every modality: [min, max] fraction of the frame's area (aspect
    # ratio 3/4-4/3), resized back to the cache's size; null: off (paper)
    "data.crop_scale": Field(None, "list", _crop_scale, nullable=True),
    "data.workers": Field("auto", "workers"),  # loader processes; auto: the cores per device, at most 8
    "model.arch": Field("resnet50", "str", _arch),
    "model.width": Field(64, "int", _range(1, 4096)),
    # torchvision:IMAGENET1K_V2, hf-hub:timm/resnet50.a1_in1k, or a local .pth/.safetensors; null: random init
    "model.pretrained": Field(None, "path", nullable=True),
    "model.temporal": Field(True, "bool"),
    # random init only: zero the last BN scale of every residual unit and the classifier (starts at loss ln C)
    "model.zero_init_residual": Field(False, "bool"),
    "model.connection": Field("depth_to_rgb", "str", _one_of("depth_to_rgb", "rgb_to_depth", "none")),
    "train.optimizer": Field("adam", "str", _one_of("adam", "sgd", "adamw")),
    "train.lr": Field(1.0e-3, "float", _range(0, lo_open=True)),
    "train.weight_decay": Field(0.0, "float", _range(0)),
    # Fig. 4: 1e-3, then 1e-4. 0 keeps the rate constant (default); N > 0 multiplies it by lr_drop_factor at epoch N
    "train.lr_drop_epoch": Field(0, "int", _range(0)),
    "train.lr_drop_factor": Field(0.1, "float", _range(0, 1, lo_open=True)),
    # step: constant, or the one drop of train.lr_drop_epoch | cosine: from train.lr to 0 over the step's epochs
    "train.schedule": Field("step", "str", _one_of("step", "cosine")),
    # linear warm-up from train.lr / (warm-up iterations) to train.lr over this many epochs (fractions allowed)
    "train.warmup_epochs": Field(0.0, "float", _range(0)),
    "train.label_smoothing": Field(0.0, "float", _range(0, 0.5)),  # on every cross-entropy with the labels
    # exponential moving average of the weights, updated every optimizer step; validation, selection, test, the
    # step's weights.pt and export use the averaged weights. 0: off
    "train.ema_decay": Field(0.0, "float", _range(0, 0.99999)),
    "train.batch_size": Field(5, "int", _range(1, 65536)),
    "train.epochs": Field(40, "int", _range(1, 100000)),
    # Per-step epochs, like torchdistill's stages: {step1_rgb: 15, step1_depth: 15}; other steps use train.epochs.
    # A new value replaces the whole mapping ({} clears it)
    "train.step_epochs": Field({}, "mapping", _step_epochs),
    "train.precision": Field("auto", "precision", _one_of(*PRECISIONS)),  # auto: bf16-mixed on GPU, 32 on CPU
    "train.devices": Field("auto", "devices"),
    "train.accelerator": Field("auto", "str", _one_of("auto", "cpu", "gpu", "cuda", "mps")),
    "train.strategy": Field("auto", "str", _one_of("auto", "ddp", "ddp_spawn", "ddp_fork", "ddp_notebook",
                                                   "ddp_find_unused_parameters_true", "fsdp", "single_device")),
    "train.num_nodes": Field(1, "int", _range(1, 100000)),
    "train.log_every_n_steps": Field(10, "int", _range(1)),
    "train.limit_train_batches": Field(1.0, "limit"),  # fraction in (0, 1] or a number of batches >= 1
    "train.progress": Field(True, "bool"),
    "train.compile": Field(False, "bool"),  # torch.compile the networks (in place, state dict keys unchanged)
    "train.cpu_keep_freed_memory": Field(True, "bool"),  # CPU runs: glibc reuses freed memory (faster steps)
    "distill.alpha": Field(0.5, "float", _range(0, 1)),
    "distill.lambda": Field(0.5, "float", _range(0, 1)),
    "distill.temperature": Field(10.0, "float", _range(0, lo_open=True)),
    "distill.t2_scaling": Field(False, "bool"),
    "distill.hall_layers": Field(["layer4"], "list", _layers),
    # mean (ours: per element) | per_video (eq. 3 as printed: squared L2 per video) | sum (released: whole batch)
    "distill.hall_reduction": Field("mean", "str", _one_of("mean", "per_video", "sum")),
    # λ_l of eq. 3 on every hallucination layer; the released code's recipe is sum reduction with 0.01
    # (configs/ntu60_xsub_released.yaml: 0.25 CE + 0.25 soft + 0.005 · summed squared differences)
    "distill.hall_weight": Field(1.0, "float", _range(0)),
    "steps": Field(["step1_rgb", "step1_depth", "step2", "step3", "step4"], "list", _steps(allow_empty=False)),
    "variants": Field([], "list", _steps(allow_empty=True)),
    "evaluate.noise_sigma2": Field([0.0, 1.0e-3, 1.0e-2, 1.0e-1, 1.0, 10.0], "list", _sigmas),
    "evaluate.void": Field(True, "bool"),
    # Table 3's noise: on the depth map before encoding (paper) or on the encoded 8-bit image (released code)
    "evaluate.noise_on": Field("depth", "str", _one_of("depth", "encoded")),
}


def _nested(flat: dict[str, Any]) -> dict:
    out: dict = {}
    for key, value in flat.items():
        cur = out
        *parents, last = key.split(".")
        for p in parents:
            cur = cur.setdefault(p, {})
        cur[last] = copy.deepcopy(value)
    return out


DEFAULTS: dict[str, Any] = _nested({k: f.default for k, f in SCHEMA.items()})


def _merge(base: dict, new: dict, prefix: str = "") -> dict:
    out = copy.deepcopy(base)
    for k, v in new.items():
        key = f"{prefix}{k}"
        if not isinstance(k, str) or k not in out:
            raise UserError(f"unknown config key {key!r}")
        if key in SCHEMA and SCHEMA[key].kind == "mapping":  # a value that is a mapping replaces the previous one
            out[k] = _coerce(key, SCHEMA[key], v)
        elif isinstance(out[k], dict):
            if not isinstance(v, dict):
                raise UserError(f"config key {key!r} must be a mapping")
            out[k] = _merge(out[k], v, key + ".")
        else:
            out[k] = _coerce(key, SCHEMA[key], v)
    return out


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
        raise UserError(f"config key {key!r} must be auto, a device count >= 1, -1 (all) or a list of device "
                        f"indices, got {v!r}")
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


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Defaults ← YAML file ← overrides, validated."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        cfg = _merge(cfg, read_yaml(path))
    for item in overrides:
        cfg = _merge(cfg, parse_override(item))
    validate(cfg)
    _check_combinations(cfg)
    return cfg


def _check_combinations(cfg: dict) -> None:
    """Keys that are valid alone but contradict each other."""
    t = cfg["train"]
    if t["schedule"] == "cosine" and t["lr_drop_epoch"]:
        raise UserError("config train.schedule=cosine and train.lr_drop_epoch="
                        f"{t['lr_drop_epoch']} contradict each other; set train.lr_drop_epoch=0 or "
                        "train.schedule=step")


def validate(cfg: dict) -> None:
    """Each field's constraint."""
    for key, field in SCHEMA.items():
        value = cfg
        for part in key.split("."):
            value = value[part]
        if value is not None and field.check is not None:
            problem = field.check(value)
            if problem:
                raise UserError(f"config {key}={value!r} {problem}")


def dump_config(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)

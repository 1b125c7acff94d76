"""YAML configs with dotted command-line overrides (``train.epochs=3``), validated against one declared schema.

Every key a user can set is a :class:`Field` in :data:`SCHEMA`, with its default, its kind and its constraint side
by side; :data:`DEFAULTS` is derived from it. An unknown key, a value of the wrong kind or out of range is a
:class:`~modistill.errors.UserError` (one line, exit code 2) raised before anything is written, never a silent
no-op or an error deep inside a library.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
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
    """One config key: its default, its kind, its constraint and what it does (the config reference is generated
    from these)."""

    default: Any
    kind: str  # int | float | bool | str | path | list | mapping | devices | precision | limit | workers
    check: Check | None = None
    nullable: bool = False
    help: str = ""


def _says(text: Callable[[], str]) -> Callable[[Check], Check]:
    """Attaches the constraint in words (``allowed``) that the config reference shows beside the key."""

    def mark(check: Check) -> Check:
        check.allowed = text  # type: ignore[attr-defined]
        return check

    return mark


KIND_ALLOWED = {
    "bool": "true | false",
    "path": "a file or folder",
    "workers": "auto, or 0 to 256",
    "devices": "auto, a count >= 1, -1 (all) or [indices]",
    "limit": "a fraction in (0, 1] or batches >= 1",
}


def allowed(field: Field) -> str:
    """A field's constraint in words, for the config reference."""
    if field.check is not None and hasattr(field.check, "allowed"):
        return field.check.allowed()
    return KIND_ALLOWED[field.kind]


def _range(lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> Check:
    words = " and ".join(
        ([f"{'>' if lo_open else '>='} {lo:g}"] if lo is not None else []) + ([f"<= {hi:g}"] if hi is not None else [])
    )

    @_says(lambda: words)
    def check(v):
        if lo is not None and (v <= lo if lo_open else v < lo):
            return f"must be {'>' if lo_open else '>='} {lo:g}"
        if hi is not None and v > hi:
            return f"must be <= {hi:g}"
        return None

    return check


def _one_of(*allowed) -> Check:
    return _says(lambda: " | ".join(map(str, allowed)))(
        lambda v: None if v in allowed else f"is not one of {list(allowed)}"
    )


def _one_of_names(names: Callable[[], Sequence[str]]) -> Check:
    """Like :func:`_one_of`, for names a heavier module owns (imported when a config is checked, not when this
    module is imported, so that the command line's parser stays light)."""

    @_says(lambda: " | ".join(names()))
    def check(v):
        return None if v in names() else f"is not one of {list(names())}"

    return check


def _privileged() -> tuple[str, ...]:
    from modistill.data.modalities import privileged_names

    return privileged_names()


def _archs() -> list[str]:
    from modistill.models.backbone import list_backbones

    return list_backbones()


def _samplings() -> tuple[str, ...]:
    from modistill.data.dataset import SAMPLINGS

    return SAMPLINGS


_arch = _one_of_names(_archs)
_sampling = _one_of_names(_samplings)


def _steps(allow_empty: bool) -> Check:
    @_says(lambda: "step names (`modistill train --help` lists them)" + ("" if allow_empty else ", at least one"))
    def check(v):
        from modistill.training.steps import STEPS

        if not v and not allow_empty:
            return "must name at least one step"
        bad = [s for s in v if s not in STEPS]
        return f"has unknown step(s) {bad}; known: {sorted(STEPS)}" if bad else None

    return check


@_says(lambda: "step name: epochs >= 1")
def _step_epochs(v: dict) -> str | None:
    from modistill.training.steps import STEPS

    bad = [k for k in v if k not in STEPS]
    if bad:
        return f"has unknown step(s) {bad}; known: {sorted(STEPS)}"
    wrong = [k for k, n in v.items() if not (isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 100000)]
    return f"must give each step a number of epochs >= 1 ({wrong[0]}: {v[wrong[0]]!r})" if wrong else None


def epochs_for(cfg: dict, step: str) -> int:
    """The epochs ``step`` trains for: its ``train.step_epochs`` entry; else, for a budget-matched control, the sum
    of the steps whose budget it matches, or every epoch the stream it matches has had; else ``train.epochs``."""
    from modistill.training.steps import STEPS, stream_epochs

    t = cfg["train"]
    if step in t["step_epochs"]:
        return int(t["step_epochs"][step])
    spec = STEPS.get(step)
    if spec is not None and spec.budget_of:
        return sum(epochs_for(cfg, s) for s in spec.budget_of)
    if spec is not None and spec.budget_stream is not None:
        src, stream = spec.budget_stream
        return stream_epochs(src, stream, lambda s: epochs_for(cfg, s), cfg["distill"]["hall_init"])
    return int(t["epochs"])


def describe_epochs(train: dict) -> str:
    """``6 epochs per step`` or ``6 epochs per step (step1_rgb 15, step1_depth 15)``, for reports."""
    n = train["epochs"]
    text = f"{n} epoch{'s' if n != 1 else ''} per step"
    extra = ", ".join(f"{k} {v}" for k, v in train.get("step_epochs", {}).items())
    text = f"{text} ({extra})" if extra else text
    p = train.get("patience", 0)
    return f"{text}, at most: early stopping after {p} epochs without a better validation accuracy" if p else text


def describe_init(pretrained: str | None) -> str:
    """How the streams started, for reports: the pretrained weights' name (ImageNet or Kinetics-400 weights, by
    backbone) or ``random``."""
    return f"`{pretrained}`" if pretrained else "random"


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
    for key, words in (
        ("weight_decay", "weight decay"),
        ("label_smoothing", "label smoothing"),
        ("ema_decay", "weight EMA"),
    ):
        if t.get(key):
            parts.append(f"{words} {t[key]:g}")
    if cfg.get("distill", {}).get("hall_init", "depth") != "depth":
        parts.append("hallucination stream initialised from the RGB stream")
    if d.get("crop_scale"):
        parts.append(f"random resized crop {d['crop_scale'][0]:g}-{d['crop_scale'][1]:g}")
    if d.get("train_sampling", "even") != "even":
        parts.append(f"{d['train_sampling']} frame sampling")
    val = d.get("validation")
    parts.append(
        "no validation split"
        if val is None
        else f"validation: {d['val_performers']} held-out performer{'s' if d['val_performers'] != 1 else ''}"
        if val == "performers"
        else "validation: the paper's split"
    )
    return ", ".join(parts)


@_says(lambda: "non-empty subset of layer1-layer4")
def _layers(v: list) -> str | None:
    known = ("layer1", "layer2", "layer3", "layer4")
    if not v:
        return f"must name at least one of {list(known)}"
    bad = [x for x in v if x not in known]
    return f"has unknown layer(s) {bad}; known: {list(known)}" if bad else None


@_says(lambda: "variances >= 0")
def _sigmas(v: list) -> str | None:
    ok = all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x >= 0 for x in v)
    return None if ok else "must be a list of noise variances >= 0"


@_says(lambda: "[min, max], 0 < min <= max <= 1")
def _crop_scale(v: list) -> str | None:
    ok = (
        len(v) == 2 and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v) and 0 < v[0] <= v[1] <= 1
    )
    return None if ok else "must be [min, max] with 0 < min <= max <= 1"


PRECISIONS = ("auto", "32", "32-true", "16", "16-mixed", "16-true", "bf16", "bf16-mixed", "bf16-true", "64", "64-true")
LOGGERS = ("csv", "tensorboard", "wandb", "mlflow")


@_says(lambda: "subset of " + ", ".join(LOGGERS) + ", with csv")
def _loggers(v: list) -> str | None:
    bad = [x for x in v if x not in LOGGERS]
    if bad:
        return f"has unknown logger(s) {bad}; known: {list(LOGGERS)}"
    if "csv" not in v:
        return "must keep csv: the run's own per-epoch record, which `evaluate` plots"
    return None


F = Field
SCHEMA: dict[str, Field] = {
    "name": F(
        "run",
        "str",
        _says(lambda: "non-empty, no /")(
            lambda v: None if v and "/" not in v else "must be a non-empty name without '/'"
        ),
        help="the run's name: the default run folder is runs/NAME",
    ),
    "seed": F(
        0,
        "int",
        _range(0, 2**32 - 1),
        help="seed of the weights' initialisation, the sampling and the augmentation (every step re-seeds with it)",
    ),
    "data.cache": F(None, "path", nullable=True, help="folder written by `modistill prepare` (required to train)"),
    "data.benchmark": F("ntu60", "str", _one_of("ntu60", "ntu120"), help="class list and official splits"),
    "data.protocol": F(
        "cross-subject",
        "str",
        _one_of("cross-subject", "cross-view", "cross-setup"),
        help="the benchmark's train/test protocol (cross-setup is NTU RGB+D 120's)",
    ),
    "data.validation": F(
        "paper",
        "str",
        _says(lambda: "paper | performers")(
            lambda v: None if v in ("paper", "performers") else "must be paper, performers or null (no split)"
        ),
        nullable=True,
        help="paper: the supplement's split (cross-subject: every training video of performer 1; cross-view: "
        "data.val_per_class videos per action drawn from all training performers); performers: the "
        "data.val_performers lowest-numbered training performers, whole performances held out (a larger split for "
        "small data); null: no split, the last epoch is kept",
    ),
    "data.val_per_class": F(
        31,
        "int",
        _range(1),
        help="videos per action in the paper's cross-view validation split (cross-subject holds out performer 1 "
        "whole and does not use it)",
    ),
    "data.val_performers": F(1, "int", _range(1), help="performers held out by data.validation=performers"),
    "data.exclude_list": F(
        None, "path", nullable=True, help="text file of sample names to leave out, e.g. NTU's missing-skeleton list"
    ),
    "data.frames": F(
        5, "int", _range(1, 256), help="frames per clip fed to the network (at most what the cache stores)"
    ),
    "data.train_sampling": F(
        "even",
        "str",
        _sampling,
        help="even (paper): evenly spaced stored frames; mixed (released code): 50 % random "
        "ordered frames; jitter: one random stored frame in each of data.frames equal "
        "segments (TSN). mixed and jitter need a cache storing more frames than "
        "data.frames",
    ),
    "data.flip": F(
        0.5,
        "float",
        _range(0, 1),
        help="probability of a horizontal flip of the whole clip in training (every modality alike)",
    ),
    "data.crop_scale": F(
        None,
        "list",
        _crop_scale,
        nullable=True,
        help="random resized crop in training with one box for every modality: [min, max] "
        "fraction of the frame's area (aspect ratio 3/4-4/3), resized back to the cache's "
        "size; null: off (paper)",
    ),
    "data.workers": F(
        "auto",
        "workers",
        help="DataLoader processes per training process; auto: the cores per device less one for the training "
        "loop, at most 8",
    ),
    "model.arch": F(
        "resnet50",
        "str",
        _arch,
        help="backbone of every stream, a name in the backbone registry: the paper's per-frame 2D ResNets (the "
        "paper: resnet50), torchvision's video ResNets and Video Swin, or a plug-in's",
    ),
    "model.width": F(
        64,
        "int",
        _range(1, 4096),
        help="channels of the first stage (64 is torchvision's; smaller for CPU demos, random init only)",
    ),
    "model.pretrained": F(
        None,
        "path",
        nullable=True,
        help="pretrained weights, offline: torchvision:IMAGENET1K_V2 (2D ResNets), torchvision:KINETICS400_V1 "
        "(video ResNets), hf-hub:timm/resnet50.a1_in1k (from the local caches) or a .pth/.safetensors file; null: "
        "random init",
    ),
    "model.temporal": F(
        True,
        "bool",
        help="the paper's 3x1x1 temporal convolutions after each stage (2D ResNets; video ResNets convolve over "
        "time themselves and add none)",
    ),
    "model.zero_init_residual": F(
        False,
        "bool",
        help="random init only: zero the last BN scale of every residual "
        "unit and the classifier (training starts at loss ln C)",
    ),
    "model.connection": F(
        "depth_to_rgb",
        "str",
        _one_of("depth_to_rgb", "rgb_to_depth", "none"),
        help="direction of the multiplicative cross-stream connections (none: two-stream late fusion)",
    ),
    "model.privileged": F(
        "depth",
        "str",
        _one_of_names(_privileged),
        help="the privileged modality: what the depth stream of the four steps sees in training (the cache must hold "
        "it: prepare --modalities). The deployed model reads RGB only either way",
    ),
    "train.optimizer": F("adam", "str", _one_of("adam", "sgd", "adamw"), help="optimizer of every step"),
    "train.lr": F(1.0e-3, "float", _range(0, lo_open=True), help="learning rate (the paper: 1e-3)"),
    "train.weight_decay": F(0.0, "float", _range(0), help="L2 (adam, sgd) or decoupled (adamw) weight decay"),
    "train.lr_drop_epoch": F(
        0,
        "int",
        _range(0),
        help="N > 0: multiply the rate by train.lr_drop_factor at epoch N (Fig. 4: 1e-3, then 1e-4); 0: constant",
    ),
    "train.lr_drop_factor": F(0.1, "float", _range(0, 1, lo_open=True), help="factor of train.lr_drop_epoch"),
    "train.schedule": F(
        "step",
        "str",
        _one_of("step", "cosine"),
        help="step: constant, or the one drop of train.lr_drop_epoch; cosine: from train.lr to 0 "
        "over the step's epochs",
    ),
    "train.warmup_epochs": F(
        0.0,
        "float",
        _range(0),
        help="linear warm-up of the rate over this many epochs (fractions allowed), per optimizer step",
    ),
    "train.label_smoothing": F(
        0.0, "float", _range(0, 0.5), help="label smoothing of every cross-entropy with the labels"
    ),
    "train.ema_decay": F(
        0.0,
        "float",
        _range(0, 0.99999),
        help="exponential moving average of the weights, updated every optimizer step; "
        "validation, selection, test, weights.pt and export use it. 0: off",
    ),
    "train.batch_size": F(5, "int", _range(1, 65536), help="videos per batch and device (the paper: 5)"),
    "train.epochs": F(40, "int", _range(1, 100000), help="epochs of every step without a train.step_epochs entry"),
    "train.patience": F(
        0,
        "int",
        _range(0, 100000),
        help="early stopping (Lightning's EarlyStopping on val/acc): a step ends once its validation accuracy has not "
        "improved for this many epochs, and its epochs (train.epochs, train.step_epochs) are its maximum; the epochs "
        "trained and the selected epoch are in its metrics. 0: off, every step trains all its epochs",
    ),
    "train.step_epochs": F(
        {},
        "mapping",
        _step_epochs,
        help="per-step epochs, like torchdistill's stages: {step1_rgb: 15}. A new value "
        "replaces the whole mapping ({} clears it)",
    ),
    "train.precision": F(
        "auto",
        "precision",
        _one_of(*PRECISIONS),
        help="Lightning precision; auto: bf16-mixed on a GPU, 32 on the CPU. *-true trains the "
        "weights in that type; export always writes float32",
    ),
    "train.devices": F("auto", "devices", help="auto, a device count, -1 (all) or a list of device indices"),
    "train.accelerator": F("auto", "str", _one_of("auto", "cpu", "gpu", "cuda", "mps"), help="Lightning accelerator"),
    "train.strategy": F(
        "auto",
        "str",
        _one_of(
            "auto",
            "ddp",
            "ddp_spawn",
            "ddp_fork",
            "ddp_notebook",
            "ddp_find_unused_parameters_true",
            "fsdp",
            "single_device",
        ),
        help="Lightning strategy (ddp for several GPUs)",
    ),
    "train.num_nodes": F(1, "int", _range(1, 100000), help="machines of a multi-node DDP run"),
    "train.log_every_n_steps": F(10, "int", _range(1), help="optimizer steps between two training-loss logs"),
    "train.loggers": F(
        ["csv", "tensorboard"],
        "list",
        _loggers,
        help="where metrics and hyperparameters go: csv (always: the report reads it), "
        "tensorboard, wandb, mlflow (MLFLOW_TRACKING_URI, else RUN/mlruns). A logger whose "
        "package is missing is refused",
    ),
    "train.limit_train_batches": F(
        1.0, "limit", help="a fraction in (0, 1] or a number of training batches per epoch (quick checks)"
    ),
    "train.progress": F(True, "bool", help="progress bars on stderr"),
    "train.compile": F(False, "bool", help="torch.compile the networks (in place, state dict keys unchanged)"),
    "train.cpu_keep_freed_memory": F(
        True,
        "bool",
        help="CPU runs of the command line: glibc keeps freed memory for reuse (faster steps; the process keeps its "
        "peak memory). The Python API leaves its caller's allocator alone",
    ),
    "distill.alpha": F(
        0.5,
        "float",
        _range(0, 1),
        help="eq. 7: weight α of the hallucination loss; 1 - α goes to the distillation loss of eq. 5",
    ),
    "distill.lambda": F(
        0.5, "float", _range(0, 1), help="eq. 5: weight λ of the soft teacher term; 1 - λ goes to the hard labels"
    ),
    "distill.temperature": F(
        10.0, "float", _range(0, lo_open=True), help="eq. 5: softmax temperature T of the soft targets"
    ),
    "distill.t2_scaling": F(
        False, "bool", help="multiply the soft term by T² (Hinton et al.; neither the paper nor its code does)"
    ),
    "distill.hall_layers": F(["layer4"], "list", _layers, help="stages whose feature maps eq. 3 compares"),
    "distill.hall_reduction": F(
        "mean",
        "str",
        _one_of("mean", "per_video", "sum"),
        help="eq. 3's reduction: mean (ours: per element), per_video (as printed: squared "
        "L2 per video) or sum (released code: whole batch)",
    ),
    "distill.hall_init": F(
        "depth",
        "str",
        _one_of("depth", "rgb"),
        help="where the hallucination stream starts (steps 3 and Hoffman et al.): depth (the paper and the released "
        "code: the teacher's depth stream); rgb: the RGB stream beside it, which already reads RGB (ours, for "
        "random-init demos whose step 3 is too short for a depth network to learn RGB)",
    ),
    "distill.hall_weight": F(
        1.0,
        "float",
        _range(0),
        help="λ_l of eq. 3 on every hallucination layer; the released recipe is sum reduction "
        "with 0.01 (configs/ntu60_xsub_released.yaml)",
    ),
    "steps": F(
        ["step1_rgb", "step1_depth", "step2", "step3", "step4"],
        "list",
        _steps(allow_empty=False),
        help="the steps to train, with the steps they start from",
    ),
    "variants": F(
        [],
        "list",
        _steps(allow_empty=True),
        help="extra rows of Table 2: ablations, the inverted study, Hoffman et al.",
    ),
    "evaluate.noise_sigma2": F(
        [0.0, 1.0e-3, 1.0e-2, 1.0e-1, 1.0, 10.0], "list", _sigmas, help="Table 3's noise variances on the test depth"
    ),
    "evaluate.void": F(True, "bool", help="Table 3's void row: all-zero depth"),
    "evaluate.noise_on": F(
        "depth",
        "str",
        _one_of("depth", "encoded"),
        help="Table 3's noise: on the depth map before encoding (paper) or on the encoded 8-bit image (released code)",
    ),
}
del F


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


def load_run_config(run_dir: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> dict:
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


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def reference_markdown() -> str:
    """The config reference (docs/config.md), one table per section, generated from :data:`SCHEMA` so that it
    cannot drift from the code; a test compares the committed file with this."""
    lines = [
        "# Config reference",
        "",
        "Every key a config file or a `key=value` override can set. Generated from the schema in "
        "`src/modistill/config.py` by `modistill config reference`; a test keeps this page equal to it.",
        "Unknown keys, values of the wrong kind and values out of range are refused in one line before "
        "anything is written. `modistill config show NAME [overrides]` prints a resolved config.",
        "",
    ]
    sections: dict[str, list[str]] = {}
    for key in SCHEMA:
        sections.setdefault(key.split(".")[0] if "." in key else "top level", []).append(key)
    for section, keys in sections.items():
        lines += [f"## {section}", "", "| key | default | kind | allowed | what it does |", "|---|---|---|---|---|"]
        for key in keys:
            f = SCHEMA[key]
            kind = f.kind + (", or null" if f.nullable else "")
            cells = [f"`{key}`", f"`{_shown(f.default)}`", kind, allowed(f), f.help]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)

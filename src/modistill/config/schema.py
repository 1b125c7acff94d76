"""Every config key, as fields of typed sections (``data``, ``model``, ``train``, ``distill``, ``evaluate``):
:data:`SCHEMA` by dotted name and :data:`DEFAULTS` are derived from them, and :class:`Config` reads a validated
config through them (``cfg.train.lr``)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from modistill.config.fields import (
    NO_EFFECT,
    PRECISIONS,
    RUN,
    STEP,
    WHEN_DISTILLING,
    WHEN_SET,
    WHEN_USED,
    WORLD_SIZE,
    Field,
    arch_check,
    crop_scale_check,
    in_range,
    layers_check,
    loggers_check,
    one_of,
    one_of_names,
    option,
    privileged_names,
    sampling_check,
    says,
    sigmas_check,
    step_epochs_check,
    step_patience_check,
    steps_check,
)
from modistill.errors import UserError

S = TypeVar("S")


@dataclass(frozen=True)
class DataSection:
    """``data.*``: the cache a run trains on and how clips are drawn from it."""

    cache: str | None = option(
        None,
        "path",
        nullable=True,
        help="folder written by `modistill prepare` (required to train)",
        role=RUN,
    )
    benchmark: str = option("ntu60", "str", one_of("ntu60", "ntu120"), help="class list and official splits", role=STEP)
    protocol: str = option(
        "cross-subject",
        "str",
        one_of("cross-subject", "cross-view", "cross-setup"),
        help="the benchmark's train/test protocol (cross-setup is NTU RGB+D 120's)",
        role=STEP,
    )
    validation: str | None = option(
        "paper",
        "str",
        says(lambda: "paper | performers")(
            lambda v: None if v in ("paper", "performers") else "must be paper, performers or null (no split)"
        ),
        nullable=True,
        help="paper: the supplement's split (cross-subject: every training video of performer 1; cross-view: "
        "data.val_per_class videos per action drawn from all training performers); performers: the "
        "data.val_performers lowest-numbered training performers, whole performances held out (a larger split for "
        "small data); null: no split, the last epoch is kept",
        role=STEP,
    )
    val_per_class: int = option(
        31,
        "int",
        in_range(1),
        help="videos per action in the paper's cross-view validation split (cross-subject holds out performer 1 "
        "whole and does not use it)",
        role=STEP,
    )
    val_performers: int = option(
        1,
        "int",
        in_range(1),
        help="performers held out by data.validation=performers",
        role=WHEN_SET,
    )
    exclude_list: str | None = option(
        None,
        "path",
        nullable=True,
        help="text file of sample names to leave out, e.g. NTU's missing-skeleton list",
        role=STEP,
    )
    frames: int = option(
        5,
        "int",
        in_range(1, 256),
        help="frames per clip fed to the network (at most what the cache stores)",
        role=STEP,
    )
    train_sampling: str = option(
        "even",
        "str",
        sampling_check,
        help="even (paper): evenly spaced stored frames; mixed (released code): 50 % random "
        "ordered frames; jitter: one random stored frame in each of data.frames equal "
        "segments (TSN). mixed and jitter need a cache storing more frames than "
        "data.frames",
        role=STEP,
    )
    flip: float = option(
        0.5,
        "float",
        in_range(0, 1),
        help="probability of a horizontal flip of the whole clip in training (every modality alike)",
        role=STEP,
    )
    crop_scale: list | None = option(
        None,
        "list",
        crop_scale_check,
        nullable=True,
        help="random resized crop in training with one box for every modality: [min, max] "
        "fraction of the frame's area (aspect ratio 3/4-4/3), resized back to the cache's "
        "size; null: off (paper)",
        role=WHEN_SET,
    )
    workers: int | str = option(
        "auto",
        "workers",
        help="DataLoader processes per training process; auto: the cores per device less one for the training "
        "loop, at most 8",
        role=NO_EFFECT,
    )

    def cache_dir(self) -> str:
        """``cache``, which training and evaluation need: one line when it is not set."""
        if not self.cache:
            raise UserError("config data.cache is not set (the folder written by `modistill prepare`)")
        return self.cache


@dataclass(frozen=True)
class ModelSection:
    """``model.*``: the streams' backbone, their start, their connections and the privileged modality."""

    arch: str = option(
        "resnet50",
        "str",
        arch_check,
        help="backbone of every stream, a name in the backbone registry: the paper's per-frame 2D ResNets (the "
        "paper: resnet50), torchvision's video ResNets and Video Swin, or a plug-in's",
        role=STEP,
    )
    width: int = option(
        64,
        "int",
        in_range(1, 4096),
        help="channels of the first stage (64 is torchvision's; smaller for CPU demos, random init only)",
        role=STEP,
    )
    pretrained: str | None = option(
        None,
        "path",
        nullable=True,
        help="pretrained weights, offline: torchvision:IMAGENET1K_V2 (2D ResNets), torchvision:KINETICS400_V1 "
        "(video ResNets), hf-hub:timm/resnet50.a1_in1k (from the local caches) or a .pth/.safetensors file; null: "
        "random init",
        role=WHEN_USED,
    )
    temporal: bool = option(
        True,
        "bool",
        help="the paper's 3x1x1 temporal convolutions after each stage (2D ResNets; video ResNets convolve over "
        "time themselves and add none)",
        role=STEP,
    )
    zero_init_residual: bool = option(
        False,
        "bool",
        help="random init only: zero the last BN scale of every residual "
        "unit and the classifier (training starts at loss ln C)",
        role=WHEN_SET,
    )
    connection: str = option(
        "depth_to_rgb",
        "str",
        one_of("depth_to_rgb", "rgb_to_depth", "none"),
        help="direction of the multiplicative cross-stream connections (none: two-stream late fusion)",
        role=WHEN_USED,
    )
    privileged: str = option(
        "depth",
        "str",
        one_of_names(privileged_names),
        help="the privileged modality: what the privileged stream of the four steps sees in training (the cache "
        "must hold it: prepare --modalities). The deployed model reads RGB only either way",
        role=WHEN_USED,
    )


@dataclass(frozen=True)
class TrainSection:
    """``train.*``: the optimisation recipe of every step, and the hardware it runs on."""

    optimizer: str = option("adam", "str", one_of("adam", "sgd", "adamw"), help="optimizer of every step", role=STEP)
    lr: float = option(1.0e-3, "float", in_range(0, lo_open=True), help="learning rate (the paper: 1e-3)", role=STEP)
    weight_decay: float = option(
        0.0,
        "float",
        in_range(0),
        help="L2 (adam, sgd) or decoupled (adamw) weight decay",
        role=STEP,
    )
    lr_drop_epoch: int = option(
        0,
        "int",
        in_range(0),
        help="N > 0: multiply the rate by train.lr_drop_factor at epoch N (Fig. 4: 1e-3, then 1e-4); 0: constant",
        role=STEP,
    )
    lr_drop_factor: float = option(
        0.1,
        "float",
        in_range(0, 1, lo_open=True),
        help="factor of train.lr_drop_epoch",
        role=STEP,
    )
    schedule: str = option(
        "step",
        "str",
        one_of("step", "cosine"),
        help="step: constant, or the one drop of train.lr_drop_epoch; cosine: from train.lr to 0 "
        "over the step's epochs",
        role=WHEN_SET,
    )
    warmup_epochs: float = option(
        0.0,
        "float",
        in_range(0),
        help="linear warm-up of the rate over this many epochs (fractions allowed), per optimizer step",
        role=WHEN_SET,
    )
    label_smoothing: float = option(
        0.0,
        "float",
        in_range(0, 0.5),
        help="label smoothing of every cross-entropy with the labels",
        role=WHEN_SET,
    )
    ema_decay: float = option(
        0.0,
        "float",
        in_range(0, 0.99999),
        help="exponential moving average of the weights, updated every optimizer step; "
        "validation, selection, test, weights.pt and export use it. 0: off",
        role=WHEN_SET,
    )
    batch_size: int = option(5, "int", in_range(1, 65536), help="videos per batch and device (the paper: 5)", role=STEP)
    epochs: int = option(
        40,
        "int",
        in_range(1, 100000),
        help="epochs of every step without a train.step_epochs entry",
        role=STEP,
    )
    patience: int = option(
        0,
        "int",
        in_range(0, 100000),
        help="early stopping (Lightning's EarlyStopping on val/acc): a step ends once its validation accuracy has not "
        "improved for this many epochs, and its epochs (train.epochs, train.step_epochs) are its maximum; the epochs "
        "trained and the selected epoch are in its metrics. 0: off, every step trains all its epochs",
        role=WHEN_USED,
    )
    step_patience: dict = option(
        {},
        "mapping",
        step_patience_check,
        help="per-step patience, like train.step_epochs: {step1_rgb: 10} (0: that step trains all its epochs); a "
        "step without an entry uses train.patience. A new value replaces the whole mapping",
        role=WHEN_USED,
    )
    step_epochs: dict = option(
        {},
        "mapping",
        step_epochs_check,
        help="per-step epochs, like torchdistill's stages: {step1_rgb: 15}. A new value "
        "replaces the whole mapping ({} clears it)",
        role=WHEN_USED,
    )
    precision: str = option(
        "auto",
        "precision",
        one_of(*PRECISIONS),
        help="Lightning precision; auto: bf16-mixed on a GPU, 32 on the CPU. *-true trains the "
        "weights in that type; export always writes float32",
        role=STEP,
    )
    devices: int | str | list[int] = option(
        "auto",
        "devices",
        help="auto, a device count, -1 (all) or a list of device indices",
        role=WORLD_SIZE,
    )
    accelerator: str = option(
        "auto",
        "str",
        one_of("auto", "cpu", "gpu", "cuda", "mps"),
        help="Lightning accelerator",
        role=NO_EFFECT,
    )
    strategy: str = option(
        "auto",
        "str",
        one_of(
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
        role=NO_EFFECT,
    )
    num_nodes: int = option(1, "int", in_range(1, 100000), help="machines of a multi-node DDP run", role=WORLD_SIZE)
    log_every_n_steps: int = option(
        10,
        "int",
        in_range(1),
        help="optimizer steps between two training-loss logs",
        role=NO_EFFECT,
    )
    loggers: list = option(
        ["csv", "tensorboard"],
        "list",
        loggers_check,
        help="where metrics and hyperparameters go: csv (always: the report reads it), "
        "tensorboard, wandb, mlflow (MLFLOW_TRACKING_URI, else RUN/mlruns). A logger whose "
        "package is missing is refused",
        role=NO_EFFECT,
    )
    limit_train_batches: int | float = option(
        1.0,
        "limit",
        help="a fraction in (0, 1] or a number of training batches per epoch (quick checks)",
        role=STEP,
    )
    progress: bool = option(True, "bool", help="progress bars on stderr", role=NO_EFFECT)
    compile: bool = option(
        False,
        "bool",
        help="torch.compile the networks (in place, state dict keys unchanged)",
        role=NO_EFFECT,
    )
    cpu_keep_freed_memory: bool = option(
        True,
        "bool",
        help="CPU runs of the command line: glibc keeps freed memory for reuse (faster steps; the process keeps its "
        "peak memory). The Python API leaves its caller's allocator alone",
        role=NO_EFFECT,
    )


@dataclass(frozen=True)
class DistillSection:
    """``distill.*``: the losses of step 3 and the Hoffman et al. baseline (eq. 3, 5-6, 7)."""

    alpha: float = option(
        0.5,
        "float",
        in_range(0, 1),
        help="eq. 7: weight α of the hallucination loss; 1 - α goes to the distillation loss of eq. 5",
        role=WHEN_DISTILLING,
    )
    lambda_: float = option(
        0.5,
        "float",
        in_range(0, 1),
        help="eq. 5: weight λ of the soft teacher term; 1 - λ goes to the hard labels",
        name="lambda",
        role=WHEN_DISTILLING,
    )
    temperature: float = option(
        10.0,
        "float",
        in_range(0, lo_open=True),
        help="eq. 5: softmax temperature T of the soft targets",
        role=WHEN_DISTILLING,
    )
    t2_scaling: bool = option(
        False,
        "bool",
        help="multiply the soft term by T² (Hinton et al.; neither the paper nor its code does)",
        role=WHEN_DISTILLING,
    )
    hall_layers: list = option(
        ["layer4"],
        "list",
        layers_check,
        help="stages whose feature maps eq. 3 compares",
        role=WHEN_DISTILLING,
    )
    hall_reduction: str = option(
        "mean",
        "str",
        one_of("mean", "per_video", "sum"),
        help="eq. 3's reduction: mean (ours: per element), per_video (as printed: squared "
        "L2 per video) or sum (released code: whole batch)",
        role=WHEN_DISTILLING,
    )
    hall_init: str = option(
        "depth",
        "str",
        one_of("depth", "rgb"),
        help="where the hallucination stream starts (steps 3 and Hoffman et al.): depth (the paper and the released "
        "code: the teacher's depth stream); rgb: the RGB stream beside it, which already reads RGB (ours, for "
        "random-init demos whose step 3 is too short for a depth network to learn RGB)",
        role=WHEN_USED,
    )
    hall_weight: float = option(
        1.0,
        "float",
        in_range(0),
        help="λ_l of eq. 3 on every hallucination layer; the released recipe is sum reduction "
        "with 0.01 (configs/ntu60_xsub_released.yaml)",
        role=WHEN_DISTILLING,
    )


@dataclass(frozen=True)
class EvaluateSection:
    """``evaluate.*``: Table 3's noise."""

    noise_sigma2: list = option(
        [0.0, 1.0e-3, 1.0e-2, 1.0e-1, 1.0, 10.0],
        "list",
        sigmas_check,
        help="Table 3's noise variances on the test depth",
        role=RUN,
    )
    void: bool = option(True, "bool", help="Table 3's void row: all-zero depth", role=RUN)
    noise_on: str = option(
        "depth",
        "str",
        one_of("depth", "encoded"),
        help="Table 3's noise: on the depth map before encoding (paper) or on the encoded 8-bit image (released code)",
        role=RUN,
    )


@dataclass(frozen=True)
class Schema:
    """Every key of a config, in ``config.yaml``'s order: the top-level ones and the sections."""

    name: str = option(
        "run",
        "str",
        says(lambda: "non-empty, no /")(
            lambda v: None if v and "/" not in v else "must be a non-empty name without '/'"
        ),
        help="the run's name: the default run folder is runs/NAME",
        role=RUN,
    )
    seed: int = option(
        0,
        "int",
        in_range(0, 2**32 - 1),
        help="seed of the weights' initialisation, the sampling and the augmentation (every step re-seeds with it)",
        role=STEP,
    )
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainSection = field(default_factory=TrainSection)
    distill: DistillSection = field(default_factory=DistillSection)
    steps: list = option(
        ["step1_rgb", "step1_depth", "step2", "step3", "step4"],
        "list",
        steps_check(allow_empty=False),
        help="the steps to train, with the steps they start from",
        role=RUN,
    )
    variants: list = option(
        [],
        "list",
        steps_check(allow_empty=True),
        help="extra rows of Table 2: ablations, the inverted study, Hoffman et al.",
        role=RUN,
    )
    evaluate: EvaluateSection = field(default_factory=EvaluateSection)


SECTIONS: dict[str, type] = {
    "data": DataSection,
    "model": ModelSection,
    "train": TrainSection,
    "distill": DistillSection,
    "evaluate": EvaluateSection,
}


def _schema(cls: type, prefix: str = "") -> dict[str, Field]:
    out: dict[str, Field] = {}
    for f in fields(cls):
        spec = f.metadata.get("spec")
        if spec is None:  # a section
            out |= _schema(SECTIONS[f.name], f"{prefix}{f.name}.")
        else:
            out[prefix + (spec.name or f.name)] = spec
    return out


SCHEMA: dict[str, Field] = _schema(Schema)  # every key by its dotted name


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


def _section(cls: type[S], values: dict) -> S:
    """A section's typed view of its mapping (keys that are not Python names, ``lambda``, under their field's)."""
    by_key = {(f.metadata["spec"].name or f.name): f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{by_key[k]: v for k, v in values.items()})


class Config(dict):
    """A validated config: the nested mapping ``config.yaml`` holds, read through typed sections (``cfg.train.lr``)
    so that a misspelt key is a type error, found before it runs."""

    @property
    def name(self) -> str:
        return self["name"]

    @property
    def seed(self) -> int:
        return self["seed"]

    @property
    def steps(self) -> list[str]:
        return self["steps"]

    @property
    def variants(self) -> list[str]:
        return self["variants"]

    @property
    def data(self) -> DataSection:
        return _section(DataSection, self["data"])

    @property
    def model(self) -> ModelSection:
        return _section(ModelSection, self["model"])

    @property
    def train(self) -> TrainSection:
        return _section(TrainSection, self["train"])

    @property
    def distill(self) -> DistillSection:
        return _section(DistillSection, self["distill"])

    @property
    def evaluate(self) -> EvaluateSection:
        return _section(EvaluateSection, self["evaluate"])

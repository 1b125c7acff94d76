"""What a config asks of each step, in numbers (its epochs) and in words (for reports)."""

from __future__ import annotations

from modistill.config.schema import Config, TrainSection


def epochs_for(cfg: Config, step: str) -> int:
    """The epochs ``step`` trains for: its ``train.step_epochs`` entry; else, for a budget-matched control, the sum
    of the steps whose budget it matches, or every epoch the stream it matches has had less those of its own starting
    point; else ``train.epochs``."""
    from modistill.training.steps import STEPS, init_for, stream_epochs

    t = cfg.train
    if step in t.step_epochs:
        return int(t.step_epochs[step])
    spec = STEPS.get(step)
    if spec is not None and spec.budget_of:
        return sum(epochs_for(cfg, s) for s in spec.budget_of)
    if spec is not None and spec.budget_stream is not None:  # less what its own starting point has had
        hall_init = cfg.distill.hall_init

        def per_step(s: str) -> int:
            return epochs_for(cfg, s)

        start = init_for(spec, hall_init)[spec.streams[0]]
        had = 0 if start is None else stream_epochs(start[0], start[1], per_step, hall_init)
        return stream_epochs(*spec.budget_stream, per_step, hall_init) - had
    return int(t.epochs)


def patience_for(cfg: Config, step: str) -> int:
    """The early-stopping patience of ``step``: its ``train.step_patience`` entry, else ``train.patience`` (0: off)."""
    t = cfg.train
    return int(t.step_patience.get(step, t.patience))


def describe_epochs(train: TrainSection) -> str:
    """``6 epochs per step`` or ``6 epochs per step (step1_rgb 15, step1_depth 15)``, for reports."""
    n = train.epochs
    text = f"{n} epoch{'s' if n != 1 else ''} per step"
    extra = ", ".join(f"{k} {v}" for k, v in train.step_epochs.items())
    text = f"{text} ({extra})" if extra else text
    p, per = train.patience, ", ".join(f"{k} {v}" for k, v in train.step_patience.items())
    if not (p or any(train.step_patience.values())):
        return text
    return f"{text}, at most: early stopping after {p} epochs without a better validation accuracy" + (
        f" ({per})" if per else ""
    )


def describe_init(pretrained: str | None) -> str:
    """How the streams started, for reports: the pretrained weights' name (ImageNet or Kinetics-400 weights, by
    backbone) or ``random``."""
    return f"`{pretrained}`" if pretrained else "random"


def describe_recipe(cfg: Config) -> str:
    """The optimiser, learning rate and batch, what the run adds to the paper's recipe (schedule, warm-up,
    regularisation, EMA, augmentation) and the validation split, in words, for reports."""
    t, d = cfg.train, cfg.data
    parts = [f"{t.optimizer} {t.lr:g}, batch {t.batch_size}"]
    if t.schedule == "cosine":
        parts.append("cosine schedule")
    elif t.lr_drop_epoch:
        parts.append(f"×{t.lr_drop_factor:g} at epoch {t.lr_drop_epoch}")
    if t.warmup_epochs:
        parts.append(f"{t.warmup_epochs:g} warm-up epoch{'s' if t.warmup_epochs != 1 else ''}")
    for value, words in (
        (t.weight_decay, "weight decay"),
        (t.label_smoothing, "label smoothing"),
        (t.ema_decay, "weight EMA"),
    ):
        if value:
            parts.append(f"{words} {value:g}")
    if cfg.distill.hall_init != "depth":
        parts.append("hallucination stream initialised from the RGB stream")
    if d.crop_scale:
        parts.append(f"random resized crop {d.crop_scale[0]:g}-{d.crop_scale[1]:g}")
    if d.train_sampling != "even":
        parts.append(f"{d.train_sampling} frame sampling")
    parts.append(
        "no validation split"
        if d.validation is None
        else f"validation: {d.val_performers} held-out performer{'s' if d.val_performers != 1 else ''}"
        if d.validation == "performers"
        else "validation: the paper's split"
    )
    return ", ".join(parts)

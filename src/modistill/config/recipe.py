"""What a config asks of each step, in numbers (its epochs) and in words (for reports)."""

from __future__ import annotations

from modistill.config.schema import Config, TrainSection


def epochs_for(cfg: Config, step: str) -> int:
    """The epochs ``step`` trains for: its ``train.step_epochs`` entry; else, for a budget-matched control, the sum
    of the steps whose budget it matches, or every epoch the stream it matches has had; else ``train.epochs``."""
    from modistill.training.steps import STEPS, stream_epochs

    t = cfg.train
    if step in t.step_epochs:
        return int(t.step_epochs[step])
    spec = STEPS.get(step)
    if spec is not None and spec.budget_of:
        return sum(epochs_for(cfg, s) for s in spec.budget_of)
    if spec is not None and spec.budget_stream is not None:
        src, stream = spec.budget_stream
        return stream_epochs(src, stream, lambda s: epochs_for(cfg, s), cfg.distill.hall_init)
    return int(t.epochs)


def describe_epochs(train: TrainSection) -> str:
    """``6 epochs per step`` or ``6 epochs per step (step1_rgb 15, step1_depth 15)``, for reports."""
    n = train.epochs
    text = f"{n} epoch{'s' if n != 1 else ''} per step"
    extra = ", ".join(f"{k} {v}" for k, v in train.step_epochs.items())
    text = f"{text} ({extra})" if extra else text
    p = train.patience
    return f"{text}, at most: early stopping after {p} epochs without a better validation accuracy" if p else text


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

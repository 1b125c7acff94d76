"""The learning rate over a step, as a multiplier of ``train.lr`` per optimizer step: an optional linear warm-up,
then constant, one drop (Fig. 4's 1e-3 → 1e-4) or a cosine decay to zero. One function of the step index, so a
resumed step (the scheduler's state is in its checkpoints) continues on the same curve."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modistill.config import TrainSection


def lr_factor(
    schedule: str,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: float = 0.0,
    drop_epoch: int = 0,
    drop_factor: float = 0.1,
) -> Callable[[int], float]:
    """``f(i)``: the factor on ``train.lr`` at optimizer step ``i`` (0-based)."""
    per_epoch = max(1, steps_per_epoch)
    total = max(1, epochs * per_epoch)
    warm = min(total, round(warmup_epochs * per_epoch))

    def factor(i: int) -> float:
        f = (i + 1) / warm if i < warm else 1.0
        if schedule == "cosine":
            progress = min(1.0, max(0, i - warm) / max(1, total - warm))
            return f * 0.5 * (1 + math.cos(math.pi * progress))
        if drop_epoch and i // per_epoch >= drop_epoch:
            return f * drop_factor
        return f

    return factor


def is_constant(train: TrainSection) -> bool:
    """Whether ``train`` asks for a constant rate (the optimizer then runs without a scheduler)."""
    return train.schedule == "step" and not train.lr_drop_epoch and not train.warmup_epochs

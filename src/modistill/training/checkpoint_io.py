"""Checkpoint writes that a kill cannot corrupt: Lightning's torch writer into a temp file, then an atomic
rename over the previous checkpoint (Lightning itself truncates and rewrites the file in place)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from modistill.utils.io import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        write = super().save_checkpoint
        atomic_write(path, lambda tmp: write(checkpoint, tmp, storage_options))

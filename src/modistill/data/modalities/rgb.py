"""RGB: the frames the deployed model sees, stored as they were cut and resized."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modistill.data.modalities.registry import Material, Modality, register

if TYPE_CHECKING:
    import numpy as np


def _encode(m: Material) -> tuple[np.ndarray, str | None]:
    return m.rgb, None


RGB = register(Modality("rgb", "RGB", "RGB uint8", _encode))

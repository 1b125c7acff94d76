"""A modality from one module, as a user would write it: an encoder, its settings, one ``register`` call; nothing
else in modistill is edited. Importing this module registers ``depth_edges``: the depth map's edges (Sobel
gradient magnitude in millimetres per pixel), which shows the body's outline and nothing of its texture."""

from __future__ import annotations

import cv2
import numpy as np

from modistill.data.modalities import Material, Modality, register

SCALE_MM = 200.0  # a gradient of this many millimetres per pixel is white


def edges(depth_mm: np.ndarray) -> np.ndarray:
    """uint16 [H, W] millimetres → uint8 [H, W, 3]: the gradient magnitude, missing depth (0) read as none."""
    d = depth_mm.astype(np.float32)
    gx, gy = cv2.Sobel(d, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(d, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.sqrt(gx * gx + gy * gy) / 8.0  # the 3x3 Sobel weighs a unit step 8 times
    mag[cv2.dilate((d == 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0] = 0
    level = np.clip(mag * (255.0 / SCALE_MM), 0, 255).round().astype(np.uint8)
    return np.repeat(level[..., None], 3, axis=2)


def _encode(m: Material) -> tuple[np.ndarray, str | None]:
    m.need("depth", "depth_edges")
    assert m.depth is not None
    return np.stack([edges(d) for d in m.depth]), None


def _settings(options, reader: str) -> dict:
    return {"operator": "sobel 3x3 magnitude", "scale_mm": SCALE_MM}


DEPTH_EDGES = register(
    Modality("depth_edges", "Depth edges", "depth gradient magnitude uint8 (grey)", _encode, settings=_settings)
)

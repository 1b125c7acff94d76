"""What a plain RGB camera allows at deploy time: no depth, no skeleton. A video is sampled exactly like in
training (``stored_frames`` evenly spaced frames as ``prepare`` stores them, then ``frames`` evenly spaced among
those, the paper's test sampling), cropped to the bundle's RGB region (the median of
the skeleton-aligned training crops, as fractions of the frame, so the person appears at the scale the model
learned) and resized to ``size`` x ``size`` with the same warp as ``prepare``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modistill.data import video
from modistill.data.encode import crop_resize


def camera_clip(
    path: str | Path, frames: int, size: int, crop: list[float] | tuple[float, ...], stored_frames: int | None = None
) -> np.ndarray:
    """uint8 ``[frames, 3, size, size]`` RGB from a raw video file (any container/codec PyAV reads)."""
    stored = stored_frames or frames
    imgs, _, _ = video.read_rgb_evenly(path, stored)
    imgs = [imgs[i] for i in video.evenly_spaced(stored, frames)]
    h, w = imgs[0].shape[:2]
    box = (crop[0] * w, crop[1] * h, crop[2] * w, crop[3] * h)
    return np.stack([crop_resize(im, box, size) for im in imgs]).transpose(0, 3, 1, 2)

"""What a plain RGB camera allows at deploy time: no depth, no skeleton. A video is sampled exactly like in
training (``stored_frames`` evenly spaced frames as ``prepare`` stores them, then ``frames`` evenly spaced among
those, the paper's test sampling), cropped to the bundle's RGB region (the median of
the skeleton-aligned training crops, as fractions of the frame, so the person appears at the scale the model
learned), or, for a model trained on person crops, to its person box by the same rule as in training; then
resized to ``size`` x ``size`` with the same warp as ``prepare``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modistill.data import video
from modistill.data.encode import crop_resize
from modistill.data.person_box import beyond_frame, square_box
from modistill.errors import DataError


def sampled_frames(path: str | Path, frames: int, stored_frames: int | None = None) -> list[np.ndarray]:
    """The RGB frames (H, W, 3 uint8) the model sees of a raw video, by the training sampling."""
    stored = stored_frames or frames
    imgs, _, _ = video.read_rgb_evenly(path, stored)
    return [imgs[i] for i in video.evenly_spaced(stored, frames)]


def crop_clip(imgs: Sequence[np.ndarray], box: Sequence[float], size: int) -> np.ndarray:
    """uint8 ``[frames, 3, size, size]``: each frame cropped to ``box`` (pixels) and resized as in ``prepare``."""
    b = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
    return np.stack([crop_resize(im, b, size) for im in imgs]).transpose(0, 3, 1, 2)


def clip_box(
    path: str | Path,
    crop: list[float] | tuple[float, ...] | dict,
    frame: tuple[int, int],
    person: Sequence[float] | None = None,
) -> tuple[float, float, float, float]:
    """The crop (pixels) a model takes of a ``frame`` of (W, H): its fixed box (fractions of the frame), or for the
    person rule (``{"rule": "person", ...}``) the square around the tight ``person`` box. A person-crop video
    without a box, or whose box leaves no crop in the frame, fails like an unreadable one."""
    w, h = frame
    if not isinstance(crop, dict):
        return crop[0] * w, crop[1] * h, crop[2] * w, crop[3] * h
    if person is None:
        raise DataError(path, "no person box for this video (this model crops around the person: --boxes)")
    if beyond_frame(np.asarray(person), frame).any():  # not a person partly out of view: a wrong file, or units
        raise DataError(path, f"its person box {[round(v) for v in person]} is impossible for the {w}x{h} frame")
    sq = square_box(person, frame, crop["padding"])
    if sq is None:
        raise DataError(path, f"its person box {[round(v) for v in person]} leaves no crop in the {w}x{h} frame")
    return sq


def camera_clip(
    path: str | Path,
    frames: int,
    size: int,
    crop: list[float] | tuple[float, ...] | dict,
    stored_frames: int | None = None,
    person: Sequence[float] | None = None,
) -> np.ndarray:
    """uint8 ``[frames, 3, size, size]`` RGB from a raw video file (any container/codec PyAV reads), cropped by
    :func:`clip_box`."""
    imgs = sampled_frames(path, frames, stored_frames)
    h, w = imgs[0].shape[:2]
    return crop_clip(imgs, clip_box(path, crop, (w, h), person), size)

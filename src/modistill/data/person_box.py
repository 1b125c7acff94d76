"""Person-centred crops: one square box per video around every person, the same rule in training and deployment.

The rule follows MMAction2's ``PoseCompact`` (PoseC3D, RGBPoseConv3D): the tight box around all points (skeleton
joints of every body over every frame in training; a detector's or the user's person boxes at deploy time) grows
to a square of side × (1 + ``padding``) around its centre. Unlike PoseCompact, which pads the image with black
where the square leaves it, the square is capped at the frame's shorter side and moved inside the frame: a person
at NTU's distances fills most of the frame's height, and black bands would be a large part of every training
image. Only where the tight box itself is longer than that square on an axis (a person wider than the frame is
high) does the crop take the tight box's extent there, so that no joint inside the frame is cut off; the crop is
then not square, and the resize stretches the person. ``crop_policy: fov`` (the paper's crop, the default) does
not use this.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from modistill.data.ntu import Body

PERSON_PADDING = 0.25  # PoseCompact's default
MIN_SIDE_PX = 10.0  # PoseCompact skips boxes under 10 px: such a box holds no usable person
CROP_POLICIES = ("fov", "person")
# What a person-crop model's metadata names for finding the box from RGB alone (modistill.deploy.detector).
DEFAULT_DETECTOR = "torchvision:FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1"
DETECTOR_SCORE = 0.5

PERSON_RULE = (
    "s = min(max(x1 - x0, y1 - y0) * (1 + padding), min(W, H)); per axis the length max(s, the tight box's "
    "length there) capped at the frame's extent, centred on the tight box and moved inside the W x H frame"
)

Box = tuple[float, float, float, float]


def beyond_frame(points: np.ndarray, frame: tuple[int, int]) -> np.ndarray:
    """Per row of ``points`` (N, 2) in pixels of a (W, H) frame: not finite, or more than a frame's size outside the
    frame. No camera produces such a point; a person partly out of view stays within that margin."""
    w, h = frame
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    inside = np.isfinite(pts) & (pts >= (-w, -h)) & (pts <= (2 * w, 2 * h))
    return np.asarray(~inside.all(1))


def tight_box(points: np.ndarray) -> Box | None:
    """The smallest box (x0, y0, x1, y1) around the finite rows of ``points`` (N, 2); None without any."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(1)]
    if len(pts) == 0:
        return None
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


def union_box(boxes: Iterable[Sequence[float]]) -> Box | None:
    """The box around several boxes (people, frames); None when there are none."""
    arr = np.asarray([list(b) for b in boxes], np.float64).reshape(-1, 4)
    arr = arr[np.isfinite(arr).all(1)]
    if len(arr) == 0:
        return None
    return float(arr[:, 0].min()), float(arr[:, 1].min()), float(arr[:, 2].max()), float(arr[:, 3].max())


def square_box(box: Sequence[float], frame: tuple[int, int], padding: float = PERSON_PADDING) -> Box | None:
    """The crop for a tight person ``box`` in a ``frame`` of (W, H) pixels (the module's rule), or None when the
    box lies outside the frame or its padded side is under ``MIN_SIDE_PX``."""
    w, h = frame
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > 0 and y1 > 0 and x0 < w and y0 < h and x1 >= x0 and y1 >= y0):
        return None
    side = max(x1 - x0, y1 - y0) * (1.0 + padding)
    if side < MIN_SIDE_PX:
        return None
    side = min(side, float(min(w, h)))
    out = []
    for lo, hi, extent in ((x0, x1, w), (y0, y1, h)):
        length = min(max(side, min(hi, extent) - max(lo, 0.0)), float(extent))
        start = min(max(0.5 * (lo + hi) - 0.5 * length, 0.0), extent - length)
        out.append((start, start + length))
    (bx0, bx1), (by0, by1) = out
    return bx0, by0, bx1, by1


def median_box(boxes: Sequence[Sequence[float]]) -> Box:
    """Per-coordinate median of boxes given as fractions of their frames (a camera's fallback box)."""
    arr = np.median(np.asarray(boxes, np.float64).reshape(-1, 4), axis=0)
    return float(arr[0]), float(arr[1]), float(arr[2]), float(arr[3])


def joint_box(frames: Sequence[Sequence[Body]]) -> list[float] | None:
    """The tight box around every tracked or inferred joint of every body over every frame of an NTU skeleton, as
    fractions of the colour frame (joints outside it included: a person partly out of view); None when no frame
    has a body."""
    from modistill.data.align import COLOR_REF

    pts = [b.joints[b.joints[:, 11] != 0, 5:7] for bodies in frames for b in bodies]
    box = tight_box(np.concatenate(pts)) if pts else None
    if box is None:
        return None
    return [round(v / COLOR_REF[i % 2], 6) for i, v in enumerate(box)]

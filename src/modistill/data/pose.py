"""Pose images: the joints and limbs of every body drawn as Gaussian maps, in the same crop as the RGB frame, so
that a stream made for 3-channel images (ImageNet or Kinetics initialised) takes skeletons as a modality.

The encoding, after PoseC3D's ``GeneratePoseTarget`` (a map per joint and per limb) folded into three channels by
body side, so that a horizontal flip stays a flip: R = the person's left side, G = the right side, B = the centre
line (spine, neck, head, and limbs joining sides). A pixel holds ``255 * max`` over the side's joint maps
``exp(-d² / 2σ²)`` (``d``: the distance to a joint) and limb maps (``d``: the distance to the segment between two
joints), with σ a fraction of the clip's side (``POSE_SIGMA``: PoseC3D's 0.6 px on its 56 px maps). Flipping the
image mirrors a person and so exchanges their left and right: :func:`flip_pose` is the horizontal flip plus the
exchange of R and G, which is what the same person filmed in a mirror would give.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

POSE_SIGMA = 0.6 / 56  # of the clip's side


@dataclass(frozen=True)
class JointLayout:
    """A skeleton's joints: which side each is on (0 left, 1 right, 2 centre) and the limbs between them."""

    name: str
    sides: tuple[int, ...]
    limbs: tuple[tuple[int, int], ...]

    def limb_side(self, a: int, b: int) -> int:
        return self.sides[a] if self.sides[a] == self.sides[b] else 2


L, R, C = 0, 1, 2
# NTU RGB+D / Kinect v2, 0-based: 0 spine base, 1 spine mid, 2 neck, 3 head, 4-7 left shoulder/elbow/wrist/hand,
# 8-11 right, 12-15 left hip/knee/ankle/foot, 16-19 right, 20 spine shoulder, 21-22 left hand tip/thumb, 23-24 right.
NTU25 = JointLayout(
    "ntu25",
    (C, C, C, C, L, L, L, L, R, R, R, R, L, L, L, L, R, R, R, R, C, L, L, R, R),
    (
        (0, 1), (1, 20), (20, 2), (2, 3),
        (20, 4), (4, 5), (5, 6), (6, 7), (7, 21), (7, 22),
        (20, 8), (8, 9), (9, 10), (10, 11), (11, 23), (11, 24),
        (0, 12), (12, 13), (13, 14), (14, 15),
        (0, 16), (16, 17), (17, 18), (18, 19),
    ),
)  # fmt: skip
# COCO-17: 0 nose, 1-2 eyes, 3-4 ears, 5-6 shoulders, 7-8 elbows, 9-10 wrists, 11-12 hips, 13-14 knees, 15-16 ankles.
COCO17 = JointLayout(
    "coco17",
    (C, L, R, L, R, L, R, L, R, L, R, L, R, L, R, L, R),
    (
        (0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
        (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
    ),
)  # fmt: skip
LAYOUTS = {x.name: x for x in (NTU25, COCO17)}


def _segment_distance2(px: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distance of each pixel ``px`` [P, 2] to each segment ``a[i]-b[i]`` ([N, 2] each): [N, P]."""
    ab = b - a
    ap = px[None] - a[:, None]
    t = np.clip((ap * ab[:, None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9)[:, None], 0.0, 1.0)
    d = ap - t[..., None] * ab[:, None]
    return (d * d).sum(-1)


def render_pose(bodies: Sequence[np.ndarray], layout: JointLayout, size: int, sigma: float = POSE_SIGMA) -> np.ndarray:
    """One pose image, uint8 [size, size, 3], from each body's joints in clip pixels ([J, 2], x right, y down;
    NaN for a joint that is not tracked). No body gives a black image."""
    out = np.zeros((size, size, 3), np.float32)
    s = max(sigma * size, 0.5)
    ys, xs = np.mgrid[0:size, 0:size]
    px = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
    for joints in bodies:
        ok = np.isfinite(joints).all(1)
        if not ok.any():
            continue
        limbs = [(a, b) for a, b in layout.limbs if ok[a] and ok[b]]
        pts = np.flatnonzero(ok)
        starts = np.concatenate([joints[pts], joints[[a for a, _ in limbs]]]).astype(np.float32)
        ends = np.concatenate([joints[pts], joints[[b for _, b in limbs]]]).astype(np.float32)
        sides = np.array([layout.sides[j] for j in pts] + [layout.limb_side(a, b) for a, b in limbs])
        near = _near(starts, ends, size, 3 * s)
        if not near.any():
            continue
        maps = np.exp(-_segment_distance2(px, starts[near], ends[near]) / (2 * s * s))
        for c in range(3):
            pick = sides[near] == c
            if pick.any():
                np.maximum(out[..., c], maps[pick].max(0).reshape(size, size), out=out[..., c])
    return np.round(out * 255).astype(np.uint8)


def _near(starts: np.ndarray, ends: np.ndarray, size: int, margin: float) -> np.ndarray:
    """Segments whose bounding box comes within ``margin`` of the image (the others leave no trace in it)."""
    lo, hi = np.minimum(starts, ends), np.maximum(starts, ends)
    return (hi > -margin).all(1) & (lo < size - 1 + margin).all(1)


def flip_pose(frames: np.ndarray) -> np.ndarray:
    """Horizontal flip of pose images ``[..., H, W, 3]``: mirrored pixels, and left (R) and right (G) exchanged."""
    return frames[..., ::-1, :][..., [1, 0, 2]]


def to_clip_pixels(xy: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """Joints in the frame's pixels [J, 2] → pixels of the ``size``² clip cut from ``box`` (x0, y0, x1, y1), as
    the RGB frame is cut and resized (pixel centres map to pixel centres)."""
    x0, y0, x1, y1 = box
    out = np.empty_like(xy, dtype=np.float64)
    out[:, 0] = (xy[:, 0] - x0 + 0.5) * size / (x1 - x0) - 0.5
    out[:, 1] = (xy[:, 1] - y0 + 0.5) * size / (y1 - y0) - 0.5
    return out

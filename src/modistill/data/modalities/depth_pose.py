"""Depth and pose at once, as one privileged image: R is the depth map (grey, near bright, the person's near/far
over the video), G the skeleton's left side and B its right side, the centre line (spine, neck, head) in both.

One stream fed both, rather than two teacher streams: the method's steps, losses and deployed model stay what
they are (one teacher, one hallucination stream that imitates it), and the teacher sees the body's surface and
its articulation aligned pixel for pixel, in the clip's crop. A flip mirrors the image and exchanges G and B."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modistill.data.modalities.pose import POSE
from modistill.data.modalities.registry import Material, Modality, register

if TYPE_CHECKING:
    import numpy as np

    from modistill.data.options import PrepareOptions

ENCODING = "R depth (grey, near bright), G left + centre joints and limbs, B right + centre"


def compose(depth_grey: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Grey depth images [..., H, W, 3] and pose images (R left, G right, B centre) → depth+pose images."""
    import numpy as np

    out = np.empty_like(pose)
    out[..., 0] = depth_grey[..., 0]
    out[..., 1] = np.maximum(pose[..., 0], pose[..., 2])
    out[..., 2] = np.maximum(pose[..., 1], pose[..., 2])
    return out


def _encode(m: Material) -> tuple[np.ndarray, str | None]:
    import numpy as np

    from modistill.data.encode import encode_depth

    m.need("depth", "depth_pose")
    assert m.depth is not None and m.depth_range is not None
    near, far = m.depth_range
    grey = np.stack([encode_depth(d, near, far, "gray") for d in m.depth])
    pose, note = POSE.encode(m)
    return compose(grey, pose), note


def _flip(frames: np.ndarray) -> np.ndarray:
    return frames[..., ::-1, :][..., [0, 2, 1]]


def _settings(options: PrepareOptions, reader: str) -> dict:
    return (POSE.settings(options, reader) or {}) | {"encoding": ENCODING}  # the pose images' sigma, joints


DEPTH_POSE = register(
    Modality(
        "depth_pose",
        "Depth+Pose",
        f"depth and pose image uint8 ({ENCODING})",
        _encode,
        flip=_flip,
        settings=_settings,
    )
)

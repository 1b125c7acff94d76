"""Pose images: every body's joints and limbs drawn as Gaussian maps in the RGB clip's crop
(:mod:`modistill.data.pose`), from NTU skeletons or a pairs CSV's keypoint files. A flip mirrors the image and
exchanges the left (R) and right (G) channels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modistill.data.modalities.registry import Material, Modality, register

if TYPE_CHECKING:
    import numpy as np

    from modistill.data.options import PrepareOptions

POSE_ENCODING = "gaussian joints+limbs; R left, G right, B centre"


def _encode(m: Material) -> tuple[np.ndarray, str | None]:
    import numpy as np

    from modistill.data.pose import POSE_SIGMA, render_pose

    m.need("keypoints", "pose")
    assert m.keypoints is not None
    kp = m.keypoints()
    t, size = m.rgb.shape[:2]
    out = np.zeros((t, size, size, 3), np.uint8)
    if kp.blank_reason:
        return out, f"every frame blank: {kp.blank_reason}"
    blank = []
    for k, bodies in enumerate(kp.bodies):
        if not any(np.isfinite(b).all(1).any() for b in bodies):
            blank.append(m.frames[k])
            continue
        out[k] = render_pose(bodies, kp.layout, size, m.options.pose_sigma or POSE_SIGMA)
    return out, f"no body in frames {blank}, left blank" if blank else None


def _flip(frames: np.ndarray) -> np.ndarray:
    from modistill.data.pose import flip_pose

    return flip_pose(frames)


def _settings(options: PrepareOptions, reader: str) -> dict:
    from modistill.data.pose import POSE_SIGMA

    joints = "ntu25" if reader == "ntu" else "the keypoint files' (coco17 or ntu25)"
    return {"encoding": POSE_ENCODING, "sigma": options.pose_sigma or POSE_SIGMA, "joints": joints}


POSE = register(
    Modality("pose", "Pose", f"pose image uint8 ({POSE_ENCODING})", _encode, flip=_flip, settings=_settings)
)

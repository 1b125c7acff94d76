"""Visual check of the RGB↔depth alignment: the aligned crops side by side and blended."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modistill.data import ntu, video
from modistill.data.align import estimate_alignment, intersection_crop
from modistill.data.encode import aligned_pair, depth_range
from modistill.errors import DataError, UserError
from modistill.utils.io import atomic_write


def show_alignment(root: str | Path, name: str, out: str | Path | None = None, size: int = 224) -> Path:
    """Write ``out`` (PNG): RGB crop | jet depth crop | 50% blend with depth edges, at the middle frame."""
    import cv2

    out = Path(out) if out else Path(f"{name}_alignment.png")
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UserError(f"{out}: --out must end in .png (or .jpg)")
    if out.is_dir():
        raise UserError(f"{out}: is a directory; give a file path")
    try:
        ntu.parse_name(name)
    except ValueError as e:
        raise UserError(str(e)) from None
    layout = ntu.NtuLayout(root)
    if not layout.rgb(name).is_file():
        raise DataError(layout.rgb(name), "video not found")
    frames = ntu.read_skeleton(layout.skeleton(name))
    ntu.drop_impossible_joints(frames)
    al = estimate_alignment(frames)
    if al is None:
        raise DataError(layout.skeleton(name), "no well-tracked joints to align with")
    n = min(video.count_rgb_frames(layout.rgb(name)), layout.depth_count(name))
    t = n // 2
    rgb = video.read_rgb_frames(layout.rgb(name), [t])[0]
    depth = ntu.read_depth(layout.depth_frame(name, t + 1))
    crop = intersection_crop(al, (rgb.shape[1], rgb.shape[0]), (depth.shape[1], depth.shape[0]))
    near, far = depth_range([depth])
    r, d_raw, d = aligned_pair(rgb, depth, crop, size, near, far)
    blend = r.copy()
    mask = d_raw > 0
    blend[mask] = (0.5 * r[mask] + 0.5 * d[mask]).astype(np.uint8)
    edges = cv2.Canny(mask.astype(np.uint8) * 255, 50, 150) > 0
    blend[edges] = (255, 255, 255)
    panel = np.concatenate([r, d, blend], axis=1)
    header = np.full((28, panel.shape[1], 3), 255, np.uint8)
    for i, title in enumerate(("RGB crop", "depth (jet)", "blend + depth edges")):
        cv2.putText(header, title, (i * size + 4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(
        header, f"{name}, frame {t + 1} of {n}", (4, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (90, 90, 90), 1, cv2.LINE_AA
    )
    panel = np.concatenate([header, panel], axis=0)
    ok, png = cv2.imencode(out.suffix.lower(), panel[:, :, ::-1])
    if not ok:
        raise UserError(f"{out}: OpenCV cannot encode a {out.suffix} image")
    atomic_write(out, lambda p: p.write_bytes(png.tobytes()))
    return out

"""The synthetic benchmark in NW-UCLA- and UWA3D-II-style layouts (Kinect v1 datasets: JPEG frames and 16-bit
depth PNGs registered to the colour image), so their readers are tested end to end.

Depth is registered to RGB with the alignment estimated from the sample's own skeleton (the same estimator as
``prepare ntu``), then written at the RGB size, as a registered Kinect v1 stream would be.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from modistill.data import ntu
from modistill.data.align import depth_to_rgb_affine, estimate_alignment
from modistill.data.nwucla_uwa3d import NWUCLA_ACTIONS


def sample_dirs(layout: str, root: Path, name: str) -> tuple[Path, Path]:
    """(RGB frame folder, depth frame folder) of an NTU-named synthetic sample in ``layout``."""
    s = ntu.parse_name(name)
    if layout == "nwucla":
        d = root / f"view_{s.camera}" / f"a{NWUCLA_ACTIONS[s.label]:02d}_s{s.performer:02d}_e{s.replication - 1:02d}"
        return d, d
    vid = f"a{s.action:02d}_s{s.performer:02d}_v{s.camera:02d}_e{s.replication:02d}"
    return root / "rgb" / vid, root / "depth" / vid


def _register(depth: np.ndarray, al, rgb_size: tuple[int, int]) -> np.ndarray:
    (wc, hc), (hd, wd) = rgb_size, depth.shape
    ax, bx, ay, by = depth_to_rgb_affine(al, rgb_size, (wd, hd))
    m = np.array([[ax, 0, bx], [0, ay, by]], np.float32)
    return cv2.warpAffine(depth, m, (wc, hc), flags=cv2.INTER_NEAREST, borderValue=0)


def write_multiview_sample(cfg, root: Path, name: str, render) -> str:
    rgb_dir, depth_dir = sample_dirs(cfg.layout, root, name)
    marker = depth_dir / ".complete"
    if marker.exists():
        return "skipped"
    rgb, depth, skel = render(cfg, name)
    al = estimate_alignment(skel)
    tmp = rgb_dir.with_name(rgb_dir.name + ".tmp")
    tmp_depth = tmp if depth_dir == rgb_dir else depth_dir.with_name(depth_dir.name + ".tmp")
    for d in {tmp, tmp_depth}:
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    for t, (im, dp) in enumerate(zip(rgb, depth, strict=True)):
        reg = _register(dp, al, cfg.rgb_size)
        if cfg.layout == "nwucla":
            stem = f"frame_{t}_tc_{1000 + 33 * t}"
            cv2.imwrite(str(tmp / f"{stem}_rgb.jpg"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(tmp / f"{stem}_depth.png"), reg)
        else:
            cv2.imwrite(str(tmp / f"{t + 1:03d}.jpg"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(tmp_depth / f"{t + 1:03d}.png"), reg)
    for src, dst in ((tmp, rgb_dir), (tmp_depth, depth_dir)) if tmp != tmp_depth else ((tmp, rgb_dir),):
        shutil.rmtree(dst, ignore_errors=True)
        os.replace(src, dst)
    marker.write_text("")
    return "written"

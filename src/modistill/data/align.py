"""RGB↔depth spatial alignment from skeleton joints (paper supplement, sec. 2) and the crop it implies.

Skeleton files give each joint in both the depth grid (512x424) and the colour grid (1920x1080). Per video:
pairwise ratios ``(rgb^A − rgb^B) / (depth^A − depth^B)`` over every frame's well-tracked joints, the median per
axis, scale = mean of the two medians; the offset then overlays the skeletons. A per-(setup, camera) robust fit
over many videos serves videos without a usable skeleton.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from modistill.data.ntu import TRACKED, Body, main_body

DEPTH_REF = (512.0, 424.0)
COLOR_REF = (1920.0, 1080.0)
MIN_SPAN = 2.0  # depth pixels: pairs closer than this give unstable ratios


@dataclass(frozen=True)
class Alignment:
    """``colour_ref = scale * depth_ref + offset`` in the sensors' reference grids; ``source`` says how it was
    obtained (``video`` or ``camera-fit``)."""

    scale: float
    offset_x: float
    offset_y: float
    joints_used: int
    source: str = "video"

    def to_dict(self) -> dict:
        return asdict(self)


def joint_points(frames: list[list[Body]] | list[Body | None]) -> tuple[np.ndarray, np.ndarray]:
    """Depth and colour coordinates (N, 2) of well-tracked, finite joints of the main body, and a frame index."""
    bodies = frames if (frames and not isinstance(frames[0], list)) else main_body(frames)  # type: ignore[arg-type]
    pts, idx = [], []
    for t, b in enumerate(bodies):
        if b is None:
            continue
        j = b.joints
        ok = (j[:, 11] == TRACKED) & np.isfinite(j[:, 3:7]).all(1)
        if ok.sum() >= 2:
            pts.append(j[ok][:, 3:7])
            idx.append(np.full(ok.sum(), t))
    if not pts:
        return np.zeros((0, 4)), np.zeros(0, int)
    return np.concatenate(pts), np.concatenate(idx)


def estimate_alignment(frames: list[list[Body]]) -> Alignment | None:
    """Per-video scale and offset (paper supplement); ``None`` when fewer than 2 well-tracked joints exist."""
    pts, frame_idx = joint_points(frames)
    if len(pts) < 2:
        return None
    # Every pair (a, b), a < b, of joints of the same frame, for all frames at once (frame_idx is sorted).
    starts = np.searchsorted(frame_idx, frame_idx, side="right")  # one past each point's frame
    later = starts - np.arange(len(pts)) - 1  # points after each one in its frame
    a = np.repeat(np.arange(len(pts)), later)
    b = a + 1 + np.arange(len(a)) - np.repeat(np.cumsum(later) - later, later)
    ratios = []
    for axis in (0, 1):
        dd = pts[a, axis] - pts[b, axis]
        dc = pts[a, 2 + axis] - pts[b, 2 + axis]
        keep = np.abs(dd) >= MIN_SPAN
        ratios.append(dc[keep] / dd[keep])
    rx_all, ry_all = ratios
    if len(rx_all) == 0 or len(ry_all) == 0:
        return None
    scale = float(0.5 * (np.median(rx_all) + np.median(ry_all)))
    off = np.median(pts[:, 2:4] - scale * pts[:, 0:2], axis=0)
    return Alignment(scale, float(off[0]), float(off[1]), int(len(pts)))


def fit_camera_alignment(points: list[np.ndarray], iterations: int = 5) -> Alignment | None:
    """Robust least squares of ``colour = s·depth + o`` over joints of many videos of one (setup, camera).

    ``points``: per video, (N, 4) arrays of depthX, depthY, colorX, colorY (see :func:`joint_points`).
    Iteratively reweighted: points with residuals beyond 3 robust sigmas (MAD) are dropped each round.
    """
    all_pts = [p for p in points if len(p)]
    if not all_pts:
        return None
    p = np.concatenate(all_pts)
    n = len(p)
    # Unknowns [s, ox, oy]; rows: cx = s*dx + ox, cy = s*dy + oy.
    A = np.zeros((2 * n, 3))
    A[:n, 0], A[:n, 1] = p[:, 0], 1.0
    A[n:, 0], A[n:, 2] = p[:, 1], 1.0
    y = np.concatenate([p[:, 2], p[:, 3]])
    keep = np.ones(2 * n, bool)
    sol = None
    for _ in range(iterations):
        sol, *_ = np.linalg.lstsq(A[keep], y[keep], rcond=None)
        res = y - A @ sol
        mad = np.median(np.abs(res[keep] - np.median(res[keep]))) * 1.4826 + 1e-6
        new_keep = np.abs(res) <= 3 * mad
        if new_keep.sum() < 3 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return Alignment(float(sol[0]), float(sol[1]), float(sol[2]), int(n), source="camera-fit")


@dataclass(frozen=True)
class Crop:
    """The same scene region in both images, in their own pixels: (x0, y0, x1, y1)."""

    rgb: tuple[float, float, float, float]
    depth: tuple[float, float, float, float]


def intersection_crop(al: Alignment, rgb_size: tuple[int, int], depth_size: tuple[int, int]) -> Crop:
    """Crop of the intersection of the aligned RGB and depth fields of view, for images of the given (W, H).

    Handles images stored at other sizes than the reference grids (e.g. a 540p transcode, a scaled depth map).
    """
    (wc, hc), (wd, hd) = rgb_size, depth_size
    # colour_px = a * depth_px + b per axis.
    ax = (wc / COLOR_REF[0]) * al.scale * (DEPTH_REF[0] / wd)
    ay = (hc / COLOR_REF[1]) * al.scale * (DEPTH_REF[1] / hd)
    bx, by = (wc / COLOR_REF[0]) * al.offset_x, (hc / COLOR_REF[1]) * al.offset_y
    x0, y0 = max(0.0, bx), max(0.0, by)
    x1, y1 = min(float(wc), bx + ax * wd), min(float(hc), by + ay * hd)
    if x1 - x0 < 8 or y1 - y0 < 8:
        raise ValueError(f"RGB and depth views do not overlap (scale {al.scale:.3f}, offset "
                         f"{al.offset_x:.0f},{al.offset_y:.0f})")
    return Crop((x0, y0, x1, y1), ((x0 - bx) / ax, (y0 - by) / ay, (x1 - bx) / ax, (y1 - by) / ay))

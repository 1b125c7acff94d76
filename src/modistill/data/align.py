"""RGB↔depth spatial alignment from skeleton joints (paper supplement, sec. 2) and the crop it implies.

Skeleton files give each joint in both the depth grid (512x424) and the colour grid (1920x1080). Per video:
pairwise ratios ``(rgb^A − rgb^B) / (depth^A − depth^B)`` over every frame's well-tracked joints, the median per
axis, scale = mean of the two medians; the offset then overlays the skeletons. A per-(setup, camera) fit over
that camera's videos serves videos without a usable skeleton, and replaces a video's own fit that is far from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from modistill.data.ntu import TRACKED, Body, main_body

DEPTH_REF = (512.0, 424.0)
COLOR_REF = (1920.0, 1080.0)
MIN_SPAN = 2.0  # depth pixels: pairs closer than this give unstable ratios
MIN_FIT_VIDEOS = 3  # per-video fits a camera fit needs: the median of fewer cannot tell an outlier
MIN_FIT_JOINTS = 20  # joints a per-video fit needs to count towards its camera's fit
MAX_SCALE_SPREAD = 0.1  # robust relative spread of the scales above which a camera's videos disagree too much


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

    @classmethod
    def from_dict(cls, d: dict) -> Alignment:
        """From a record's alignment dict, which may carry more keys (a camera fit's video count, spread)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


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


def fit_camera_alignment(fits: list[Alignment]) -> tuple[dict | None, str]:
    """One (setup, camera)'s alignment from its videos' own fits: each parameter is the median of the per-video
    values, axis by axis. The x offset varies between videos (parallax grows as the subject comes closer) while
    the y offset barely does, so a joint fit over both axes with one outlier threshold discards the x rows and
    collapses; per-axis medians cannot. Refused (None and the reason) with fewer than ``MIN_FIT_VIDEOS`` usable
    videos or when their scales disagree; otherwise the fit dict with its video count and robust spread."""
    usable = [
        f
        for f in fits
        if f.source == "video"
        and f.joints_used >= MIN_FIT_JOINTS
        and np.isfinite([f.scale, f.offset_x, f.offset_y]).all()
        and f.scale > 0
    ]
    if len(usable) < MIN_FIT_VIDEOS:
        return None, f"only {len(usable)} video(s) with a usable skeleton, a camera fit needs {MIN_FIT_VIDEOS}"
    arr = np.array([[f.scale, f.offset_x, f.offset_y] for f in usable])
    med = np.median(arr, axis=0)
    mad = 1.4826 * np.median(np.abs(arr - med), axis=0)
    if mad[0] > MAX_SCALE_SPREAD * med[0]:
        return None, (f"its {len(usable)} videos disagree on the scale ({med[0]:.2f} ± {mad[0]:.2f}), no common fit")
    fit = Alignment(
        float(med[0]), float(med[1]), float(med[2]), int(sum(f.joints_used for f in usable)), source="camera-fit"
    )
    return fit.to_dict() | {"videos": len(usable), "spread": [round(float(v), 4) for v in mad]}, ""


def implausible(own: Alignment, camera: dict) -> str | None:
    """Why a video's own fit cannot be right, judged against its camera's fit and that fit's spread (None when it
    is plausible). Offsets may differ by parallax: the tolerance is 5 robust spreads, at least 5 % of the frame."""
    scale_tol = max(5 * camera["spread"][0], 0.05 * camera["scale"])
    tol_x = max(5 * camera["spread"][1], 0.05 * COLOR_REF[0])
    tol_y = max(5 * camera["spread"][2], 0.05 * COLOR_REF[1])
    if not np.isfinite([own.scale, own.offset_x, own.offset_y]).all():
        return "its own fit is not finite"
    if abs(own.scale - camera["scale"]) > scale_tol:
        return f"its own scale {own.scale:.2f} is far from the camera's {camera['scale']:.2f}"
    if abs(own.offset_x - camera["offset_x"]) > tol_x or abs(own.offset_y - camera["offset_y"]) > tol_y:
        return (
            f"its own offset ({own.offset_x:.0f}, {own.offset_y:.0f}) is far from the camera's "
            f"({camera['offset_x']:.0f}, {camera['offset_y']:.0f})"
        )
    return None


@dataclass(frozen=True)
class Crop:
    """The same scene region in both images, in their own pixels: (x0, y0, x1, y1)."""

    rgb: tuple[float, float, float, float]
    depth: tuple[float, float, float, float]


def depth_to_rgb_affine(
    al: Alignment, rgb_size: tuple[int, int], depth_size: tuple[int, int]
) -> tuple[float, float, float, float]:
    """``(ax, bx, ay, by)`` with ``colour_px = a * depth_px + b`` per axis, for images of the given (W, H), which
    may be stored at other sizes than the sensors' reference grids."""
    (wc, hc), (wd, hd) = rgb_size, depth_size
    ax = (wc / COLOR_REF[0]) * al.scale * (DEPTH_REF[0] / wd)
    ay = (hc / COLOR_REF[1]) * al.scale * (DEPTH_REF[1] / hd)
    return ax, (wc / COLOR_REF[0]) * al.offset_x, ay, (hc / COLOR_REF[1]) * al.offset_y


def intersection_crop(al: Alignment, rgb_size: tuple[int, int], depth_size: tuple[int, int]) -> Crop:
    """Crop of the intersection of the aligned RGB and depth fields of view, for images of the given (W, H).

    Handles images stored at other sizes than the reference grids (e.g. a 540p transcode, a scaled depth map).
    """
    (wc, hc), (wd, hd) = rgb_size, depth_size
    ax, bx, ay, by = depth_to_rgb_affine(al, rgb_size, depth_size)
    x0, y0 = max(0.0, bx), max(0.0, by)
    x1, y1 = min(float(wc), bx + ax * wd), min(float(hc), by + ay * hd)
    if x1 - x0 < 8 or y1 - y0 < 8:
        raise ValueError(
            f"RGB and depth views do not overlap (scale {al.scale:.4g}, offset {al.offset_x:.4g}, {al.offset_y:.4g})"
        )
    return Crop((x0, y0, x1, y1), ((x0 - bx) / ax, (y0 - by) / ay, (x1 - bx) / ax, (y1 - by) / ay))


def person_crop(
    al: Alignment, box: tuple[float, float, float, float], rgb_size: tuple[int, int], depth_size: tuple[int, int]
) -> Crop:
    """A person box in the RGB frame and the same scene region in the depth frame, through the video's fit. The
    depth region may reach outside the depth camera's view: those pixels read as missing depth (0)."""
    ax, bx, ay, by = depth_to_rgb_affine(al, rgb_size, depth_size)
    x0, y0, x1, y1 = box
    return Crop((x0, y0, x1, y1), ((x0 - bx) / ax, (y0 - by) / ay, (x1 - bx) / ax, (y1 - by) / ay))

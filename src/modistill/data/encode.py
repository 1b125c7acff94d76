"""Image encodings of the aligned crops: jet-colormap depth (paper, after Eitel et al.) or gray (released code)."""

from __future__ import annotations

import cv2
import numpy as np

DEPTH_ENCODINGS = ("jet", "gray")


def crop_resize(img: np.ndarray, box: tuple[float, float, float, float], size: int, nearest: bool = False):
    """Crop ``box`` (x0, y0, x1, y1; sub-pixel) and resize to size x size with one affine warp."""
    x0, y0, x1, y1 = box
    sx, sy = size / (x1 - x0), size / (y1 - y0)
    m = np.array([[sx, 0, -x0 * sx + 0.5 * sx - 0.5], [0, sy, -y0 * sy + 0.5 * sy - 0.5]], np.float32)
    interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if sx < 1 and sy < 1 else cv2.INTER_LINEAR)
    return cv2.warpAffine(img, m, (size, size), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def aligned_pair(
    rgb: np.ndarray, depth: np.ndarray, crop, size: int, near: float, far: float, encoding: str = "jet"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame pair cropped to the same scene region and resized: RGB, raw depth (mm), encoded depth."""
    d_raw = crop_resize(depth, crop.depth, size, nearest=True)
    return crop_resize(rgb, crop.rgb, size), d_raw, encode_depth(d_raw, near, far, encoding)


def depth_range(depths: list[np.ndarray]) -> tuple[float, float]:
    """Near/far (mm) of the person over a video's frames: 1st/99th percentiles of the non-zero depths."""
    vals = np.concatenate([d[d > 0].ravel() for d in depths]) if depths else np.zeros(0)
    if vals.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(vals, [1, 99])
    return float(lo), float(max(hi, lo + 1.0))


def _palette(encoding: str) -> np.ndarray:
    """(257, 3) uint8 for ``jet`` or ``gray``: the colour of each gray level 0-255, and black at 256 for missing
    depth."""
    ramp = np.arange(256, dtype=np.uint8)[:, None]
    if encoding == "jet":
        colours = cv2.applyColorMap(ramp, cv2.COLORMAP_JET)[:, 0, ::-1]
    else:
        colours = np.repeat(ramp, 3, axis=1)
    return np.ascontiguousarray(np.concatenate([colours, np.zeros((1, 3), np.uint8)]))


_PALETTES = {e: _palette(e) for e in DEPTH_ENCODINGS}


def depth_palette(encoding: str) -> np.ndarray:
    """(257, 3) uint8: the colour :func:`encode_depth` gives each level 0-255, and black (256) for missing depth."""
    return _PALETTES[encoding].copy()


def encode_depth(depth: np.ndarray, near: float, far: float, encoding: str = "jet") -> np.ndarray:
    """uint16 mm (H, W) → uint8 RGB (H, W, 3). Near is red, far is blue; missing depth (0) stays black."""
    if encoding not in _PALETTES:
        raise ValueError(f"unknown depth encoding {encoding!r}")
    norm = depth.astype(np.float32)
    norm -= near
    norm /= far - near
    np.clip(norm, 0.0, 1.0, out=norm)
    # Near = high value, so the closest body parts are the warm colours of the jet map.
    level = ((1.0 - norm) * 255.0 + 0.5).astype(np.uint16)
    level[depth == 0] = 256
    return _PALETTES[encoding][level]

import numpy as np
import pytest

from modistill.data import ntu
from modistill.data.align import (
    Alignment,
    estimate_alignment,
    fit_camera_alignment,
    implausible,
    intersection_crop,
)


def synthetic_frames(scale, ox, oy, n_frames=20, seed=0, noise=0.5, untracked=0.2, nan_joint=True):
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(n_frames):
        j = np.zeros((25, 12))
        j[:, 3] = rng.uniform(150, 350, 25)
        j[:, 4] = rng.uniform(80, 350, 25)
        j[:, 5] = scale * j[:, 3] + ox + rng.normal(0, noise, 25)
        j[:, 6] = scale * j[:, 4] + oy + rng.normal(0, noise, 25)
        j[:, 11] = 2
        bad = rng.random(25) < untracked
        j[bad, 11] = rng.choice([0, 1], bad.sum())
        j[bad, 5:7] += rng.normal(0, 80, (bad.sum(), 2))  # untracked joints are far off
        if nan_joint and t == 3:
            j[0, 3:7] = np.nan
        frames.append([ntu.Body(1, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 2, j)] if t != 5 else [])
    return frames


@pytest.mark.parametrize("scale, ox, oy", [(2.9, 180.0, -75.0), (3.1, 140.0, -20.0), (1.2, 10.0, 5.0)])
def test_recovers_known_scale_and_offset(scale, ox, oy):
    al = estimate_alignment(synthetic_frames(scale, ox, oy))
    assert abs(al.scale - scale) / scale < 0.01
    assert abs(al.offset_x - ox) < 1 and abs(al.offset_y - oy) < 1
    assert 0 < al.joints_used < 20 * 25


def test_no_usable_joints_returns_none():
    frames = synthetic_frames(3, 0, 0, untracked=1.0)
    assert estimate_alignment([[b for b in f if False] for f in frames]) is None
    for f in frames:
        for b in f:
            b.joints[:, 11] = 1
    assert estimate_alignment(frames) is None


def _camera_videos(n, seed=0):
    """Per-video fits of one camera: x offsets vary with the subject's distance (parallax), y offsets do not."""
    rng = np.random.default_rng(seed)
    ox = rng.uniform(180.0, 270.0, n)
    return [
        estimate_alignment(synthetic_frames(2.94, x, -40.0, n_frames=6, seed=seed * 1000 + i)) for i, x in enumerate(ox)
    ], ox


@pytest.mark.parametrize("n", [3, 10, 100])
def test_camera_fit_keeps_varying_x_offsets(n):
    """On 2b7b8e1 the pooled fit dropped every x row and returned offset_x = 0 (in 21-25 of 30 small subsets)."""
    videos, ox = _camera_videos(n, seed=n)
    fit, why = fit_camera_alignment(videos)
    assert why == "" and fit["source"] == "camera-fit" and fit["videos"] == n
    assert abs(fit["scale"] - 2.94) < 0.02 and abs(fit["offset_y"] + 40) < 1
    assert abs(fit["offset_x"] - np.median(ox)) < 0.25 * np.ptp(ox) + 1  # near the middle, never collapsed to 0
    assert ox.min() - 1 <= fit["offset_x"] <= ox.max() + 1


def test_camera_fit_refuses_too_few_videos_and_disagreeing_ones():
    videos, _ = _camera_videos(1)
    fit, why = fit_camera_alignment(videos)
    assert fit is None and "only 1 video(s)" in why
    scattered = [Alignment(s, 200.0, -40.0, 100) for s in (1.0, 2.0, 3.0, 4.0, 5.0)]
    fit, why = fit_camera_alignment(scattered)
    assert fit is None and "disagree on the scale" in why


def test_camera_fit_is_robust_to_outlier_videos_and_flags_implausible_ones():
    videos, _ = _camera_videos(8)
    scaled = Alignment(0.59, 50.0, -8.0, 300)  # tracker colour coordinates scaled by 0.2
    fit, _ = fit_camera_alignment(videos + [scaled])
    assert abs(fit["scale"] - 2.94) < 0.02
    assert "scale 0.59 is far from the camera's 2.94" in implausible(scaled, fit)
    assert "offset" in implausible(Alignment(2.94, 900.0, -40.0, 300), fit)
    assert all(implausible(v, fit) is None for v in videos)


def test_intersection_crop_maps_same_scene_region():
    al = Alignment(3.0, 150.0, -100.0, 10)
    crop = intersection_crop(al, (960, 540), (256, 212))
    x0, y0, x1, y1 = crop.rgb
    assert 0 <= x0 < x1 <= 960 and 0 <= y0 < y1 <= 540
    # A depth pixel maps to the colour pixel with the same relative position in the two crops.
    dx0, dy0, dx1, dy1 = crop.depth
    for d in ((100.0, 100.0), (200.0, 50.0)):
        c = ((al.scale * d[0] * 2 + al.offset_x) / 2, (al.scale * d[1] * 2 + al.offset_y) / 2)
        rel_d = ((d[0] - dx0) / (dx1 - dx0), (d[1] - dy0) / (dy1 - dy0))
        rel_c = ((c[0] - x0) / (x1 - x0), (c[1] - y0) / (y1 - y0))
        np.testing.assert_allclose(rel_d, rel_c, atol=1e-6)
    with pytest.raises(ValueError, match="overlap"):
        intersection_crop(Alignment(3.0, 5000.0, 0.0, 10), (960, 540), (256, 212))


def test_no_overlap_message_rounds_absurd_numbers():
    with pytest.raises(ValueError) as e:
        intersection_crop(Alignment(3.0, 1e300, -1e300, 10), (960, 540), (256, 212))
    assert "offset 1e+300, -1e+300" in str(e.value) and len(str(e.value)) < 100

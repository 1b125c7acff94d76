import json

import numpy as np
import pytest

from modistill.data import ntu, video
from modistill.synthetic import SynthConfig, generate
from modistill.synthetic import render as R
from tests.conftest import TINY


def test_layout_and_formats(tiny_ntu):
    layout = ntu.NtuLayout(tiny_ntu)
    names, bad = layout.sample_names()
    assert names == sorted(TINY.names()) and bad == []
    assert len(names) == 3 * 3 * 2 * 1
    meta = json.loads((tiny_ntu / "synth.json").read_text())
    assert meta["class_names"][:2] == ["wave right hand", "hands up"]
    name = names[0]
    frames = ntu.read_skeleton(layout.skeleton(name))
    assert (tiny_ntu / "nturgb+d_skeletons" / f"{name}.skeleton").read_bytes().count(b"\r\n") > 10
    n = len(frames)
    assert layout.depth_count(name) == n
    assert video.count_rgb_frames(layout.rgb(name)) == n
    d = ntu.read_depth(layout.depth_frame(name, 1))
    assert d.dtype == np.uint16 and d.shape == (106, 128)
    assert 0 < (d > 0).mean() < 0.5  # masked to a region around the person
    assert 1500 < np.median(d[d > 0]) < 4500  # millimetres
    rgb = video.read_rgb_frames(layout.rgb(name), [0, n - 1])
    assert rgb[0].shape == (108, 192, 3)
    import av

    with av.open(str(layout.rgb(name))) as c:
        assert c.format.name == "avi" and c.streams.video[0].codec_context.name == "h264"


def test_joint_projections_land_on_person_in_both_cameras(tiny_ntu):
    layout = ntu.NtuLayout(tiny_ntu)
    hits_d, hits_c, total = 0, 0, 0
    for name in layout.sample_names()[0][:6]:
        bodies = ntu.main_body(ntu.read_skeleton(layout.skeleton(name)))
        t = len(bodies) // 2
        b = bodies[t]
        depth = ntu.read_depth(layout.depth_frame(name, t + 1))
        sx, sy = depth.shape[1] / 512, depth.shape[0] / 424
        rgb = video.read_rgb_frames(layout.rgb(name), [t])[0]
        cx, cy = rgb.shape[1] / 1920, rgb.shape[0] / 1080
        # Silhouette in the colour camera from the file's camera-space joints.
        mask = R.person_mask(b.joints[:, :3], (rgb.shape[1], rgb.shape[0]), "color")
        for j in b.joints[b.joints[:, 11] == 2]:
            total += 1
            u, v = int(j[3] * sx), int(j[4] * sy)
            hits_d += bool((depth[max(v - 1, 0) : v + 2, max(u - 1, 0) : u + 2] > 0).any())
            u, v = int(j[5] * cx), int(j[6] * cy)
            hits_c += bool(mask[max(v - 1, 0) : v + 2, max(u - 1, 0) : u + 2].any())
        # NTU's masked depth: the body has depth, so has the room inside a box around the skeleton, nothing
        # outside it; the body is in front of the room around it.
        dmask = R.person_mask(b.joints[:, :3], (depth.shape[1], depth.shape[0]), "depth")
        assert (depth > 0)[dmask].mean() > 0.7
        ys, xs = np.nonzero(depth)
        pix = b.joints[:, 3:5] * np.array([sx, sy])
        height = pix[:, 1].max() - pix[:, 1].min()
        assert xs.min() >= pix[:, 0].min() - 0.15 * height - 2 and xs.max() <= pix[:, 0].max() + 0.15 * height + 2
        assert ys.min() >= pix[:, 1].min() - 0.15 * height - 2 and ys.max() <= pix[:, 1].max() + 0.15 * height + 2
        room = (depth > 0) & ~dmask
        assert room.mean() > 0.02
        assert np.median(depth[dmask & (depth > 0)]) < np.median(depth[room]) - 300
    assert hits_d / total > 0.97
    assert hits_c / total > 0.95  # misses: feet below the frame, a thumb beside a held board


def test_object_classes_differ_only_in_appearance(tmp_path):
    """Book and phone: one motion, one board outline; identical depth, different colour images."""
    from modistill.synthetic import body as B
    from modistill.synthetic import writer as W

    cfg = SynthConfig(
        classes=6,
        subjects=1,
        cameras=1,
        replications=1,
        frames=8,
        rgb_size=(192, 108),
        depth_size=(128, 106),
        clutter=0.0,
        empty_frame_prob=0.0,
    )
    book, phone = (B.NAMED_ACTIONS.index(k) + 1 for k in ("read book", "play with phone"))
    assert B.held_object(book - 1) == "book" and B.held_object(phone - 1) == "phone" and B.held_object(0) is None
    _, wb, _ = W._performance(cfg, 1, 1, 1, book)
    _, wp, _ = W._performance(cfg, 1, 1, 1, phone)
    assert wb.shape[1] == 29 and wp.shape[1] == 29
    rig = R.make_rig(np.random.default_rng(0), 1)
    cam = rig.to_camera(wb[4])
    quad = cam[25:]
    rng = np.random.default_rng(1)
    import cv2

    cv2.setRNGSeed(0)
    d_book = R.render_depth(cam[:25], cfg.depth_size, rng, quad=quad)
    cv2.setRNGSeed(0)
    d_none = R.render_depth(cam[:25], cfg.depth_size, np.random.default_rng(1))
    nearer = (d_book > 0) & ((d_none == 0) | (d_book.astype(int) < d_none.astype(int) - 40))
    assert nearer.sum() >= 10  # the board is in the depth map, in front of the chest
    bg = np.full((108, 192, 3), 128.0, np.float32)
    subject = B.make_subject(np.random.default_rng(2))
    noise, light = [np.zeros((108, 192, 3), np.float32)], (1.0, np.ones(3, np.float32))
    imgs = {
        k: R.render_rgb(cam[:25], cfg.rgb_size, bg, subject, [], 0, light, noise, (k, quad)) for k in ("book", "phone")
    }
    diff = np.abs(imgs["book"].astype(int) - imgs["phone"].astype(int)).sum(-1) > 60
    assert 15 < diff.sum() < 0.05 * diff.size  # the board differs, nothing else


def test_rgb_and_depth_are_not_pixel_aligned(tiny_ntu):
    layout = ntu.NtuLayout(tiny_ntu)
    name = layout.sample_names()[0][0]
    b = [x for x in ntu.main_body(ntu.read_skeleton(layout.skeleton(name))) if x is not None][0]
    d = b.joints[:, 3:5] / np.array([512, 424])
    c = b.joints[:, 5:7] / np.array([1920, 1080])
    assert np.abs(d - c).max() > 0.05  # normalised coordinates differ: alignment is needed


def test_deterministic_and_resumable(tmp_path):
    cfg = SynthConfig(
        classes=1, subjects=1, cameras=2, replications=1, frames=8, rgb_size=(128, 72), depth_size=(64, 53), seed=3
    )
    generate(cfg, tmp_path / "a", show_progress=False)
    generate(cfg, tmp_path / "b", show_progress=False)
    for name in cfg.names():
        for root in ("a", "b"):
            assert (tmp_path / root / "nturgb+d_skeletons" / f"{name}.skeleton").exists()
        sa = (tmp_path / "a" / "nturgb+d_skeletons" / f"{name}.skeleton").read_bytes()
        sb = (tmp_path / "b" / "nturgb+d_skeletons" / f"{name}.skeleton").read_bytes()
        assert sa == sb
        da = ntu.read_depth(tmp_path / "a" / "nturgb+d_depth_masked" / name / "MDepth-00000003.png")
        db = ntu.read_depth(tmp_path / "b" / "nturgb+d_depth_masked" / name / "MDepth-00000003.png")
        assert np.array_equal(da, db)
    # The two cameras film the same performance: identical 3-D motion length, different projections.
    f1 = ntu.read_skeleton(tmp_path / "a" / "nturgb+d_skeletons" / f"{cfg.names()[0]}.skeleton")
    f2 = ntu.read_skeleton(tmp_path / "a" / "nturgb+d_skeletons" / f"{cfg.names()[1]}.skeleton")
    assert len(f1) == len(f2)
    skel = tmp_path / "a" / "nturgb+d_skeletons" / f"{cfg.names()[0]}.skeleton"
    mtime = skel.stat().st_mtime_ns
    generate(cfg, tmp_path / "a", show_progress=False)
    assert skel.stat().st_mtime_ns == mtime  # finished samples are skipped
    other = SynthConfig(**{**cfg.__dict__, "seed": 4})
    generate(other, tmp_path / "c", show_progress=False)
    assert (tmp_path / "c" / "nturgb+d_skeletons" / f"{cfg.names()[0]}.skeleton").read_bytes() != sa
    # Resuming into a tree of other settings would mix two datasets under one synth.json: refused, nothing written.
    from modistill.errors import UserError

    before = (tmp_path / "a" / "synth.json").read_text()
    with pytest.raises(UserError, match=r"holds a synthetic tree made with other settings \(motion_blur 0.0 → 2.0\)"):
        generate(SynthConfig(**{**cfg.__dict__, "motion_blur": 2.0}), tmp_path / "a", show_progress=False)
    assert (tmp_path / "a" / "synth.json").read_text() == before and skel.stat().st_mtime_ns == mtime
    # A tree from before a setting existed was made with its default, and resumes.
    meta = json.loads(before)
    del meta["motion_blur"], meta["rgb_noise"]
    (tmp_path / "a" / "synth.json").write_text(json.dumps(meta))
    generate(cfg, tmp_path / "a", show_progress=False)


def test_new_camera_placements_show_the_same_performance_smaller_and_elsewhere(tmp_path):
    """``placement=new``: the same performances, seen from farther, higher and off-centre through a wider lens;
    the default placement draws exactly what it drew before the option existed (the rig's RNG is untouched)."""
    from dataclasses import replace

    from modistill.data.align import estimate_alignment
    from modistill.data.person_box import joint_box

    cfg = SynthConfig(classes=1, subjects=1, cameras=3, frames=10, rgb_size=(192, 108), depth_size=(128, 106))
    generate(cfg, tmp_path / "ntu", show_progress=False)
    generate(replace(cfg, placement="new"), tmp_path / "new", show_progress=False)
    for c in (1, 2, 3):
        name = f"S001C00{c}P001R001A001"
        old = ntu.read_skeleton(ntu.NtuLayout(tmp_path / "ntu").skeleton(name))
        new = ntu.read_skeleton(ntu.NtuLayout(tmp_path / "new").skeleton(name))
        assert len(old) == len(new)  # the same performance
        (a0, b0, a1, b1), (c0, d0, c1, d1) = joint_box(old), joint_box(new)
        assert (d1 - d0) < 0.7 * (b1 - b0)  # the person is much smaller
        assert abs((c0 + c1) - (a0 + a1)) / 2 > 0.02 or abs((d0 + d1) - (b0 + b1)) / 2 > 0.05  # and elsewhere
        assert estimate_alignment(new) is not None  # prepare can still align such a video
    rig = R.make_rig(np.random.default_rng([0, 3, 1, 2]), 2)
    again = np.random.default_rng([0, 3, 1, 2])
    dist, height = again.uniform(2.1, 2.8), again.uniform(0.8, 1.4)
    assert rig.zoom == 1.0 and abs(np.hypot(rig.centre[0], rig.centre[2]) - dist) < 1e-9 and rig.centre[1] == height


def test_the_colour_cameras_noise_and_blur_leave_depth_and_skeleton_as_they_were():
    """The proof run's harder colour camera changes the RGB frames only, and its defaults change nothing."""
    import cv2

    from modistill.errors import UserError
    from modistill.synthetic import writer

    def render(**camera):
        cfg = SynthConfig(classes=3, subjects=2, cameras=1, frames=12, rgb_size=(192, 108), seed=5, **camera)
        return writer._render(cfg, cfg.names()[1])

    plain, same, harder = render(), render(rgb_noise=5.0, motion_blur=0.0), render(rgb_noise=5.0, motion_blur=12.0)
    for a, b in ((plain, same), (plain, harder)):
        assert all(np.array_equal(x, y) for x, y in zip(a[1], b[1], strict=True))  # depth
        assert repr(a[2]) == repr(b[2])  # skeleton
    assert all(np.array_equal(x, y) for x, y in zip(plain[0], same[0], strict=True))

    def sharpness(frames):
        return float(np.mean([cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var() for f in frames]))

    assert sharpness(harder[0]) < 0.7 * sharpness(plain[0])
    noisy = render(rgb_noise=30.0)[0]
    assert np.std(noisy[0][0].astype(float) - plain[0][0].astype(float)) > 20  # the added noise, beyond the default's 5
    for bad in (dict(rgb_noise=-1.0), dict(motion_blur=50.0)):
        with pytest.raises(UserError, match="synth: --"):
            SynthConfig(rgb_size=(192, 108), **bad).validate()

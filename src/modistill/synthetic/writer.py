"""Writes the synthetic benchmark in the NTU RGB+D layout, in parallel, skipping samples already complete."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from modistill.data import ntu
from modistill.errors import UserError
from modistill.synthetic import body as B
from modistill.synthetic import render as R
from modistill.synthetic.config import SynthConfig
from modistill.utils.io import atomic_write_text
from modistill.utils.progress import progress, run_parallel

BODY_ID_BASE = 72057594037927936  # 2**56, the magnitude of real Kinect v2 tracking ids
LEAF_JOINTS = (3, 15, 19, 21, 22, 23, 24)


def _performance(cfg: SynthConfig, s: int, p: int, r: int, a: int) -> tuple[B.Subject, np.ndarray, int]:
    """World joint positions (T, 25, 3) of one performance, shared by the cameras that film it (as in NTU), and
    the held object's corners as joints 25-28 when the class holds one."""
    subject = B.make_subject(np.random.default_rng([cfg.seed, 1, p]))
    rng = np.random.default_rng([cfg.seed, 2, s, p, r, a])
    n = int(cfg.frames * rng.uniform(0.8, 1.25))
    body = B.pose_sequence(subject, a - 1, n, rng)
    if B.held_object(a - 1):
        body = np.concatenate([body, np.stack([B.object_quad(j) for j in body])], 1)
    facing = np.radians(rng.uniform(-20, 20))
    rot = np.array([[np.cos(facing), 0, np.sin(facing)], [0, 1, 0], [-np.sin(facing), 0, np.cos(facing)]])
    offset = np.array([rng.uniform(-0.3, 0.3), 0.0, rng.uniform(-0.3, 0.3)])
    return subject, body @ rot.T + offset, n


def _skeleton_frames(cam: np.ndarray, rng: np.random.Generator, body_id: int, n_empty: int, zoom: float) -> list:
    """NTU skeleton records: camera-space metres, depth and colour reference-grid pixels, tracking states."""
    frames = []
    for t, pts in enumerate(cam):
        if t < n_empty:
            frames.append([])
            continue
        joints = np.zeros((25, 12))
        joints[:, 0:3] = pts
        joints[:, 3:5] = R.project_depth(pts)
        joints[:, 5:7] = R.project_color(pts, zoom)
        joints[:, 7] = 1.0
        joints[LEAF_JOINTS, 7] = 0.0
        state = np.full(25, ntu.TRACKED, dtype=float)
        inferred = rng.random(25) < 0.05
        state[inferred] = 1
        # Inferred joints are noisier, in 3-D and in both projections, as with a real Kinect.
        joints[inferred, 3:5] += rng.normal(0, 2.0, (inferred.sum(), 2))
        joints[inferred, 5:7] += rng.normal(0, 6.0, (inferred.sum(), 2))
        joints[:, 11] = state
        lean = (float(np.clip(rng.normal(0, 0.1), -1, 1)), float(np.clip(rng.normal(0, 0.1), -1, 1)))
        frames.append(
            [
                ntu.Body(
                    body_id,
                    0,
                    1,
                    int(rng.integers(0, 4)),
                    1,
                    int(rng.integers(0, 4)),
                    0,
                    lean[0],
                    lean[1],
                    ntu.TRACKED,
                    joints,
                )
            ]
        )
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: int = 30) -> None:
    """Write RGB frames as H.264 with PyAV; the container follows the suffix (``.avi`` is the NTU format)."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), mode="w", format="avi" if Path(path).suffix == ".avi" else None) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _render(cfg: SynthConfig, name: str):
    """RGB frames, uint16 depth frames and NTU skeleton frames of one sample (an NTU name)."""
    sn = ntu.parse_name(name)
    subject, world, n = _performance(cfg, sn.setup, sn.performer, sn.replication, sn.action)
    rig = R.make_rig(np.random.default_rng([cfg.seed, 3, sn.setup, sn.camera]), sn.camera, cfg.placement)
    cam = np.stack([rig.to_camera(p) for p in world])
    kind = B.held_object(sn.action - 1)
    cam, quad = cam[:, :25], (cam[:, 25:] if kind else None)
    rng = np.random.default_rng([cfg.seed, 4, sn.setup, sn.camera, sn.performer, sn.replication, sn.action])
    cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
    background = R.scene_background(
        np.random.default_rng([cfg.seed, 5, sn.setup, sn.camera]), cfg.rgb_size, cfg.clutter
    )
    room = (
        R.room_depth(rig, cfg.depth_size, np.random.default_rng([cfg.seed, 6, sn.setup, sn.camera]))
        if cfg.depth_mask == "roi"
        else None
    )
    distractors = R.make_distractors(rng, cfg.rgb_size, n, subject, cfg.clutter)
    light = R.lighting(rng, n)
    noise = R.sensor_noise(cfg.rgb_size, sigma=cfg.rgb_noise)
    blur = R.motion_blur(
        np.random.default_rng([cfg.seed, 7, sn.setup, sn.camera, sn.performer, sn.replication, sn.action]),
        n,
        cfg.motion_blur,
    )
    depth, rgb = [], []
    for t in range(n):
        q = None if quad is None else quad[t]
        depth.append(R.render_depth(cam[t], cfg.depth_size, rng, room, cfg.roi_margin, q))
        rgb.append(
            R.render_rgb(
                cam[t],
                cfg.rgb_size,
                background,
                subject,
                distractors,
                t,
                light[t],
                noise,
                None if q is None else (kind, q),
                rig.zoom,
                blur[t],
            )
        )
    n_empty = int(rng.integers(1, 4)) if rng.random() < cfg.empty_frame_prob else 0
    body_id = BODY_ID_BASE + int(rng.integers(1, 10_000))
    return rgb, depth, _skeleton_frames(cam, rng, body_id, n_empty, rig.zoom)


def render_sample(cfg: SynthConfig, root: Path, name: str) -> str:
    """Render and write one sample in the layout of ``cfg.layout`` (its last file is the completion marker)."""
    if cfg.layout != "ntu":
        from modistill.synthetic.multiview import write_multiview_sample

        return write_multiview_sample(cfg, root, name, _render)
    layout = ntu.NtuLayout(root)
    if layout.skeleton(name).exists():
        return "skipped"
    rgb_frames, depth_frames, skel = _render(cfg, name)
    depth_dir = layout.depth_dir(name)
    tmp_dir = depth_dir.with_name(depth_dir.name + ".tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    for t, depth in enumerate(depth_frames):
        cv2.imwrite(str(tmp_dir / ntu.DEPTH_PATTERN.format(t + 1)), depth, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    shutil.rmtree(depth_dir, ignore_errors=True)
    os.replace(tmp_dir, depth_dir)
    rgb_path = layout.rgb(name)
    tmp_rgb = rgb_path.with_name(rgb_path.stem + ".tmp.avi")
    write_video(tmp_rgb, rgb_frames)
    os.replace(tmp_rgb, rgb_path)
    tmp_skel = layout.skeleton(name).with_suffix(".tmp")
    ntu.write_skeleton(tmp_skel, skel)
    os.replace(tmp_skel, layout.skeleton(name))
    return "written"


def _render_one(args) -> str:
    cfg, root, name = args
    return render_sample(cfg, root, name)


def _check_same_settings(path: Path, meta: dict) -> None:
    """Resuming into a tree written with other settings would mix two datasets under one description: refused. A
    setting the earlier tree does not record is the generator's default, which it was made with."""
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        raise UserError(f"{path}: unreadable; delete the folder to write the synthetic tree again") from None
    old = json.loads(json.dumps(asdict(SynthConfig()))) | old
    diff = [f"{k} {old.get(k)!r} → {v!r}" for k, v in meta.items() if old.get(k) != v]
    if diff:
        raise UserError(
            f"{path.parent}: holds a synthetic tree made with other settings ({'; '.join(diff)}); delete it or "
            "write to another folder"
        )


def generate(cfg: SynthConfig, out_dir: str | Path, workers: int = 1, show_progress: bool = True) -> list[str]:
    """Write the dataset under ``out_dir`` (resumable: complete samples are skipped). Returns the sample names."""
    cfg.validate()
    root = Path(out_dir)
    for sub in (ntu.RGB_SUBDIR, ntu.DEPTH_SUBDIR, ntu.SKELETON_SUBDIR) if cfg.layout == "ntu" else ():
        (root / sub).mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    names = cfg.names()
    meta = asdict(cfg) | {"class_names": B.class_names(cfg.classes), "format": cfg.layout, "samples": len(names)}
    _check_same_settings(root / "synth.json", json.loads(json.dumps(meta)))
    atomic_write_text(root / "synth.json", json.dumps(meta, indent=2))
    jobs = [(cfg, root, n) for n in names]
    for _ in progress(
        run_parallel(_render_one, jobs, workers), total=len(jobs), desc="synth", unit="video", disable=not show_progress
    ):
        pass
    return names

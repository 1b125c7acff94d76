"""``modistill prepare ntu``: an NTU RGB+D tree (or the synthetic benchmark's) into a cache, with the engine of
:mod:`modistill.data.prepare`: a skeleton pass, the camera fits, then a clip pass that hands each video's aligned
crops to the modalities' encoders.

Alignment per video from its skeleton; a video without a usable skeleton, or whose own fit is implausible, takes
its camera's fit (the per-axis median of that camera's per-video fits, over every finished video, also on a
resumed prepare), and its record says so. The whole prepare holds the cache's lock.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from modistill.data import ntu, video
from modistill.data.align import Alignment, estimate_alignment, fit_camera_alignment, implausible, intersection_crop
from modistill.data.cache import (
    clean_stale,
    finished_record,
    load_manifest,
    make_cache_dir,
    open_cache,
    os_reason,
    prepare_lock,
    write_clip,
)
from modistill.data.encode import crop_resize, depth_range
from modistill.data.modalities import Keypoints, Material, encode_clip
from modistill.data.options import PrepareOptions
from modistill.data.person_box import joint_box
from modistill.data.prepare import prepare_pool, process_videos
from modistill.data.splits import BENCHMARKS
from modistill.errors import DataError, UserError
from modistill.utils.io import atomic_write_text, read_json
from modistill.utils.progress import progress, run_parallel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Scan:
    """Pass 1's job: one video's skeleton."""

    root: Path
    name: str


@dataclass(frozen=True)
class _Clip:
    """Pass 2's job: one video with its alignment (own or its camera's), the notes so far and its person box."""

    root: Path
    cache: Path
    name: str
    alignment: dict
    skeleton_frames: int | None
    note: str | None
    options: PrepareOptions
    person: dict | None


def _scan_alignment(job: _Scan) -> dict:
    """Pass 1: read the skeleton and estimate the per-video alignment."""
    name = job.name
    layout = ntu.NtuLayout(job.root)
    try:
        frames = ntu.read_skeleton(layout.skeleton(name))
    except DataError as e:
        return {"name": name, "alignment": None, "skeleton_error": e.problem, "skeleton_frames": None}
    dropped = ntu.drop_impossible_joints(frames)
    al = estimate_alignment(frames)
    return {
        "name": name,
        "alignment": al.to_dict() if al else None,
        "skeleton_error": None if al else "no well-tracked joints",
        "skeleton_frames": len(frames),
        "skeleton_note": dropped,
        "person_box": joint_box(frames),
    }


def _scan_crashed(job: _Scan) -> dict:
    return {
        "name": job.name,
        "alignment": None,
        "skeleton_error": "worker crashed reading the skeleton",
        "skeleton_frames": None,
        "person_box": None,
    }


def _job_name(job: _Clip) -> str:
    return job.name


def _process(job: _Clip) -> dict:
    """Pass 2: one video → aligned crops → ``clips/<name>.npy``. Never raises for bad data: returns a record."""
    name, al_dict, skel_frames, opts, person = job.name, job.alignment, job.skeleton_frames, job.options, job.person
    layout = ntu.NtuLayout(job.root)
    rec: dict[str, Any] = {"name": name, "status": "failed", "reason": None, "alignment": al_dict}
    try:
        al = Alignment.from_dict(al_dict)
        present = layout.depth_numbers(name)
        if not present:
            raise DataError(layout.depth_dir(name), "no MDepth-*.png frames")
        n_depth = present[-1]
        rgb, idx, n_rgb = video.read_rgb_evenly(layout.rgb(name), opts.frames, limit=n_depth)
        n = min(n_rgb, n_depth)
        rec.update(
            rgb_frames=n_rgb, depth_frames=n_depth, skeleton_frames=skel_frames, fps=video.frame_rate(layout.rgb(name))
        )
        if n < opts.frames:
            short = layout.rgb(name) if n_rgb <= n_depth else layout.depth_dir(name)
            raise DataError(
                short, f"only {n} usable frames (rgb {n_rgb}, depth {n_depth}), fewer than the {opts.frames} sampled"
            )
        notes = [job.note] if job.note else []
        if n_rgb != n_depth or (skel_frames is not None and skel_frames != n_rgb):
            notes.append(
                f"frame counts differ (rgb {n_rgb}, depth {n_depth}, skeleton {skel_frames}); using the first {n}"
            )
        numbers, missing = _nearest_present([int(i) + 1 for i in idx], present)
        if missing:
            notes.append(f"depth frames {missing} missing, nearest present frames used")
        depth = [ntu.read_depth(layout.depth_frame(name, k)) for k in numbers]
        other = sorted({d.shape for d in depth[1:] if d.shape != depth[0].shape})
        if other:
            h, w = depth[0].shape
            depth = [d if d.shape == (h, w) else cv2.resize(d, (w, h), interpolation=cv2.INTER_NEAREST) for d in depth]
            notes.append(f"depth frames of other sizes {[f'{x}x{y}' for y, x in other]} rescaled to {w}x{h}")
        far_out = ntu.drop_impossible_depth(depth)
        if far_out:
            notes.append(far_out)
        rgb_wh, depth_wh = (rgb[0].shape[1], rgb[0].shape[0]), (depth[0].shape[1], depth[0].shape[0])
        if opts.crop == "person":
            assert person is not None
            crop = _person_crop(al, person["box"], rgb_wh, depth_wh, opts.person_padding, layout.skeleton(name))
            rec["person_box"] = person
            rec["crop_depth"] = [round(v, 2) for v in crop.depth]
            if person.get("note"):
                notes.append(person["note"])
        else:
            crop = intersection_crop(al, rgb_wh, depth_wh)
        near, far = depth_range(depth)
        material = Material(
            layout.rgb(name),
            opts,
            np.stack([crop_resize(f, crop.rgb, opts.size) for f in rgb]),
            [int(i) for i in idx],
            depth=np.stack([crop_resize(d, crop.depth, opts.size, nearest=True) for d in depth]),
            depth_range=(near, far),
            keypoints=lambda: _skeleton_keypoints(layout.skeleton(name), idx, crop.rgb, rgb_wh, opts.size),
        )
        out, encoded = encode_clip(material, opts.modalities)
        notes += encoded
        rec.update(
            status="ok",
            reason="; ".join(notes) or None,
            frames=idx.tolist(),
            crop_rgb=[round(v, 2) for v in crop.rgb],
            rgb_size=[rgb[0].shape[1], rgb[0].shape[0]],
            depth_mm=[near, far],
        )
        write_clip(job.cache, name, out, rec)
    except (DataError, ValueError, OSError) as e:
        rec["status"] = "failed"
        rec["reason"] = str(e).splitlines()[0] if str(e) else type(e).__name__
    return rec


def _person_crop(
    al: Alignment,
    box: list[float],
    rgb_wh: tuple[int, int],
    depth_wh: tuple[int, int],
    padding: float,
    skeleton: Path,
):
    """The person crop (:mod:`modistill.data.person_box`) of a tight box given as fractions of the frame, and the
    same region in depth through the video's fit."""
    from modistill.data.align import person_crop
    from modistill.data.person_box import square_box

    px = [v * rgb_wh[i % 2] for i, v in enumerate(box)]
    sq = square_box(px, rgb_wh, padding)
    if sq is None:
        raise DataError(skeleton, f"the joints' box {[round(v) for v in px]} leaves no person crop in the frame")
    return person_crop(al, sq, rgb_wh, depth_wh)


def _skeleton_keypoints(
    skeleton: Path, idx: np.ndarray, box: tuple[float, float, float, float], rgb_size: tuple[int, int], size: int
) -> Keypoints:
    """The bodies of the sampled frames from the skeleton's colour joint coordinates (joints that are not tracked
    left out), in the pixels of the clip cut by the RGB crop ``box``."""
    from modistill.data.align import COLOR_REF
    from modistill.data.pose import NTU25, to_clip_pixels

    try:
        frames = ntu.read_skeleton(skeleton)
    except DataError as e:
        return Keypoints([], NTU25, f"skeleton unusable ({e.problem})")
    ntu.drop_impossible_joints(frames)  # the skeleton pass noted them in the record
    scale = np.array([rgb_size[0] / COLOR_REF[0], rgb_size[1] / COLOR_REF[1]])
    out = []
    for i in idx:
        drawn = []
        for b in frames[int(i)] if int(i) < len(frames) else []:
            xy = b.joints[:, 5:7] * scale
            xy[(b.joints[:, 11] == 0) | ~np.isfinite(xy).all(1)] = np.nan
            drawn.append(to_clip_pixels(xy, box, size))
        out.append(drawn)
    return Keypoints(out, NTU25)


def _nearest_present(wanted: list[int], present: list[int]) -> tuple[list[int], list[int]]:
    """Each wanted frame number, or the nearest present one when its file is missing; and the missing ones."""
    arr = np.asarray(present)
    out, missing = [], []
    for w in wanted:
        k = int(np.searchsorted(arr, w))
        if k < len(arr) and arr[k] == w:
            out.append(w)
            continue
        missing.append(w)
        near = [arr[j] for j in (k - 1, k) if 0 <= j < len(arr)]
        out.append(int(min(near, key=lambda v: (abs(v - w), v))))
    return out, missing


def _class_names(root: Path, n_classes: int) -> list[str]:
    synth = root / "synth.json"
    if not synth.exists():
        return [f"A{a:03d}" for a in range(1, n_classes + 1)]
    names = read_json(synth, "regenerate the synthetic tree with `modistill synth`").get("class_names")
    if not isinstance(names, list) or not 1 <= len(names) <= n_classes:
        raise UserError(
            f"{synth}: needs a list of 1 to {n_classes} class_names; regenerate the tree with `modistill synth`"
        )
    return [str(n) for n in names]


def prepare_ntu(root: str | Path, out: str | Path, opts: PrepareOptions, show_progress: bool = True) -> dict:
    """Build or resume a cache from an NTU RGB+D tree. Returns summary counts and throughput."""
    opts.validate()
    root, cache = Path(root), Path(out)
    layout = ntu.NtuLayout(root)
    names, bad_files = layout.sample_names()
    n_classes = BENCHMARKS[opts.benchmark]
    class_names = _class_names(root, n_classes)
    make_cache_dir(cache)
    with prepare_lock(cache):
        open_cache(
            cache,
            opts.settings("ntu"),
            class_names,
            root,
            "synthetic" if (root / "synth.json").exists() else "ntu",
        )
        stale = clean_stale(cache)
        if stale:
            log.info("prepare: removed %d temporary file(s) of an interrupted run", stale)
        records = load_manifest(cache)
        for f, reason in bad_files:
            records[f] = {"name": f, "status": "skipped", "reason": reason}
        todo, unused = [], 0
        for n in names:
            action = ntu.parse_name(n).action
            if action > len(class_names):  # the benchmark's actions, or the synthetic tree's own class list
                where = opts.benchmark if len(class_names) == n_classes else "the tree's class list"
                records[n] = {
                    "name": n,
                    "status": "skipped",
                    "reason": f"action A{action:03d} is outside {where} ({len(class_names)} actions)",
                }
                unused += 1
                continue
            rec = finished_record(cache, n)
            if rec is not None:
                records[n] = rec
            else:
                todo.append(n)
        log.info(
            "prepare: %d videos, %d already done, %d outside the class list, %d to do",
            len(names),
            len(names) - len(todo) - unused,
            unused,
            len(todo),
        )
        t0 = time.time()

        # One pool for both passes; its workers give their video decoders cores // workers threads each.
        with prepare_pool(opts, len(todo)) as pool:
            scans = {}
            scan_jobs = [_Scan(root, n) for n in todo]
            for r in progress(
                run_parallel(_scan_alignment, scan_jobs, opts.workers, pool=pool, on_crash=_scan_crashed),
                total=len(todo),
                desc="skeletons",
                unit="video",
                disable=not show_progress,
            ):
                scans[r["name"]] = r
            jobs = _clip_jobs(root, cache, todo, scans, records, opts)
            summary = process_videos(
                _process, jobs, _job_name, cache, records, len(names), opts, show_progress, t0, pool
            )
    sources: dict[str, int] = defaultdict(int)
    for r in records.values():
        if r["status"] == "ok" and r.get("alignment"):
            sources["replaced by camera fit" if r["alignment"].get("replaced") else r["alignment"]["source"]] += 1
    summary["alignment"] = dict(sources)
    return summary


def _camera_key(name: str) -> str:
    s = ntu.parse_name(name)
    return f"S{s.setup:03d}C{s.camera:03d}"


def _clip_jobs(
    root: Path, cache: Path, todo: list[str], scans: dict[str, dict], records: dict[str, dict], opts: PrepareOptions
) -> list[_Clip]:
    """Fit every camera from the own alignments of all its videos, finished earlier or scanned now; one job per
    video with an alignment (its own, or its camera's when it has none or its own is implausible), a failed
    record for the others."""
    own: dict[str, Alignment] = {}
    for name, r in list(records.items()) + [(n, scans[n]) for n in todo]:
        al = r.get("alignment")
        if al and al.get("source") == "video" and name[:1] == "S":
            own[name] = Alignment.from_dict(al)
    by_cam: dict[str, list[Alignment]] = defaultdict(list)
    for name, al in own.items():
        by_cam[_camera_key(name)].append(al)
    fits, refused = {}, {}
    for key in sorted({_camera_key(n) for n in todo} | set(by_cam)):
        fit, why = fit_camera_alignment(by_cam.get(key, []))
        if fit is None:
            refused[key] = why
        else:
            fits[key] = fit
    try:
        atomic_write_text(
            cache / "camera_fits.json", json.dumps(fits | {k: {"refused": v} for k, v in refused.items()}, indent=2)
        )
    except OSError as e:
        raise UserError(f"{cache / 'camera_fits.json'}: cannot write ({os_reason(e)}); free space and rerun") from None
    people = _camera_person_boxes(todo, scans, records) if opts.crop == "person" else {}
    jobs = []
    for n in todo:
        r, key = scans[n], _camera_key(n)
        person = None
        if opts.crop == "person":
            person = _video_person_box(n, r, people.get(key, []))
            if person is None:
                records[n] = _failed(n, f"no body in any skeleton frame and no other {key} video has one for a box")
                continue
        al = r["alignment"]
        note: str | None = None
        cam = fits.get(key)
        if al is not None and cam is not None:
            problem = implausible(Alignment.from_dict(al), cam)
            if problem:
                note = f"aligned with the {key} camera fit ({cam['videos']} videos): {problem}"
                al = cam | {"replaced": {k: al[k] for k in ("scale", "offset_x", "offset_y")}}
        elif al is None and cam is not None:
            note = (
                f"aligned with the {key} camera fit ({cam['videos']} videos): skeleton unusable ({r['skeleton_error']})"
            )
            al = cam
        elif al is None:
            records[n] = _failed(
                n, f"skeleton unusable ({r['skeleton_error']}) and no camera fit for {key}: {refused[key]}"
            )
            continue
        if note:
            log.info("%s: %s", n, note)
        if r.get("skeleton_note"):
            note = "; ".join(filter(None, [r["skeleton_note"], note]))
        jobs.append(_Clip(root, cache, n, al, r["skeleton_frames"], note, opts, person))
    return jobs


def _failed(name: str, reason: str) -> dict:
    return {"name": name, "status": "failed", "reason": reason}


def _camera_person_boxes(todo: list[str], scans: dict[str, dict], records: dict[str, dict]) -> dict[str, list]:
    """Per camera, the own joint boxes of its videos (finished earlier or scanned now): the fallback of a video
    with no body in its skeleton."""
    out: dict[str, list] = defaultdict(list)
    for name, r in list(records.items()) + [(n, scans[n]) for n in todo]:
        box = r.get("person_box")
        if isinstance(box, dict):  # a finished record: {box, source, note}
            box = box["box"] if box.get("source") == "skeleton" else None
        if box and name[:1] == "S":
            out[_camera_key(name)].append(box)
    return out


def _video_person_box(name: str, scan: dict, camera_boxes: list) -> dict | None:
    """The tight person box of one video (fractions of the frame) and where it comes from: its own joints, or
    its camera's median box when no frame has a body (noted); None when neither exists."""
    from modistill.data.person_box import median_box

    if scan.get("person_box"):
        return {"box": scan["person_box"], "source": "skeleton"}
    if not camera_boxes:
        return None
    key = _camera_key(name)
    return {
        "box": [round(v, 6) for v in median_box(camera_boxes)],
        "source": "camera median",
        "note": f"person box: no body in any skeleton frame; the {key} median box of {len(camera_boxes)} videos",
    }

"""``modistill prepare``: aligned, cropped, resized RGB and encoded depth frames per video, in a compact cache.

Cache layout (``OUT``)::

    cache.json            size, frames, depth encoding, classes (a cache never mixes settings)
    manifest.json         every video seen: status (ok / failed / skipped), reason, frame counts, alignment
    camera_fits.json      per-(setup, camera) robust alignment, the fallback for videos without skeletons
    clips/<name>.npy      uint8 [2, K, S, S, 3]: RGB and depth, K evenly spaced frames

Per-video ``.npy`` files are written atomically (temp file + rename), so a killed run never leaves a partial
entry and a rerun skips finished videos. Uncompressed uint8 reads with one ``mmap`` and no decoding, which keeps
the loader far ahead of the training step (measured in ``benchmarks/``).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modistill.data import ntu
from modistill.data.align import (
    Alignment,
    estimate_alignment,
    fit_camera_alignment,
    intersection_crop,
    joint_points,
)
from modistill.data.encode import DEPTH_ENCODINGS, crop_resize, depth_range, encode_depth
from modistill.data.splits import BENCHMARKS
from modistill.errors import DataError, UserError
from modistill.utils.io import atomic_write, atomic_write_text
from modistill.utils.progress import progress, run_parallel, worker_pool

log = logging.getLogger(__name__)
CACHE_VERSION = 1
FIT_SAMPLE = 200  # joints per video kept for the per-camera fit


@dataclass
class PrepareOptions:
    size: int = 224
    frames: int = 5
    depth_encoding: str = "jet"
    benchmark: str = "ntu60"
    workers: int = 1

    def validate(self) -> None:
        if self.size < 16:
            raise UserError(f"prepare: --size must be at least 16, got {self.size}")
        if self.frames < 1:
            raise UserError(f"prepare: --frames must be at least 1, got {self.frames}")
        if self.depth_encoding not in DEPTH_ENCODINGS:
            raise UserError(f"prepare: --depth-encoding must be one of {DEPTH_ENCODINGS}")
        if self.benchmark not in BENCHMARKS:
            raise UserError(f"prepare: --benchmark must be one of {sorted(BENCHMARKS)}")


def clip_path(cache: Path, name: str) -> Path:
    return Path(cache) / "clips" / f"{name}.npy"


def load_manifest(cache: str | Path) -> dict[str, dict]:
    p = Path(cache) / "manifest.json"
    if not p.exists():
        return {}
    try:
        return {r["name"]: r for r in json.loads(p.read_text())["videos"]}
    except (ValueError, KeyError, TypeError):
        raise DataError(p, "corrupt manifest (delete it to rebuild the index; clips are kept)") from None


def load_cache_meta(cache: str | Path) -> dict:
    p = Path(cache) / "cache.json"
    if not p.exists():
        raise UserError(f"{cache}: not a prepared cache (no cache.json); run `modistill prepare` first")
    return json.loads(p.read_text())


def _write_manifest(cache: Path, records: dict[str, dict]) -> None:
    videos = [records[k] for k in sorted(records)]
    counts: dict[str, int] = defaultdict(int)
    for r in videos:
        counts[r["status"]] += 1
    atomic_write_text(cache / "manifest.json", json.dumps({"counts": counts, "videos": videos}, indent=1))


def _scan_alignment(job) -> dict:
    """Pass 1: read the skeleton, estimate the per-video alignment, keep a joint sample for the camera fit."""
    root, name = job
    layout = ntu.NtuLayout(root)
    try:
        frames = ntu.read_skeleton(layout.skeleton(name))
    except DataError as e:
        return {"name": name, "alignment": None, "skeleton_error": e.problem, "skeleton_frames": None,
                "joints": None}
    al = estimate_alignment(frames)
    pts, _ = joint_points(frames)
    if len(pts) > FIT_SAMPLE:
        pts = pts[np.linspace(0, len(pts) - 1, FIT_SAMPLE).astype(int)]
    return {"name": name, "alignment": al.to_dict() if al else None,
            "skeleton_error": None if al else "no well-tracked joints", "skeleton_frames": len(frames),
            "joints": pts}


def _process(job) -> dict:
    """Pass 2: one video → aligned crops → ``clips/<name>.npy``. Never raises for bad data: returns a record."""
    root, cache, name, al_dict, skel_frames, opts = job
    layout = ntu.NtuLayout(root)
    rec = {"name": name, "status": "failed", "reason": None, "alignment": al_dict}
    try:
        al = Alignment(**al_dict)
        present = layout.depth_numbers(name)
        if not present:
            raise DataError(layout.depth_dir(name), "no MDepth-*.png frames")
        n_depth = present[-1]
        rgb, idx, n_rgb = ntu.read_rgb_evenly(layout.rgb(name), opts.frames, limit=n_depth)
        n = min(n_rgb, n_depth)
        rec.update(rgb_frames=n_rgb, depth_frames=n_depth, skeleton_frames=skel_frames)
        if n < opts.frames:
            short = layout.rgb(name) if n_rgb <= n_depth else layout.depth_dir(name)
            raise DataError(short, f"only {n} usable frames (rgb {n_rgb}, depth {n_depth}), fewer than the "
                                   f"{opts.frames} sampled")
        notes = []
        if n_rgb != n_depth or (skel_frames is not None and skel_frames != n_rgb):
            notes.append(f"frame counts differ (rgb {n_rgb}, depth {n_depth}, skeleton {skel_frames}); "
                         f"using the first {n}")
        numbers, missing = _nearest_present([int(i) + 1 for i in idx], present)
        if missing:
            notes.append(f"depth frames {missing} missing, nearest present frames used")
        depth = [ntu.read_depth(layout.depth_frame(name, k)) for k in numbers]
        crop = intersection_crop(al, (rgb[0].shape[1], rgb[0].shape[0]), (depth[0].shape[1], depth[0].shape[0]))
        near, far = depth_range(depth)
        out = np.empty((2, opts.frames, opts.size, opts.size, 3), np.uint8)
        for k in range(opts.frames):
            out[0, k] = crop_resize(rgb[k], crop.rgb, opts.size)
            d = crop_resize(depth[k], crop.depth, opts.size, nearest=True)
            out[1, k] = encode_depth(d, near, far, opts.depth_encoding)
        atomic_write(clip_path(cache, name), lambda p: _save_npy(p, out))
        rec.update(status="ok", reason="; ".join(notes) or None, frames=idx.tolist(),
                   crop_rgb=[round(v, 2) for v in crop.rgb],
                   rgb_size=[rgb[0].shape[1], rgb[0].shape[0]], depth_mm=[near, far])
    except (DataError, ValueError, OSError) as e:
        rec["reason"] = str(e).splitlines()[0] if str(e) else type(e).__name__
    return rec


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


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, arr)


def open_cache(cache: Path, settings: dict, class_names: list[str], source: Path) -> None:
    """Create the cache folder and its ``cache.json``; refuse to resume a cache made with other settings."""
    meta = {"version": CACHE_VERSION, **settings}
    try:
        (cache / "clips").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{cache}: cannot create the cache folder ({e.strerror})") from None
    meta_path = cache / "cache.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        diff = {k: (old.get(k), v) for k, v in meta.items() if old.get(k) != v}
        if diff:
            raise UserError(f"{cache}: existing cache was prepared with other settings {diff}; use another --out")
    meta.update(num_classes=len(class_names), class_names=class_names, root=str(source))
    try:
        atomic_write_text(meta_path, json.dumps(meta, indent=2))
    except OSError as e:
        raise UserError(f"{cache}: cannot write to the cache folder ({e.strerror})") from None


def prepare_ntu(root: str | Path, out: str | Path, opts: PrepareOptions, show_progress: bool = True) -> dict:
    """Build or resume a cache from an NTU RGB+D tree. Returns summary counts and throughput."""
    opts.validate()
    root, cache = Path(root), Path(out)
    layout = ntu.NtuLayout(root)
    names, bad_files = layout.sample_names()
    n_classes = BENCHMARKS[opts.benchmark]
    names = [n for n in names if ntu.parse_name(n).action <= n_classes]
    synth = root / "synth.json"
    class_names = (json.loads(synth.read_text())["class_names"] if synth.exists()
                   else [f"A{a:03d}" for a in range(1, n_classes + 1)])
    open_cache(cache, {"size": opts.size, "frames": opts.frames, "depth_encoding": opts.depth_encoding,
                       "benchmark": opts.benchmark}, class_names, root)

    records = load_manifest(cache)
    for f in bad_files:
        records[f] = {"name": f, "status": "skipped", "reason": "not an NTU sample name (SsssCcccPpppRrrrAaaa_rgb.avi)"}
    todo = []
    for n in names:
        if clip_path(cache, n).exists():  # complete by construction (atomic rename)
            if records.get(n, {}).get("status") != "ok":
                records[n] = {"name": n, "status": "ok", "reason": "kept from an interrupted run"}
        else:
            todo.append(n)
    log.info("prepare: %d videos, %d already done, %d to do", len(names), len(names) - len(todo), len(todo))
    t0 = time.time()

    # One pool for both passes; its workers give their video decoders cores // workers threads each.
    with worker_pool(min(opts.workers, max(len(todo), 1)), ntu.set_decode_threads,
                     (ntu.threads_per_worker(opts.workers),)) as pool:
        scans = {}
        for r in progress(run_parallel(_scan_alignment, [(root, n) for n in todo], opts.workers, pool=pool),
                          total=len(todo), desc="skeletons", unit="video", disable=not show_progress):
            scans[r["name"]] = r
        jobs = _clip_jobs(root, cache, todo, scans, records, opts)
        return process_videos(_process, jobs, cache, records, len(names), opts.workers, show_progress, t0, pool)


def _clip_jobs(root: Path, cache: Path, todo: list[str], scans: dict[str, dict], records: dict[str, dict],
               opts: PrepareOptions) -> list[tuple]:
    """Update the per-camera fits with the new scans; one job per video that has an alignment (the video's own
    or its camera's), a failed record for the others."""
    fits_path = cache / "camera_fits.json"
    fits = json.loads(fits_path.read_text()) if fits_path.exists() else {}
    by_cam: dict[str, list] = defaultdict(list)
    for r in scans.values():
        if r["joints"] is not None and len(r["joints"]):
            s = ntu.parse_name(r["name"])
            by_cam[f"S{s.setup:03d}C{s.camera:03d}"].append(r["joints"])
    for key, pts in by_cam.items():
        fit = fit_camera_alignment(pts)
        if fit is not None:
            fits[key] = fit.to_dict()
    atomic_write_text(fits_path, json.dumps(fits, indent=2))

    jobs = []
    for n in todo:
        r = scans[n]
        al = r["alignment"]
        if al is None:
            s = ntu.parse_name(n)
            al = fits.get(f"S{s.setup:03d}C{s.camera:03d}")
            if al is None:
                records[n] = {"name": n, "status": "failed",
                              "reason": f"skeleton unusable ({r['skeleton_error']}) and no camera fit for "
                                        f"S{s.setup:03d}C{s.camera:03d}"}
                continue
            log.info("%s: skeleton unusable (%s); using the per-camera alignment fit", n, r["skeleton_error"])
        jobs.append((root, cache, n, al, r["skeleton_frames"], opts))
    return jobs


def process_videos(fn, jobs: list, cache: Path, records: dict[str, dict], n_videos: int, workers: int,
                   show_progress: bool, t0: float, pool=None) -> dict:
    """Run ``fn`` over the jobs in parallel (each returns a manifest record), keep the manifest current (every 50
    videos and at the end) and return the summary every prepare command prints. ``pool``: an open
    :func:`worker_pool` to use instead of starting one."""
    done = 0
    decode = (ntu.set_decode_threads, (ntu.threads_per_worker(workers),))
    for rec in progress(run_parallel(fn, jobs, workers, *decode, pool=pool), total=len(jobs), desc="prepare",
                        unit="video", disable=not show_progress):
        records[rec["name"]] = rec
        done += 1
        if done % 50 == 0:
            _write_manifest(cache, records)
    _write_manifest(cache, records)
    elapsed = time.time() - t0
    counts: dict[str, int] = defaultdict(int)
    for r in records.values():
        counts[r["status"]] += 1
    failed = [r for r in records.values() if r["status"] == "failed"]
    for r in failed[:20]:
        log.warning("failed: %s: %s", r["name"], r["reason"])
    return {"videos": n_videos, "processed": len(jobs), "counts": dict(counts), "seconds": elapsed,
            "videos_per_s": len(jobs) / elapsed if elapsed > 0 and jobs else 0.0,
            "failed": [(r["name"], r["reason"]) for r in failed]}


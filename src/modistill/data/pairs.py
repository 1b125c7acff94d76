"""Users' own paired data: a CSV manifest of RGB + privileged-modality videos or frame folders.

Columns (header required): ``id,label,rgb,depth`` and optionally ``subject,view,split``, ``pose`` (a
keypoints JSON file per video, for ``--modalities rgb,depth,pose`` or ``rgb,pose``; format in
:func:`read_keypoints`) and
``x0,y0,x1,y1`` (the tight box around every person over the video, in the RGB frame's pixels, for ``--crop
person``; without it the box is the one around the row's keypoints). Paths are
relative to the CSV's folder. ``rgb``/``depth`` may be a video file (anything PyAV reads), a folder of images or a
glob of images (``clip/*_rgb.jpg``), frames in natural name order. The privileged modality may be 16-bit depth PNGs
(jet- or gray-encoded like NTU depth) or any 8-bit image (IR, optical flow, ...) used as is. ``label`` is a
class index or a class name (names are indexed in sorted order). ``split`` is ``train``/``val``/``test``; it
defines the protocol of the training run.

The two modalities are assumed registered (same camera or already aligned), so both are resized whole to the
network size (``--crop fov``, the default for pairs means the whole frame), or both cut to the same person crop
at the same fractions of their frames (``--crop person``); there is no skeleton alignment.
"""

from __future__ import annotations

import csv
import re
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from modistill.data import video
from modistill.data.cache import (
    clean_stale,
    finished_record,
    make_cache_dir,
    open_cache,
    prepare_lock,
    write_clip,
)
from modistill.data.encode import crop_resize, depth_range
from modistill.data.modalities import Keypoints, Material, encode_clip
from modistill.data.ntu import drop_impossible_depth
from modistill.data.options import PrepareOptions
from modistill.data.pose import LAYOUTS, JointLayout, to_clip_pixels
from modistill.errors import DataError, UserError
from modistill.utils.io import read_text

REQUIRED = ("id", "label", "rgb", "depth")
BOX_COLUMNS = ("x0", "y0", "x1", "y1")
SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


MAX_ID = 200  # characters: the id names the clip file, and file names stop at 255 bytes


def read_pairs_csv(path: str | Path) -> tuple[list[dict], list[str], list[tuple[str, str]]]:
    """Records with absolute paths and integer labels, the class names, and the rows that cannot be used as
    ``(id or "line N", reason)``. A bad header refuses the file; a bad row fails only that row. Messages name the
    file and line. A UTF-8 byte-order mark (Excel's CSV export) is accepted."""
    path = Path(path)
    text = read_text(path, "pairs CSV", encoding="utf-8-sig")
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DataError(path, f"missing column(s) {missing}; need {list(REQUIRED)} (+ subject, view, split)", 1)
    rows, bad = [], []
    seen: set[str] = set()
    for r in reader:
        line = reader.line_num
        rid = (r.get("id") or "").strip()
        key = rid if rid and rid not in seen and len(rid) <= MAX_ID else f"line {line}"
        problem = _row_problem(r, rid, seen)
        if problem:
            bad.append((key, f"{path}:{line}: {problem}"))
            continue
        seen.add(rid)
        rows.append((line, r))
    if not rows and not bad:
        raise DataError(path, "no rows")
    labels = [r["label"].strip() for _, r in rows]
    numeric = all(re.fullmatch(r"[0-9]+", lab) for lab in labels)
    top = max((int(lab) for lab in labels), default=-1) if numeric else -1
    names = [str(i) for i in range(top + 1)] if numeric else sorted(set(labels))
    index = {n: i for i, n in enumerate(names)}
    out = []
    for (_, r), lab in zip(rows, labels, strict=True):
        out.append(
            {
                "id": r["id"].strip(),
                "label": index[str(int(lab)) if numeric else lab],
                "rgb": str(path.parent / r["rgb"].strip()),
                "depth": str(path.parent / r["depth"].strip()),
                "subject": (r.get("subject") or "").strip(),
                "view": (r.get("view") or "").strip(),
                "split": (r.get("split") or "").strip(),
                "pose": str(path.parent / r["pose"].strip()) if (r.get("pose") or "").strip() else None,
                "box": [float(r[c]) for c in BOX_COLUMNS] if (r.get("x0") or "").strip() else None,
            }
        )
    return out, names, bad


def read_keypoints(path: Path) -> tuple[list[list[np.ndarray]], JointLayout]:
    """A video's keypoints: ``{"layout": "coco17" | "ntu25", "frames": [[body, ...], ...]}`` or the bare list
    of frames; a body is one ``[x, y]`` or ``[x, y, score]`` per joint in the RGB frame's pixels (a score <= 0 or
    a null joint: not detected). The layout defaults to the joint count's (17: COCO, 25: NTU). Returns the bodies
    per frame as [J, 2] arrays (NaN where not detected) and the layout."""
    import json

    try:
        data = json.loads(read_text(path, "keypoints file"))
    except ValueError as e:
        raise DataError(path, f"not JSON ({e})") from None
    frames = data.get("frames") if isinstance(data, dict) else data
    if not isinstance(frames, list):
        raise DataError(path, 'needs a list of frames, or {"layout": ..., "frames": [...]}')
    out: list[list[np.ndarray]] = []
    count = None
    for t, bodies in enumerate(frames):
        drawn = []
        for body in bodies if isinstance(bodies, list) else [None]:
            if not isinstance(body, list) or not body:
                raise DataError(path, f"frame {t}: a body must be a list of joints")
            joints = np.full((len(body), 2), np.nan)
            for j, p in enumerate(body):
                if p is None:
                    continue
                if not isinstance(p, list) or len(p) not in (2, 3) or not all(isinstance(v, int | float) for v in p):
                    raise DataError(path, f"frame {t}: joint {j} must be [x, y] or [x, y, score]")
                if len(p) == 2 or p[2] > 0:
                    joints[j] = p[:2]
            count = count or len(body)
            if len(body) != count:
                raise DataError(path, f"frame {t}: a body of {len(body)} joints, another of {count}")
            drawn.append(joints)
        out.append(drawn)
    by_count = {17: "coco17", 25: "ntu25"}.get(count or 0)
    name = data.get("layout") if isinstance(data, dict) and "layout" in data else by_count
    if count is None:
        name = name or "coco17"  # no body in any frame: every pose image is blank whatever the layout
    if name not in LAYOUTS or (count is not None and len(LAYOUTS[name].sides) != count):
        raise DataError(path, f"joints are COCO-17 or NTU-25 (layout coco17 or ntu25), got {count} joints ({name})")
    return out, LAYOUTS[name]


def _row_problem(r: dict, rid: str, seen: set[str]) -> str | None:
    if None in r:
        return "more fields than the header"
    empty = [c for c in REQUIRED if not (r.get(c) or "").strip()]
    if empty:
        return f"no value for {', '.join(empty)}"
    if "/" in rid or rid.startswith(".") or len(rid) > MAX_ID:
        return (
            f"bad id {rid[:40]!r}{'...' if len(rid) > 40 else ''} (no '/', not starting with '.', at most "
            f"{MAX_ID} characters)"
        )
    if rid in seen:
        return f"duplicate id {rid!r}"
    split = (r.get("split") or "").strip()
    if split and split not in SPLITS:
        return f"split must be one of {SPLITS}, got {split!r}"
    box = [(r.get(c) or "").strip() for c in BOX_COLUMNS]
    if any(box):
        try:
            x0, y0, x1, y1 = (float(v) for v in box)
        except ValueError:
            return f"the person box {','.join(BOX_COLUMNS)} needs four numbers, got {box}"
        if not (np.isfinite([x0, y0, x1, y1]).all() and x0 < x1 and y0 < y1):
            return f"the person box needs x0 < x1 and y0 < y1, got {box}"
    return None


def _natural(p: Path) -> list:
    """Sort key that puts frame_2 before frame_10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def _frame_files(src: Path) -> list[Path] | None:
    """Image frames of a folder or a glob pattern (``folder/*_rgb.jpg``) in natural order; None for a video."""
    if "*" in src.name:
        return sorted((p for p in src.parent.glob(src.name) if p.is_file()), key=_natural)
    if src.is_dir():
        return sorted((p for p in src.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural)
    return None


def _count(src: Path) -> int:
    files = _frame_files(src)
    if files is not None:
        return len(files)
    if not src.exists():
        raise DataError(src, "not found")
    return -1  # a video: counted while decoding


def _read(src: Path, k: int, limit: int) -> tuple[list[np.ndarray], int, np.ndarray]:
    """``k`` evenly spaced frames of the first ``limit`` (RGB uint8 for 8-bit images, uint16 for 16-bit), the
    frame count and the indices read."""
    files = _frame_files(src)
    if files is not None:
        idx = video.evenly_spaced(min(len(files), limit), k)
        imgs = []
        for i in idx:
            img = cv2.imread(str(files[i]), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise DataError(files[i], "unreadable image")
            if img.ndim == 3 and img.shape[2] == 4:
                img = img[:, :, :3]
            if img.dtype == np.uint16 and img.ndim == 3:  # 16-bit colour: scale to 8 bits like any viewer
                img = (img // 256).astype(np.uint8)
            if img.dtype == np.uint8:
                img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB if img.ndim == 2 else cv2.COLOR_BGR2RGB)
            imgs.append(img)
        return imgs, len(files), idx
    frames, idx, n = video.read_rgb_evenly(src, k, limit=limit)
    return frames, n, np.asarray(idx)


@dataclass(frozen=True)
class _Job:
    """One row to prepare."""

    row: dict
    cache: Path
    options: PrepareOptions


def _job_name(job: _Job) -> str:
    return job.row["id"]


def _person_box(rec: dict, rgb_shape: tuple, padding: float) -> tuple[tuple[float, float, float, float], dict]:
    """The person crop (pixels) of a row: around its box columns, else around its keypoints over all frames."""
    from modistill.data.person_box import beyond_frame, square_box, tight_box

    h, w = rgb_shape[:2]
    note = None
    if rec["box"] is not None:
        tight, source = rec["box"], "box columns"
        if beyond_frame(np.asarray(tight), (w, h)).any():
            raise DataError(Path(rec["rgb"]), f"its person box {tight} is impossible for a {w}x{h} frame")
    elif rec["pose"] is not None:
        frames, _ = read_keypoints(Path(rec["pose"]))
        note = drop_impossible_keypoints(frames, (w, h))
        pts = [b for bodies in frames for b in bodies]
        found = tight_box(np.concatenate(pts)) if pts else None
        if found is None:
            raise DataError(Path(rec["pose"]), "no keypoint in any frame for a person box")
        tight, source = list(found), "keypoints"
    else:
        raise DataError(Path(rec["rgb"]), "--crop person needs x0,y0,x1,y1 columns or a pose keypoints file")
    sq = square_box(tight, (w, h), padding)
    if sq is None:
        raise DataError(Path(rec["rgb"]), f"its person box {[round(v) for v in tight]} leaves no crop in the frame")
    return sq, {"box": [round(v, 2) for v in tight], "source": source} | ({"note": note} if note else {})


def _cut(img: np.ndarray, frac: tuple[float, float, float, float] | None, size: int, nearest: bool = False):
    """The whole frame resized (``frac`` None), or the region at these fractions of the frame cut and resized."""
    if frac is None:
        return cv2.resize(img, (size, size), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)
    h, w = img.shape[:2]
    return crop_resize(img, (frac[0] * w, frac[1] * h, frac[2] * w, frac[3] * h), size, nearest)


def _process(job: _Job) -> dict:
    rec, size, frames = job.row, job.options.size, job.options.frames
    out_rec = {k: rec[k] for k in ("label", "subject", "view", "split")} | {
        "name": rec["id"],
        "status": "failed",
        "reason": None,
    }
    try:
        rgb_src, dep_src = Path(rec["rgb"]), Path(rec["depth"])
        n_rgb_files, n_dep_files = _count(rgb_src), _count(dep_src)
        if 0 in (n_rgb_files, n_dep_files):
            raise DataError(rgb_src if n_rgb_files == 0 else dep_src, "no image frames")
        limit = min([c for c in (n_rgb_files, n_dep_files) if c >= 0], default=10**9)
        rgb, n_rgb, idx = _read(rgb_src, frames, limit)
        dep, n_dep, _ = _read(dep_src, frames, min(limit, n_rgb))
        if n_rgb != n_dep:
            if min(n_rgb, limit) != min(n_rgb, n_dep):  # the RGB was sampled over another length: sample again
                rgb, n_rgb, idx = _read(rgb_src, frames, min(n_rgb, n_dep))
            out_rec["reason"] = f"frame counts differ (rgb {n_rgb}, privileged {n_dep}); using the common length"
        frac = box = None
        if job.options.crop == "person":
            box, out_rec["person_box"] = _person_box(rec, rgb[0].shape, job.options.person_padding)
            _add_note(out_rec, out_rec["person_box"].get("note"))
            h, w = rgb[0].shape[:2]
            frac = (box[0] / w, box[1] / h, box[2] / w, box[3] / h)
            out_rec.update(crop_rgb=[round(v, 2) for v in box], rgb_size=[w, h])
        wide = [d.dtype == np.uint16 for d in dep]
        if any(wide) and not all(wide):
            raise DataError(dep_src, "mixes 16-bit depth and 8-bit images")
        depth = image = depth_mm = None
        if all(wide):
            _add_note(out_rec, drop_impossible_depth(dep))
            depth_mm = depth_range(dep)
            depth = np.stack([_cut(d, frac, size, nearest=True) for d in dep])
        else:
            image = np.stack([_cut(d, frac, size) for d in dep])
        material = Material(
            rgb_src,
            job.options,
            np.stack([_cut(f, frac, size) for f in rgb]),
            [int(i) for i in idx],
            depth=depth,
            depth_range=depth_mm,
            image=image,
            keypoints=None if rec["pose"] is None else lambda: _keypoints(rec, idx, rgb[0].shape, size, box, out_rec),
            missing={
                "keypoints": "no keypoints file in the pose column",
                "depth": "the depth column holds 8-bit images, not 16-bit depth",
            },
        )
        arr, notes = encode_clip(material, job.options.modalities)
        for n in notes:
            _add_note(out_rec, n)
        fps = None if _frame_files(rgb_src) is not None else video.frame_rate(rgb_src)  # image folders have none
        out_rec.update(status="ok", rgb_frames=n_rgb, depth_frames=n_dep, fps=fps)
        write_clip(job.cache, rec["id"], arr, out_rec)
    except (DataError, ValueError, OSError) as e:
        out_rec["status"] = "failed"
        out_rec["reason"] = str(e).splitlines()[0] if str(e) else type(e).__name__
    return out_rec


def _keypoints(rec: dict, idx: np.ndarray, rgb_shape: tuple, size: int, box, out_rec: dict) -> Keypoints:
    """The bodies of the sampled frames from the row's keypoints file, in the pixels of the clip cut from the RGB
    frame's crop (``box``, pixels; None: the whole frame); impossible keypoints are dropped and noted."""
    frames, layout = read_keypoints(Path(rec["pose"]))
    h, w = rgb_shape[:2]
    _add_note(out_rec, drop_impossible_keypoints(frames, (w, h)))
    region = box or (0.0, 0.0, float(w), float(h))
    return Keypoints(
        [[to_clip_pixels(b, region, size) for b in (frames[i] if i < len(frames) else [])] for i in idx], layout
    )


def _add_note(rec: dict, note: str | None) -> None:
    """Append ``note``'s parts to the record's reason, each said once (the person box and the pose images read the
    same keypoints, and note the same dropped ones)."""
    if note:
        parts = (rec["reason"] or "").split("; ") + note.split("; ")
        rec["reason"] = "; ".join(dict.fromkeys(x for x in parts if x))


def drop_impossible_keypoints(frames: list[list[np.ndarray]], frame_wh: tuple[int, int]) -> str | None:
    """Keypoints no camera can produce (:func:`~modistill.data.person_box.beyond_frame`: a person partly out of view
    is kept) become NaN, in place; a note counting them, None when there are none."""
    from modistill.data.person_box import beyond_frame

    n = 0
    for bodies in frames:
        for b in bodies:
            given = ~np.isnan(b).all(1)
            bad = given & beyond_frame(b, frame_wh)
            n += int(bad.sum())
            b[bad] = np.nan
    return f"pose: {n} keypoint(s) with impossible coordinates dropped" if n else None


def prepare_pairs(manifest: str | Path, out: str | Path, opts: PrepareOptions, show_progress: bool = True) -> dict:
    """Build or resume a cache (same format as ``prepare ntu``) from a pairs CSV. Every modality reads the row's
    files: depth the ``depth`` column (16-bit depth, or 8-bit images stored as given), pose the ``pose`` column's
    keypoint files. ``opts.crop``: ``fov`` stores whole frames (the two modalities are registered), ``person`` the
    person crop of each row's box columns or keypoints."""
    from modistill.data.prepare import process_videos

    opts.validate()
    records, class_names, bad_rows = read_pairs_csv(manifest)
    cache = Path(out)
    make_cache_dir(cache)
    with prepare_lock(cache):
        open_cache(cache, opts.settings("pairs") | {"benchmark": "pairs"}, class_names, Path(manifest), "pairs")
        clean_stale(cache)
        done: dict[str, dict] = {}  # rebuilt from the CSV: finished rows come back from their clips' records
        for key, reason in bad_rows:
            done[key] = {"name": key, "status": "failed", "reason": reason}
        todo = []
        for r in records:
            rec = finished_record(cache, r["id"])
            if rec is not None:  # the CSV's label, subject, view and split win over the stored ones
                done[r["id"]] = rec | {k: r[k] for k in ("label", "subject", "view", "split")}
            else:
                todo.append(_Job(r, cache, opts))
        return process_videos(_process, todo, _job_name, cache, done, len(records), opts, show_progress, time.time())


def split_pairs(records: dict[str, dict]) -> dict[str, list[str]]:
    """Train/val/test from the manifest's split column."""
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    unassigned = []
    for name, r in sorted(records.items()):
        if r["status"] != "ok":
            continue
        if r.get("split") in SPLITS:
            out[r["split"]].append(name)
        else:
            unassigned.append(name)
    if unassigned:
        raise UserError(
            f"{len(unassigned)} videos of the pairs manifest have no split (e.g. {unassigned[0]}); "
            "fill the split column with train/val/test"
        )
    return out

"""The prepared cache: one format for every dataset, read and written only here.

Layout (``OUT``)::

    cache.json            settings (size, frames, depth encoding, benchmark), classes (a cache never mixes settings)
    manifest.json         index of every file seen: status (ok / failed / skipped), reason, frames, alignment
    clips/<name>.npy      uint8 [M, K, S, S, 3]: the M modalities of cache.json (default RGB and encoded depth),
                          K evenly spaced frames
    clips/<name>.json     that clip's record (crop, alignment, frames), written *before* the clip
    camera_fits.json      NTU only: per-(setup, camera) alignment fits, the fallback for videos without skeletons
    .prepare.lock         held (flock) by the prepare that is writing the cache

Every file is written atomically (temp file + rename). Since a clip's record is in place before the clip, a clip
never exists without its complete record, whenever the process is killed: a resumed prepare takes finished
videos from their clips and records, and only rewrites the manifest index. Uncompressed uint8 reads with one
``mmap`` and no decoding, which keeps the loader far ahead of the training step (measured in ``benchmarks/``).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from modistill.errors import DataError, UserError
from modistill.utils.io import atomic_write, atomic_write_text, read_json
from modistill.utils.lock import exclusive_lock, flock_or_refuse

CACHE_VERSION = 1
LOCK = ".prepare.lock"


def clip_path(cache: str | Path, name: str) -> Path:
    return Path(cache) / "clips" / f"{name}.npy"


def record_path(cache: str | Path, name: str) -> Path:
    return Path(cache) / "clips" / f"{name}.json"


class ClipError(UserError):
    """A cached clip that cannot be used. One message argument, so that a DataLoader worker can re-raise it."""


def load_clip(cache: str | Path, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A clip, memory-mapped; a one-line error naming it and the remedy when it is missing or damaged."""
    p = clip_path(cache, name)
    redo = "delete it and rerun the same `modistill prepare` to redo it"
    try:
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise ClipError(f"{p}: clip missing; rerun the same `modistill prepare` to redo it") from None
    except (ValueError, OSError, EOFError) as e:
        with open(p, "rb") as f:
            is_npy = f.read(6) == b"\x93NUMPY"
        why = (
            "not a NumPy array file"
            if not is_npy
            else "truncated"
            if "length is greater" in str(e) or isinstance(e, EOFError)
            else "holds Python objects, not pixels"
            if "object" in str(e).lower() or "pickle" in str(e).lower()
            else "damaged header"
        )
        raise ClipError(f"{p}: damaged clip ({why}); {redo}") from None
    if arr.dtype != np.uint8 or (shape is not None and arr.shape != shape):
        raise ClipError(
            f"{p}: clip is {arr.dtype} {list(arr.shape)}, this cache holds uint8 "
            f"{list(shape) if shape else '[M, K, S, S, 3]'}; {redo}"
        )
    return arr


def load_cache_meta(cache: str | Path) -> dict:
    p = Path(cache) / "cache.json"
    if not p.exists():
        raise UserError(f"{cache}: not a prepared cache (no cache.json); run `modistill prepare` first")
    meta = read_json(p, "prepare the cache again into a new --out")
    missing = [
        k for k in ("size", "frames", "depth_encoding", "benchmark", "num_classes", "class_names") if k not in meta
    ]
    if missing:
        raise UserError(f"{p}: lacks {', '.join(missing)}; prepare the cache again into a new --out")
    return meta


def load_manifest(cache: str | Path) -> dict[str, dict]:
    p = Path(cache) / "manifest.json"
    if not p.exists():
        return {}
    try:
        return {r["name"]: r for r in json.loads(p.read_text())["videos"]}
    except (ValueError, KeyError, TypeError):
        raise DataError(
            p,
            "corrupt manifest (delete it and rerun the same `modistill prepare`: the index is "
            "rebuilt from the clips' records)",
        ) from None


def write_manifest(cache: Path, records: dict[str, dict]) -> None:
    """The index of every file seen; a failed write (disk full) is one line, and rerunning rebuilds it."""
    videos = [records[k] for k in sorted(records)]
    counts: dict[str, int] = defaultdict(int)
    for r in videos:
        counts[r["status"]] += 1
    try:
        atomic_write_text(cache / "manifest.json", json.dumps({"counts": counts, "videos": videos}, indent=1))
    except OSError as e:
        raise UserError(
            f"{cache / 'manifest.json'}: cannot write the index ({os_reason(e)}); the clips are "
            f"kept, free space and rerun the same command"
        ) from None


def os_reason(e: OSError) -> str:
    """Readable wording of a write failure (numpy reports a full disk as 'N requested and M written')."""
    if e.errno == errno.ENOSPC or "requested and" in str(e):
        return "no space left on device"
    return e.strerror or str(e).splitlines()[0]


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, arr)


def write_clip(cache: Path, name: str, clip: np.ndarray, record: dict) -> None:
    """The record, then the clip, each atomically: a clip on disk always has its complete record."""
    try:
        atomic_write_text(record_path(cache, name), json.dumps(record))
        atomic_write(clip_path(cache, name), lambda p: _save_npy(p, clip))
    except OSError as e:
        raise OSError(e.errno or errno.ENOSPC, f"cannot write the clip: {os_reason(e)}") from None


def finished_record(cache: Path, name: str) -> dict | None:
    """The record of a finished video (its clip exists), or None when it has to be (re)done."""
    if not clip_path(cache, name).exists():
        return None
    p = record_path(cache, name)
    try:
        rec = json.loads(p.read_text())
    except FileNotFoundError:  # a cache written before records travelled with clips
        return {"name": name, "status": "ok", "reason": "kept from an interrupted run (no record)"}
    except (OSError, ValueError):
        return None  # a damaged record: prepare the video again
    return rec if isinstance(rec, dict) and rec.get("status") == "ok" else None


def clean_stale(cache: Path) -> int:
    """Remove temporary files of writes cut short by a kill (only while holding the lock)."""
    n = 0
    for folder in (cache, cache / "clips"):
        for p in folder.glob(".*.tmp"):
            p.unlink(missing_ok=True)
            n += 1
    return n


@contextmanager
def prepare_lock(cache: Path) -> Iterator[None]:
    """Exclusive use of the cache for the whole prepare; a second prepare is refused with the owner's pid."""
    with exclusive_lock(
        cache / LOCK,
        f"{cache}: in use by another prepare (pid {{pid}}); wait for it to finish or use another --out",
        f"{cache}: cannot write to the cache folder",
    ):
        yield


def check_not_preparing(cache: str | Path) -> None:
    """Refuse a cache that a prepare is still writing (training on it would see a partial, changing set)."""
    path = Path(cache) / LOCK
    if not path.exists():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        flock_or_refuse(
            fd,
            fcntl.LOCK_SH,
            path,
            f"{cache}: a prepare is still running on this cache (pid {{pid}}); train when it has finished",
        )
    finally:
        os.close(fd)


def open_cache(cache: Path, settings: dict, class_names: list[str], source: Path, origin: str) -> None:
    """Create the cache folder and its ``cache.json``; refuse to resume a cache made with other settings. Call
    inside :func:`prepare_lock`. ``origin`` (synthetic, ntu or pairs) travels on to the run and the model card."""
    meta = {"version": CACHE_VERSION, **settings}
    make_cache_dir(cache / "clips")
    meta_path = cache / "cache.json"
    if meta_path.exists():
        old = read_json(meta_path, "prepare into a new --out")
        diff = {k: (old.get(k), v) for k, v in meta.items() if old.get(k) != v}
        if diff:
            raise UserError(f"{cache}: existing cache was prepared with other settings {diff}; use another --out")
    meta.update(num_classes=len(class_names), class_names=class_names, root=str(Path(source).resolve()), origin=origin)
    try:
        atomic_write_text(meta_path, json.dumps(meta, indent=2))
    except OSError as e:
        raise UserError(f"{cache}: cannot write to the cache folder ({os_reason(e)})") from None


def make_cache_dir(cache: Path) -> None:
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{cache}: cannot create the cache folder ({os_reason(e)})") from None

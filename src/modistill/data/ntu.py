"""Readers for the NTU RGB+D on-disk layout: sample names, ``.skeleton`` files, masked depth PNGs (the RGB AVIs
are decoded by :mod:`modistill.data.video`, like any user video).

The readers are strict (a malformed file raises
:class:`~modistill.errors.DataError` naming the file and line) because silently mis-parsed skeletons would
corrupt the RGB-depth alignment downstream.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modistill.errors import DataError

NAME_RE = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")
NUM_JOINTS = 25
JOINT_FIELDS = ("x", "y", "z", "depthX", "depthY", "colorX", "colorY", "oW", "oX", "oY", "oZ", "trackingState")
JOINT_NAMES = (
    "SpineBase",
    "SpineMid",
    "Neck",
    "Head",
    "ShoulderLeft",
    "ElbowLeft",
    "WristLeft",
    "HandLeft",
    "ShoulderRight",
    "ElbowRight",
    "WristRight",
    "HandRight",
    "HipLeft",
    "KneeLeft",
    "AnkleLeft",
    "FootLeft",
    "HipRight",
    "KneeRight",
    "AnkleRight",
    "FootRight",
    "SpineShoulder",
    "HandTipLeft",
    "ThumbLeft",
    "HandTipRight",
    "ThumbRight",
)
# Official "connecting joint" list, converted to 0-based parents.
JOINT_PARENTS = tuple(
    p - 1 for p in (2, 1, 21, 3, 21, 5, 6, 7, 21, 9, 10, 11, 1, 13, 14, 15, 1, 17, 18, 19, 2, 8, 8, 12, 12)
)
RGB_SUBDIR = "nturgb+d_rgb"
DEPTH_SUBDIR = "nturgb+d_depth_masked"
SKELETON_SUBDIR = "nturgb+d_skeletons"
DEPTH_PATTERN = "MDepth-{:08d}.png"
DEPTH_FILE_RE = re.compile(r"MDepth-(\d{8})\.png")
TRACKED = 2


@dataclass(frozen=True)
class SampleName:
    """Fields of an NTU sample name ``SsssCcccPpppRrrrAaaa`` (1-based, as written) and the 0-based label."""

    name: str
    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    @property
    def label(self) -> int:
        return self.action - 1


def parse_name(name: str) -> SampleName:
    """Parse ``S001C002P003R002A013`` (an optional ``_rgb``/extension suffix is not accepted: pass the stem)."""
    m = NAME_RE.match(name)
    if not m:
        raise ValueError(f"not an NTU sample name (expected SsssCcccPpppRrrrAaaa): {name!r}")
    s, c, p, r, a = (int(g) for g in m.groups())
    if min(s, c, p, r, a) < 1:
        raise ValueError(f"NTU sample name has a zero field: {name!r}")
    return SampleName(name, s, c, p, r, a)


def format_name(setup: int, camera: int, performer: int, replication: int, action: int) -> str:
    return f"S{setup:03d}C{camera:03d}P{performer:03d}R{replication:03d}A{action:03d}"


@dataclass
class Body:
    """One tracked body in one frame. ``joints`` is (25, 12) float64 in file order (see ``JOINT_FIELDS``)."""

    body_id: int
    clipped_edges: int
    hand_left_confidence: int
    hand_left_state: int
    hand_right_confidence: int
    hand_right_state: int
    is_restricted: int
    lean_x: float
    lean_y: float
    tracking_state: int
    joints: np.ndarray


def _head(ints: list[int], lean: tuple[float, float]) -> tuple[int, int, int, int, int, int, int, float, float, int]:
    """A body line's fields in :class:`Body`'s order: seven integers, the lean x and y, the tracking state."""
    return ints[0], ints[1], ints[2], ints[3], ints[4], ints[5], ints[6], lean[0], lean[1], ints[7]


def _ints(tokens: Sequence[str]) -> list[int]:
    return [int(t) for t in tokens]


def read_skeleton(path: str | Path) -> list[list[Body]]:
    """Read an NTU ``.skeleton`` file into a per-frame list of bodies.

    Body ids are parsed as Python ints (they exceed 2**53, float parsing would lose digits). CRLF and LF line
    endings, capital-E exponents, frames with zero bodies and frames with more than two bodies are accepted.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("ascii")
    except FileNotFoundError:
        raise DataError(path, "skeleton file not found") from None
    except UnicodeDecodeError as e:
        raise DataError(path, f"not an ASCII skeleton file (byte {e.start})") from None
    except OSError as e:
        raise DataError(path, f"cannot read skeleton file ({e.strerror})") from None
    lines = text.splitlines()
    pos = 0

    def next_tokens(expected: int, what: str) -> list[str]:
        nonlocal pos
        if pos >= len(lines):
            raise DataError(path, f"file ends early: expected {what}", line=pos + 1)
        tokens = lines[pos].split()
        pos += 1
        if len(tokens) != expected:
            raise DataError(path, f"expected {what} ({expected} values), found {len(tokens)} values", line=pos)
        return tokens

    def parse(fn, tokens, what):
        try:
            return fn(tokens)
        except ValueError:
            raise DataError(path, f"malformed {what}: {' '.join(tokens)[:80]!r}", line=pos) from None

    n_frames = parse(lambda t: int(t[0]), next_tokens(1, "frame count"), "frame count")
    if n_frames < 0:
        raise DataError(path, f"negative frame count {n_frames}", line=pos)
    frames: list[list[Body]] = []
    for _ in range(n_frames):
        n_bodies = parse(lambda t: int(t[0]), next_tokens(1, "body count"), "body count")
        if n_bodies < 0:
            raise DataError(path, f"negative body count {n_bodies}", line=pos)
        bodies = []
        for _ in range(n_bodies):
            bt = next_tokens(10, "body line")
            ints = parse(lambda t: _ints([*t[:7], t[9]]), bt, "body line")
            lean = parse(lambda t: (float(t[7]), float(t[8])), bt, "body line")
            n_joints = parse(lambda t: int(t[0]), next_tokens(1, "joint count"), "joint count")
            if n_joints != NUM_JOINTS:
                raise DataError(path, f"expected {NUM_JOINTS} joints, found {n_joints}", line=pos)
            rows = [line.split() for line in lines[pos : pos + NUM_JOINTS]]
            try:  # fast path: 25 well-formed lines converted by NumPy in one call
                if len(rows) != NUM_JOINTS or any(len(r) != 12 for r in rows):
                    raise ValueError
                joints = np.array(rows, dtype=np.float64)
                pos += NUM_JOINTS
            except ValueError:  # re-read line by line for an error naming the bad line
                joints = np.empty((NUM_JOINTS, 12), dtype=np.float64)
                for j in range(NUM_JOINTS):
                    joints[j] = parse(lambda t: [float(v) for v in t], next_tokens(12, "joint line"), "joint line")
            bodies.append(Body(*_head(ints, lean), joints=joints))
        frames.append(bodies)
    if any(line.strip() for line in lines[pos:]):
        raise DataError(path, "unexpected data after the last frame", line=pos + 1)
    return frames


# What a Kinect v2 can report, with a generous margin: a joint outside these ranges is a corrupt number, not a person
# partly out of view (joints a frame's width beyond the image are still kept). Columns of JOINT_FIELDS.
DEPTH_GRID = (512, 424)
COLOR_GRID = (1920, 1080)
_PLAUSIBLE = (
    (slice(0, 2), -20.0, 20.0),  # x, y in metres
    (slice(2, 3), -1.0, 20.0),  # z in metres (the sensor reads to 8 m)
    (slice(3, 4), -DEPTH_GRID[0], 2 * DEPTH_GRID[0]),  # depthX
    (slice(4, 5), -DEPTH_GRID[1], 2 * DEPTH_GRID[1]),  # depthY
    (slice(5, 6), -COLOR_GRID[0], 2 * COLOR_GRID[0]),  # colorX
    (slice(6, 7), -COLOR_GRID[1], 2 * COLOR_GRID[1]),  # colorY
    (slice(7, 11), -1.5, 1.5),  # orientation quaternion
)


def drop_impossible_joints(frames: list[list[Body]]) -> str | None:
    """Treat a joint with a number no camera can produce (infinite, NaN, or beyond :data:`_PLAUSIBLE`) as not
    tracked in that frame: its fields become NaN and its state 0, in place. Returns a note naming what was dropped
    (for the video's record), None when every joint is plausible."""
    dropped = []
    for t, bodies in enumerate(frames):
        for b in bodies:
            bad = np.zeros(len(b.joints), bool)
            for cols, lo, hi in _PLAUSIBLE:
                v = b.joints[:, cols]
                bad |= ~(np.isfinite(v) & (v >= lo) & (v <= hi)).all(1)
            for j in np.flatnonzero(bad):
                dropped.append(f"frame {t} joint {JOINT_NAMES[j]}")
            b.joints[bad, :11] = np.nan
            b.joints[bad, 11] = 0
    if not dropped:
        return None
    more = f" and {len(dropped) - 3} more" if len(dropped) > 3 else ""
    return f"skeleton: {len(dropped)} joint(s) with impossible coordinates dropped ({', '.join(dropped[:3])}{more})"


def main_body(frames: list[list[Body]]) -> list[Body | None]:
    """Per frame, the body of the id that is present (and tracked) in the most frames: the actor, not noise."""
    counts: dict[int, int] = {}
    for bodies in frames:
        for b in bodies:
            counts[b.body_id] = counts.get(b.body_id, 0) + 1
    if not counts:
        return [None] * len(frames)
    best = max(counts, key=lambda k: counts[k])
    out: list[Body | None] = []
    for bodies in frames:
        out.append(next((b for b in bodies if b.body_id == best), None))
    return out


def write_skeleton(path: str | Path, frames: list[list[Body]]) -> None:
    """Write frames in the NTU text format (CRLF, like the original files); inverse of :func:`read_skeleton`."""
    out = [str(len(frames))]
    for bodies in frames:
        out.append(str(len(bodies)))
        for b in bodies:
            out.append(
                f"{b.body_id} {b.clipped_edges} {b.hand_left_confidence} {b.hand_left_state} "
                f"{b.hand_right_confidence} {b.hand_right_state} {b.is_restricted} "
                f"{_fmt(b.lean_x)} {_fmt(b.lean_y)} {b.tracking_state}"
            )
            out.append(str(NUM_JOINTS))
            for row in b.joints:
                vals = [_fmt(v) for v in row[:11]] + [str(int(row[11]))]
                out.append(" ".join(vals))
    Path(path).write_bytes(("\r\n".join(out) + "\r\n").encode("ascii"))


def _fmt(v: float) -> str:
    s = f"{v:.7g}"
    return s.replace("e", "E") if "e" in s else s


class NtuLayout:
    """Paths of one NTU RGB+D root folder (``nturgb+d_rgb``, ``nturgb+d_depth_masked``, ``nturgb+d_skeletons``)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def rgb(self, name: str) -> Path:
        return self.root / RGB_SUBDIR / f"{name}_rgb.avi"

    def depth_dir(self, name: str) -> Path:
        return self.root / DEPTH_SUBDIR / name

    def depth_frame(self, name: str, index1: int) -> Path:
        return self.depth_dir(name) / DEPTH_PATTERN.format(index1)

    def skeleton(self, name: str) -> Path:
        return self.root / SKELETON_SUBDIR / f"{name}.skeleton"

    def sample_names(self) -> tuple[list[str], list[tuple[str, str]]]:
        """Valid sample names found under the RGB folder, and every other file there with why it is not used."""
        rgb_dir = self.root / RGB_SUBDIR
        if not rgb_dir.is_dir():
            raise DataError(rgb_dir, "RGB folder not found (is --root an NTU RGB+D root?)")
        try:
            entries = sorted(rgb_dir.iterdir())
        except OSError as e:
            raise DataError(rgb_dir, f"cannot list the RGB folder ({e.strerror})") from None
        names, bad = [], []
        for p in entries:
            stem = p.name[: -len("_rgb.avi")] if p.name.endswith("_rgb.avi") else None
            if stem is None or not NAME_RE.match(stem):
                bad.append((p.name, "not an NTU sample name (SsssCcccPpppRrrrAaaa_rgb.avi)"))
            elif not p.is_file():
                bad.append((p.name, "not a regular file"))
            else:
                try:
                    parse_name(stem)
                except ValueError as e:
                    bad.append((p.name, str(e)))
                    continue
                names.append(stem)
        return names, bad

    def depth_numbers(self, name: str) -> list[int]:
        """Sorted 1-based numbers of the ``MDepth-%08d.png`` files present (gaps mean missing frames)."""
        d = self.depth_dir(name)
        if not d.is_dir():
            return []
        nums = []
        for p in d.iterdir():
            m = DEPTH_FILE_RE.fullmatch(p.name)
            if m:
                nums.append(int(m.group(1)))
        return sorted(nums)

    def depth_count(self, name: str) -> int:
        return len(self.depth_numbers(name))


MAX_DEPTH_PIXELS = 4096 * 4096  # far above any depth sensor; a larger PNG is damaged or not a depth map


def png_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's header without decoding it; None when it is not a PNG."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


# A Kinect v2 reads to 8 m (v1 to 4 m); beyond this a value is a corrupt number, not a far wall.
MAX_DEPTH_MM = 12_000


def drop_impossible_depth(depths: list[np.ndarray]) -> str | None:
    """Depth values beyond :data:`MAX_DEPTH_MM` become 0 (missing depth), in place; a note counting them, None when
    there are none. Uncaught, one such pixel would stretch the video's near/far range and flatten its encoding."""
    n = 0
    for d in depths:
        bad = d > MAX_DEPTH_MM
        n += int(bad.sum())
        d[bad] = 0
    return f"depth: {n} pixel(s) beyond the sensor's {MAX_DEPTH_MM} mm read as missing" if n else None


def read_depth(path: str | Path) -> np.ndarray:
    """Read one 16-bit depth PNG (millimetres) as uint16 (H, W)."""
    import cv2

    size = png_size(path)
    if size is not None and size[0] * size[1] > MAX_DEPTH_PIXELS:
        raise DataError(
            path,
            f"depth PNG is {size[0]}x{size[1]}, above the {MAX_DEPTH_PIXELS / 1e6:.1f}-megapixel limit for a depth map",
        )
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        if not Path(path).exists():
            raise DataError(path, "depth frame not found")
        raise DataError(path, "unreadable depth PNG")
    if img.dtype != np.uint16 or img.ndim != 2:
        kind = f"{img.shape[2]}-channel" if img.ndim == 3 else "single-channel"
        raise DataError(
            path, f"depth PNG must be 16-bit single-channel, got a {kind} {img.dtype.itemsize * 8}-bit image"
        )
    return img

"""``predict --boxes FILE``: person boxes per video from the user's own detector or tracker, for models trained
with person crops.

JSON: ``{"VIDEO": [x0, y0, x1, y1]}`` or ``{"VIDEO": [[x0, y0, x1, y1], ...]}`` (one box per frame or person).
CSV: a header ``video,x0,y0,x1,y1`` and one or more rows per video. Boxes are in the raw video's pixels; several
boxes of a video are merged into the one box around them all (people and frames), which the model's crop rule
then pads and squares (:mod:`modistill.data.person_box`). ``VIDEO`` is the path as given to ``predict``, its
absolute path, or its bare file name.

Windows over a long video need to know who is where when: JSON ``{"VIDEO": [{"frame": F, "track": T, "box": [x0,
y0, x1, y1]}, ...]}`` or CSV ``video,frame,track,x0,y0,x1,y1`` (frames numbered from 0 in decoding order, tracks
any whole numbers). A one-clip prediction merges such a file's boxes like the others.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from modistill.data.person_box import Box, union_box
from modistill.errors import UserError

COLUMNS = ("video", "x0", "y0", "x1", "y1")
TRACK_COLUMNS = ("video", "frame", "track", "x0", "y0", "x1", "y1")

Row = tuple[int | None, int | None, list[float]]  # frame, track, box


def _box(path: Path, where: str, v: object) -> list[float]:
    if (
        not isinstance(v, list | tuple)
        or len(v) != 4
        or not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in v)
        or not (v[0] < v[2] and v[1] < v[3])
    ):
        raise UserError(f"{path}: {where}: a box is [x0, y0, x1, y1] in pixels with x0 < x1 and y0 < y1, got {v!r}")
    return [float(x) for x in v]


def _index(path: Path, where: str, name: str, v: object) -> int:
    try:
        n = int(str(v).strip()) if not isinstance(v, bool) else -1
    except ValueError:
        n = -1
    if n < 0 or (isinstance(v, float) and not v.is_integer()):
        raise UserError(f"{path}: {where}: {name} must be a whole number from 0, got {v!r}")
    return n


def _json_rows(path: Path, text: str) -> dict[str, list[Row]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, dict):
        raise UserError(f'{path}: JSON boxes are an object {{"VIDEO": [x0, y0, x1, y1], ...}}')
    rows: dict[str, list[Row]] = {}
    for k, v in data.items():
        where = str(k)
        if isinstance(v, list) and v and all(isinstance(b, dict) for b in v):
            for n, b in enumerate(v):
                w = f"{where}[{n}]"
                if set(b) != {"frame", "track", "box"}:
                    raise UserError(
                        f'{path}: {w}: a tracked box is {{"frame": F, "track": T, "box": [x0, y0, x1, y1]}}'
                    )
                frame, track = _index(path, w, "frame", b["frame"]), _index(path, w, "track", b["track"])
                rows.setdefault(where, []).append((frame, track, _box(path, w, b["box"])))
            continue
        many = isinstance(v, list) and bool(v) and all(isinstance(b, list) for b in v)
        rows[where] = [(None, None, _box(path, where, b)) for b in (v if many else [v])]
    return rows


def _csv_rows(path: Path, text: str) -> dict[str, list[Row]]:
    rows = list(csv.reader(text.splitlines()))
    header = tuple(c.strip() for c in rows[0]) if rows else ()
    if header not in (COLUMNS, TRACK_COLUMNS):
        raise UserError(f"{path}: the CSV's header must be {','.join(COLUMNS)} or {','.join(TRACK_COLUMNS)}")
    tracked = header == TRACK_COLUMNS
    out: dict[str, list[Row]] = {}
    for n, row in enumerate(rows[1:], 2):
        if not row:
            continue
        where = f"line {n}"
        if len(row) != len(header):
            raise UserError(f"{path}: {where}: {len(row)} columns, the header has {len(header)}")
        frame = _index(path, where, "frame", row[1]) if tracked else None
        track = _index(path, where, "track", row[2]) if tracked else None
        cells = row[3 if tracked else 1 :]
        vals: list[object] = list(cells)
        try:
            vals = [float(x) for x in cells]
        except ValueError:
            pass
        out.setdefault(row[0].strip(), []).append((frame, track, _box(path, where, vals)))
    return out


def _read_rows(path: str | Path) -> tuple[Path, dict[str, list[Row]]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: boxes file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read the boxes file ({e})") from None
    if path.suffix.lower() == ".json":
        rows = _json_rows(path, text)
    elif path.suffix.lower() == ".csv":
        rows = _csv_rows(path, text)
    else:
        raise UserError(f"{path}: boxes are a .json or .csv file")
    if not rows:
        raise UserError(f"{path}: no boxes")
    return path, rows


def read_boxes(path: str | Path) -> dict[str, Box]:
    """Video key → the merged person box (over frames and tracks, when the file has them); one-line refusal of a
    malformed file, naming it and the entry."""
    _, rows = _read_rows(path)
    return {k: union_box(b for _, _, b in v) for k, v in rows.items()}  # type: ignore[misc]


def read_track_boxes(path: str | Path) -> dict[str, dict[int, dict[int, Box]]]:
    """Video key → frame → track → box, for windows over a long video; a file without frames and tracks is
    refused (it cannot say who is where when)."""
    path, rows = _read_rows(path)
    out: dict[str, dict[int, dict[int, Box]]] = {}
    for video, entries in rows.items():
        for frame, track, b in entries:
            if frame is None or track is None:
                raise UserError(
                    f"{path}: windows need boxes per frame and track ({','.join(TRACK_COLUMNS)}, or JSON "
                    f'{{"VIDEO": [{{"frame": F, "track": T, "box": [...]}}]}}); {video} has boxes without them'
                )
            out.setdefault(video, {}).setdefault(frame, {})[track] = (b[0], b[1], b[2], b[3])
    return out


def box_for(video: str | Path, boxes: dict) -> Any:
    """The box of ``video``: under the path as given, its resolved path, or its bare file name."""
    v = Path(video)
    for key in (str(video), str(v.resolve()), v.name):
        if key in boxes:
            return boxes[key]
    return None

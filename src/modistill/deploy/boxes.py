"""``predict --boxes FILE``: person boxes per video from the user's own detector or tracker, for models trained
with person crops.

JSON: ``{"VIDEO": [x0, y0, x1, y1]}`` or ``{"VIDEO": [[x0, y0, x1, y1], ...]}`` (one box per frame or person).
CSV: a header ``video,x0,y0,x1,y1`` and one or more rows per video. Boxes are in the raw video's pixels; several
boxes of a video are merged into the one box around them all (people and frames), which the model's crop rule
then pads and squares (:mod:`modistill.data.person_box`). ``VIDEO`` is the path as given to ``predict``, its absolute
path, or its bare file name.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from modistill.data.person_box import Box, union_box
from modistill.errors import UserError

COLUMNS = ("video", "x0", "y0", "x1", "y1")


def _box(path: Path, where: str, v: object) -> list[float]:
    if (
        not isinstance(v, list | tuple)
        or len(v) != 4
        or not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in v)
        or not (v[0] < v[2] and v[1] < v[3])
    ):
        raise UserError(f"{path}: {where}: a box is [x0, y0, x1, y1] in pixels with x0 < x1 and y0 < y1, got {v!r}")
    return [float(x) for x in v]


def read_boxes(path: str | Path) -> dict[str, Box]:
    """Video key → the merged person box; one-line refusal of a malformed file, naming it and the entry."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: boxes file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read the boxes file ({e})") from None
    boxes: dict[str, list[list[float]]] = {}
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}: not JSON (line {e.lineno}: {e.msg})") from None
        if not isinstance(data, dict):
            raise UserError(f'{path}: JSON boxes are an object {{"VIDEO": [x0, y0, x1, y1], ...}}')
        for k, v in data.items():
            many = isinstance(v, list) and bool(v) and all(isinstance(b, list) for b in v)
            boxes[str(k)] = [_box(path, str(k), b) for b in (v if many else [v])]
    elif path.suffix.lower() == ".csv":
        rows = list(csv.reader(text.splitlines()))
        if not rows or tuple(c.strip() for c in rows[0]) != COLUMNS:
            raise UserError(f"{path}: the CSV's header must be {','.join(COLUMNS)}")
        for n, row in enumerate(rows[1:], 2):
            if not row:
                continue
            vals: list[object] = list(row[1:])
            try:
                vals = [float(x) for x in row[1:]]
            except ValueError:
                pass
            boxes.setdefault(row[0].strip(), []).append(_box(path, f"line {n}", vals))
    else:
        raise UserError(f"{path}: boxes are a .json or .csv file")
    if not boxes:
        raise UserError(f"{path}: no boxes")
    return {k: union_box(v) for k, v in boxes.items()}  # type: ignore[misc]


def box_for(video: str | Path, boxes: dict[str, Box]) -> Box | None:
    """The box of ``video``: under the path as given, its resolved path, or its bare file name."""
    v = Path(video)
    for key in (str(video), str(v.resolve()), v.name):
        if key in boxes:
            return boxes[key]
    return None

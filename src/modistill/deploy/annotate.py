"""``predict --annotate OUT.mp4``: the input with each person's box, their current label and score, and a timeline
strip, written with PyAV (H.264) as the frames go by.

What is drawn is what a live viewer would see: each person's latest box (from the latest sampled frame), the
latest decided label (it lags the picture by half a window plus the smoothing), and below the picture one row per
person coloured by the labels decided so far, with the action names in the colours' legend. Wide inputs are scaled
to at most 960 pixels across.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from modistill.data.person_box import Box
from modistill.errors import UserError

MAX_WIDTH = 960
ROW = 12  # strip pixels per person
LEGEND = 18
SCENE_LABEL = 0  # the track of a fixed-crop model's scene


def _text(img: np.ndarray, text: str, at: tuple[int, int], colour: tuple[int, int, int], scale: float = 0.45) -> None:
    """Text in ``colour`` on a black label, readable on any background."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(img, (at[0] - 2, at[1] - th - 2), (at[0] + tw + 2, at[1] + base), (0, 0, 0), -1)
    cv2.putText(img, text, at, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def _colour(label: int) -> tuple[int, int, int]:
    from matplotlib import colormaps

    r, g, b, _ = colormaps["tab20"](label % 20)
    return int(255 * r), int(255 * g), int(255 * b)


class Annotator:
    """Write frames of a ``size`` (W, H) input at ``fps``; :meth:`close` finishes the file (written beside it and
    renamed, so a run that fails leaves no half video)."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], class_names: list[str], span: int):
        import av

        self.path = Path(path)
        if self.path.suffix.lower() not in (".mp4", ".mkv", ".mov"):
            raise UserError(f"{self.path}: --annotate writes .mp4, .mkv or .mov")
        self.names, self.span = class_names, max(1, span)
        w, h = size
        scale = min(1.0, MAX_WIDTH / w)
        self.scale = scale
        self.w, self.h = int(w * scale) // 2 * 2, int(h * scale) // 2 * 2
        self.tmp = self.path.with_name(self.path.name + ".partial" + self.path.suffix)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = av.open(str(self.tmp), "w")
        self._stream = self._out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": "18"}  # text and thin lines stay sharp
        self._stream.width, self._stream.height = self.w, self.h + LEGEND + 4 * ROW
        self.history: dict[int, list[tuple[int, int, int]]] = {}  # track → (start, end, label) decided
        self.frames = 0

    def decided(self, track: int, start: int, end: int, label: int | None) -> None:
        if label is not None:
            self.history.setdefault(track, []).append((start, end, label))

    def frame(
        self, image: np.ndarray, index: int, boxes: dict[int, Box], current: dict[int, tuple[int | None, float]]
    ) -> None:
        import av

        if self.scale < 1:
            pic = cv2.resize(image, (self.w, self.h), interpolation=cv2.INTER_AREA)
        else:  # a copy: the frame itself may still be sampled by an open window
            pic = np.array(image[: self.h, : self.w], copy=True)
        for track, box in boxes.items():
            if box is None:
                continue
            label, score = current.get(track, (None, 0.0))
            colour = _colour(label) if label is not None else (200, 200, 200)
            x0, y0, x1, y1 = (int(round(v * self.scale)) for v in box)
            cv2.rectangle(pic, (x0, y0), (x1, y1), colour, 2)
            text = f"#{track} " + (f"{self.names[label]} {score:.2f}" if label is not None else "...")
            _text(pic, text, (x0 + 2, max(12, y0 - 4)), colour)
        if SCENE_LABEL in boxes and boxes[SCENE_LABEL] is None:  # a fixed-crop model: the scene's label, top left
            label, score = current.get(SCENE_LABEL, (None, 0.0))
            if label is not None:
                text = f"{self.names[label]} {score:.2f}"
                _text(pic, text, (4, 16), _colour(label), 0.5)
        canvas = np.zeros((self._stream.height, self.w, 3), np.uint8)
        canvas[: self.h] = pic
        self._strip(canvas, index)
        out = av.VideoFrame.from_ndarray(canvas, format="rgb24")
        for packet in self._stream.encode(out):
            self._out.mux(packet)
        self.frames += 1

    def _strip(self, canvas: np.ndarray, index: int) -> None:
        lo = max(0, index - self.span)
        px = self.w / self.span
        top = self.h + LEGEND
        for row, track in enumerate(sorted(self.history)[:4]):
            y = top + row * ROW
            for start, end, label in self.history[track]:
                if end < lo:
                    continue
                a, b = int((max(start, lo) - lo) * px), int((min(end, index) - lo) * px)
                if b > a:
                    canvas[y + 1 : y + ROW - 1, a:b] = _colour(label)
        cursor = int((index - lo) * px)
        canvas[self.h + LEGEND :, max(0, cursor - 1) : cursor + 1] = 255
        shown = {lab for spans in self.history.values() for start, end, lab in spans if end >= lo}
        x = 4
        for lab in sorted(shown):  # the legend of the strip's colours, as far as it fits
            (tw, _), _ = cv2.getTextSize(self.names[lab], cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
            if x + tw > self.w:
                break
            _text(canvas, self.names[lab], (x, self.h + 13), _colour(lab), 0.4)
            x += tw + 10

    def close(self, keep: bool = True) -> Path | None:
        for packet in self._stream.encode(None):
            self._out.mux(packet)
        self._out.close()
        if keep and self.frames:
            self.tmp.replace(self.path)
            return self.path
        self.tmp.unlink(missing_ok=True)
        return None

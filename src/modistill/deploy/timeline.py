"""A timeline of actions per person from per-window probabilities: temporal smoothing, a score threshold, and
segments (label, start, end, mean score).

Each window's probabilities are averaged with those of up to ``smooth // 2`` windows on either side (the same
person's; a window where the person was not seen is a gap, never averaged over), so a decision waits for that
many later windows: a live stream's labels lag by ``smooth // 2`` strides. A window is labelled with the class of
the highest smoothed probability when it reaches ``threshold``, else with nothing. Window ``k`` stands for the
stride of frames around its centre; consecutive windows with one label form a segment, which ends where another
label, a gap or the end of the input begins. The first window stands for the input's start, the last one for its
end: segment boundaries are thus exact to within one stride.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modistill.deploy.windows import WindowPlan
from modistill.errors import UserError


@dataclass
class Segment:
    track: int
    label: int
    name: str
    start_frame: int
    end_frame: int  # exclusive
    score: float
    windows: int
    start_s: float = 0.0
    end_s: float = 0.0

    def record(self) -> dict:
        return {
            "type": "segment",
            "track": self.track,
            "class": self.label,
            "name": self.name,
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "score": round(self.score, 4),
            "windows": self.windows,
        }


@dataclass
class _Track:
    probs: dict[int, np.ndarray] = field(default_factory=dict)
    decided: int = -1  # the last window decided
    open: dict | None = None  # the segment being extended: label, first, last, scores


def check_timeline_options(smooth: int, threshold: float) -> None:
    if smooth < 1:
        raise UserError(f"--smooth must be at least 1 window, got {smooth}")
    if not 0 <= threshold < 1:
        raise UserError(f"--threshold must be a probability from 0 to under 1, got {threshold}")


class Timeline:
    """Feed :meth:`add` each window's probabilities per track, in window order; it returns the segments that
    closed. :meth:`finish` closes the rest at the end of the input."""

    def __init__(
        self,
        plan: WindowPlan,
        class_names: list[str],
        smooth: int = 3,
        threshold: float = 0.5,
        on_decision: Callable[[int, int, int | None], None] | None = None,
    ):
        check_timeline_options(smooth, threshold)
        self.on_decision = on_decision  # (track, window, label or None) as each window is decided
        self.plan, self.names, self.half, self.threshold = plan, class_names, smooth // 2, threshold
        self.tracks: dict[int, _Track] = {}
        self.last_window = -1
        self.current: dict[int, tuple[int | None, float]] = {}  # track → its latest decided label and score

    def add(self, track: int, k: int, probs: np.ndarray) -> list[Segment]:
        tr = self.tracks.setdefault(track, _Track())
        tr.probs[k] = np.asarray(probs, np.float64)
        self.last_window = max(self.last_window, k)
        return self._decide(track, tr, k - self.half)

    def finish(self) -> list[Segment]:
        out = []
        for track, tr in self.tracks.items():
            out += self._decide(track, tr, max(tr.probs, default=-1))
            if tr.open is not None:
                out.append(self._close(track, tr, final=True))
        return out

    def _decide(self, track: int, tr: _Track, upto: int) -> list[Segment]:
        out = []
        for j in sorted(k for k in tr.probs if tr.decided < k <= upto):
            near = [tr.probs[i] for i in range(j - self.half, j + self.half + 1) if i in tr.probs]
            p = np.mean(near, axis=0)
            top = int(p.argmax())
            label = top if p[top] >= self.threshold else None
            tr.decided = j
            self.current[track] = (label, float(p[top]))
            if self.on_decision is not None:
                self.on_decision(track, j, label)
            o = tr.open
            if o is not None and (label != o["label"] or j != o["last"] + 1):
                out.append(self._close(track, tr))
                o = None
            if label is None:
                continue
            if o is None:
                tr.open = {"label": label, "first": j, "last": j, "scores": [float(p[top])]}
            else:
                o["last"], o["scores"] = j, [*o["scores"], float(p[top])]
        for k in [k for k in tr.probs if k < tr.decided - 2 * self.half]:  # no later decision reads them
            del tr.probs[k]
        return out

    def _close(self, track: int, tr: _Track, final: bool = False) -> Segment:
        o, plan = tr.open, self.plan
        assert o is not None
        tr.open = None
        start, last = plan.owned(o["first"])[0], o["last"]
        end = plan.start(last) + plan.window if final and last == self.last_window else plan.owned(last)[1]
        return Segment(
            track,
            o["label"],
            self.names[o["label"]],
            start,
            end,
            float(np.mean(o["scores"])),
            last - o["first"] + 1,
            plan.seconds(start),
            plan.seconds(end),
        )


def frame_labels(segments: list[Segment], n_frames: int, track: int) -> np.ndarray:
    """Per frame of the input, the label the timeline gives ``track`` there (-1: none)."""
    out = np.full(n_frames, -1, np.int64)
    for s in segments:
        if s.track == track:
            out[max(0, s.start_frame) : min(n_frames, s.end_frame)] = s.label
    return out


SEGMENT_COLUMNS = (
    "video",
    "track",
    "class",
    "name",
    "start_frame",
    "end_frame",
    "start_s",
    "end_s",
    "score",
    "windows",
)


class TimelineWriter:
    """``--timeline FILE``: JSON Lines (every window, segment and summary record, one per line, written as they
    are decided) or CSV (one row per segment). Written to ``FILE.partial`` and renamed when the input ends or is
    stopped, so the name holds only a finished timeline; after a crash the partial file shows what was decided."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.csv = self.path.suffix.lower() == ".csv"
        if not self.csv and self.path.suffix.lower() not in (".jsonl", ".ndjson"):
            raise UserError(f"{self.path}: --timeline writes .jsonl (windows and segments) or .csv (segments)")
        self.tmp = self.path.with_name(self.path.name + ".partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed by close())
        if self.csv:
            self._csv = csv.writer(self._f)
            self._csv.writerow(SEGMENT_COLUMNS)

    def write(self, record: dict) -> None:
        if self.csv:
            if record["type"] == "segment":
                self._csv.writerow([record[k] for k in SEGMENT_COLUMNS])
        else:
            self._f.write(json.dumps(record, allow_nan=False) + "\n")
        self._f.flush()

    def close(self, keep: bool = True) -> None:
        self._f.close()
        if keep:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)

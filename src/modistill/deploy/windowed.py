"""Prediction over windows of an untrimmed video or a live stream: per window and person the top classes, and a
timeline of segments per person (:mod:`modistill.deploy.timeline`).

One loop serves files and streams. The source (:mod:`modistill.deploy.source`) converts only the frames some
window samples; on each of them the people are found (a detector tracked by ByteTrack, the user's boxes, or the
whole scene for a fixed-crop model); when a window's last sampled frame has arrived, each person seen in it is
cropped by the model's rule around the box that holds them over the window's frames, and all of them go through
the model in one batch. A window in which someone was not seen is a gap in their timeline, unless the user asks
for the full frame. Memory stays bounded: frames are dropped once no open window samples them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modistill.data.person_box import Box, union_box
from modistill.deploy.source import Frame, Source, count_frames
from modistill.deploy.timeline import Segment, Timeline
from modistill.deploy.video import clip_box, crop_clip
from modistill.deploy.windows import WindowPlan, check_length, nearest_kept, plan_windows
from modistill.errors import DataError, UserError
from modistill.utils.progress import progress

SCENE = 0  # the track number of a fixed-crop model's whole scene, or of a full-frame guess


@dataclass
class WindowOptions:
    window: float | None = None  # seconds; None: the model's median training video
    stride: float | None = None  # seconds; None: a quarter of the window
    fps: float | None = None  # the input's frame rate when it does not say
    smooth: int = 3
    threshold: float = 0.5
    topk: int = 3
    queue: int = 64
    full_frame: bool = False


@dataclass
class Run:
    """What a windowed prediction of one input produced."""

    video: str
    plan: WindowPlan
    segments: list[Segment] = field(default_factory=list)
    windows: int = 0
    lost_windows: int = 0  # windows none of whose sampled frames arrived
    latencies: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    end: str = ""
    clean: bool = True
    decoded: int = 0
    dropped: int = 0
    wall_s: float = 0.0
    tracks: set[int] = field(default_factory=set)

    def summary(self) -> dict:
        lat = np.array(self.latencies) * 1e3 if self.latencies else None
        fps = self.plan.fps
        return {
            "type": "summary",
            "video": self.video,
            "window_frames": self.plan.window,
            "stride_frames": self.plan.stride,
            "fps": fps,
            "windows": self.windows,
            "lost_windows": self.lost_windows,
            "tracks": len(self.tracks),
            "segments": len(self.segments),
            "frames_decoded": self.decoded,
            "frames_dropped": self.dropped,
            "latency_ms_mean": None if lat is None else round(float(lat.mean()), 1),
            "latency_ms_p95": None if lat is None else round(float(np.percentile(lat, 95)), 1),
            "wall_s": round(self.wall_s, 2),
            "realtime_factor": round(self.decoded / fps / self.wall_s, 2) if self.wall_s > 0 and self.decoded else None,
            "end": self.end,
            "notes": self.notes,
        }


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


class WindowedPredictor:
    """Runs one input through windows with a model (:class:`modistill.deploy.predict.Predictor`, or anything with
    its ``meta`` and ``logits``). ``on_record`` receives each window's and segment's record as it is decided."""

    def __init__(self, model, people=None, options: WindowOptions | None = None):
        self.model, self.meta = model, model.meta
        self.people = people
        self.o = options or WindowOptions()
        self.person = isinstance(self.meta["crop"], dict)
        if self.person and people is None and not self.o.full_frame:
            raise UserError("this model crops around people: give it a detector or boxes, or full_frame=True")

    def run(
        self,
        spec: str,
        on_record: Callable[[dict], None] | None = None,
        annotate: str | Path | None = None,
        stop: threading.Event | None = None,
        check_people: Callable[[Source, int | None], None] | None = None,
        show_progress: bool = False,
    ) -> Run:
        o = self.o
        src = Source(spec, keep=lambda i: False, fps=o.fps, queue_size=o.queue, stop=stop)
        try:
            plan = plan_windows(self.meta, src.fps, o.window, o.stride)
            n_frames = None
            if src.kind == "file":
                n_frames = count_frames(spec)
                check_length(plan, n_frames, spec)
            if check_people is not None:
                check_people(src, n_frames)
        except BaseException:
            src.close()
            raise
        src.keep = (lambda i: True) if annotate else plan.is_sample
        run = Run(spec, plan, notes=list(plan.notes))
        drawer = None
        if annotate:
            from modistill.deploy.annotate import Annotator

            span = n_frames or int(30 * plan.fps)
            drawer = Annotator(annotate, plan.fps, src.size, self.meta["class_names"], span)
        timeline = Timeline(
            plan,
            self.meta["class_names"],
            o.smooth,
            o.threshold,
            None if drawer is None else lambda track, k, label: drawer.decided(track, *plan.owned(k), label),
        )
        emit = on_record or (lambda r: None)
        state = _State()
        t0 = time.monotonic()
        bar = progress(None, total=n_frames, desc=Path(spec).name, unit="frame", disable=not show_progress)
        try:
            for fr in src.frames():
                bar.update(fr.index + 1 - bar.n)
                if plan.is_sample(fr.index):
                    state.samples[fr.index] = fr.image
                    state.boxes[fr.index] = self._people_at(fr, plan.fps)
                    state.latest_boxes = state.boxes[fr.index] or state.latest_boxes
                while plan.last_sample(state.next) <= fr.index:
                    self._close(state.next, state, src, run, timeline, emit, fr.arrived)
                    state.next += 1
                if drawer is not None:
                    drawer.frame(fr.image, fr.index, state.latest_boxes, timeline.current)
                state.forget_before(plan.start(state.next))
            while plan.last_sample(state.next) < src.counters.decoded and state.samples:  # the tail's drops
                self._close(state.next, state, src, run, timeline, emit, time.monotonic())
                state.next += 1
            for seg in timeline.finish():
                self._segment(seg, run, emit)
        finally:
            bar.close()
            run.wall_s = time.monotonic() - t0
            run.end = src.end or "stopped"
            run.clean = src.clean_end
            run.decoded, run.dropped = src.counters.decoded, src.counters.dropped
            if drawer is not None:
                drawer.close(keep=True)
        if run.dropped:
            run.notes.append(
                f"{run.dropped} frames dropped: inference fell behind the live input, which does not wait (the "
                f"oldest waiting frame is discarded)"
            )
        return run

    def _people_at(self, fr: Frame, fps: float) -> dict[int, Box | None]:
        if not self.person:
            return {SCENE: None}
        return dict(self.people.boxes(fr.index, fr.index / fps, fr.image)) if self.people is not None else {}

    def _close(self, k, state, src, run, timeline, emit, arrived: float) -> None:
        plan, meta = run.plan, self.meta
        lo = plan.start(k)
        kept = {t: im for t, im in state.samples.items() if lo <= t < lo + plan.window}
        if not kept:
            run.lost_windows += 1
            return
        use, missing = nearest_kept(plan.samples(k), kept)
        imgs = [kept[t] for t in use]
        seen = [state.boxes.get(t, {}) for t in sorted(set(use))]
        clips, tracks, notes = [], [], []
        h, w = imgs[0].shape[:2]
        if not self.person:
            clips.append(crop_clip(imgs, clip_box(src.spec, meta["crop"], (w, h)), meta["size"]))
            tracks.append(SCENE)
        for track in sorted({t for b in seen for t in b} - {SCENE} if self.person else set()):
            box = union_box(b[track] for b in seen if track in b)
            try:
                clips.append(crop_clip(imgs, clip_box(src.spec, meta["crop"], (w, h), box), meta["size"]))
                tracks.append(track)
            except DataError as e:
                notes.append(f"track {track}: {e.problem}")
        if self.person and not tracks and self.o.full_frame:
            clips.append(crop_clip(imgs, (0.0, 0.0, float(w), float(h)), meta["size"]))
            tracks.append(SCENE)
            notes.append("no person found: cropped to the full frame")
        if not clips:
            return
        z = self.model.logits(np.stack(clips))
        if not np.isfinite(z).all():
            raise UserError(f"{src.spec}: the model gave NaN or infinite logits at window {k}")
        probs = _softmax(z)
        latency = time.monotonic() - arrived
        run.latencies.append(latency)
        run.windows += 1
        kk = min(self.o.topk, meta["num_classes"])
        for track, p in zip(tracks, probs, strict=True):
            run.tracks.add(track)
            order = np.argsort(-p)[:kk]
            emit(
                {
                    "type": "window",
                    "video": src.spec,
                    "track": track,
                    "window": k,
                    "start_frame": lo,
                    "end_frame": lo + plan.window,
                    "start_s": plan.seconds(lo),
                    "end_s": plan.seconds(lo + plan.window),
                    "top": [
                        {"class": int(i), "name": meta["class_names"][i], "prob": round(float(p[i]), 4)} for i in order
                    ],
                    "missing_samples": missing,
                    "latency_ms": round(latency * 1e3, 1),
                    **({"notes": notes} if notes else {}),
                }
            )
            for seg in timeline.add(track, k, p):
                self._segment(seg, run, emit)

    @staticmethod
    def _segment(seg: Segment, run: Run, emit) -> None:
        run.segments.append(seg)
        emit({**seg.record(), "video": run.video})


@dataclass
class _State:
    next: int = 0  # the next window to close
    samples: dict[int, np.ndarray] = field(default_factory=dict)
    boxes: dict[int, dict] = field(default_factory=dict)
    latest_boxes: dict = field(default_factory=dict)

    def forget_before(self, first: int) -> None:
        for t in [t for t in self.samples if t < first]:
            del self.samples[t]
            self.boxes.pop(t, None)

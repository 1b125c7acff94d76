"""Windows over a long video or a stream: what each window spans and which of its frames the model sees.

A model learned trimmed actions: each training video was sampled evenly over its whole length (``stored_frames``
frames, then ``frames`` among those). A window over an untrimmed recording is a stretch of ``window`` source
frames sampled by the same rule, so the model sees an action at the speed it learned only when the window lasts as
long as its training videos did. The default window is their median duration (``clip_lengths`` in the model's
metadata); a window outside the shortest-longest range of those videos is refused. Windows start every ``stride``
frames; window ``k`` covers frames ``[k * stride, k * stride + window)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modistill.data.video import evenly_spaced
from modistill.errors import UserError


@dataclass(frozen=True)
class WindowPlan:
    window: int  # source frames per window
    stride: int  # source frames between window starts
    offsets: tuple[int, ...]  # the sampled frames' offsets inside a window, by the training rule
    fps: float  # the source's frame rate
    notes: tuple[str, ...] = ()

    def start(self, k: int) -> int:
        return k * self.stride

    def samples(self, k: int) -> list[int]:
        """The source frame numbers the model sees of window ``k``."""
        return [k * self.stride + o for o in self.offsets]

    def last_sample(self, k: int) -> int:
        return k * self.stride + self.offsets[-1]

    def is_sample(self, t: int) -> bool:
        """Whether frame ``t`` is seen by some window: the only frames a source needs to convert and keep."""
        return any(t >= o and (t - o) % self.stride == 0 for o in self.offsets)

    def centre(self, k: int) -> float:
        return k * self.stride + (self.window - 1) / 2

    def owned(self, k: int) -> tuple[int, int]:
        """The frames window ``k`` stands for in a timeline: the stride around its centre (from 0 for the first)."""
        lo = 0 if k == 0 else int(round(self.centre(k) - self.stride / 2))
        return lo, int(round(self.centre(k) + self.stride / 2))

    def seconds(self, frame: float) -> float:
        return round(frame / self.fps, 3)


def model_offsets(window: int, meta: dict) -> tuple[int, ...]:
    """The training sampling applied to ``window`` frames: evenly_spaced(window, stored_frames), then evenly_spaced
    of those (the bundle's ``preprocess.frames``)."""
    stored = evenly_spaced(window, meta["stored_frames"])
    return tuple(int(v) for v in stored[evenly_spaced(meta["stored_frames"], meta["frames"])])


def plan_windows(meta: dict, fps: float | None, window: float | None = None, stride: float | None = None) -> WindowPlan:
    """Windows of ``window`` seconds every ``stride`` seconds (default: the median training video, and a quarter of
    the window) over a source of ``fps`` frames per second; one line for a window or stride the model's contract
    cannot take."""
    if window is not None and not window > 0:
        raise UserError(f"--window must be a positive number of seconds, got {window}")
    if stride is not None and not stride > 0:
        raise UserError(f"--stride must be a positive number of seconds, got {stride}")
    notes: list[str] = []
    c = meta.get("clip_lengths")
    if fps is None:
        raise UserError("the input does not say its frame rate, which sets the windows' length: give --fps")
    if c is None:
        if window is None:
            raise UserError(
                "this model does not record how long its training videos were (exported before they were kept): "
                "give --window SECONDS, the duration of one action"
            )
        notes.append(f"the model does not record its training videos' lengths: the {window:g} s window is unchecked")
        frames = round(window * fps)
    else:
        rate = c["fps"]
        if rate is None:
            rate = fps
            notes.append(
                f"the model does not record its training videos' frame rate: windows count frames as if it were "
                f"this input's {fps:g} fps"
            )
        lo, mid, hi = (c["frames"][k] / rate for k in ("min", "median", "max"))
        if window is None:
            window = mid
        elif not lo - 0.5 / fps <= window <= hi + 0.5 / fps:
            raise UserError(
                f"--window {window:g} s: the model learned actions lasting {lo:.2f}-{hi:.2f} s (its training videos); "
                f"a window outside that range shows it actions at a speed it never saw"
            )
        frames = round(window * fps)
    if frames < meta["frames"]:
        raise UserError(
            f"--window {window:g} s is {frames} frames at {fps:g} fps; the model samples {meta['frames']} frames "
            f"per window"
        )
    step = max(1, round(frames / 4)) if stride is None else round(stride * fps)
    if step < 1:
        raise UserError(f"--stride {stride:g} s is under one frame at {fps:g} fps")
    if step > frames:
        raise UserError(f"--stride {stride:g} s is longer than the {window:g} s window: frames between would be unseen")
    return WindowPlan(frames, step, model_offsets(frames, meta), fps, tuple(notes))


def check_length(plan: WindowPlan, n_frames: int, source: str) -> None:
    """A file shorter than one window has no window to classify."""
    if n_frames < plan.window:
        raise UserError(
            f"{source}: {n_frames} frames, shorter than one {plan.window}-frame window; --mode clip classifies it "
            f"as one trimmed action"
        )


def nearest_kept(wanted: list[int], kept: dict[int, np.ndarray]) -> tuple[list[int], int]:
    """For each wanted frame the nearest kept one (a frame dropped by a live source), and how many were missing."""
    have = np.array(sorted(kept))
    out, missing = [], 0
    for t in wanted:
        if t in kept:
            out.append(t)
            continue
        missing += 1
        out.append(int(have[np.abs(have - t).argmin()]))
    return out, missing

"""Who is in each sampled frame: person boxes with a track number, for one timeline per person.

From a detector, the boxes are linked across frames by ByteTrack (Zhang et al., ECCV 2022) as the ``trackers``
package implements it (Roboflow, Apache-2.0): it associates the confident boxes first and then the weak ones, which
keeps a person through a partial occlusion, and it needs no appearance model. Version 2.1 is the last one that
does not pull in the GUI build of OpenCV beside the headless one this package uses. The detector and the tracker
run on the frames the model sees (the windows' samples), so a person's track follows what the model is shown.

From a boxes file (``--boxes`` with ``frame`` and ``track`` columns), the user's own tracker already did this.
"""

from __future__ import annotations

import numpy as np

from modistill.data.person_box import Box, beyond_frame
from modistill.errors import UserError

LOW_SCORE = 0.1  # ByteTrack's second association reads boxes down to this score
LOST_SAMPLES = 30  # sampled frames a person may go unseen before their track ends


class DetectedPeople:
    """A person detector on each sampled frame (or at most ``rate`` times per second of video: between two
    detections each person keeps their last box), its boxes tracked by ByteTrack; tracks are numbered 1, 2, ... in
    the order they appear."""

    def __init__(self, detector, rate: float | None = None):
        if rate is not None and not rate > 0:
            raise UserError(f"--detect-rate must be a positive number of detections per second, got {rate}")
        self.rate = rate
        self._last_t: float | None = None
        self._last: dict[int, Box] = {}
        try:
            from trackers import ByteTrackTracker
        except ImportError:
            raise UserError(
                "tracking the people a detector finds needs ByteTrack from the trackers package: "
                "pip install 'modistill[track]' (or give --boxes with frame and track columns)"
            ) from None

        self.detector = detector
        self.tracker = ByteTrackTracker(
            lost_track_buffer=LOST_SAMPLES,
            frame_rate=30.0,  # the buffer counts calls: at 30 it is taken as given
            track_activation_threshold=detector.score,
            minimum_consecutive_frames=1,
            high_conf_det_threshold=detector.score,
        )
        self._ids: dict[int, int] = {}

    def boxes(self, index: int, seconds: float, image: np.ndarray) -> dict[int, Box]:
        if self.rate is not None and self._last_t is not None and seconds - self._last_t < 1 / self.rate - 1e-9:
            return dict(self._last)
        self._last_t = seconds
        self._last = self._detect(image)
        return dict(self._last)

    def _detect(self, image: np.ndarray) -> dict[int, Box]:
        import supervision as sv

        b, labels, scores = self.detector.detections(image)
        h, w = image.shape[:2]
        b = np.asarray(b, np.float64).reshape(-1, 4)
        keep = (np.asarray(labels) == self.detector.person) & (np.asarray(scores) >= LOW_SCORE)
        keep &= ~beyond_frame(b.reshape(-1, 2), (w, h)).reshape(-1, 2).any(1)
        dets = sv.Detections(
            xyxy=b[keep], confidence=np.asarray(scores, np.float64)[keep], class_id=np.zeros(int(keep.sum()), int)
        )
        out = self.tracker.update(dets)
        found = {}
        for tid, box in zip(out.tracker_id, out.xyxy, strict=True):
            if tid < 0:  # a first sighting: ByteTrack numbers a track once it is seen again
                continue
            n = self._ids.setdefault(int(tid), len(self._ids) + 1)
            found[n] = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
        return found


class GivenPeople:
    """Boxes per frame and track from the user's file (:func:`modistill.deploy.boxes.read_track_boxes`)."""

    def __init__(self, per_frame: dict[int, dict[int, Box]]):
        self.per_frame = per_frame

    def boxes(self, index: int, seconds: float, image: np.ndarray) -> dict[int, Box]:
        return dict(self.per_frame.get(index, {}))


def check_given(per_frame: dict[int, dict[int, Box]], n_frames: int | None, size: tuple[int, int], src: str) -> None:
    """Boxes for frames the input does not have, or that no camera of its size gives, mean the file belongs to
    another video: refused in one line before anything is written."""
    if not per_frame:
        raise UserError(f"{src}: --boxes has no boxes for this input")
    last = max(per_frame)
    if n_frames is not None and last >= n_frames:
        raise UserError(
            f"{src}: --boxes has boxes for frame {last}, the input has {n_frames} frames (0-{n_frames - 1})"
        )
    for t, tracks in sorted(per_frame.items()):
        for track, box in tracks.items():
            if beyond_frame(np.asarray(box).reshape(2, 2), size).any():
                raise UserError(
                    f"{src}: --boxes frame {t} track {track}: {[round(v) for v in box]} is impossible for the "
                    f"{size[0]}x{size[1]} input"
                )

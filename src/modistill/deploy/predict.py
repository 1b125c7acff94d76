"""``modistill predict``: top-k actions for raw RGB videos with a run folder, a safetensors bundle or an ONNX
file, on PyTorch or onnxruntime."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from modistill.deploy.video import clip_box, crop_clip, sampled_frames
from modistill.errors import DataError, UserError

if TYPE_CHECKING:
    from modistill.deploy.windowed import WindowOptions
from modistill.utils.hf_cache import HF_SCHEME


class Predictor:
    """Loads a model once; :meth:`logits` takes uint8 clips ``[B, T, 3, S, S]``."""

    def __init__(self, model: str | Path, runtime: str = "auto", device: str = "cpu"):
        hub_id = str(model) if str(model).startswith(HF_SCHEME) else None
        model = Path(model)
        self.device = device
        if runtime == "auto":
            runtime = "onnx" if model.suffix == ".onnx" else "torch"
        if runtime == "onnx" and model.suffix != ".onnx":
            raise UserError(f"{model}: --runtime onnx needs an .onnx file (make one with `modistill export`)")
        if runtime == "torch" and model.suffix == ".onnx":
            raise UserError(f"{model}: an .onnx file runs with --runtime onnx")
        self.runtime = runtime
        if runtime == "onnx":
            from modistill.deploy.onnx_export import OnnxModel

            self._onnx = OnnxModel(model, device=device)
            self.meta = self._onnx.meta
        else:
            from modistill.deploy.bundle import load_deploy_model

            self._torch, self.meta = load_deploy_model(hub_id or model)
            try:
                self._torch.to(torch.device(device))
            except (RuntimeError, AssertionError) as e:
                raise UserError(f"--device {device}: not usable here ({str(e).splitlines()[0]})") from None

    def logits(self, clips: np.ndarray) -> np.ndarray:
        x = clips.astype(np.float32)
        if self.runtime == "onnx":
            return self._onnx(x)
        with torch.inference_mode():
            return self._torch(torch.from_numpy(x).to(self.device)).float().cpu().numpy()

    def predict(
        self,
        videos: Sequence[str | Path],
        topk: int = 5,
        boxes: dict | None = None,
        detector: str | None = None,
        detector_score: float | None = None,
        full_frame: bool = False,
    ) -> list[dict]:
        """One result per video: ``{"video", "top": [{"class", "name", "prob"}], "error"}`` (and ``"note"`` when
        the crop is not the model's rule); a bad video gets an error entry and the others still run.

        A person-crop model takes each video's person box from ``boxes``
        (:func:`modistill.deploy.boxes.read_boxes`), else from a detector (``detector`` or the model's own, with
        ``detector_score`` or the model's threshold). A video without a box fails, unless ``full_frame``: then it
        is cropped to its whole frame and its result says so. A fixed-crop model refuses these options, since it
        would not use them."""
        m = self.meta
        person = isinstance(m["crop"], dict)
        check_predict_options(topk, boxes is not None, detector, detector_score)
        check_fixed_crop(m, boxes is not None or bool(detector) or detector_score is not None or full_frame)
        find = None
        if person and boxes is None:
            from modistill.deploy.detector import load_detector

            find = load_detector(
                detector or m["crop"]["detector"], m["crop"]["score"] if detector_score is None else detector_score
            )
        k = min(topk, m["num_classes"])
        out: list[dict] = []
        for v in videos:
            if not Path(v).is_file():  # a FIFO or device would block the decoder forever
                why = "not found" if not Path(v).exists() else "not a regular file"
                out.append({"video": str(v), "top": [], "error": why})
                continue
            try:
                clip, note = self._clip(v, boxes, find, full_frame)
            except DataError as e:  # the entry names the video already: keep the problem only
                same = Path(str(e.path)) == Path(v)
                out.append({"video": str(v), "top": [], "error": e.problem if same else str(e)})
                continue
            z = self.logits(clip[None])[0].astype(np.float64)
            if not np.isfinite(z).all():
                out.append({"video": str(v), "top": [], "error": "the model gave NaN or infinite logits"})
                continue
            p = np.exp(z - z.max())
            p /= p.sum()
            order = np.argsort(-p)[:k]
            res = {
                "video": str(v),
                "error": None,
                "top": [{"class": int(i), "name": m["class_names"][i], "prob": float(p[i])} for i in order],
            }
            out.append(res | ({"note": note} if note else {}))
        return out

    def _clip(self, v: str | Path, boxes: dict | None, find, full_frame: bool) -> tuple[np.ndarray, str | None]:
        """The model's input clip of one video, and a note when its crop is not the model's rule."""
        from modistill.deploy.boxes import box_for

        m = self.meta
        imgs = sampled_frames(v, m["frames"], m["stored_frames"])
        h, w = imgs[0].shape[:2]
        if not isinstance(m["crop"], dict):
            return crop_clip(imgs, clip_box(v, m["crop"], (w, h)), m["size"]), None
        if boxes is not None:
            pbox, why = box_for(v, boxes), "no person box for this video in --boxes"
        else:
            pbox, why = find.box(imgs), f"no person found ({find.spec}, score >= {find.score})"
        if pbox is None:
            if not full_frame:
                raise DataError(v, why)
            return crop_clip(imgs, (0.0, 0.0, float(w), float(h)), m["size"]), f"{why}: cropped to the full frame"
        return crop_clip(imgs, clip_box(v, m["crop"], (w, h), pbox), m["size"]), None

    def windows(
        self,
        video: str,
        options: WindowOptions | None = None,
        boxes: dict | None = None,
        detector: str | None = None,
        detector_score: float | None = None,
        annotate: str | Path | None = None,
        on_record=None,
        stop=None,
        detect_rate: float | None = None,
        show_progress: bool = False,
    ):
        """Windows over an untrimmed ``video`` (a file, ``-``, a pipe, a device or a URL): a
        :class:`modistill.deploy.windowed.Run` with the timeline's segments per person; ``on_record`` gets each
        window's and segment's record as it is decided. ``boxes``: per frame and track
        (:func:`modistill.deploy.boxes.read_track_boxes`); else a person-crop model finds people with a detector
        (``detector`` or the model's, at most ``detect_rate`` times per second of video) tracked by ByteTrack."""
        from modistill.deploy.boxes import box_for
        from modistill.deploy.timeline import check_timeline_options
        from modistill.deploy.tracks import DetectedPeople, GivenPeople, check_given
        from modistill.deploy.windowed import WindowedPredictor, WindowOptions

        o = options or WindowOptions()
        m = self.meta
        person = isinstance(m["crop"], dict)
        check_predict_options(o.topk, boxes is not None, detector, detector_score)
        check_timeline_options(o.smooth, o.threshold)
        check_fixed_crop(
            m,
            boxes is not None
            or bool(detector)
            or detector_score is not None
            or detect_rate is not None
            or o.full_frame,
        )
        people: GivenPeople | DetectedPeople | None = None
        check = None
        if person and boxes is not None:
            per_frame = box_for(video, boxes)
            if per_frame is None and not o.full_frame:
                raise UserError(f"{video}: no boxes for this input in --boxes")
            people = GivenPeople(per_frame or {})
            if per_frame:
                check = lambda src, n: check_given(per_frame, n, src.size, video)  # noqa: E731
        elif person:
            from modistill.deploy.detector import load_detector

            score = m["crop"]["score"] if detector_score is None else detector_score
            people = DetectedPeople(load_detector(detector or m["crop"]["detector"], score), detect_rate)
        return WindowedPredictor(self, people, o).run(video, on_record, annotate, stop, check, show_progress)


def choose_mode(meta: dict, video: str, mode: str) -> tuple[str, str | None]:
    """``clip`` (one trimmed action, the whole file sampled once) or ``windows``; ``auto`` takes windows for a
    stream or a file that could hold two of the model's longest training videos, and says so when the model
    cannot tell."""
    from modistill.data.video import frame_rate
    from modistill.deploy.source import count_frames, input_kind

    if mode == "clip":
        if video == "-" or "://" in video:
            raise UserError(f"{video}: a stream has no end to sample one clip from; --mode windows")
        return "clip", None
    if mode == "windows" or input_kind(video) != "file":
        return "windows", None
    c = meta.get("clip_lengths")
    if c is None:
        return "clip", (
            "the model does not record how long its training videos were: classified as one trimmed action "
            "(--mode windows --window SECONDS for an untrimmed video)"
        )
    n = count_frames(video)
    rate, trained = frame_rate(video), c["fps"]
    longest = c["frames"]["max"] * (rate / trained if rate and trained else 1.0)
    mode = "windows" if n > 2 * longest else "clip"
    if rate and trained:
        return mode, None
    unknown = "this file's" if trained else "the model's training videos'"
    return mode, f"{unknown} frame rate is unknown: its length was compared with theirs in frames ({mode} mode)"


def check_fixed_crop(meta: dict, given: bool) -> None:
    """A fixed-crop model would ignore person boxes, a detector or a full-frame fallback: refused, not ignored."""
    if not isinstance(meta["crop"], dict) and given:
        raise UserError(
            f"this model crops every video to the fixed box {meta['crop']} it was trained with; --boxes, "
            f"--detector and --no-person apply to models prepared with --crop person"
        )


def check_predict_options(topk: int, boxes: bool, detector: str | None, detector_score: float | None) -> None:
    """Every option is checked whether or not another one makes it unused: an impossible value, or one that cannot
    take effect, is refused in one line instead of being ignored."""
    if topk < 1:
        raise UserError(f"--topk must be at least 1, got {topk}")
    if detector_score is not None and not 0 < detector_score < 1:
        raise UserError(f"--detector-score must be between 0 and 1, got {detector_score}")
    if boxes and (detector or detector_score is not None):
        given = "--detector" if detector else "--detector-score"
        raise UserError(f"{given} sets the person detector, which --boxes replaces: give one or the other")

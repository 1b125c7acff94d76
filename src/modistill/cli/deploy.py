"""Deployment sub-commands: export (ONNX, safetensors bundle, Hub-style folder) and predict (raw RGB videos)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path


def cmd_export(a: argparse.Namespace) -> None:
    from modistill.deploy.export import export_checked

    r = export_checked(a.run, a.out, a.safetensors, a.hub_dir, a.step, a.quantize, a.license)
    m = r["meta"]
    print(
        f"wrote {r['onnx']}, {r['safetensors']} and the Hub-style folder {r['hub']}: {m['arch']} (width "
        f"{m['width']}), {m['num_classes']} classes, input [B, {m['frames']}, 3, {m['size']}, {m['size']}] RGB "
        f"0-255, crop {_crop_words(m['crop'])} ({m['crop_source']}); "
        f"ONNX vs PyTorch max |Δlogit| = {r['max_abs_diff']:.2e}"
    )
    if "int8" in r:
        q = r["int8_report"]
        print(
            f"wrote {r['int8']}: int8 (static, calibrated on {q['calibration_clips']} training clips); top-1 on the "
            f"run's {q['test_videos']} test clips {100 * q['float_top1']:.2f}% float → {100 * q['int8_top1']:.2f}% "
            f"int8; {q['float_ms']:.1f} → {q['int8_ms']:.1f} ms per clip on this CPU ({q['speedup']:.2f}x)"
        )


def cmd_export_detector(a: argparse.Namespace) -> None:
    from modistill.data.person_box import DEFAULT_DETECTOR, DETECTOR_SCORE
    from modistill.deploy.detector import export_detector, load_detector

    det = load_detector(
        a.detector or DEFAULT_DETECTOR, DETECTOR_SCORE if a.detector_score is None else a.detector_score
    )
    out = export_detector(det, a.out)
    print(f"wrote {out}: {det.spec} (person = label {det.person}, score >= {det.score}); predict --detector {out}")


def _crop_words(crop: list | dict) -> str:
    return f"around the person (padding {crop['padding']})" if isinstance(crop, dict) else str(crop)


def cmd_predict(a: argparse.Namespace) -> int | None:
    from modistill.deploy.predict import Predictor, check_fixed_crop, check_predict_options, choose_mode
    from modistill.errors import UserError

    check_predict_options(a.topk, a.boxes is not None, a.detector, a.detector_score)  # before the model loads
    _check_window_options(a)
    predictor = Predictor(a.model, a.runtime, a.device)
    check_fixed_crop(
        predictor.meta,
        a.boxes is not None
        or bool(a.detector)
        or a.detector_score is not None
        or a.detect_rate is not None
        or a.no_person == "full-frame",
    )
    clips: list[str] = []
    windowed: list[str] = []
    results: dict[str, dict] = {}
    notes: dict[str, str] = {}
    for v in a.videos:
        try:
            mode, note = choose_mode(predictor.meta, v, a.mode)
        except UserError as e:
            results[v] = {"video": v, "mode": a.mode, "top": [], "error": str(e).removeprefix(f"{v}: ")}
            continue
        (clips if mode == "clip" else windowed).append(v)
        if note:
            notes[v] = note
    if windowed and (a.annotate or a.timeline) and len(windowed) > 1:
        raise UserError("--annotate and --timeline take one input at a time")
    if clips:
        for r in predictor.predict(
            clips, a.topk, _boxes(a, tracked=False), a.detector, a.detector_score, a.no_person == "full-frame"
        ):
            note = "; ".join(x for x in (notes.get(r["video"]), r.get("note")) if x)
            results[r["video"]] = {"mode": "clip", **r} | ({"note": note} if note else {})
    rc = None
    for v in windowed:
        result, code = _predict_windows(predictor, v, a, notes.get(v))
        results[v] = result
        rc = rc or code
    ordered = [results[v] for v in a.videos if v in results]
    if a.json:
        print(json.dumps(ordered, indent=2, allow_nan=False))
    else:
        for r in ordered:
            if r["mode"] == "clip" or r["error"]:
                _print_clip(r)
    if rc:
        return rc
    return 2 if any(r["error"] for r in ordered) else None


def _print_clip(r: dict) -> None:
    if r["error"]:
        print(f"{r['video']}: error: {r['error']}")
        return
    print(r["video"] + (f" (note: {r['note']})" if r.get("note") else ""))
    for t in r["top"]:
        print(f"  {100 * t['prob']:6.2f}%  {t['class']:3d}  {t['name']}")


def _boxes(a: argparse.Namespace, tracked: bool) -> dict | None:
    if a.boxes is None:
        return None
    from modistill.deploy.boxes import read_boxes, read_track_boxes

    return read_track_boxes(a.boxes) if tracked else read_boxes(a.boxes)


WINDOW_ONLY = ("window", "stride", "fps", "timeline", "annotate", "queue", "smooth", "threshold", "detect_rate")


def _check_window_options(a: argparse.Namespace) -> None:
    from modistill.deploy.timeline import check_timeline_options
    from modistill.errors import UserError

    given = [k for k in WINDOW_ONLY if getattr(a, k) is not None]
    if a.mode == "clip" and given:
        raise UserError(f"--{given[0].replace('_', '-')} applies to windows over a long video, not to --mode clip")
    if a.detect_rate is not None and a.boxes is not None:
        raise UserError("--detect-rate sets how often the person detector runs, which --boxes replaces")
    o = _window_options(a)
    check_timeline_options(o.smooth, o.threshold)
    if o.queue < 1:
        raise UserError(f"--queue must be at least 1 frame, got {o.queue}")


def _window_options(a: argparse.Namespace):
    """The options as given, the rest at :class:`WindowOptions`' defaults (the one place they are set)."""
    from modistill.deploy.windowed import WindowOptions

    given = {k: getattr(a, k) for k in ("window", "stride", "fps", "smooth", "threshold", "queue")}
    return WindowOptions(
        **{k: v for k, v in given.items() if v is not None}, topk=a.topk, full_frame=a.no_person == "full-frame"
    )


def _segment_line(r: dict) -> str:
    who = "scene" if r["track"] == 0 else f"person {r['track']}"

    def at(sec: float) -> str:
        return f"{int(sec // 60)}:{sec % 60:05.2f}"

    return (
        f"{r['video']}  {who}  {at(r['start_s'])}-{at(r['end_s'])}  {r['name']}  "
        f"({r['score']:.2f} mean, {r['windows']} windows)"
    )


def _predict_windows(predictor, video: str, a: argparse.Namespace, note: str | None) -> tuple[dict, int | None]:
    """One input through windows: segments printed as they close (unless --json), the timeline file and the
    annotated video finished even when the input is cut or a signal stops it; the exit code says which."""
    import threading

    from modistill.deploy.timeline import TimelineWriter
    from modistill.errors import UserError

    opts = _window_options(a)
    writer = TimelineWriter(a.timeline) if a.timeline else None
    stop, signals = threading.Event(), []

    def on_record(r: dict) -> None:
        if writer is not None:
            writer.write(r)
        if r["type"] == "segment" and not a.json:
            print(_segment_line(r), flush=True)

    def on_signal(signum, _frame) -> None:
        signals.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        run = predictor.windows(
            video,
            opts,
            _boxes(a, tracked=True),
            a.detector,
            a.detector_score,
            a.annotate,
            on_record,
            stop,
            a.detect_rate,
            show_progress=not a.json and sys.stderr.isatty(),
        )
    except UserError as e:
        if writer is not None:
            writer.close(keep=False)
        return {"video": video, "mode": "windows", "error": str(e).removeprefix(f"{video}: ")}, 2
    except BaseException:
        if writer is not None:
            writer.close(keep=False)
        raise
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    summary = run.summary()
    if note:  # how the mode was chosen, when the model or the file could not say
        summary["notes"] = [note, *summary["notes"]]
    if signals:
        summary["end"] = "stopped by " + signal.Signals(signals[0]).name
    if writer is not None:
        writer.write(summary)
        writer.close()
    if not a.json:
        print(_summary_line(summary), file=sys.stderr if signals else sys.stdout)
    result = {"video": video, "mode": "windows", "error": None, "segments": [s.record() for s in run.segments]}
    code = 128 + signals[0] if signals else (None if run.clean else 3)
    return result | {"summary": summary}, code


def _summary_line(s: dict) -> str:
    fps = s["fps"]
    lat = f"latency {s['latency_ms_mean']} ms mean, {s['latency_ms_p95']} ms p95; " if s["latency_ms_mean"] else ""
    rt = f"{s['realtime_factor']}x real time; " if s["realtime_factor"] else ""
    line = (
        f"{s['video']}: {s['windows']} windows of {s['window_frames']} frames every {s['stride_frames']} "
        f"({s['window_frames'] / fps:.2f} s every {s['stride_frames'] / fps:.2f} s), {s['tracks']} "
        f"{'track' if s['tracks'] == 1 else 'tracks'}, {s['segments']} segments; {s['frames_decoded']} frames "
        f"decoded, {s['frames_dropped']} dropped; {lat}{rt}{s['end']}"
    )
    return line + "".join(f"\n  note: {n}" for n in s["notes"])


def _add_export(sub: argparse._SubParsersAction) -> None:
    from modistill.training.steps import DEPLOYABLE

    e = sub.add_parser("export", help="export a run's RGB-only (step 4) model to ONNX and a safetensors bundle")
    e.add_argument("run", type=Path, help="run folder with a finished step4")
    e.add_argument("--out", type=Path, required=True, help="ONNX path (model.onnx)")
    e.add_argument("--safetensors", type=Path, default=None, help="bundle path (default: OUT with .safetensors)")
    e.add_argument(
        "--hub-dir",
        type=Path,
        default=None,
        help="Hub-style folder: config.json, model.safetensors, model card (default: OUT's name + -hub)",
    )
    e.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="also write OUT-int8.onnx: ONNX Runtime static int8, calibrated on the run's training clips; "
        "prints the accuracy change on the run's test clips and the speed-up",
    )
    e.add_argument(
        "--license",
        default=None,
        metavar="ID",
        help="the model card's license (a Hub identifier such as apache-2.0); default: apache-2.0 for the synthetic "
        "benchmark, else other, named after the training data's terms (NTU RGB+D: its release agreement)",
    )
    e.add_argument(
        "--step",
        choices=DEPLOYABLE,
        default=DEPLOYABLE[0],
        help="which RGB-only model of the run (step4_noconn: step 4 as the released code runs it, without "
        "connections; step4_inv: the inverted-connection study)",
    )
    e.set_defaults(func=cmd_export)


def _add_export_detector(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser(
        "export-detector",
        help="write a torchvision person detector from the local hub cache as ONNX, for predict --detector FILE",
    )
    d.add_argument(
        "--detector",
        default=None,
        metavar="SPEC",
        help="torchvision:WEIGHTS_ENUM.MEMBER (default: FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1)",
    )
    d.add_argument("--detector-score", type=float, default=None, help="the score threshold it records (default 0.5)")
    d.add_argument("--out", type=Path, required=True, help="ONNX path")
    d.set_defaults(func=cmd_export_detector)


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="top-k actions of raw RGB videos, or a timeline of actions per person over a long video or a live "
        "stream (no depth, no skeleton needed)",
    )
    p.add_argument(
        "videos",
        nargs="+",
        metavar="INPUT",
        help="video files (any format PyAV reads); with windows also - (standard input), a named pipe, a camera "
        "device (/dev/video0) or a URL (rtsp://, http://, udp://, ...)",
    )
    p.add_argument(
        "--mode",
        choices=["auto", "clip", "windows"],
        default="auto",
        help="clip: each file is one trimmed action, sampled once over its whole length; windows: a timeline over "
        "windows of an untrimmed video or a stream; auto (default): windows for streams and for files that could "
        "hold two of the model's longest training videos, clip otherwise",
    )
    p.add_argument(
        "--model",
        required=True,
        help="run folder, Hub-style folder, .safetensors bundle, .onnx file, or hf-hub:USER/NAME[@REV] "
        "from the local Hugging Face cache (offline)",
    )
    p.add_argument(
        "--runtime",
        choices=["auto", "torch", "onnx"],
        default="auto",
        help="auto: onnxruntime for .onnx, PyTorch otherwise",
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="cpu, cuda or cuda:N (PyTorch); for ONNX Runtime also tensorrt[:N] (its TensorRT provider)",
    )
    p.add_argument(
        "--boxes",
        type=Path,
        default=None,
        metavar="FILE",
        help="person boxes per video (JSON or CSV, pixels of the raw video) for a model prepared with --crop "
        "person; see modistill.deploy.boxes for the format. A video without a box fails with a reason",
    )
    p.add_argument(
        "--detector",
        default=None,
        metavar="SPEC",
        help="person-crop models without --boxes: the torchvision detector that finds the person, e.g. "
        "torchvision:KeypointRCNN_ResNet50_FPN_Weights.COCO_V1, read from the local torch hub cache, or an .onnx "
        "file of export-detector (default: the one the model's metadata names)",
    )
    p.add_argument(
        "--detector-score",
        type=float,
        default=None,
        help="person boxes scoring at least this count (default: the model's, 0.5)",
    )
    p.add_argument(
        "--no-person",
        choices=["fail", "full-frame"],
        default="fail",
        help="a video in which no person is found (or without a box in --boxes): fail with a reason (default), or "
        "crop it to the full frame, which its result then says",
    )
    p.add_argument("--topk", type=int, default=5, help="classes listed per video (per window with windows)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print results as JSON (with windows: each input's segments and summary, at its end)",
    )
    _add_window_options(p.add_argument_group("windows over a long video or a stream"))
    p.set_defaults(func=cmd_predict)


def _add_window_options(w: argparse._ArgumentGroup) -> None:
    w.add_argument(
        "--window",
        type=float,
        default=None,
        metavar="SECONDS",
        help="window length (default: the model's median training video; refused outside its shortest-longest)",
    )
    w.add_argument(
        "--stride", type=float, default=None, metavar="SECONDS", help="time between windows (default: window / 4)"
    )
    w.add_argument(
        "--smooth", type=int, default=None, help="windows averaged per decision, centred (default 3; 1: none)"
    )
    w.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="smoothed probability a window's top class needs to be labelled (default 0.5; below: no action)",
    )
    w.add_argument(
        "--timeline",
        default=None,
        metavar="FILE",
        help="write the timeline: .jsonl (every window, segment and the summary, as decided) or .csv (segments)",
    )
    w.add_argument(
        "--annotate",
        default=None,
        metavar="OUT.mp4",
        help="write the input with each person's box, label and score, and a timeline strip",
    )
    w.add_argument(
        "--detect-rate",
        type=float,
        default=None,
        metavar="PER_SECOND",
        help="run the person detector at most this often per second of video; between two detections each person "
        "keeps their last box (default: on every frame a window samples)",
    )
    w.add_argument("--fps", type=float, default=None, help="the input's frame rate, for inputs that do not say theirs")
    w.add_argument(
        "--queue",
        type=int,
        default=None,
        metavar="FRAMES",
        help="decoded frames a live input may hold waiting; beyond that the oldest is dropped and counted "
        "(default 64; files are never dropped)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    _add_export(sub)
    _add_export_detector(sub)
    _add_predict(sub)

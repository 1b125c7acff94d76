"""Deployment sub-commands: export (ONNX, safetensors bundle, Hub-style folder) and predict (raw RGB videos)."""

from __future__ import annotations

import argparse
import json
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
    from modistill.deploy.predict import Predictor, check_predict_options

    check_predict_options(a.topk, a.boxes is not None, a.detector, a.detector_score)  # before the model loads
    boxes = None
    if a.boxes is not None:
        from modistill.deploy.boxes import read_boxes

        boxes = read_boxes(a.boxes)
    results = Predictor(a.model, a.runtime, a.device).predict(
        a.videos, a.topk, boxes, a.detector, a.detector_score, a.no_person == "full-frame"
    )
    if a.json:
        print(json.dumps(results, indent=2, allow_nan=False))
    else:
        for r in results:
            if r["error"]:
                print(f"{r['video']}: error: {r['error']}")
                continue
            print(r["video"] + (f" (note: {r['note']})" if r.get("note") else ""))
            for t in r["top"]:
                print(f"  {100 * t['prob']:6.2f}%  {t['class']:3d}  {t['name']}")
    return 2 if any(r["error"] for r in results) else None


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
    p = sub.add_parser("predict", help="top-k actions of raw RGB videos (no depth, no skeleton needed)")
    p.add_argument("videos", nargs="+", type=Path, help="video files (any format PyAV reads)")
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
    p.add_argument("--topk", type=int, default=5, help="classes listed per video")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.set_defaults(func=cmd_predict)


def register(sub: argparse._SubParsersAction) -> None:
    _add_export(sub)
    _add_export_detector(sub)
    _add_predict(sub)

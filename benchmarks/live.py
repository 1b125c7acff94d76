"""Real time on this CPU: windows over a camera-size recording (640 x 480, 30 fps) with an exported model, fp32 and
int8 ONNX Runtime, for 1 to 8 people, with and without a person detector.

Per model file and number of people P, a synthetic recording with P people (coloured figures that move) is run
through ``predict``'s window loop (:class:`modistill.deploy.windowed.WindowedPredictor`) with the people's boxes
given per frame, from decoding to the timeline: frames per second processed and the real-time factor (seconds of
video per second of wall clock; 1 or more keeps up with a camera). The detectors are timed apart on the same
frames, each at its own input size (torchvision resizes a frame's shorter side to the detector's ``min_size``):
the default one (800 px) on every frame the windows sample, and the 320 px one at ``predict --detect-rate 2``.
A detector runs once per frame whatever the number of people and in the same thread as the model, so its cost per
second of video is added to each row's. The detectors are built with random weights (the arithmetic of the trained
ones; their boxes are not used). "People at 30 fps" is the largest P whose real-time factor reaches 1.

Usage: python benchmarks/live.py --model demo_out/model.onnx [--int8 demo_out/model-int8.onnx] [--seconds 20]
       python benchmarks/live.py --readme docs/live.md      # the docs table from results/live.json
Writes benchmarks/results/live.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

START = "<!-- benchmarks:live:start -->"
END = "<!-- benchmarks:live:end -->"
SIZE = (640, 480)
FPS = 30
PEOPLE = (1, 2, 4, 8)


def recording(path: Path, people: int, seconds: float, seed: int = 0) -> dict[int, dict[int, tuple]]:
    """A recording with ``people`` figures walking slowly on a textured background; returns their boxes per frame
    and track."""
    import av

    rng = np.random.default_rng(seed)
    w, h = SIZE
    background = rng.integers(40, 120, (h, w, 3), dtype=np.uint8)
    cols = max(1, min(people, 4))
    cell_w, cell_h = w // cols, h // ((people + cols - 1) // cols)
    boxes: dict[int, dict[int, tuple]] = {}
    n = int(seconds * FPS)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for t in range(n):
            img = background.copy()
            for p in range(people):
                cx = (p % cols) * cell_w + cell_w // 2 + int(10 * np.sin(t / 20 + p))
                cy = (p // cols) * cell_h + cell_h // 2
                bw, bh = cell_w // 3, int(cell_h * 0.8)
                box = (cx - bw // 2, cy - bh // 2, cx + bw // 2, cy + bh // 2)
                img[box[1] : box[3], box[0] : box[2]] = ((37 * p + 3 * t) % 256, 200, (90 + 11 * t) % 256)
                boxes.setdefault(t, {})[p + 1] = tuple(float(v) for v in box)
            for packet in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in s.encode(None):
            out.mux(packet)
    return boxes


DETECTORS = {
    "default": "torchvision:FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1",
    "320": "torchvision:FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1",
}
RATE_320 = 2.0  # predict --detect-rate for the 320 px detector's column


def detector_ms(spec: str, frames: list[np.ndarray], reps: int = 5) -> tuple[float, int]:
    """Median milliseconds per frame of the detector ``spec``'s architecture (random weights) on RGB frames, and
    its input size (the shorter side it resizes to)."""
    import torch
    import torchvision

    from modistill.deploy.detector import PersonDetector, _builder, _weights

    arch = _builder(_weights(spec))
    model = torchvision.models.get_model(arch, weights=None, weights_backbone=None, num_classes=91).eval()
    det = PersonDetector(spec, model, 1, 0.5)
    det.detections(frames[0])
    times = []
    with torch.inference_mode():
        for i in range(reps):
            t0 = time.perf_counter()
            det.detections(frames[i % len(frames)])
            times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times), int(model.transform.min_size[0])


def measure(a: argparse.Namespace) -> dict:
    import av

    from modistill.deploy.predict import Predictor
    from modistill.deploy.tracks import GivenPeople
    from modistill.deploy.windowed import WindowedPredictor, WindowOptions
    from modistill.deploy.windows import plan_windows

    models = {"fp32": a.model} | ({"int8": a.int8} if a.int8 else {})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        videos = {p: (Path(tmp) / f"people{p}.mp4") for p in a.people}
        boxes = {p: recording(videos[p], p, a.seconds) for p in a.people}
        with av.open(str(videos[a.people[0]])) as c:
            frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(5), c.decode(video=0), strict=False)]
        dets = {k: detector_ms(spec, frames, a.detector_reps) for k, spec in DETECTORS.items()}
        for name, path in models.items():
            pred = Predictor(path, "onnx")
            plan = plan_windows(pred.meta, FPS)
            samples_per_s = sum(plan.is_sample(t) for t in range(10 * FPS)) / 10
            for p in a.people:
                run = WindowedPredictor(pred, GivenPeople(boxes[p]), WindowOptions()).run(str(videos[p]))
                s = run.summary()
                video_s = s["frames_decoded"] / FPS
                every = dets["default"][0] / 1e3 * samples_per_s * video_s
                slow = dets["320"][0] / 1e3 * min(RATE_320, samples_per_s) * video_s
                rows.append(
                    {
                        "model": name,
                        "people": p,
                        "fps": round(s["frames_decoded"] / s["wall_s"], 1),
                        "realtime": s["realtime_factor"],
                        "realtime_with_detector": round(video_s / (s["wall_s"] + every), 2),
                        "realtime_with_320_detector": round(video_s / (s["wall_s"] + slow), 2),
                        "latency_ms_p95": s["latency_ms_p95"],
                        "windows_per_s": round(s["windows"] / s["wall_s"], 1),
                    }
                )
                print(rows[-1], flush=True)
    meta = pred.meta
    return {
        "rows": rows,
        "detectors": {
            k: {"spec": DETECTORS[k], "ms_per_frame": round(ms, 1), "input": size} for k, (ms, size) in dets.items()
        },
        "rate_320": RATE_320,
        "samples_per_s": samples_per_s,
        "window": {"frames": plan.window, "stride": plan.stride},
        "model": {k: meta[k] for k in ("arch", "width", "size", "frames")},
        "seconds": a.seconds,
        "people": list(a.people),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
    }


def table(r: dict) -> str:
    m, d, w = r["model"], r["detectors"], r["window"]
    lines = [
        f"{m['arch']} width {m['width']}, {m['size']} px, {m['frames']} frames (the demo's model); a 640 x 480, 30 fps "
        f"recording of {r['seconds']:g} s; windows of {w['frames']} frames every {w['stride']} "
        f"({r['samples_per_s']:g} sampled frames per second); {r['machine']['cores']} CPU cores. Detectors: the "
        f"default ({d['default']['input']} px) takes {d['default']['ms_per_frame']} ms per frame and runs on every "
        f"sampled frame; the 320 px one (`--detector {d['320']['spec']}`) takes {d['320']['ms_per_frame']} ms and runs "
        f"{r['rate_320']:g} times per second (`--detect-rate {r['rate_320']:g}`).",
        "",
        "| Model | People | Frames/s | Real-time factor, boxes given | Default detector | 320 px detector, "
        f"{r['rate_320']:g}/s | Latency p95 (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        lines.append(
            f"| ONNX Runtime {row['model']} | {row['people']} | {row['fps']} | {row['realtime']} | "
            f"{row['realtime_with_detector']} | {row['realtime_with_320_detector']} | {row['latency_ms_p95']} |"
        )
    lines.append("")
    for name in sorted({row["model"] for row in r["rows"]}):
        mine = [row for row in r["rows"] if row["model"] == name]
        most = [
            max((row["people"] for row in mine if row[k] >= 1), default=0)
            for k in ("realtime", "realtime_with_detector", "realtime_with_320_detector")
        ]
        lines.append(
            f"- {name}, people kept up with at 30 fps (of {', '.join(map(str, r['people']))} tried): {most[0]} with "
            f"their boxes given, {most[1]} with the default detector, {most[2]} with the 320 px detector at "
            f"{r['rate_320']:g}/s."
        )
    lines.append(
        "- The latency is from a sampled frame's decoding to its window's result, with the file read as fast as "
        "it decodes (frames wait in the queue); on a live camera, frames arrive at 30 fps."
    )
    return "\n".join(lines)


def write_readme(readme: Path, results: Path) -> str:
    from modistill.errors import UserError
    from modistill.utils.io import replace_marked_section

    if not results.is_file():
        raise UserError(f"{results}: not found; run benchmarks/live.py first")
    text = table(json.loads(results.read_text()))
    written = "_Written by `python benchmarks/live.py --readme docs/live.md`; do not edit by hand._"
    replace_marked_section(readme, START, END, f"{written}\n\n{text}", "live benchmark table")
    return text


def main(argv: list[str] | None = None) -> dict | str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="an exported .onnx model (the demo's: modistill export demo_out/run ...)")
    ap.add_argument("--int8", default=None, help="its int8 file (export --quantize int8)")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--people", type=int, nargs="+", default=list(PEOPLE), help="people per recording")
    ap.add_argument("--detector-reps", type=int, default=5, help="timed detector calls")
    ap.add_argument("--readme", type=Path, help="only regenerate this page's table from the results file")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "live.json")
    a = ap.parse_args(argv)
    if a.readme:
        text = write_readme(a.readme, a.out)
        print(text)
        return text
    if not a.model:
        ap.error("--model is required")
    result = measure(a)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    print(table(result))
    return result


if __name__ == "__main__":
    main()

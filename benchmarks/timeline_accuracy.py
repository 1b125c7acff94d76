"""How well the timeline of ``predict --mode windows`` follows an untrimmed recording with known actions: a long
synthetic recording of two people side by side, each performing a sequence of the run's held-out test videos one
after the other, with each person's box per frame from their skeleton (the boxes a tracker would give).

Reported per person and overall: the frame-level accuracy of the timeline against the known action of every frame
(a frame the timeline leaves unlabelled counts as wrong), the share of frames labelled, and as the reference the
model's accuracy on the same test videos one trimmed clip at a time (``--mode clip``), which the timeline can at
best approach: its windows do not know where the actions start.

Usage: python benchmarks/timeline_accuracy.py --data demo_out/data --run demo_out/run --model demo_out/model.onnx
           [--actions 12] [--seed 0] [--smooth 3] [--threshold 0.5] [--stride SECONDS] [--annotate OUT.mp4]
       python benchmarks/timeline_accuracy.py --readme docs/live.md   # the docs table from the results file
Writes benchmarks/results/timeline_accuracy.json (results/timeline_accuracy_SUFFIX.json with --suffix).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

START = "<!-- benchmarks:timeline:start -->"
END = "<!-- benchmarks:timeline:end -->"


def person_boxes(layout, name: str, size: tuple[int, int]) -> list[tuple[float, float, float, float] | None]:
    """Per frame, the tight box (pixels of the ``size`` video) around the skeleton's tracked joints."""
    from modistill.data import ntu
    from modistill.data.align import COLOR_REF
    from modistill.data.person_box import tight_box

    sx, sy = size[0] / COLOR_REF[0], size[1] / COLOR_REF[1]
    out = []
    for bodies in ntu.read_skeleton(layout.skeleton(name)):
        pts = [b.joints[b.joints[:, 11] != 0, 5:7] for b in bodies]
        box = tight_box(np.concatenate(pts)) if pts else None
        out.append(None if box is None else (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy))
    return out


def performer(layout, names: list[str]) -> tuple[list[np.ndarray], list, list[int]]:
    """One person's frames, boxes and true label per frame, their videos played one after the other."""
    from modistill.data import ntu, video

    frames, boxes, labels = [], [], []
    for n in names:
        imgs = video.read_rgb_frames(layout.rgb(n))
        b = person_boxes(layout, n, (imgs[0].shape[1], imgs[0].shape[0]))
        k = min(len(imgs), len(b))
        frames += imgs[:k]
        boxes += b[:k]
        labels += [ntu.parse_name(n).action - 1] * k
    return frames, boxes, labels


def measure(a: argparse.Namespace) -> dict:
    from modistill.data import ntu
    from modistill.deploy.predict import Predictor
    from modistill.deploy.timeline import frame_labels
    from modistill.deploy.tracks import GivenPeople
    from modistill.deploy.windowed import WindowedPredictor, WindowOptions
    from modistill.synthetic.writer import write_video

    layout = ntu.NtuLayout(a.data)
    test = json.loads((a.run / "splits.json").read_text())["test"]
    rng = np.random.default_rng(a.seed)
    picked = [str(n) for n in rng.choice(test, 2 * a.actions, replace=False)]
    seqs = [performer(layout, picked[: a.actions]), performer(layout, picked[a.actions :])]
    n = min(len(s[0]) for s in seqs)
    w = seqs[0][0][0].shape[1]
    frames = [np.concatenate([seqs[0][0][t], seqs[1][0][t]], axis=1) for t in range(n)]
    per_frame: dict[int, dict[int, tuple]] = {}
    for track, (_, boxes, _) in enumerate(seqs, 1):
        shift = (track - 1) * w
        for t in range(n):
            if boxes[t] is not None:
                x0, y0, x1, y1 = boxes[t]
                per_frame.setdefault(t, {})[track] = (x0 + shift, y0, x1 + shift, y1)
    model = Predictor(a.model, "onnx")
    opts = WindowOptions(smooth=a.smooth, threshold=a.threshold, stride=a.stride)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "two_people.mp4"
        write_video(path, frames)
        run = WindowedPredictor(model, GivenPeople(per_frame), opts).run(str(path), annotate=a.annotate)
    people = {}
    for track, (_, _, labels) in enumerate(seqs, 1):
        truth = np.array(labels[:n])
        got = frame_labels(run.segments, n, track)
        people[str(track)] = {
            "frames": n,
            "accuracy": round(float((got == truth).mean()), 4),
            "labelled": round(float((got >= 0).mean()), 4),
            "actions": a.actions,
        }
    clip = _clip_accuracy(model, layout, picked)
    overall = float(np.mean([p["accuracy"] for p in people.values()]))
    return {
        "people": people,
        "accuracy": round(overall, 4),
        "clip_accuracy_same_videos": clip,
        "videos": picked,
        "window": {"frames": run.plan.window, "stride": run.plan.stride, "smooth": a.smooth, "threshold": a.threshold},
        "summary": run.summary(),
        "seed": a.seed,
    }


def _clip_accuracy(model, layout, names: list[str]) -> float:
    """The same videos one trimmed clip each, cropped around their skeleton's box over the sampled frames."""
    from modistill.data import ntu
    from modistill.data.person_box import union_box
    from modistill.deploy.video import clip_box, crop_clip, sampled_frames

    m, right = model.meta, 0
    for n in names:
        imgs = sampled_frames(layout.rgb(n), m["frames"], m["stored_frames"])
        h, w = imgs[0].shape[:2]
        box = union_box(b for b in person_boxes(layout, n, (w, h)) if b is not None)
        clip = crop_clip(imgs, clip_box(n, m["crop"], (w, h), box), m["size"])
        right += int(model.logits(clip[None])[0].argmax() == ntu.parse_name(n).action - 1)
    return round(right / len(names), 4)


def table(results: list[dict]) -> str:
    lines = [
        "| Actions per person | Frames | Smooth | Threshold | Frame accuracy, person 1 / 2 | Frames labelled | "
        "One clip per video (same videos) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        p, w = r["people"], r["window"]
        lines.append(
            f"| {p['1']['actions']} | {p['1']['frames']} | {w['smooth']} | {w['threshold']:g} | "
            f"{100 * p['1']['accuracy']:.1f} / {100 * p['2']['accuracy']:.1f} % | "
            f"{100 * (p['1']['labelled'] + p['2']['labelled']) / 2:.0f} % | "
            f"{100 * r['clip_accuracy_same_videos']:.1f} % |"
        )
    w = results[0]["window"]
    lines += [
        "",
        f"Windows of {w['frames']} frames every {w['stride']}; a frame the timeline leaves unlabelled counts as wrong.",
    ]
    return "\n".join(lines)


def write_readme(readme: Path, results_dir: Path) -> str:
    from modistill.errors import UserError
    from modistill.utils.io import replace_marked_section

    files = sorted(results_dir.glob("timeline_accuracy*.json"))
    if not files:
        raise UserError(f"{results_dir}: no timeline_accuracy*.json; run benchmarks/timeline_accuracy.py first")
    text = table([json.loads(f.read_text()) for f in files])
    written = "_Written by `python benchmarks/timeline_accuracy.py --readme docs/live.md`; do not edit by hand._"
    replace_marked_section(readme, START, END, f"{written}\n\n{text}", "timeline accuracy table")
    return text


def main(argv: list[str] | None = None) -> dict | str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="the synthetic tree (demo_out/data)")
    ap.add_argument("--run", type=Path, help="the run whose test split is used (demo_out/run)")
    ap.add_argument("--model", help="the run's exported model (.onnx)")
    ap.add_argument("--actions", type=int, default=12, help="actions per person")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smooth", type=int, default=3)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--stride", type=float, default=None)
    ap.add_argument("--annotate", default=None, help="also write the annotated recording")
    ap.add_argument("--suffix", default="", help="results/timeline_accuracy_SUFFIX.json, to keep several settings")
    ap.add_argument("--readme", type=Path, help="only regenerate this page's table from the results folder")
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    a = ap.parse_args(argv)
    if a.readme:
        text = write_readme(a.readme, a.results)
        print(text)
        return text
    if not (a.data and a.run and a.model):
        ap.error("--data, --run and --model are required")
    result = measure(a)
    a.results.mkdir(parents=True, exist_ok=True)
    out = a.results / ("timeline_accuracy" + (f"_{a.suffix}" if a.suffix else "") + ".json")
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("people", "accuracy", "clip_accuracy_same_videos", "window")}, indent=1))
    return result


if __name__ == "__main__":
    main()

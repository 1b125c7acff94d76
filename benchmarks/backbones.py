"""The video backbones side by side on one machine: size (parameters, GFLOPs), torchvision's Kinetics-400 top-1,
and what the method costs on each, against two bare torchvision models of the same backbone: the training step
(benchmarks/model_overhead.py) and RGB-only inference (benchmarks/inference.py, PyTorch and ONNX Runtime fp32).

Each backbone runs at its own clip (torchvision's evaluation clip, or a shorter one where noted, so the whole
table fits in minutes on a CPU). Writes benchmarks/results/backbones.json and, with ``--readme PAGE``, that page's
table between its markers.

Usage: python benchmarks/backbones.py [--backbones r3d_18 mc3_18 r2plus1d_18 swin3d_t] [--readme docs/benchmarks.md]
       python benchmarks/backbones.py --readme docs/benchmarks.md --table-only   # table from results/backbones.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
import inference  # noqa: E402 - the sibling benchmarks, importable however this file is loaded
import model_overhead  # noqa: E402

from modistill.models.backbone import backbone_class, list_backbones, make_stream  # noqa: E402

START = "<!-- benchmarks:backbones:start -->"
END = "<!-- benchmarks:backbones:end -->"


def clip(arch: str) -> tuple[int, int, int]:
    """(frames, size, training batch): the backbone's reference clip from the registry, at most 16 frames (Swin3D's
    32x224 at 16 frames halves a CPU training step without changing its window layout: 16 frames are two 8-frame
    windows deep), batch 1 at 224 px and 2 below."""
    frames, size = backbone_class(arch).reference_clip
    return min(frames, 16), size, 1 if size >= 224 else 2


STEPS = ("step1_rgb", "step2", "step3", "step4")
DEFAULT_BACKBONES = ("r3d_18", "mc3_18", "r2plus1d_18", "swin3d_t")  # timed by default, and the table's order


def facts(arch: str, frames: int, size: int) -> dict:
    """Parameters (torchvision's model, 400 classes), multiply-adds on this clip (torch's FLOP counter / 2) and
    torchvision's Kinetics-400 metadata."""
    meta = torchvision.models.get_model_weights(arch)["KINETICS400_V1"].meta
    bare = torchvision.models.get_model(arch).eval()
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        bare(torch.zeros(1, 3, frames, size, size))
    ours = make_stream(arch, 400)
    return {
        "params_m": sum(p.numel() for p in bare.parameters()) / 1e6,
        "stream_params_m": sum(p.numel() for p in ours.parameters()) / 1e6,
        "gmacs_clip": counter.get_total_flops() / 2e9,
        "k400_top1": meta["_metrics"]["Kinetics-400"]["acc@1"],
        "k400_gflops": meta["_ops"],
    }


def measure(arch: str, iters: int, reps: int, clips: int, out: Path) -> dict:
    frames, size, batch = clip(arch)
    args = ["--arch", arch, "--size", str(size), "--frames", str(frames), "--out", str(out)]
    train = model_overhead.main([*args, "--batch", str(batch), "--iters", str(iters), "--steps", *STEPS])
    infer = inference.main([*args, "--reps", str(reps), "--clips", str(clips), "--no-int8"])
    return {
        "arch": arch,
        "frames": frames,
        "size": size,
        "batch": batch,
        **facts(arch, frames, size),
        "train": train["train_steps"],
        "inference": infer["rows"],
        "inference_flop_ratio": infer["flop_ratio"],
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }


def table(results: list[dict]) -> str:
    """Markdown: one row per backbone, the ratios ours / two bare (training: per step; inference: per runtime)."""
    head = (
        "| backbone | params | GMACs per clip (clip) | K400 top-1 | "
        + " | ".join(f"train {s}" for s in STEPS)
        + " | train FLOP ratio (step2) | infer PyTorch | infer ORT fp32 | infer FLOP ratio |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        tr = {row["step"]: row for row in r["train"]}
        inf = {row["runtime"]: row for row in r["inference"]}
        pt, ort = inf.get("PyTorch eager CPU fp32"), inf.get("ONNX Runtime CPU fp32")
        lines.append(
            f"| {r['arch']} | {r['params_m']:.1f}M | {r['gmacs_clip']:.1f} ({r['frames']}x{r['size']}) | "
            f"{r['k400_top1']:.2f} | "
            + " | ".join(f"{tr[s]['ratio']:.3f}" for s in STEPS)
            + f" | {tr['step2']['flop_ratio']:.3f} | "
            + (f"{pt['ratio']:.3f} ({pt['ratio_min']:.3f}-{pt['ratio_max']:.3f})" if pt else "-")
            + " | "
            + (f"{ort['ratio']:.3f} ({ort['ratio_min']:.3f}-{ort['ratio_max']:.3f})" if ort else "-")
            + f" | {r['inference_flop_ratio']:.3f} |"
        )
    runs: dict[str, list[str]] = {}
    for r in results:  # backbones measured with the same settings share one sentence
        it = r["inference"][0]
        how = (
            f"{r['machine']}, {r['threads']} torch threads; training: batch {r['batch']}, median of "
            f"{r['train'][0]['iters']} steps per side; inference: batch 1, {it['reps']} repetitions x {it['clips']} "
            "clips"
        )
        runs.setdefault(how, []).append(r["arch"])
    lines.append("")
    lines.append(
        "Ours and bare alternately; inference ratios: median (range over repetitions). Measured on "
        + "; ".join(f"{how} ({', '.join(archs)})" for how, archs in runs.items())
        + "."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backbones", nargs="+", default=list(DEFAULT_BACKBONES))
    ap.add_argument("--iters", type=int, default=3, help="training steps per side (after one warm-up)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--readme", type=Path)
    ap.add_argument("--table-only", action="store_true", help="only rewrite the table from results/backbones.json")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    a = ap.parse_args(argv)
    path = a.out / "backbones.json"
    if a.table_only:
        if not path.is_file():
            raise SystemExit(f"{path}: no results to tabulate; run benchmarks/backbones.py without --table-only first")
        results = json.loads(path.read_text())
    else:
        # Backbones measured before and not re-measured now keep their rows (one backbone can be re-run alone).
        kept = {r["arch"]: r for r in json.loads(path.read_text())} if path.exists() else {}
        for arch in a.backbones:
            print(f"== {arch} ==", flush=True)
            r = measure(arch, a.iters, a.reps, a.clips, a.out)
            for row in r["train"]:
                row["iters"] = a.iters
            kept[arch] = r
            a.out.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(list(kept.values()), indent=2))
        results = [kept[k] for k in dict.fromkeys([*DEFAULT_BACKBONES, *list_backbones()]) if k in kept]
    text = table(results)
    print(text)
    if a.readme:
        from modistill.utils.io import replace_marked_section

        written = "_Written by `python benchmarks/backbones.py --readme docs/benchmarks.md`; do not edit by hand._"
        section = f"{written}\n\n{text}"
        replace_marked_section(a.readme, START, END, section, "backbones benchmark table")
    return results


if __name__ == "__main__":
    main()

"""RGB-only inference latency of the deployable model (RGB + hallucination stream with temporal convolutions and
the connection) against two bare torchvision models of the same backbone on the same clip, logits averaged: the
backbone's own cost. Any backbone (``--arch``: the 2D ResNets, r3d_18, mc3_18, r2plus1d_18, swin3d_t/s/b).

Rows, one per runtime:
- PyTorch eager, CPU fp32;
- ONNX Runtime CPU fp32: the graph `modistill export` writes (dynamic batch), default graph optimisations;
- ONNX Runtime CPU int8: both graphs quantised alike (static QDQ, per-channel weights) and calibrated on random
  clips, so this row is latency only; `modistill export --quantize int8` measures the accuracy change on a run's
  own test clips;
- where installed: PyTorch CUDA and ONNX Runtime's CUDA and TensorRT providers (fp32).
``--decompose`` adds ONNX Runtime CPU rows for our model without the connection and without the temporal
convolutions (each against the same bare pair): the two parts of the overhead. ``--profile`` prints ONNX Runtime's
time per operator type for both fp32 graphs and stores it.

Timing: each repetition runs ``--clips`` clips of ours and bare alternately and takes each side's median. ONNX
Runtime sessions run without spinning threads, so the idle session does not take cores from the one being timed.
The ratio is ours / bare per repetition, reported as the median and the range over repetitions.

Usage: python benchmarks/inference.py [--arch resnet50 --size 224] [--frames 5] [--reps 5 --clips 7]
           [--no-int8] [--decompose] [--profile] [--threads N]
       python benchmarks/inference.py --readme docs/benchmarks.md     # the docs table from results/inference_*.json
Writes benchmarks/results/inference_<arch>_<size>.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from modistill.deploy.bundle import DeployModel
from modistill.models.backbone import backbone_class, make_stream
from modistill.models.multistream import RGBOnly
from modistill.models.preprocess import normalize

CLASSES = 60
START = "<!-- benchmarks:inference:start -->"
END = "<!-- benchmarks:inference:end -->"
Call = Callable[[], object]


class BareStream(nn.Module):
    """A plain torchvision model of the backbone on a normalised clip [B, T, 3, H, W] → video logits: a 2D ResNet
    per frame with its logits averaged, a video model on the clip as it takes it ([B, 3, T, H, W])."""

    def __init__(self, arch: str):
        super().__init__()
        self.per_frame = backbone_class(arch).per_frame
        self.net = torchvision.models.get_model(arch, num_classes=CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.per_frame:
            return self.net(x.transpose(1, 2))
        b, t = x.shape[:2]
        return self.net(x.flatten(0, 1)).reshape(b, t, -1).mean(1)


class BarePair(nn.Module):
    """Two bare torchvision models of the backbone on the same clip, logits averaged, after the same normalisation
    as ours: the inference floor of the RGB-only model."""

    def __init__(self, arch: str):
        super().__init__()
        self.a, self.b = BareStream(arch), BareStream(arch)
        self.stats = make_stream(arch, CLASSES, 8).input_stats

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = normalize(clips, stats=self.stats)
        return (self.a(x) + self.b(x)) / 2


def ours(arch: str, temporal: bool = True, connection: bool = True) -> DeployModel:
    """The deployable model with random weights (temporal taps off identity, so no weight is special)."""
    model = DeployModel(
        RGBOnly(
            make_stream(arch, CLASSES, temporal=temporal),
            make_stream(arch, CLASSES, temporal=temporal),
            (("hall", "rgb"),) if connection else (),
        )
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".temporal." in name:
                p.add_(torch.randn_like(p) * 0.01)
    return model.eval()


def paired(
    a: Call, b: Call, reps: int, clips: int, warmup: int = 2, clock: Callable[[], float] = time.perf_counter
) -> dict:
    """Alternate ``a`` and ``b`` clip by clip; per repetition each side's median, then their ratio. ``clock`` is
    injectable so that the bookkeeping can be checked without timing anything."""
    for f in (a, b):
        for _ in range(warmup):
            f()
    rows = []
    for _ in range(reps):
        ta, tb = [], []
        for _ in range(clips):
            for f, ts in ((a, ta), (b, tb)):
                t = clock()
                f()
                ts.append(clock() - t)
        rows.append((statistics.median(ta), statistics.median(tb)))
    ratios = [x / y for x, y in rows]
    return {
        "ours_ms": 1000 * statistics.median(r[0] for r in rows),
        "bare_ms": 1000 * statistics.median(r[1] for r in rows),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "reps": reps,
        "clips": clips,
    }


def _export(model: nn.Module, path: Path, frames: int, size: int) -> Path:
    from modistill.deploy.onnx_export import export_onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_onnx(model, {"frames": frames, "size": size}, path)


def _session(path: Path, device: str, threads: int, profile: Path | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        opts.intra_op_num_threads = threads
    if profile is not None:
        opts.enable_profiling, opts.profile_file_prefix = True, str(profile)
    from modistill.deploy.onnx_export import open_session

    return open_session(path, device, opts)


def _ort_call(session, clip: np.ndarray) -> Call:
    return lambda: session.run(None, {"clips": clip})


def ort_profile(path: Path, clip: np.ndarray, threads: int, runs: int = 5) -> dict[str, float]:
    """ms per clip by operator type (ONNX Runtime's profiler, after two warm-up runs)."""
    with tempfile.TemporaryDirectory() as tmp:
        s = _session(path, "cpu", threads, Path(tmp) / "p")
        for _ in range(runs + 2):
            s.run(None, {"clips": clip})
        events = json.loads(Path(s.end_profiling()).read_text())
    starts = sorted(e["ts"] for e in events if e.get("name") == "model_run")
    total: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= starts[2]:
            total[e["args"]["op_name"]] += e["dur"] / 1000 / runs
    return dict(total.most_common())


def flop_ratio(a: nn.Module, b: nn.Module, clip: torch.Tensor) -> float:
    """Multiply-adds of ``a`` over ``b`` on one clip (convolutions and matmuls: the arithmetic floor)."""
    counts = []
    for m in (a, b):
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            m(clip)
        counts.append(counter.get_total_flops())
    return counts[0] / counts[1]


def measure(a: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    model, bare = ours(a.arch), BarePair(a.arch).eval()
    clip = torch.rand(1, a.frames, 3, a.size, a.size) * 255
    x = clip.numpy()
    rows, skipped = [], []
    with torch.inference_mode():
        rows.append(
            {"runtime": "PyTorch eager CPU fp32", **paired(lambda: model(clip), lambda: bare(clip), a.reps, a.clips)}
        )
    result = {
        "arch": a.arch,
        "size": a.size,
        "frames": a.frames,
        "batch": 1,
        "flop_ratio": flop_ratio(model, bare, clip),
        "torch_threads": torch.get_num_threads(),
        "ort_threads": a.threads or "default",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "rows": rows,
        "skipped": skipped,
    }
    try:
        import onnxruntime as ort
    except ImportError:
        skipped.append("ONNX Runtime rows: onnxruntime is not installed")
        return result
    available = ort.get_available_providers()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        graphs = {
            "ours": _export(model, tmp / "ours.onnx", a.frames, a.size),
            "bare": _export(bare, tmp / "bare.onnx", a.frames, a.size),
        }
        cpu = {k: _session(p, "cpu", a.threads) for k, p in graphs.items()}
        fp32 = {
            "runtime": "ONNX Runtime CPU fp32",
            **paired(_ort_call(cpu["ours"], x), _ort_call(cpu["bare"], x), a.reps, a.clips),
        }
        rows.append(fp32)
        if a.decompose:
            for label, kw in (("no connection", {"connection": False}), ("no temporal convs", {"temporal": False})):
                variant = ours(a.arch, **kw)
                part = _session(_export(variant, tmp / "part.onnx", a.frames, a.size), "cpu", a.threads)
                rows.append(
                    {
                        "runtime": f"ONNX Runtime CPU fp32, ours with {label}",
                        **paired(_ort_call(part, x), _ort_call(cpu["bare"], x), a.reps, a.clips),
                        "flop_ratio": flop_ratio(variant, bare, clip),
                    }
                )
        if a.profile:
            result["ort_profile_ms"] = {k: ort_profile(p, x, a.threads) for k, p in graphs.items()}
        del cpu
        if a.int8:
            from modistill.deploy.quantize import int8_graph

            calib = (torch.rand(a.calibration, a.frames, 3, a.size, a.size) * 255).numpy()
            q = {}
            for k, p in graphs.items():
                path = tmp / f"{k}-int8.onnx"
                path.write_bytes(int8_graph(p, calib).SerializeToString())
                q[k] = _session(path, "cpu", a.threads)
            int8 = paired(_ort_call(q["ours"], x), _ort_call(q["bare"], x), a.reps, a.clips)
            rows.append(
                {
                    "runtime": "ONNX Runtime CPU int8 (static QDQ)",
                    **int8,
                    "speedup_vs_fp32": fp32["ours_ms"] / int8["ours_ms"],
                }
            )
        rows.extend(_gpu_rows(a, graphs, model, bare, clip, available, skipped))
    return result


def _gpu_rows(
    a, graphs: dict, model: nn.Module, bare: nn.Module, clip: torch.Tensor, available: list[str], skipped: list[str]
) -> list[dict]:
    rows = []
    if not torch.cuda.is_available():
        skipped.append("GPU rows: no CUDA device")
        return rows
    gm, gb, gc = model.cuda(), bare.cuda(), clip.cuda()

    def synced(m):
        def run():
            m(gc)
            torch.cuda.synchronize()

        return run

    with torch.inference_mode():
        rows.append({"runtime": "PyTorch CUDA fp32", **paired(synced(gm), synced(gb), a.reps, a.clips, warmup=5)})
    x = clip.numpy()
    for provider, ep, label in (
        ("cuda", "CUDAExecutionProvider", "ONNX Runtime CUDA fp32"),
        ("tensorrt", "TensorrtExecutionProvider", "ONNX Runtime TensorRT fp32"),
    ):
        if ep not in available:
            skipped.append(f"{label}: this onnxruntime has no {ep}")
            continue
        s = {k: _session(p, provider, a.threads) for k, p in graphs.items()}
        rows.append(
            {"runtime": label, **paired(_ort_call(s["ours"], x), _ort_call(s["bare"], x), a.reps, a.clips, warmup=5)}
        )
    return rows


def table(results: list[dict]) -> str:
    """A markdown table of benchmark results (one row per model and runtime)."""
    lines = [
        "| model | runtime | ours ms per clip | two bare ms | ours / bare: median (range) | FLOP ratio |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(results, key=lambda r: (r["arch"], r["size"])):
        model = f"{r['arch']} @ {r['size']} px, {r['frames']} frames"
        for row in r["rows"]:
            extra = f"; {row['speedup_vs_fp32']:.2f}x faster than fp32" if "speedup_vs_fp32" in row else ""
            lines.append(
                f"| {model} | {row['runtime']} | {row['ours_ms']:.1f} | {row['bare_ms']:.1f} | "
                f"{row['ratio']:.3f} ({row['ratio_min']:.3f}-{row['ratio_max']:.3f}){extra} | "
                f"{row.get('flop_ratio', r['flop_ratio']):.3f} |"
            )
            model = ""
    notes = sorted(
        {
            f"{r['machine']}; {r['rows'][0]['reps']} repetitions x {r['rows'][0]['clips']} clips, batch 1"
            for r in results
        }
    )
    skipped = sorted({s for r in results for s in r["skipped"]})
    text = "\n".join(lines) + "\n\n" + "Measured on " + "; ".join(notes) + "."
    if skipped:
        text += " Not measured: " + "; ".join(skipped) + "."
    return text


def write_readme(readme: Path, results_dir: Path) -> str:
    from modistill.errors import UserError
    from modistill.utils.io import replace_marked_section

    files = sorted(results_dir.glob("inference_*.json"))
    if not files:
        raise UserError(f"{results_dir}: no inference_*.json; run benchmarks/inference.py first")
    text = table([json.loads(f.read_text()) for f in files])
    written = "_Written by `python benchmarks/inference.py --readme docs/benchmarks.md`; do not edit by hand._"
    section = f"{written}\n\n{text}"
    replace_marked_section(readme, START, END, section, "inference benchmark table")
    return text


def main(argv: list[str] | None = None) -> dict | str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--reps", type=int, default=5, help="repetitions (the ratio's spread is over these)")
    ap.add_argument("--clips", type=int, default=7, help="clips per side and repetition")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    ap.add_argument("--no-int8", dest="int8", action="store_false")
    ap.add_argument("--calibration", type=int, default=8, help="random clips calibrating the int8 graphs")
    ap.add_argument("--decompose", action="store_true", help="also ours without the connection / temporal convs")
    ap.add_argument("--profile", action="store_true", help="ONNX Runtime's time per operator type")
    ap.add_argument(
        "--readme", type=Path, help="only regenerate this page's table (docs/benchmarks.md) from the results folder"
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    a = ap.parse_args(argv)
    if a.readme:
        text = write_readme(a.readme, a.out)
        print(text)
        return text
    result = measure(a)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"inference_{a.arch}_{a.size}.json").write_text(json.dumps(result, indent=2))
    print(table([result]))
    for side, ops in result.get("ort_profile_ms", {}).items():
        total = sum(ops.values())
        print(
            f"ONNX Runtime profile, {side}: {total:.1f} ms per clip; "
            + ", ".join(f"{op} {ms:.2f} ({100 * ms / total:.1f} %)" for op, ms in list(ops.items())[:6])
        )
    return result


if __name__ == "__main__":
    main()

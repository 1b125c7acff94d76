"""Training-step time of each step's model and RGB-only inference latency, side by side with bare torchvision
ResNets doing the same work on the same frames (the physical limit of the backbone).

Bare training step: one torchvision ResNet per stream (frozen streams forward-only in eval mode), logits averaged
over frames and streams, cross-entropy, backward, Adam. Ours adds the temporal convs, the multiplicative
connections and the step's own loss (eq. 7 with features for step 3), so ratio - 1 is the method's overhead.
Bare inference: two torchvision ResNets on the clip, logits averaged (the RGB + hallucination pair without
temporal convs and connections), in PyTorch eager and onnxruntime.

Usage: python benchmarks/model_overhead.py [--arch resnet18 --size 112] [--steps step1_rgb step2 ...]
       [--batch 5 --frames 5 --iters 3] [--no-onnx]
Prints a table and writes benchmarks/results/model_overhead_<arch>_<size>.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from modistill.config import load_config
from modistill.data.dataset import normalize
from modistill.deploy.bundle import DeployModel
from modistill.models.multistream import RGBOnly
from modistill.models.stream import Stream
from modistill.training.module import StepModule
from modistill.training.steps import STEPS

CLASSES = 60


def _timed(fn, iters: int, warmup: int = 1) -> float:
    """Median seconds per call after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _batch(step: str, b: int, t: int, s: int) -> dict:
    g = torch.Generator().manual_seed(0)
    out = {m: torch.randint(0, 256, (b, t, 3, s, s), dtype=torch.uint8, generator=g) for m in ("rgb", "depth")}
    out["label"] = torch.randint(0, CLASSES, (b,), generator=g)
    return out


def ours_train_step(step: str, arch: str, batch: dict) -> callable:
    cfg = load_config("configs/demo.yaml", [f"model.arch={arch}", "model.width=64"])
    module = StepModule(step, cfg, CLASSES).train()
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-3)

    def run():
        out = module(batch)
        loss, _ = module.compute_loss(out, batch["label"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return run


def bare_train_step(step: str, arch: str, batch: dict) -> callable:
    spec = STEPS[step]
    nets = {n: getattr(torchvision.models, arch)(num_classes=CLASSES) for n in spec.streams}
    for n in spec.frozen:
        nets[n].eval().requires_grad_(False)
    params = [p for n, m in nets.items() if n not in spec.frozen for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    b, t = batch["label"].shape[0], batch["rgb"].shape[1]

    def run():
        logits = []
        for n, m in nets.items():
            x = normalize(batch[spec.inputs[n]]).flatten(0, 1)
            with torch.set_grad_enabled(n not in spec.frozen):
                logits.append(m(x).reshape(b, t, -1).mean(1))
        loss = F.cross_entropy(torch.stack(logits).mean(0), batch["label"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return run


class BarePair(nn.Module):
    """Two torchvision ResNets on the same clip, logits averaged: the inference floor of the RGB-only model."""

    def __init__(self, arch: str):
        super().__init__()
        self.a = getattr(torchvision.models, arch)(num_classes=CLASSES)
        self.b = getattr(torchvision.models, arch)(num_classes=CLASSES)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        b, t = clips.shape[:2]
        x = normalize(clips).flatten(0, 1)
        return ((self.a(x) + self.b(x)) / 2).reshape(b, t, -1).mean(1)


def _ort_latency(model: nn.Module, clip: torch.Tensor, iters: int) -> float:
    import warnings

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / "m.onnx"
        torch.onnx.export(model, (clip,), str(path), input_names=["clips"], dynamo=True, verbose=False)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = clip.numpy()
        return _timed(lambda: sess.run(None, {"clips": x}), iters, warmup=2)


def inference(arch: str, frames: int, size: int, iters: int, onnx: bool) -> dict:
    ours = DeployModel(RGBOnly(Stream(arch, CLASSES), Stream(arch, CLASSES))).eval()
    bare = BarePair(arch).eval()
    clip = torch.rand(1, frames, 3, size, size) * 255
    res = {}
    with torch.inference_mode():
        res["torch_ours_s"] = _timed(lambda: ours(clip), iters, warmup=2)
        res["torch_bare_s"] = _timed(lambda: bare(clip), iters, warmup=2)
    if onnx:
        res["ort_ours_s"] = _ort_latency(ours, clip, iters)
        res["ort_bare_s"] = _ort_latency(bare, clip, iters)
    return res


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave default)")
    ap.add_argument("--steps", nargs="+", default=["step1_rgb", "step2", "step3", "step4", "hoffman_eq7"])
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    for step in a.steps:
        batch = _batch(step, a.batch, a.frames, a.size)
        ours = _timed(ours_train_step(step, a.arch, batch), a.iters)
        bare = _timed(bare_train_step(step, a.arch, batch), a.iters)
        rows.append({"step": step, "ours_s": ours, "bare_s": bare, "ratio": ours / bare})
    inf = inference(a.arch, a.frames, a.size, a.iters * 3, not a.no_onnx)
    result = {"device": device, "threads": torch.get_num_threads(), "arch": a.arch, "size": a.size,
              "batch": a.batch, "frames": a.frames, "train_steps": rows, "inference": inf}
    print(f"{a.arch} @ {a.size}px, batch {a.batch} x {a.frames} frames, {device}, {torch.get_num_threads()} threads")
    print(f"{'step':<14} {'ours s/it':>10} {'bare s/it':>10} {'ratio':>6}")
    for r in rows:
        print(f"{r['step']:<14} {r['ours_s']:>10.3f} {r['bare_s']:>10.3f} {r['ratio']:>6.2f}")
    print("RGB-only inference per clip (ms): "
          + ", ".join(f"{k[:-2]} {1000 * v:.1f}" for k, v in inf.items()))
    for rt in ("torch", "ort"):
        if f"{rt}_ours_s" in inf:
            print(f"  {rt}: ours / two bare forwards = {inf[f'{rt}_ours_s'] / inf[f'{rt}_bare_s']:.2f}")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"model_overhead_{a.arch}_{a.size}.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

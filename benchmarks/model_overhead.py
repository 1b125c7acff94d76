"""Training-step time of each step's model side by side with bare torchvision models of the same backbone doing the
same work on the same frames (the physical limit of the backbone; any backbone, ``--arch``). Inference latency is
benchmarks/inference.py.

Bare training step: one bare torchvision model per stream (frozen streams forward-only in eval mode; a 2D ResNet
per frame, logits averaged over frames, or a video model on the clip), logits averaged over streams,
cross-entropy, backward, Adam. Ours adds the temporal convs, the multiplicative
connections and the step's own loss (eq. 7 with features for step 3), so ratio - 1 is the method's overhead.
``flop_ratio`` is the same ratio in multiply-adds (torch's FLOP counter, forward + backward): the part of the
overhead that is the method's own arithmetic. ``ratio / flop_ratio`` near 1 means no time is lost beyond it.

Usage: python benchmarks/model_overhead.py [--arch resnet18 --size 112] [--steps step1_rgb step2 ...]
       [--batch 5 --frames 5 --iters 3]
Prints a table and writes benchmarks/results/model_overhead_<arch>_<size>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from modistill.config import CONFIG_DIR, load_config
from modistill.models.backbone import backbone_class, make_stream
from modistill.models.preprocess import normalize
from modistill.training.module import StepModule
from modistill.training.steps import STEPS, stream_inputs
from modistill.utils.memory import keep_freed_memory

sys.path.insert(0, str(Path(__file__).parent))
from inference import BareStream, paired  # noqa: E402 - the sibling benchmark, importable however this file is loaded

CLASSES = 60


def _flops(fn) -> int:
    """Multiply-adds x 2 of one call (convolutions and matmuls, forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def _batch(step: str, b: int, t: int, s: int) -> dict:
    g = torch.Generator().manual_seed(0)
    out = {m: torch.randint(0, 256, (b, t, 3, s, s), dtype=torch.uint8, generator=g) for m in ("rgb", "depth")}
    out["label"] = torch.randint(0, CLASSES, (b,), generator=g)
    return out


def ours_train_step(
    step: str, arch: str, batch: dict, device: str = "cpu", channels_last: bool = False, compiled: bool = False
) -> callable:
    cfg = load_config(CONFIG_DIR / "demo.yaml", [f"model.arch={arch}", "model.width=64"])
    module = StepModule(step, cfg, CLASSES).train().to(device)
    if channels_last:
        module.to(memory_format=torch.channels_last)
    if compiled:
        module.net.compile()
    opt = torch.optim.Adam(
        [p for p in module.parameters() if p.requires_grad], lr=1e-3, fused=True if device == "cuda" else None
    )

    def run():
        out = module(batch)
        loss, _ = module.compute_loss(out, batch["label"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return run


def bare_train_step(
    step: str, arch: str, batch: dict, device: str = "cpu", channels_last: bool = False, compiled: bool = False
) -> callable:
    spec = STEPS[step]
    inputs = stream_inputs(spec)  # the privileged stream reads depth, as the demo's default
    fmt = torch.channels_last if channels_last and backbone_class(arch).per_frame else torch.contiguous_format
    nets = {n: BareStream(arch).to(device, memory_format=fmt) for n in spec.streams}
    stats = make_stream(arch, CLASSES, 8).input_stats
    for n in spec.frozen:
        nets[n].eval().requires_grad_(False)
    if compiled:
        for m in nets.values():
            m.compile()
    params = [p for n, m in nets.items() if n not in spec.frozen for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3, fused=True if device == "cuda" else None)

    def run():
        logits = []
        for n, m in nets.items():
            x = normalize(batch[inputs[n]], stats=stats)
            with torch.set_grad_enabled(n not in spec.frozen):
                logits.append(m(x))
        loss = F.cross_entropy(torch.stack(logits).mean(0), batch["label"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return run


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave default)")
    ap.add_argument("--steps", nargs="+", default=["step1_rgb", "step2", "step3", "step4", "hoffman_eq7"])
    ap.add_argument(
        "--default-malloc",
        action="store_true",
        help="leave glibc unmapping freed memory (training keeps it: train.cpu_keep_freed_memory)",
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    keep_freed = not a.default_malloc and keep_freed_memory()
    torch.manual_seed(0)
    device = "cpu"  # every model and tensor here stays on the CPU (GPU timing would need moves and syncs)
    rows = []
    for step in a.steps:
        batch = _batch(step, a.batch, a.frames, a.size)
        fo, fb = ours_train_step(step, a.arch, batch), bare_train_step(step, a.arch, batch)
        flop_ratio = _flops(fo) / _flops(fb)
        timed = paired(fo, fb, reps=1, clips=a.iters, warmup=1)
        ours, bare = timed["ours_ms"] / 1000, timed["bare_ms"] / 1000
        rows.append({"step": step, "ours_s": ours, "bare_s": bare, "ratio": ours / bare, "flop_ratio": flop_ratio})
    result = {
        "device": device,
        "threads": torch.get_num_threads(),
        "malloc_keeps_freed_memory": keep_freed,
        "arch": a.arch,
        "size": a.size,
        "batch": a.batch,
        "frames": a.frames,
        "train_steps": rows,
    }
    print(f"{a.arch} @ {a.size}px, batch {a.batch} x {a.frames} frames, {device}, {torch.get_num_threads()} threads")
    print(f"{'step':<14} {'ours s/it':>10} {'bare s/it':>10} {'ratio':>6} {'FLOP ratio':>11}")
    for r in rows:
        print(f"{r['step']:<14} {r['ours_s']:>10.3f} {r['bare_s']:>10.3f} {r['ratio']:>6.2f} {r['flop_ratio']:>11.3f}")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"model_overhead_{a.arch}_{a.size}.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

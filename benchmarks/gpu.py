"""One script for a CUDA machine: our training steps and RGB-only inference side by side with bare torchvision
ResNets doing the same frames, the full training loop against the model alone, and the resulting hours for the
paper's NTU RGB+D runs. Writes benchmarks/results/gpu.json; aims at under 8 minutes on an H100-class GPU.

- training ms/step and clips/s for steps 1-4 and Hoffman at batch 5 and 32, contiguous vs channels_last,
  bf16 autocast and fused Adam as `modistill train` uses them; torch.compile for step 2 at batch 32;
- RGB-only inference clips/s at batch 1 and 32 in PyTorch, and in ONNX Runtime's CUDA provider if installed;
- peak GPU memory of each configuration;
- the full loop (`modistill train`, default workers) on a cache of random clips at 224 px against the model
  alone, so the loader's share is visible;
- hours per step and for the whole method (steps 1-4, 40 epochs) on NTU 60 and NTU 120 cross-subject.

- for each video backbone of ``--backbones`` (default r2plus1d_18 and swin3d_t), at its own clip shape: training
  steps 2 and 4 and RGB-only inference against bare torchvision models of the same backbone, with the FLOP floor.

Usage: python benchmarks/gpu.py [--arch resnet50] [--size 224] [--iters 10] [--loop-clips 2000]
           [--backbones r2plus1d_18 swin3d_t]
Without CUDA it says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

CLASSES = 60
FRAMES = 5
STEPS = ("step1_rgb", "step2", "step3", "step4", "hoffman_eq7")
TRAIN_VIDEOS = {"NTU 60 cross-subject": 40_320, "NTU 120 cross-subject": 63_026}
EPOCHS = 40
METHOD = ("step1_rgb", "step1_depth", "step2", "step3", "step4")


def _layout(channels_last: bool) -> None:
    """Choose the activation layout of modistill's streams (CUDA default: channels_last)."""
    from modistill.models import preprocess, stream

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    preprocess.memory_format = stream.memory_format = lambda device: fmt


def _timed(fn, iters: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / iters


def _batch(b: int, size: int, frames: int = FRAMES) -> dict:
    g = torch.Generator().manual_seed(0)
    out = {
        m: torch.randint(0, 256, (b, frames, 3, size, size), dtype=torch.uint8, generator=g).cuda()
        for m in ("rgb", "depth")
    }
    out["label"] = torch.randint(0, CLASSES, (b,), generator=g).cuda()
    return out


def train_steps(arch: str, size: int, iters: int) -> list[dict]:
    from model_overhead import bare_train_step, ours_train_step

    rows = []
    configs = [(s, b, cl, False) for s in STEPS for b in (5, 32) for cl in (False, True)]
    configs += [("step2", 32, cl, True) for cl in (False, True)]
    for step, b, cl, compiled in configs:
        _layout(cl)
        batch = _batch(b, size)
        fns = {}
        for who, make in (("ours", ours_train_step), ("bare", bare_train_step)):
            torch.cuda.reset_peak_memory_stats()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                fn = make(step, arch, batch, device="cuda", channels_last=cl, compiled=compiled)
                fns[who] = (_timed(fn, iters), torch.cuda.max_memory_allocated() / 2**30)
        (ours, mem), (bare, bare_mem) = fns["ours"], fns["bare"]
        rows.append(
            {
                "step": step,
                "batch": b,
                "format": "channels_last" if cl else "contiguous",
                "compiled": compiled,
                "ours_ms": 1000 * ours,
                "bare_ms": 1000 * bare,
                "ratio": ours / bare,
                "clips_per_s": b / ours,
                "peak_GiB": mem,
                "bare_peak_GiB": bare_mem,
            }
        )
        print(
            f"train {step:12s} b{b:<3d} {rows[-1]['format']:13s} {'compiled' if compiled else 'eager':8s} "
            f"ours {1000 * ours:7.1f} ms  bare {1000 * bare:7.1f} ms  x{ours / bare:.3f}  "
            f"{b / ours:6.0f} clips/s  {mem:5.1f} GiB",
            flush=True,
        )
    return rows


def inference(arch: str, size: int, iters: int) -> list[dict]:
    from inference import BarePair

    from modistill.deploy.bundle import DeployModel
    from modistill.deploy.onnx_export import open_session
    from modistill.models.backbone import make_stream
    from modistill.models.multistream import RGBOnly

    _layout(True)
    rows = []
    ours = DeployModel(RGBOnly(make_stream(arch, CLASSES), make_stream(arch, CLASSES))).eval().cuda()
    bare = BarePair(arch).eval().cuda()
    for m in (ours, bare):
        m.to(memory_format=torch.channels_last)
    for b in (1, 32):
        clip = torch.rand(b, FRAMES, 3, size, size, device="cuda") * 255
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            t_ours, t_bare = _timed(lambda c=clip: ours(c), iters), _timed(lambda c=clip: bare(c), iters)
        rows.append(
            {
                "runtime": "torch bf16",
                "batch": b,
                "ours_clips_per_s": b / t_ours,
                "bare_clips_per_s": b / t_bare,
                "ratio": t_ours / t_bare,
            }
        )
        print(f"infer torch b{b:<3d} ours {b / t_ours:7.0f} clips/s  bare {b / t_bare:7.0f}  x{t_ours / t_bare:.3f}")
    try:
        import onnxruntime as ort
    except ImportError:
        return rows
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        print("onnxruntime has no CUDA provider: ORT rows skipped")
        return rows
    with tempfile.TemporaryDirectory() as tmp:
        for model in (ours, bare):  # ONNX export from the standard layout on the CPU
            model.float().cpu().to(memory_format=torch.contiguous_format)
        _layout(False)
        sessions = {}
        for name, model in (("ours", ours), ("bare", bare)):
            path = Path(tmp) / f"{name}.onnx"
            x = torch.rand(2, FRAMES, 3, size, size) * 255
            torch.onnx.export(
                model,
                (x,),
                str(path),
                input_names=["clips"],
                dynamo=True,
                dynamic_shapes={"clips": {0: torch.export.Dim("batch", min=1, max=64)}},
            )
            sessions[name] = open_session(path, "cuda")
        for b in (1, 32):
            x = (torch.rand(b, FRAMES, 3, size, size) * 255).numpy()
            times = {}
            for name, s in sessions.items():
                for _ in range(3):
                    s.run(None, {"clips": x})
                t = time.perf_counter()
                for _ in range(iters):
                    s.run(None, {"clips": x})
                times[name] = (time.perf_counter() - t) / iters
            rows.append(
                {
                    "runtime": "onnxruntime CUDA fp32",
                    "batch": b,
                    "ours_clips_per_s": b / times["ours"],
                    "bare_clips_per_s": b / times["bare"],
                    "ratio": times["ours"] / times["bare"],
                }
            )
            print(
                f"infer ORT   b{b:<3d} ours {b / times['ours']:7.0f} clips/s  bare {b / times['bare']:7.0f}  "
                f"x{times['ours'] / times['bare']:.3f}"
            )
    return rows


def video_backbones() -> list[str]:
    """The registered backbones that model time themselves."""
    from modistill.models.backbone import backbone_class, list_backbones

    return [n for n in list_backbones() if not backbone_class(n).per_frame]


def backbone_clip(arch: str) -> tuple[int, int]:
    """A video backbone's reference clip from the registry, at most 16 frames (Swin3D at 16 of its 32, to keep the
    script's time budget)."""
    from modistill.models.backbone import backbone_class

    frames, size = backbone_class(arch).reference_clip
    return min(frames, 16), size


def backbone_rows(arch: str, iters: int, batch: int = 8) -> dict:
    """One video backbone: training steps 2 and 4 and RGB-only inference (PyTorch bf16) against bare torchvision
    models of the same backbone, at its own clip shape, with the FLOP floor of the training step."""
    from inference import BarePair, ours
    from model_overhead import _flops, bare_train_step, ours_train_step

    frames, size = backbone_clip(arch)
    _layout(False)  # 5-D activations: the contiguous layout (channels-last is a 2-D layout)
    out: dict = {"arch": arch, "frames": frames, "size": size, "train": [], "inference": []}
    data = _batch(batch, size, frames)
    for step in ("step2", "step4"):
        times, mems = {}, {}
        for who, make in (("ours", ours_train_step), ("bare", bare_train_step)):
            torch.cuda.reset_peak_memory_stats()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                fn = make(step, arch, data, device="cuda")
                times[who] = _timed(fn, iters)
                flops = _flops(fn)
            mems[who] = torch.cuda.max_memory_allocated() / 2**30
            out.setdefault("flops", {})[f"{step}_{who}"] = flops
        ratio = times["ours"] / times["bare"]
        floor = out["flops"][f"{step}_ours"] / out["flops"][f"{step}_bare"]
        out["train"].append(
            {
                "step": step,
                "batch": batch,
                "ours_ms": 1000 * times["ours"],
                "bare_ms": 1000 * times["bare"],
                "ratio": ratio,
                "flop_ratio": floor,
                "clips_per_s": batch / times["ours"],
                "peak_GiB": mems["ours"],
            }
        )
        print(
            f"{arch} {frames}x{size} train {step} b{batch}: ours {1000 * times['ours']:.1f} ms, bare "
            f"{1000 * times['bare']:.1f} ms, x{ratio:.3f} (FLOP floor x{floor:.3f}), {mems['ours']:.1f} GiB",
            flush=True,
        )
    model, bare = ours(arch).cuda(), BarePair(arch).eval().cuda()
    for b in (1, batch):
        clip = torch.rand(b, frames, 3, size, size, device="cuda") * 255
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            t_ours, t_bare = _timed(lambda c=clip: model(c), iters), _timed(lambda c=clip: bare(c), iters)
        out["inference"].append(
            {
                "runtime": "torch bf16",
                "batch": b,
                "ours_clips_per_s": b / t_ours,
                "bare_clips_per_s": b / t_bare,
                "ratio": t_ours / t_bare,
            }
        )
        print(f"{arch} infer b{b}: ours {b / t_ours:.0f} clips/s, bare {b / t_bare:.0f}, x{t_ours / t_bare:.3f}")
    return out


def full_loop(size: int, clips: int, model_only_clips_per_s: float) -> dict:
    """`modistill train` step1_rgb on random clips (train split of a synthetic NTU-named cache), default workers."""
    from loader_throughput import make_cache

    from modistill.config import CONFIG_DIR, load_config
    from modistill.training.runner import open_run, train_step

    _layout(True)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        make_cache(cache, clips, size, FRAMES)
        cfg = load_config(
            CONFIG_DIR / "ntu60_xsub.yaml",
            [
                f"data.cache={cache}",
                "model.pretrained=null",
                "train.epochs=1",
                "train.batch_size=32",
                "data.validation=null",
                "train.progress=false",
            ],
        )
        cfg, _, splits, meta, recs = open_run(cfg, Path(tmp) / "run")
        t = time.perf_counter()
        res = train_step(cfg, Path(tmp) / "run", "step1_rgb", splits, meta, recs["step1_rgb"])
        seconds = time.perf_counter() - t
    passes = len(splits["train"]) + res["n"]  # one training epoch and the test pass
    rate = passes / seconds
    print(
        f"full loop: {passes} clips (train + test) in {seconds:.1f} s = {rate:.0f} clips/s; model alone "
        f"{model_only_clips_per_s:.0f} clips/s; ratio {rate / model_only_clips_per_s:.2f}"
    )
    return {
        "clips": passes,
        "seconds": seconds,
        "clips_per_s": rate,
        "model_only_clips_per_s": model_only_clips_per_s,
        "ratio": rate / model_only_clips_per_s,
    }


def estimates(rows: list[dict]) -> dict:
    """Hours per step (40 epochs, the best layout at batch 32) and for the whole method."""
    best = {}
    for r in rows:
        if r["batch"] == 32 and not r["compiled"]:
            best[r["step"]] = max(best.get(r["step"], 0.0), r["clips_per_s"])
    best["step1_depth"] = best["step1_rgb"]
    out = {}
    for name, videos in TRAIN_VIDEOS.items():
        hours = {s: videos * EPOCHS / best[s] / 3600 for s in METHOD}
        out[name] = {"hours_per_step": hours, "hours_method": sum(hours.values())}
        print(
            f"{name}: "
            + ", ".join(f"{s} {h:.1f} h" for s, h in hours.items())
            + f"; whole method {sum(hours.values()):.1f} h on one GPU"
        )
    return out


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--loop-clips", type=int, default=2000)
    ap.add_argument(
        "--backbones",
        nargs="*",
        default=["r2plus1d_18", "swin3d_t"],
        choices=video_backbones(),
        help="video backbones to add rows for, each at its own clip shape (none: --backbones with no name)",
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    a = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA device here; nothing measured")
        return None
    t0 = time.time()
    torch.backends.cudnn.benchmark = True
    res = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "arch": a.arch,
        "size": a.size,
        "frames": FRAMES,
    }
    res["train"] = train_steps(a.arch, a.size, a.iters)
    res["inference"] = inference(a.arch, a.size, a.iters)
    step1 = next(
        r["clips_per_s"]
        for r in res["train"]
        if r["step"] == "step1_rgb" and r["batch"] == 32 and r["format"] == "channels_last"
    )
    res["full_loop"] = full_loop(a.size, a.loop_clips, step1)
    res["estimates"] = estimates(res["train"])
    res["backbones"] = [backbone_rows(arch, a.iters) for arch in a.backbones]
    res["seconds"] = time.time() - t0
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "gpu.json").write_text(json.dumps(res, indent=2))
    print(f"wrote {a.out / 'gpu.json'} in {res['seconds']:.0f} s")
    return res


if __name__ == "__main__":
    main()

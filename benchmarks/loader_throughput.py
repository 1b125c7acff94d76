"""Training loader throughput at the paper's size (224 px, 5 frames, RGB and depth) against what a GPU step eats.

Builds a cache of random clips in the real format (``modistill.data.cache``), then times the training
``DataLoader`` (the same sampler, dataset and worker settings as ``modistill train``) for each worker count.
One H100 training step-2 at batch 32 in channels_last consumed 339 clips/s (issue 17's measurement); each
clip is 2 x 5 x 224 x 224 x 3 bytes = 1.5 MB of uint8.

Usage: python benchmarks/loader_throughput.py [--clips 256] [--workers 0 1 2] [--size 224] [--batch 32]
Prints a table and writes benchmarks/results/loader_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

GPU_STEP_CLIPS_PER_S = 339.0  # H100, step 2, batch 32, channels_last, bf16 (issue 17)


def record(name: str, size: int) -> dict:
    """A manifest record of a whole-frame clip (what a run needs to compute its deploy crop)."""
    return {"name": name, "status": "ok", "crop_rgb": [0, 0, size, size], "rgb_size": [size, size]}


def make_cache(root: Path, clips: int, size: int, frames: int) -> list[str]:
    from modistill.data.cache import open_cache, write_clip, write_manifest

    open_cache(
        root,
        {"size": size, "frames": frames, "depth_encoding": "jet", "benchmark": "ntu60"},
        [f"A{i:03d}" for i in range(1, 61)],
        root,
        "synthetic",  # random clips made here
    )
    rng = np.random.default_rng(0)
    names = []
    for i in range(clips):
        # 40 performers (both sides of the cross-subject split) x 60 actions x 2 replications x setups
        name = f"S{1 + i // 4800:03d}C001P{1 + i % 40:03d}R{1 + (i // 2400) % 2:03d}A{1 + (i // 40) % 60:03d}"
        write_clip(root, name, rng.integers(0, 256, (2, frames, size, size, 3), dtype=np.uint8), record(name, size))
        names.append(name)
    write_manifest(root, {n: record(n, size) for n in names})
    return names


def clips_per_s(root: Path, names: list[str], frames: int, batch: int, workers: int, epochs: int = 2) -> float:
    import torch
    from torch.utils.data import DataLoader

    from modistill.data.dataset import ClipDataset
    from modistill.training.sampler import EpochSampler

    ds = ClipDataset(root, names, frames, train=True)
    loader = DataLoader(
        ds,
        batch_size=batch,
        sampler=EpochSampler(len(ds), 0, shuffle=True),
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
    )
    next(iter(loader))  # start the workers outside the timing
    t, n = time.perf_counter(), 0
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        for b in loader:
            n += len(b["label"])
    return n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=256)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    a = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "cache"
        names = make_cache(root, a.clips, a.size, a.frames)
        for w in a.workers:
            rate = clips_per_s(root, names, a.frames, a.batch, w)
            rows.append(
                {
                    "workers": w,
                    "clips_per_s": rate,
                    "per_worker": rate / max(w, 1),
                    "vs_gpu_step": rate / GPU_STEP_CLIPS_PER_S,
                    "size": a.size,
                    "frames": a.frames,
                    "MB_per_s": rate * 2 * a.frames * a.size * a.size * 3 / 1e6,
                }
            )
    print(f"{'workers':>7} {'clips/s':>9} {'per worker':>10} {'MB/s':>8} {'x H100 step':>12}")
    for r in rows:
        print(
            f"{r['workers']:>7} {r['clips_per_s']:>9.1f} {r['per_worker']:>10.1f} {r['MB_per_s']:>8.0f} "
            f"{r['vs_gpu_step']:>12.2f}"
        )
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "loader_throughput.json").write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()

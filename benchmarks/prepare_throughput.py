"""Prepare videos/s vs PyAV decode-only videos/s on the same videos, and cached loader clips/s.

Usage: python benchmarks/prepare_throughput.py NTU_ROOT [--limit 120] [--workers 1 2] [--size 112]
Prints a table and writes benchmarks/results/prepare_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from modistill.data import ntu, video
from modistill.data.options import PrepareOptions
from modistill.data.prepare_ntu import prepare_ntu
from modistill.utils.progress import run_parallel


def _loader_clips_per_s(cache: Path, names: list[str], workers: int) -> float:
    """Training loader throughput over 3 epochs. torch is imported here, not at the top: worker pools preload this
    script as ``__main__``, and a torch import there would be charged to the decode and prepare rates."""
    from torch.utils.data import DataLoader

    from modistill.data.dataset import ClipDataset

    ds = ClipDataset(cache, names, frames=5, train=True)
    loader = DataLoader(ds, batch_size=8, shuffle=True, num_workers=workers)
    t = time.perf_counter()
    n = sum(len(b["label"]) for _ in range(3) for b in loader)
    return n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", type=Path)
    ap.add_argument("--limit", type=int, default=120)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    a = ap.parse_args(argv)
    layout = ntu.NtuLayout(a.root.resolve())  # absolute: the subset below links to these files
    names = layout.sample_names()[0][: a.limit]
    rows = []
    for w in a.workers:
        t = time.perf_counter()
        # Decode-only: every frame of each video, with the decoder threads per worker that prepare uses.
        for _ in run_parallel(
            video.count_rgb_frames,
            [layout.rgb(n) for n in names],
            w,
            video.set_decode_threads,
            (video.threads_per_worker(w),),
        ):
            pass
        decode = len(names) / (time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "subset"
            for sub in (ntu.RGB_SUBDIR, ntu.DEPTH_SUBDIR, ntu.SKELETON_SUBDIR):
                (root / sub).mkdir(parents=True)
            for n in names:  # same videos, linked
                (root / ntu.RGB_SUBDIR / layout.rgb(n).name).symlink_to(layout.rgb(n))
                (root / ntu.DEPTH_SUBDIR / n).symlink_to(layout.depth_dir(n))
                (root / ntu.SKELETON_SUBDIR / layout.skeleton(n).name).symlink_to(layout.skeleton(n))
            s = prepare_ntu(root, Path(tmp) / "cache", PrepareOptions(size=a.size, workers=w), show_progress=False)
            prep = s["videos_per_s"]
            clips = _loader_clips_per_s(Path(tmp) / "cache", names, w)
        rows.append(
            {
                "workers": w,
                "videos": len(names),
                "decode_only_videos_per_s": decode,
                "prepare_videos_per_s": prep,
                "ratio": prep / decode,
                "loader_clips_per_s": clips,
            }
        )
    print(f"{'workers':>7} {'decode v/s':>11} {'prepare v/s':>12} {'ratio':>6} {'loader clips/s':>15}")
    for r in rows:
        print(
            f"{r['workers']:>7} {r['decode_only_videos_per_s']:>11.1f} {r['prepare_videos_per_s']:>12.1f} "
            f"{r['ratio']:>6.2f} {r['loader_clips_per_s']:>15.0f}"
        )
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "prepare_throughput.json").write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()

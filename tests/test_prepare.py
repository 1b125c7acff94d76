import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from modistill.data import ntu
from modistill.data.align import Alignment, intersection_crop
from modistill.data.dataset import ClipDataset, normalize
from modistill.data.prepare import PrepareOptions, clip_path, load_manifest, prepare_ntu


@pytest.fixture(scope="module")
def cache224(tiny_ntu, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache224")
    summary = prepare_ntu(tiny_ntu, out, PrepareOptions(size=224, frames=5), show_progress=False)
    return out, summary


def test_prepare_writes_every_video_and_joints_coincide(tiny_ntu, cache224):
    cache, summary = cache224
    names = ntu.NtuLayout(tiny_ntu).sample_names()[0]
    assert summary["counts"] == {"ok": len(names)}
    meta = json.loads((cache / "cache.json").read_text())
    assert meta["num_classes"] == 3 and meta["size"] == 224
    manifest = load_manifest(cache)
    worst = 0.0
    for name in names:
        arr = np.load(clip_path(cache, name))
        assert arr.shape == (2, 5, 224, 224, 3) and arr.dtype == np.uint8
        rec = manifest[name]
        al = Alignment(**rec["alignment"])
        layout = ntu.NtuLayout(tiny_ntu)
        rgb_wh = ntu.read_rgb_frames(layout.rgb(name), [0])[0].shape[1::-1]
        dep_wh = ntu.read_depth(layout.depth_frame(name, 1)).shape[::-1]
        crop = intersection_crop(al, rgb_wh, dep_wh)
        body = ntu.main_body(ntu.read_skeleton(layout.skeleton(name)))[rec["frames"][2]]
        j = body.joints[body.joints[:, 11] == 2]
        cu = j[:, 5] * rgb_wh[0] / 1920
        cv = j[:, 6] * rgb_wh[1] / 1080
        du = j[:, 3] * dep_wh[0] / 512
        dv = j[:, 4] * dep_wh[1] / 424
        rx0, ry0, rx1, ry1 = crop.rgb
        dx0, dy0, dx1, dy1 = crop.depth
        p_rgb = np.stack([(cu - rx0) / (rx1 - rx0), (cv - ry0) / (ry1 - ry0)], 1) * 224
        p_dep = np.stack([(du - dx0) / (dx1 - dx0), (dv - dy0) / (dy1 - dy0)], 1) * 224
        worst = max(worst, float(np.abs(p_rgb - p_dep).max()))
        # The depth crop is non-empty where the person is, and masked (black) elsewhere.
        depth_img = arr[1, 2]
        inside = [depth_img[max(int(v) - 2, 0): int(v) + 3, max(int(u) - 2, 0): int(u) + 3].any()
                  for u, v in p_dep if 0 <= u < 224 and 0 <= v < 224]
        assert np.mean(inside) > 0.85  # thin hand tips fall in edge dropouts of the 128x106 depth
    assert worst < 2.0


def test_resume_skips_done_work(tiny_ntu, cache224):
    cache, _ = cache224
    mtimes = {p: p.stat().st_mtime_ns for p in (cache / "clips").iterdir()}
    again = prepare_ntu(tiny_ntu, cache, PrepareOptions(size=224, frames=5), show_progress=False)
    assert again["processed"] == 0
    assert {p: p.stat().st_mtime_ns for p in (cache / "clips").iterdir()} == mtimes
    from modistill.errors import UserError

    with pytest.raises(UserError, match="other settings"):
        prepare_ntu(tiny_ntu, cache, PrepareOptions(size=112, frames=5), show_progress=False)


def test_killed_prepare_leaves_no_partial_entries(tiny_ntu, tmp_path):
    out = tmp_path / "cache"
    cmd = [sys.executable, "-m", "modistill.cli", "prepare", "ntu", "--root", str(tiny_ntu), "--out", str(out),
           "--size", "96", "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        done = list((out / "clips").glob("*.npy")) if (out / "clips").exists() else []
        if len(done) >= 3:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for p in (out / "clips").glob("*.npy"):
        assert np.load(p).shape == (2, 5, 96, 96, 3)  # every visible entry is complete
    s = prepare_ntu(tiny_ntu, out, PrepareOptions(size=96, frames=5), show_progress=False)
    assert s["counts"] == {"ok": 18}
    assert s["processed"] < 18


def test_dataset_same_flip_and_sampling(cache224, tiny_ntu):
    cache, _ = cache224
    names = ntu.NtuLayout(tiny_ntu).sample_names()[0]
    ds = ClipDataset(cache, names, frames=3, train=False)
    item = ds[0]
    assert item["rgb"].shape == (3, 3, 224, 224) and item["rgb"].dtype == torch.uint8
    assert item["label"] == ntu.parse_name(names[0]).label
    arr = np.load(clip_path(cache, names[0]))
    assert torch.equal(item["depth"][1], torch.from_numpy(arr[1, 2]).permute(2, 0, 1))
    train = ClipDataset(cache, names, frames=3, train=True, flip=1.0)
    t = train[0]
    assert torch.equal(t["rgb"], item["rgb"].flip(-1)) and torch.equal(t["depth"], item["depth"].flip(-1))
    torch.manual_seed(0)
    mixed = ClipDataset(cache, names, frames=3, train=True, sampling="mixed", flip=0.0)
    seen = {tuple(mixed[0]["rgb"][:, 0, 100, 100].tolist()) for _ in range(12)}
    assert len(seen) > 1
    x = normalize(item["rgb"])
    assert x.dtype == torch.float32 and -3 < x.mean() < 3


def test_parallel_prepare_writes_the_same_clips(tiny_ntu, small_cache, tmp_path):
    """Two worker processes (each with its share of decoder threads) give byte-identical clips to one process."""
    summary = prepare_ntu(tiny_ntu, tmp_path, PrepareOptions(size=32, frames=3, workers=2), show_progress=False)
    names = ntu.NtuLayout(tiny_ntu).sample_names()[0]
    assert summary["counts"] == {"ok": len(names)}
    for n in names:
        assert np.array_equal(np.load(clip_path(tmp_path, n)), np.load(clip_path(small_cache, n))), n
    assert ntu.threads_per_worker(1) == 0  # one process: FFmpeg's own choice
    assert ntu.threads_per_worker(2) == max(1, os.cpu_count() // 2)


def test_depth_encoding_matches_opencv_jet():
    import cv2

    from modistill.data.encode import encode_depth

    d = np.array([[0, 1000, 1500], [2000, 2500, 9000]], np.uint16)
    near, far = 1000.0, 2500.0
    gray = np.round((1 - np.clip((d - near) / (far - near), 0, 1)) * 255).astype(np.uint8)
    jet = cv2.applyColorMap(gray, cv2.COLORMAP_JET)[:, :, ::-1].copy()
    jet[d == 0] = 0
    np.testing.assert_array_equal(encode_depth(d, near, far, "jet"), jet)
    assert tuple(encode_depth(d, near, far, "jet")[0, 1]) == (128, 0, 0)  # nearest: dark red; beyond far: blue
    assert tuple(encode_depth(d, near, far, "jet")[1, 2]) == (0, 0, 128)
    gray3 = np.repeat(np.where(d == 0, 0, gray)[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(encode_depth(d, near, far, "gray"), gray3)
    with pytest.raises(ValueError, match="unknown depth encoding"):
        encode_depth(d, near, far, "viridis")

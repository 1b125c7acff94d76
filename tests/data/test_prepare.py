import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from modistill.data import ntu, video
from modistill.data.align import Alignment, intersection_crop
from modistill.data.cache import clip_path, load_manifest
from modistill.data.dataset import ClipDataset
from modistill.data.options import PrepareOptions
from modistill.data.prepare_ntu import prepare_ntu
from modistill.models.preprocess import normalize


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
        rgb_wh = video.read_rgb_frames(layout.rgb(name), [0])[0].shape[1::-1]
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
        inside = [
            depth_img[max(int(v) - 2, 0) : int(v) + 3, max(int(u) - 2, 0) : int(u) + 3].any()
            for u, v in p_dep
            if 0 <= u < 224 and 0 <= v < 224
        ]
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
    cmd = [
        sys.executable,
        "-m",
        "modistill",
        "prepare",
        "ntu",
        "--root",
        str(tiny_ntu),
        "--out",
        str(out),
        "--size",
        "96",
        "--workers",
        "1",
        "--quiet",
    ]
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
    assert video.threads_per_worker(1) == 0  # one process: FFmpeg's own choice
    assert video.threads_per_worker(2) == max(1, os.cpu_count() // 2)


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


def _copy_tree(tiny_ntu, dst):
    import shutil

    shutil.copytree(tiny_ntu, dst)
    return dst


def _zero_body_skeleton(layout, name):
    """The official missing-skeleton form: the frame count, then one '0' line (no body) per frame."""
    n = int(layout.skeleton(name).read_text().splitlines()[0])
    layout.skeleton(name).write_text("\n".join([str(n)] + ["0"] * n) + "\n")


def _crop_fraction(rec):
    return np.array(rec["crop_rgb"]) / np.tile(rec["rgb_size"], 2)


def test_missing_skeletons_take_the_camera_fit_within_a_few_pixels(tiny_ntu, small_cache, tmp_path):
    """A missing-list skeleton ('N' then N '0' lines) is cropped within a few pixels of the crop its own skeleton
    gives (on 2b7b8e1 the collapsed camera fit cut 12 % of the frame width off, with status ok)."""
    root = _copy_tree(tiny_ntu, tmp_path / "ntu")
    layout = ntu.NtuLayout(root)
    names = layout.sample_names()[0]
    zeroed = [names[0], names[len(names) // 2 + 1]]
    for n in zeroed:
        _zero_body_skeleton(layout, n)
    summary = prepare_ntu(root, tmp_path / "cache", PrepareOptions(size=32, frames=3), show_progress=False)
    truth, recs = load_manifest(small_cache), load_manifest(tmp_path / "cache")
    for n in zeroed:
        rec = recs[n]
        assert rec["status"] == "ok" and rec["alignment"]["source"] == "camera-fit"
        assert "camera fit" in rec["reason"] and "skeleton unusable" in rec["reason"]
        px = np.abs(np.array(rec["crop_rgb"]) - np.array(truth[n]["crop_rgb"]))
        assert px.max() < 4.0, (n, rec["crop_rgb"], truth[n]["crop_rgb"])
    assert summary["alignment"]["camera-fit"] == 2


def test_resumed_prepare_fits_cameras_from_all_finished_videos(tiny_ntu, tmp_path):
    """Deleting three clips and rerunning refits each camera from every finished video, not from the three new
    ones (on 2b7b8e1 the stored offset_x 224.6 became 0.0)."""
    root = _copy_tree(tiny_ntu, tmp_path / "ntu")
    cache = tmp_path / "cache"
    prepare_ntu(root, cache, PrepareOptions(size=32, frames=3), show_progress=False)
    before = json.loads((cache / "camera_fits.json").read_text())
    for n in ntu.NtuLayout(root).sample_names()[0][:3]:
        clip_path(cache, n).unlink()
    again = prepare_ntu(root, cache, PrepareOptions(size=32, frames=3), show_progress=False)
    assert again["processed"] == 3
    after = json.loads((cache / "camera_fits.json").read_text())
    assert after == before and all("offset_x" in v and v["videos"] >= 3 for v in after.values())


def test_implausible_own_fit_is_replaced_and_noted(tiny_ntu, tmp_path):
    """Tracker colour coordinates scaled by 0.2 give a finite own fit of scale ~0.6 against ~2.9."""
    root = _copy_tree(tiny_ntu, tmp_path / "ntu")
    layout = ntu.NtuLayout(root)
    name = layout.sample_names()[0][1]
    out = []
    for line in layout.skeleton(name).read_text().splitlines():
        tok = line.split()
        if len(tok) == 12:  # a joint line: depthX depthY colorX colorY at 3-6
            tok[5], tok[6] = f"{float(tok[5]) * 0.2:.4f}", f"{float(tok[6]) * 0.2:.4f}"
        out.append(" ".join(tok))
    layout.skeleton(name).write_text("\n".join(out) + "\n")
    summary = prepare_ntu(root, tmp_path / "cache", PrepareOptions(size=32, frames=3), show_progress=False)
    rec = load_manifest(tmp_path / "cache")[name]
    assert rec["alignment"]["source"] == "camera-fit" and rec["alignment"]["replaced"]["scale"] < 1.0
    assert "is far from the camera's" in rec["reason"]
    assert summary["alignment"]["replaced by camera fit"] == 1


def test_unused_files_are_listed_with_their_reason(tiny_ntu, tmp_path):
    root = _copy_tree(tiny_ntu, tmp_path / "ntu")
    rgb = root / "nturgb+d_rgb"
    (rgb / "S001C001P000R001A001_rgb.avi").write_bytes(b"x")  # a zero field
    (rgb / "S001C001P001R001A061_rgb.avi").write_bytes(b"x")  # outside NTU 60
    os.mkfifo(rgb / "S001C001P002R001A002_rgb.avi.fifo")
    os.mkfifo(rgb / "S001C002P001R001A009_rgb.avi")  # a FIFO named like a video: never opened
    summary = prepare_ntu(root, tmp_path / "cache", PrepareOptions(size=32, frames=3), show_progress=False)
    recs = load_manifest(tmp_path / "cache")
    assert "zero field" in recs["S001C001P000R001A001_rgb.avi"]["reason"]
    assert recs["S001C001P001R001A061"]["reason"] == "action A061 is outside the tree's class list (3 actions)"
    assert recs["S001C002P001R001A009_rgb.avi"]["reason"] == "not a regular file"
    assert recs["S001C002P001R001A009_rgb.avi"]["status"] == "skipped"
    assert summary["counts"]["skipped"] == 4


def test_depth_frames_of_other_sizes_and_huge_pngs(tiny_ntu, small_cache, tmp_path):
    import cv2

    root = _copy_tree(tiny_ntu, tmp_path / "ntu")
    layout = ntu.NtuLayout(root)
    a, b = layout.sample_names()[0][:2]
    for k in layout.depth_numbers(a)[::2]:
        d = ntu.read_depth(layout.depth_frame(a, k))
        cv2.imwrite(
            str(layout.depth_frame(a, k)),
            cv2.resize(d, (d.shape[1] // 2, d.shape[0] // 2), interpolation=cv2.INTER_NEAREST),
        )
    big = layout.depth_frame(b, layout.depth_numbers(b)[0])
    header = bytearray(big.read_bytes())
    header[16:24] = (20000).to_bytes(4, "big") + (20000).to_bytes(4, "big")  # IHDR claims 20000x20000
    big.write_bytes(bytes(header))
    prepare_ntu(root, tmp_path / "cache", PrepareOptions(size=32, frames=3), show_progress=False)
    recs = load_manifest(tmp_path / "cache")
    assert recs[a]["status"] == "ok" and "rescaled to" in recs[a]["reason"]
    clip, ref = np.load(clip_path(tmp_path / "cache", a))[1], np.load(clip_path(small_cache, a))[1]
    for f, g in zip(clip, ref, strict=True):  # each frame shows the person as the untouched video does
        assert (f.max(-1) > 0).mean() > 0.7 * (g.max(-1) > 0).mean() > 0
    assert recs[b]["status"] == "failed" and "20000x20000, above the 16.8-megapixel limit" in recs[b]["reason"]


def test_a_second_prepare_on_the_same_cache_is_refused(tiny_ntu, tmp_path, capsys):
    import fcntl

    from modistill.cli import main
    from modistill.training.data import dataset_splits

    cache = tmp_path / "cache"
    prepare_ntu(tiny_ntu, cache, PrepareOptions(size=32, frames=3), show_progress=False)
    fd = os.open(cache / ".prepare.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a running prepare holds it
    os.ftruncate(fd, 0)
    os.write(fd, b"4242")
    try:
        capsys.readouterr()
        assert main(["prepare", "ntu", "--root", str(tiny_ntu), "--out", str(cache), "--size", "48"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "in use by another prepare (pid 4242)" in err
        from modistill.config import load_config
        from modistill.errors import UserError

        cfg = load_config(None, [f"data.cache={cache}"])
        with pytest.raises(UserError, match="a prepare is still running on this cache"):
            dataset_splits(cfg)
    finally:
        os.close(fd)
    assert json.loads((cache / "cache.json").read_text())["size"] == 32
    assert {np.load(p, mmap_mode="r").shape[2] for p in (cache / "clips").glob("*.npy")} == {32}


def test_records_survive_a_lost_manifest_and_stale_temp_files_are_removed(tiny_ntu, tmp_path):
    """Whatever moment a kill hits, a clip on disk has its full record: with the manifest index gone (as after a
    kill between two index writes) the rerun restores crop, alignment and frames, and clears temp files."""
    cache = tmp_path / "cache"
    prepare_ntu(tiny_ntu, cache, PrepareOptions(size=32, frames=3), show_progress=False)
    full = load_manifest(cache)
    (cache / "manifest.json").unlink()
    (cache / "clips" / ".S001C001P001R001A001.npy.abcd.tmp").write_bytes(b"partial")
    again = prepare_ntu(tiny_ntu, cache, PrepareOptions(size=32, frames=3), show_progress=False)
    assert again["processed"] == 0
    assert load_manifest(cache) == full
    assert not list((cache / "clips").glob(".*.tmp"))


def test_two_concurrent_prepares_leave_one_consistent_cache(tiny_ntu, tmp_path):
    """On 2b7b8e1 both exited 0 in 9 of 10 runs and 6 caches mixed 32 and 48 px."""
    cache = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modistill",
                "prepare",
                "ntu",
                "--root",
                str(tiny_ntu),
                "--out",
                str(cache),
                "--size",
                str(s),
                "--workers",
                "1",
                "--quiet",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in (32, 48)
    ]
    rcs, errs = zip(*[(p.wait(timeout=300), p.stderr.read()) for p in procs], strict=True)
    assert sorted(rcs) == [0, 2], errs
    loser = errs[rcs.index(2)].strip()
    assert loser.count("\n") == 0 and ("in use by another prepare" in loser or "other settings" in loser)
    size = json.loads((cache / "cache.json").read_text())["size"]
    assert {np.load(p, mmap_mode="r").shape[2] for p in (cache / "clips").glob("*.npy")} == {size}


def test_a_dying_worker_fails_its_video_and_the_run_finishes(tiny_ntu, tmp_path, monkeypatch):
    """On 2b7b8e1 the multiprocessing pool waited forever for the killed worker's result."""
    import crashy

    from modistill.data import prepare_ntu as P

    def hang(*_):
        raise TimeoutError("prepare hung after a worker died")

    monkeypatch.setattr(P, "_process", crashy.process_or_die)
    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(120)  # a hang fails this test instead of blocking the suite
    try:
        summary = prepare_ntu(
            tiny_ntu, tmp_path / "cache", PrepareOptions(size=32, frames=3, workers=2), show_progress=False
        )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    recs = load_manifest(tmp_path / "cache")
    assert recs[crashy.VICTIM]["status"] == "failed" and "worker crashed" in recs[crashy.VICTIM]["reason"]
    assert summary["counts"] == {"ok": 17, "failed": 1}
    assert not clip_path(tmp_path / "cache", crashy.VICTIM).exists()


def test_loader_items_are_uint8(small_cache):
    """Workers move uint8 (4x less than float32); normalisation, in the device's layout, happens on the device."""
    names = sorted(load_manifest(small_cache))[:4]
    item = ClipDataset(small_cache, names, 3, train=True)[(0, 123)]
    assert item["rgb"].dtype == item["depth"].dtype == torch.uint8
    assert item["rgb"].shape == (3, 3, 32, 32)

"""Fault injection: a synthetic NTU tree with every kind of damage real trees have. ``prepare`` must finish,
cache every good video, give each bad one a reason, and never leave a partial cache entry."""

import errno
import json
import shutil

import numpy as np
import pytest
from faultkit import train_cmd

from modistill.cli import main
from modistill.data import cache as C
from modistill.data import ntu, video
from modistill.data.cache import clip_path, load_manifest
from modistill.data.options import PrepareOptions
from modistill.data.prepare_ntu import prepare_ntu
from modistill.errors import UserError

DISK_FULL = "S001C002P001R001A001"


def _skeleton_lines(layout, name):
    return layout.skeleton(name).read_text().splitlines()


def _set_joint_field(lines, value):
    """Replace the depthX of the first joint of every body with ``value`` (NaN/inf from a broken tracker)."""
    out, i = list(lines), 1
    while i < len(out):
        n_bodies = int(out[i])
        i += 1
        for _ in range(n_bodies):
            i += 2  # body info, joint count
            parts = out[i].split()
            parts[3] = value
            out[i] = " ".join(parts)
            i += 25
    return out


def _corrupt(root):
    """Apply one fault per sample; returns name → (fault, expected status, reason fragment or None)."""
    L = ntu.NtuLayout(root)
    faults = {}

    def fault(name, what, status, reason):
        faults[name] = (what, status, reason)

    n = "S001C001P001R001A001"
    data = L.rgb(n).read_bytes()
    L.rgb(n).write_bytes(data[: len(data) // 3])
    fault(n, "truncated .avi (first third: 1 decodable frame)", "failed", "only 1 usable frames")

    n = "S001C001P001R001A002"
    L.rgb(n).write_bytes(b"")
    fault(n, "zero-byte .avi", "failed", "cannot read video")

    n = "S001C001P001R001A003"
    gone = int(video.evenly_spaced(L.depth_count(n), 3)[1]) + 1  # the middle sampled frame
    L.depth_frame(n, gone).unlink()
    fault(n, "missing MDepth PNG (a sampled frame)", "ok", f"depth frames [{gone}] missing")

    n = "S001C001P002R001A001"
    for i in range(1, L.depth_count(n) + 1):
        L.depth_frame(n, i).write_bytes(b"\x89PNG garbage")
    fault(n, "unreadable MDepth PNGs", "failed", "unreadable depth PNG")

    n = "S001C001P002R001A002"
    count = L.depth_count(n)
    for i in range(count - 3, count + 1):
        L.depth_frame(n, i).unlink()
    fault(n, "depth has 4 frames fewer than RGB and skeleton", "ok", "frame counts differ")

    n = "S001C001P002R001A003"
    lines = _skeleton_lines(L, n)
    first = int(lines[0])
    lines = [str(first + 3), "0", "0", "0", *lines[1:]]
    L.skeleton(n).write_text("\r\n".join(lines) + "\r\n")
    fault(n, "skeleton with extra 0-body frames", "ok", "frame counts differ")

    n = "S001C001P003R001A001"
    L.skeleton(n).write_text("\r\n".join(_set_joint_field(_skeleton_lines(L, n), "nan")) + "\r\n")
    fault(n, "NaN joints", "ok", None)

    n = "S001C002P003R001A001"
    L.skeleton(n).write_text("\r\n".join(_set_joint_field(_skeleton_lines(L, n), "inf")) + "\r\n")
    fault(n, "inf joints", "ok", None)

    n = "S001C001P003R001A002"
    lines = _skeleton_lines(L, n)
    lines[5] = "garbage here %%%"
    L.skeleton(n).write_text("\r\n".join(lines))
    fault(n, "garbage line in .skeleton", "ok", None)

    n = "S001C001P003R001A003"
    L.skeleton(n).unlink()
    fault(n, "missing .skeleton", "ok", None)

    (root / ntu.RGB_SUBDIR / "holiday_video_rgb.avi").write_bytes(b"x")
    (root / ntu.RGB_SUBDIR / "notes.txt").write_text("x")
    faults["holiday_video_rgb.avi"] = ("wrong name in the tree", "skipped", "not an NTU sample name")
    faults["notes.txt"] = ("stray file in the tree", "skipped", "not an NTU sample name")

    fault(DISK_FULL, "disk full while writing the clip", "failed", "cannot write the clip: no space left on device")
    return faults


@pytest.fixture(scope="module")
def faulty(tiny_ntu, tmp_path_factory):
    root = tmp_path_factory.mktemp("faulty") / "ntu"
    shutil.copytree(tiny_ntu, root)
    return root, _corrupt(root)


def test_prepare_survives_every_fault(faulty, tmp_path, monkeypatch):
    root, faults = faulty
    real_save = C._save_npy

    def save(path, arr):
        if path.name.startswith(f".{DISK_FULL}.npy"):
            with open(path, "wb") as f:
                f.write(b"\x93NUMPY partial")  # half a file, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(path, arr)

    monkeypatch.setattr(C, "_save_npy", save)
    cache = tmp_path / "cache"
    summary = prepare_ntu(root, cache, PrepareOptions(size=32, frames=3), show_progress=False)
    records = load_manifest(cache)
    names, _ = ntu.NtuLayout(root).sample_names()
    assert set(records) == set(names) | {k for k, v in faults.items() if v[1] == "skipped"}
    for name, rec in records.items():
        what, status, reason = faults.get(name, ("none", "ok", None))
        assert rec["status"] == status, (name, what, rec)
        if reason:
            assert reason in (rec["reason"] or ""), (name, what, rec)
        if status == "ok":
            clip = np.load(clip_path(cache, name))
            assert clip.shape == (2, 3, 32, 32, 3) and clip.dtype == np.uint8
        else:
            assert not clip_path(cache, name).exists()
    assert not [p for p in (cache / "clips").iterdir() if p.name.startswith(".")]  # no temp files left
    assert {p.stem for p in (cache / "clips").glob("*.npy")} <= {p.stem for p in (cache / "clips").glob("*.json")}
    assert {n for n, _ in summary["failed"]} == {n for n, v in faults.items() if v[1] == "failed"}
    # videos without a usable skeleton were aligned with the per-camera fit
    for name in ("S001C001P003R001A002", "S001C001P003R001A003"):
        assert records[name]["alignment"]["source"] == "camera-fit"

    monkeypatch.setattr(C, "_save_npy", real_save)  # the disk has space again: the rerun finishes the work
    again = prepare_ntu(root, cache, PrepareOptions(size=32, frames=3), show_progress=False)
    assert load_manifest(cache)[DISK_FULL]["status"] == "ok"
    assert again["processed"] == len([v for v in faults.values() if v[1] == "failed"])


def test_unwritable_cache_folder_is_one_clear_error(tiny_ntu, tmp_path, monkeypatch, capsys):
    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(C, "atomic_write_text", denied)
    with pytest.raises(UserError, match="cannot write to the cache folder"):
        prepare_ntu(tiny_ntu, tmp_path / "ro", PrepareOptions(size=32, frames=3), show_progress=False)
    assert main(["prepare", "ntu", "--root", str(tiny_ntu), "--out", str(tmp_path / "ro2"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Permission denied" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["prepare", "ntu", "--root", "/nonexistent/ntu", "--out", "{tmp}/c"], "RGB folder not found"),
        (["train", "no_such_config.yaml"], "config file not found"),
        (["train", "demo", "train.epochz=3"], "unknown config key 'train.epochz'"),
        (["train", "demo", "train.epochs=many"], "train.epochs"),
        (["train", "demo", "steps=[step9]", "data.cache={tmp}"], "unknown step(s) ['step9']"),
        (["train", "demo", "data.cache={tmp}"], "not a prepared cache"),
        (["evaluate", "{tmp}"], "not a run folder"),
        (["export", "{tmp}", "--out", "{tmp}/m.onnx"], "not a run folder"),
        (["predict", "{tmp}/v.avi", "--model", "{tmp}/none.onnx"], "model file not found"),
        (["show-alignment", "{tmp}", "S001C001P001R001A001"], "not found"),
        (["synth", "{tmp}/s", "--classes", "0"], "--classes must be at least 1"),
    ],
)
def test_cli_bad_input_one_line_exit_2(argv, fragment, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err, err


def _train_cmd(cache, run, *extra):
    return train_cmd(cache, run, "train.epochs=12", "steps=[step1_depth]", *extra)


EARLY = ("train.patience=8",)  # early stopping on: its state must survive the kill too


@pytest.fixture(scope="module")
def uninterrupted(small_cache, tmp_path_factory):
    """The uninterrupted runs, without and with early stopping."""
    import subprocess

    runs = {}
    for extra in ((), EARLY):
        run = tmp_path_factory.mktemp("uninterrupted") / "run"
        p = subprocess.run(_train_cmd(small_cache, run, *extra), capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        runs[extra] = run
    return runs


@pytest.mark.slow
@pytest.mark.parametrize(
    "signame, rc, words, extra",
    [
        ("SIGKILL", -9, None, ()),
        ("SIGTERM", 143, "terminated (SIGTERM); finished work is kept", ()),
        ("SIGINT", 130, "interrupted; finished work is kept", ()),
        ("SIGKILL", -9, None, EARLY),
    ],
    ids=["SIGKILL", "SIGTERM", "SIGINT", "SIGKILL-early-stopping"],
)
def test_killed_training_resumes_to_identical_weights(small_cache, uninterrupted, tmp_path, signame, rc, words, extra):
    """A signal at a random moment after the first checkpoint, then a rerun: the step ends with weights equal,
    tensor by tensor, to the uninterrupted run with the same seed, and the rerun resumed (it did not train the
    finished epochs again). SIGTERM and SIGINT end with the CLI's one line and 128 + signal number."""
    import csv
    import os
    import random
    import signal
    import subprocess
    import time

    import torch

    run = tmp_path / "run"
    cmd = _train_cmd(small_cache, run, *extra)
    whole = uninterrupted[extra]
    last_epoch = json.loads((whole / "step1_depth" / "metrics.json").read_text())["epochs_trained"] - 1
    ckpt_dir = run / "step1_depth" / "checkpoints"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (ckpt_dir / "last.ckpt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(random.Random(os.getpid()).uniform(0.0, 0.3))  # well inside the 12 epochs
    assert proc.poll() is None, "training ended before it could be killed"
    os.kill(proc.pid, getattr(signal, signame))
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == rc, err[-2000:]
    if words:
        assert err.strip().splitlines()[-1] == f"modistill train: {words}, rerun to resume"
        assert "Traceback" not in err
    for f in ckpt_dir.glob("*.ckpt"):
        torch.load(f, weights_only=True)  # never a torn checkpoint
    assert not (run / "step1_depth" / "metrics.json").exists()
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    logs = sorted((run / "step1_depth" / "logs").glob("version_*/metrics.csv"))
    assert len(logs) == 2
    resumed_epochs = {int(r["epoch"]) for r in csv.DictReader(open(logs[-1])) if r.get("train/loss_epoch")}
    assert min(resumed_epochs) >= 1 and max(resumed_epochs) == last_epoch  # resumed, not restarted from scratch
    for f in ("checkpoints/last.ckpt", "weights.pt"):  # the last epoch's weights, and the selected ones
        got = torch.load(run / "step1_depth" / f, weights_only=True)
        want = torch.load(whole / "step1_depth" / f, weights_only=True)
        got, want = got.get("state_dict", got), want.get("state_dict", want)
        assert got.keys() == want.keys()
        for k in want:
            assert torch.equal(got[k], want[k]), (f, k)
    assert not list(ckpt_dir.glob(".*.tmp"))

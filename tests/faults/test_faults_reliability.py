"""Reliability under concurrency and signals: a run folder is locked by the command that writes it, and SIGTERM /
SIGINT end training promptly whatever ``data.workers`` is and whoever receives them."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from faultkit import TINY_TRAIN, train_cmd

from modistill.training.data import _quiet_worker
from modistill.training.run import RUN_LOCK, run_lock


@pytest.mark.parametrize("command", ["train", "evaluate", "tune"])
def test_a_run_folder_in_use_is_refused_in_one_line(run_copy, small_cache, cli, command):
    """Another process holds the run folder (the lock is per open file, so this process holding it stands in for
    another one): every command that writes the folder refuses, exit 2, naming the holder, and writes nothing."""
    from faultkit import snapshot

    argv = {
        "train": ["train", "demo", f"data.cache={small_cache}", *TINY_TRAIN, "--run-dir", run_copy],
        "evaluate": ["evaluate", run_copy],
        "tune": ["tune", run_copy, "--trials", "1"],
    }[command]
    before = snapshot(run_copy)
    with run_lock(run_copy, "train"):
        line = cli.fails(argv, f"in use by another modistill train, tune or evaluate (pid {os.getpid()})")
    assert str(run_copy) in line
    assert snapshot(run_copy) == before


def test_the_lock_belongs_to_the_launch_not_to_each_rank(tmp_path, monkeypatch):
    """DDP ranks other than 0 (started by Lightning's launcher or torchrun inside the launch) do not take it."""
    run = tmp_path / "run"
    with run_lock(run, "train"):
        monkeypatch.setenv("LOCAL_RANK", "1")
        with run_lock(run, "train"):  # would refuse if the rank took the lock
            pass
        monkeypatch.setenv("LOCAL_RANK", "0")
        monkeypatch.setenv("RANK", "0")
        from modistill.errors import UserError

        with pytest.raises(UserError, match="in use"):
            with run_lock(run, "train"):
                pass


def test_a_folder_made_only_for_the_lock_is_removed(tmp_path):
    run = tmp_path / "new"
    with pytest.raises(RuntimeError):
        with run_lock(run, "train"):
            assert (run / RUN_LOCK).exists()
            raise RuntimeError("refused before writing")
    assert not run.exists()


def test_a_terminated_loader_worker_ends(tmp_path):
    """The loader's shutdown and multiprocessing's exit handler stop workers with SIGTERM (terminate()); a worker
    that ignored it kept `modistill train` from exiting."""
    import multiprocessing as mp

    started = tmp_path / "started"

    def busy(started_path):
        _quiet_worker(0)
        open(started_path, "w").close()
        time.sleep(60)

    p = mp.get_context("fork").Process(target=busy, args=(str(started),), daemon=True)
    p.start()
    deadline = time.time() + 20
    while not started.exists() and time.time() < deadline:
        time.sleep(0.01)
    p.terminate()
    p.join(5)
    alive = p.is_alive()
    if alive:
        p.kill()
    assert not alive


def _train(cache, run, session: bool) -> subprocess.Popen:
    cmd = train_cmd(cache, run, "train.epochs=200", "data.workers=1", "steps=[step1_rgb]")
    return subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=session
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "signame, to_group, rc", [("SIGTERM", False, 143), ("SIGTERM", True, 143), ("SIGINT", True, 130)]
)
def test_signals_end_training_with_loader_workers(small_cache, tmp_path, signame, to_group, rc):
    """`timeout` and Kubernetes signal the main process only; a terminal or SLURM the whole group. Either way, with
    a loader worker running, the command ends within seconds with its one line and 128 + the signal number."""
    run = tmp_path / "run"
    proc = _train(small_cache, run, session=to_group)
    ckpt = run / "step1_rgb" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be signalled"
    sig = getattr(signal, signame)
    os.killpg(proc.pid, sig) if to_group else os.kill(proc.pid, sig)
    try:
        err = proc.communicate(timeout=20)[1]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL) if to_group else proc.kill()
        pytest.fail(f"{signame} to the {'group' if to_group else 'main process'}: still running after 20 s")
    assert proc.returncode == rc, err[-2000:]
    words = "terminated (SIGTERM)" if signame == "SIGTERM" else "interrupted"
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"modistill train: {words}; finished work is kept, rerun to resume"


def test_every_exported_file_honours_the_umask(trained_run, tmp_path):
    """A shared model folder must be readable as the umask says: the bundle used to be written 0600 and the Hub
    folder 0700 (umask 027: group-readable, not world; 022 is tested on atomic writes in test_deploy)."""
    umask = 0o027
    from modistill.cli import main

    old = os.umask(umask)
    try:
        assert main(["export", str(trained_run), "--out", str(tmp_path / "m.onnx")]) == 0
    finally:
        os.umask(old)
    for p in [tmp_path / "m.onnx", tmp_path / "m.safetensors", *(tmp_path / "m-hub").iterdir()]:
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask, p
    assert (tmp_path / "m-hub").stat().st_mode & 0o777 == 0o777 & ~umask


def test_prepare_with_nothing_usable_exits_2(tmp_path, cli):
    csv = tmp_path / "pairs.csv"
    csv.write_text("id,label,rgb,depth\na,0,missing.avi,missing\nb,1,,\n")
    cli.fails(["prepare", "pairs", "--root", csv, "--out", tmp_path / "cache", "--quiet"], "no usable video in")


def test_a_sample_outside_the_class_list_is_listed_unused(tiny_ntu, tmp_path, cli):
    """A005 in a 3-class synthetic tree: left out by prepare with its reason (train used to be the first to
    refuse it); --strict turns a cache with unused or failed videos into exit 3."""
    import shutil

    from modistill.data import ntu
    from modistill.data.cache import load_manifest

    tree = tmp_path / "tree"
    shutil.copytree(tiny_ntu, tree)
    lay, src, extra = ntu.NtuLayout(tree), "S001C001P001R001A001", "S001C001P001R001A005"
    shutil.copy(lay.rgb(src), lay.rgb(extra))
    shutil.copy(lay.skeleton(src), lay.skeleton(extra))
    shutil.copytree(lay.depth_dir(src), lay.depth_dir(extra))
    argv = [
        "prepare",
        "ntu",
        "--root",
        tree,
        "--out",
        tmp_path / "cache",
        "--size",
        "32",
        "--frames",
        "3",
        "--quiet",
        "--workers",
        "1",
    ]
    rc, out, _ = cli(argv)
    assert rc == 0
    assert f"unused {extra}: action A005 is outside the tree's class list (3 actions)" in out
    assert load_manifest(tmp_path / "cache")[extra]["status"] == "skipped"
    rc, _, err = cli([*argv, "--strict"])
    assert rc == 3 and "0 failed, 1 unused" in err

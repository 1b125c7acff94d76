"""Fault-injection suite: every command against damaged inputs, bad config values, broken state files,
filesystem refusals, signals and concurrency. Each case asserts the exit code, that stderr holds no traceback,
that the message names the file or key and the problem, and (where there is some) that finished work is intact.

A case is a row in a table of its module: add a row to add a case. The session fixtures here build a real tiny
run (steps 1-4) and its export once; cases that damage something work on a copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from faultkit import TINY_TRAIN, Cli

from modistill.cli import main


@pytest.fixture
def cli(capsys) -> Cli:
    return Cli(capsys)


@pytest.fixture(scope="session")
def trained_run(small_cache, tmp_path_factory) -> Path:
    """A real run of steps 1-4 on the tiny cache (width 4, one epoch)."""
    run = tmp_path_factory.mktemp("faults_run") / "run"
    assert main(["train", "demo", f"data.cache={small_cache}", *TINY_TRAIN, "--run-dir", str(run)]) == 0
    return run


@pytest.fixture(scope="session")
def exported(trained_run, tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("faults_export")
    assert main(["export", str(trained_run), "--out", str(out / "m.onnx")]) == 0
    return out / "m.onnx", out / "m.safetensors"


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(trained_run, dst)
    return dst


@pytest.fixture
def cache_copy(small_cache, tmp_path) -> Path:
    dst = tmp_path / "cache"
    shutil.copytree(small_cache, dst)
    return dst

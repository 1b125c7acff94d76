"""Reusing another run's finished steps (``train --reuse-from``): only a step this run would train identically."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import TINY_TRAIN, tiny_cfg

from modistill.cli import main
from modistill.data.options import PrepareOptions
from modistill.data.prepare_ntu import prepare_ntu
from modistill.training.runner import run_training


@pytest.fixture(scope="module")
def two_modality_cache(tiny_ntu, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache_depth_pose")
    prepare_ntu(tiny_ntu, out, PrepareOptions(size=32, frames=3, modalities=("rgb", "depth", "pose")), False)
    return out


def test_a_pose_run_adopts_the_depth_runs_rgb_steps_and_trains_its_own(two_modality_cache, tmp_path, caplog):
    depth = tmp_path / "depth"
    steps = ["steps=[step1_rgb, step1_depth]", "variants=[rgb_budget]", "train.step_epochs={rgb_budget: 1}"]
    run_training(tiny_cfg(two_modality_cache, *steps), depth)
    pose = tmp_path / "pose"
    with caplog.at_level("INFO", logger="modistill"):
        pose_cfg = tiny_cfg(two_modality_cache, *steps, "model.privileged=pose", "evaluate.noise_on=encoded")
        run_training(pose_cfg, pose, reuse_from=(depth,))
    said = caplog.text
    # The steps that see RGB alone are the depth run's own files; the privileged step 1 is pose's, trained here.
    for step in ("step1_rgb", "rgb_budget"):
        assert f"{step} (from {depth}): reused" in said
        assert (pose / step / "weights.pt").read_bytes() == (depth / step / "weights.pt").read_bytes()
    assert "step1_depth (from" not in said
    a = torch.load(depth / "step1_depth" / "weights.pt", weights_only=True)
    b = torch.load(pose / "step1_depth" / "weights.pt", weights_only=True)
    assert json.loads((pose / "step1_depth" / "step.json").read_text())["keys"]["model.privileged"] == "pose"
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    assert not list(pose.glob(".*.tmp"))


def test_a_step_trained_otherwise_is_not_adopted(two_modality_cache, tmp_path, caplog, capsys):
    donor = tmp_path / "donor"
    run_training(tiny_cfg(two_modality_cache, "steps=[step1_rgb]", "variants=[]", "seed=3"), donor)
    run = tmp_path / "run"
    with caplog.at_level("INFO", logger="modistill"):
        run_training(tiny_cfg(two_modality_cache, "steps=[step1_rgb]", "variants=[]"), run, reuse_from=(donor,))
    assert "reused" not in caplog.text  # another seed: another fingerprint, so trained here
    assert (run / "step1_rgb" / "weights.pt").read_bytes() != (donor / "step1_rgb" / "weights.pt").read_bytes()
    x = tmp_path / "x"
    argv = ["train", "demo", f"data.cache={two_modality_cache}", *TINY_TRAIN, "--run-dir", str(x)]
    assert main([*argv, "--reuse-from", str(tmp_path)]) == 2
    assert f"{tmp_path}: --reuse-from needs a run folder" in capsys.readouterr().err and not x.exists()

"""Early stopping (train.patience): a step ends once validation accuracy stops improving, says how long it trained
and which epoch it kept, enters the step's fingerprint, and resumes after a kill to the same weights."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import tiny_cfg

from modistill.errors import UserError
from modistill.training.fingerprint import step_records
from modistill.training.runner import run_training

LONG = ("steps=[step1_rgb]", "train.epochs=30", "train.ema_decay=0")


def test_a_step_stops_patience_epochs_after_its_best_and_says_so(small_cache, tmp_path):
    res = run_training(tiny_cfg(small_cache, *LONG, "train.patience=2"), tmp_path / "run")["step1_rgb"]
    assert res["max_epochs"] == 30 and res["epochs_trained"] < 30  # the tiny validation set stops improving
    # Lightning's rule: the last improvement, then `patience` epochs without one.
    assert res["epochs_trained"] == res["selected_epoch"] + 2
    saved = json.loads((tmp_path / "run" / "step1_rgb" / "metrics.json").read_text())
    assert (saved["epochs_trained"], saved["selected_epoch"]) == (res["epochs_trained"], res["selected_epoch"])


def test_without_patience_every_epoch_is_trained(small_cache, tmp_path):
    res = run_training(tiny_cfg(small_cache, "steps=[step1_rgb]", "train.epochs=3"), tmp_path / "run")["step1_rgb"]
    assert (res["epochs_trained"], res["max_epochs"]) == (3, 3) and 1 <= res["selected_epoch"] <= 3


def test_patience_enters_the_fingerprint_only_when_set(small_cache):
    from modistill.training.runner import _precision

    def fingerprint(*extra):
        cfg = tiny_cfg(small_cache, "steps=[step1_rgb]", *extra)
        return step_records(cfg, _precision(cfg), "data")["step1_rgb"]

    off, on = fingerprint(), fingerprint("train.patience=3")
    assert on["keys"]["train.patience"] == 3 and "train.patience" not in off["keys"]
    assert on["fingerprint"] != off["fingerprint"] != fingerprint("train.patience=4")["fingerprint"]


def test_a_steps_own_patience_applies_to_it_alone_and_enters_its_fingerprint_as_train_patience(small_cache, tmp_path):
    from modistill.training.runner import _precision

    def records(*extra):
        cfg = tiny_cfg(small_cache, "steps=[step1_rgb, step1_depth]", *extra)
        return step_records(cfg, _precision(cfg), "data")

    per, glob, off = records("train.step_patience={step1_rgb: 3}"), records("train.patience=3"), records()
    assert per["step1_rgb"]["fingerprint"] == glob["step1_rgb"]["fingerprint"]  # the same rule, the same step
    assert per["step1_depth"]["fingerprint"] == off["step1_depth"]["fingerprint"]  # no entry, no patience
    overruled = records("train.patience=3", "train.step_patience={step1_depth: 0}")["step1_depth"]
    assert overruled["fingerprint"] == off["step1_depth"]["fingerprint"]
    res = run_training(
        tiny_cfg(
            small_cache,
            "steps=[step1_rgb, step1_depth]",
            "train.epochs=30",
            "train.ema_decay=0",
            "train.step_patience={step1_rgb: 2}",
            "train.step_epochs={step1_depth: 3}",
        ),
        tmp_path / "run",
    )
    assert res["step1_rgb"]["epochs_trained"] == res["step1_rgb"]["selected_epoch"] + 2 < 30
    assert res["step1_depth"]["epochs_trained"] == 3


def test_patience_without_a_validation_split_is_refused(small_cache, tmp_path):
    with pytest.raises(UserError, match="no validation split"):
        run_training(tiny_cfg(small_cache, *LONG, "train.patience=2", "data.validation=null"), tmp_path / "run")


def test_a_step_killed_after_it_stopped_resumes_without_training_further(small_cache, tmp_path):
    """The step decided to stop, wrote its last checkpoint, and died before its metrics: the rerun restores the
    stopper's state and ends at the same epoch with the same weights."""
    cfg = tiny_cfg(small_cache, *LONG, "train.patience=2")
    whole = run_training(cfg, tmp_path / "whole")["step1_rgb"]
    run = tmp_path / "cut"
    run_training(cfg, run)
    (run / "step1_rgb" / "metrics.json").unlink()  # as if killed between the last checkpoint and the metrics
    (run / "step1_rgb" / "weights.pt").unlink()
    again = run_training(cfg, run)["step1_rgb"]
    assert (again["epochs_trained"], again["selected_epoch"]) == (whole["epochs_trained"], whole["selected_epoch"])
    got = torch.load(run / "step1_rgb" / "weights.pt", weights_only=True)
    want = torch.load(tmp_path / "whole" / "step1_rgb" / "weights.pt", weights_only=True)
    assert all(torch.equal(got[k], want[k]) for k in want)

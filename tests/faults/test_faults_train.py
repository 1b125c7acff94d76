"""`modistill train`: config values, config files, state files of a run, damaged clips, filesystem."""

from __future__ import annotations

import json

import numpy as np
import pytest
from faultkit import TINY_TRAIN, snapshot, truncate

from modistill.data.cache import clip_path

# (override, fragment of the one-line error). Each is refused before anything is written.
CONFIG_VALUES = [
    ("train.lr=-0.001", "train.lr=-0.001 must be > 0"),
    ("train.lr=0", "train.lr=0.0 must be > 0"),
    ("train.lr=abc", "'train.lr' expects a number"),
    ("train.lr=.nan", "'train.lr' must be a finite number"),
    ("train.lr=.inf", "must be a finite number"),
    ("model.width=0", "model.width=0 must be >= 1"),
    ("model.width=-4", "model.width=-4 must be >= 1"),
    ("model.width=2.5", "'model.width' expects an integer"),
    ("train.weight_decay=-1", "train.weight_decay=-1.0 must be >= 0"),
    ("train.precision=7", "train.precision='7' is not one of"),
    ("train.precision=fp8", "is not one of"),
    ("train.accelerator=tpu", "train.accelerator='tpu' is not one of"),
    ("train.devices=abc", "'train.devices' must be auto"),
    ("train.devices=0", "'train.devices' must be auto"),
    ("train.devices=[-1]", "'train.devices' must be auto"),
    ("train.limit_train_batches=0", "'train.limit_train_batches' must be a fraction"),
    ("train.limit_train_batches=-1", "'train.limit_train_batches' must be a fraction"),
    ("train.limit_train_batches=1.5", "'train.limit_train_batches' must be a fraction"),
    ("data.workers=-1", "must be auto or a number of loader processes"),
    ("seed=-1", "seed=-1 must be >= 0"),
    ("seed=99999999999", "seed=99999999999 must be <= 4.29497e+09"),
    ("seed=1.5", "'seed' expects an integer"),
    ("train.num_nodes=0", "train.num_nodes=0 must be >= 1"),
    ("distill.hall_layers=[layer9]", "has unknown layer(s) ['layer9']"),
    ("distill.hall_layers=[]", "must name at least one of"),
    ("distill.hall_layers=layer4", "'distill.hall_layers' expects a list"),
    ("model.arch=vgg16", "model.arch='vgg16' is not one of"),
    ("steps=[step9]", "unknown step(s) ['step9']"),
    ("steps=[]", "steps=[] must name at least one step"),
    ("variants=[bogus]", "unknown step(s) ['bogus']"),
    ("data.frames=0", "data.frames=0 must be >= 1"),
    ("data.frames=-3", "data.frames=-3 must be >= 1"),
    ("train.batch_size=0", "train.batch_size=0 must be >= 1"),
    ("train.epochs=0", "train.epochs=0 must be >= 1"),
    ("data.flip=2", "data.flip=2.0 must be <= 1"),
    ("distill.alpha=1.5", "distill.alpha=1.5 must be <= 1"),
    ("distill.lambda=-0.1", "distill.lambda=-0.1 must be >= 0"),
    ("distill.temperature=0", "distill.temperature=0.0 must be > 0"),
    ("model.connection=sideways", "model.connection='sideways' is not one of"),
    ("train.optimizer=lbfgs", "train.optimizer='lbfgs' is not one of"),
    ("data.train_sampling=random", "data.train_sampling='random' is not one of"),
    ("data.benchmark=ntu200", "data.benchmark='ntu200' is not one of"),
    ("data.protocol=cross-time", "data.protocol='cross-time' is not one of"),
    ("data.validation=maybe", "data.validation='maybe' must be paper, performers or null"),
    ("distill.hall_weight=-1", "distill.hall_weight=-1.0 must be >= 0"),
    ("distill.weighting=released", "unknown config key 'distill.weighting'"),
    ("train.strategy=ring", "train.strategy='ring' is not one of"),
    ("model.temporal=maybe", "'model.temporal' must be true or false"),
    ("train.progress=2", "'train.progress' must be true or false"),
    ("name=a/b", "name='a/b' must be a non-empty"),
    ("train.epochz=3", "unknown config key 'train.epochz'"),
    ("trainn.lr=1", "unknown config key 'trainn'"),
    ("train=5", "config key 'train' must be a mapping"),
    ("evaluate.noise_sigma2=[-1]", "noise variances >= 0"),
    ("data.val_per_class=0", "data.val_per_class=0 must be >= 1"),
    ("train.log_every_n_steps=0", "train.log_every_n_steps=0 must be >= 1"),
    ("nokey", "override 'nokey' must look like key.sub=value"),
    ("model.width=", "'model.width' cannot be empty"),
    ("data.protocol=cross-setup", "protocol 'cross-setup' is not defined for ntu60"),
    ("data.benchmark=ntu120", "prepared as ntu60, the config says data.benchmark=ntu120"),
    ("data.frames=4", "stores 3 frames per video, config data.frames=4 asks for more"),
    ("model.pretrained=/nonexistent/r18.pth", "/nonexistent/r18.pth: pretrained weights file not found"),
    ("model.pretrained=torchvision:IMAGENET1K_V7", "torchvision:IMAGENET1K_V7: no such resnet18 weights"),
    ("data.exclude_list=/nonexistent/list.txt", "/nonexistent/list.txt: data.exclude_list is not a file"),
    ("data.cache=/nonexistent/cache", "/nonexistent/cache: not a prepared cache"),
]


def _base(cache):
    return [f"data.cache={cache}", *TINY_TRAIN]


@pytest.mark.parametrize("override, fragment", CONFIG_VALUES, ids=[c[0] for c in CONFIG_VALUES])
def test_config_values(cli, small_cache, tmp_path, override, fragment):
    run = tmp_path / "runs" / "run"  # like the default runs/<name>: the parent is created for the lock too
    cli.fails(["train", "demo", *_base(small_cache), override, "--run-dir", run], fragment)
    assert not (tmp_path / "runs").exists()  # refused before anything was written, and no folder left behind


CONFIG_FILES = [
    ("random bytes", lambda p: p.write_bytes(bytes(range(256)) * 4), "not UTF-8 text"),
    ("a directory", lambda p: p.mkdir(), "is a directory, not a config file"),
    ("a YAML list", lambda p: p.write_text("- a\n- b\n"), "must be a YAML mapping"),
    ("invalid YAML", lambda p: p.write_text("train: [1, 2\n"), "invalid YAML"),
    ("an unknown section", lambda p: p.write_text("trainer:\n  lr: 1\n"), "unknown config key 'trainer'"),
    ("a section that is a number", lambda p: p.write_text("data: 5\n"), "config key 'data' must be a mapping"),
    ("a wrong nested type", lambda p: p.write_text("train:\n  epochs: many\n"), "'train.epochs' expects an integer"),
    ("no data.cache", lambda p: p.write_text("name: x\n"), "config data.cache is not set"),
]


@pytest.mark.parametrize("what, make, fragment", CONFIG_FILES, ids=[c[0] for c in CONFIG_FILES])
def test_config_files(cli, tmp_path, what, make, fragment):
    path = tmp_path / "cfg.yaml"
    make(path)
    cli.fails(["train", path, "--run-dir", tmp_path / "run"], fragment)


def test_missing_config_file(cli, tmp_path):
    cli.fails(["train", tmp_path / "nope.yaml"], "nope.yaml: config file not found")


def _unfinish(run, step):
    (run / step / "metrics.json").unlink()
    (run / step / "weights.pt").unlink()


RUN_STATE = [
    ("truncated step.json", lambda r: truncate(r / "step1_depth" / "step.json"), "step1_depth/step.json: not valid"),
    ("truncated metrics.json", lambda r: truncate(r / "step2" / "metrics.json"), "step2/metrics.json: not valid"),
    ("step folder without step.json", lambda r: (r / "step2" / "step.json").unlink(), "step2: no step.json"),
    (
        "truncated last.ckpt",
        lambda r: (_unfinish(r, "step4"), truncate(r / "step4/checkpoints/last.ckpt")),
        "step4/checkpoints/last.ckpt: unreadable (truncated); delete it to restart step4",
    ),
    (
        "random last.ckpt",
        lambda r: (_unfinish(r, "step4"), (r / "step4/checkpoints/last.ckpt").write_bytes(b"x" * 99)),
        "last.ckpt: unreadable",
    ),
    (
        "truncated parent weights",
        lambda r: (_unfinish(r, "step4"), truncate(r / "step3" / "weights.pt")),
        "step3/weights.pt: unreadable (truncated); retrain step3",
    ),
    (
        "deleted parent weights",
        lambda r: (_unfinish(r, "step4"), (r / "step2" / "weights.pt").unlink()),
        "step2/weights.pt: missing; retrain step2",
    ),
]


@pytest.mark.parametrize("what, damage, fragment", RUN_STATE, ids=[c[0] for c in RUN_STATE])
def test_run_state_files(cli, run_copy, small_cache, what, damage, fragment):
    damage(run_copy)
    before = snapshot(run_copy)
    cli.fails(["train", "demo", *_base(small_cache), "--run-dir", run_copy], fragment)
    after = snapshot(run_copy)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing finished was touched


def test_run_dir_that_is_a_file(cli, small_cache, tmp_path):
    f = tmp_path / "run"
    f.write_text("not a folder")
    cli.fails(["train", "demo", *_base(small_cache), "--run-dir", f], "--run-dir is a file")


def _write_clip(cache, name, arr):
    with open(clip_path(cache, name), "wb") as f:
        np.save(f, arr, allow_pickle=True)


CLIPS = [
    ("random bytes", lambda c, n: clip_path(c, n).write_bytes(bytes(range(256)) * 8), "not a NumPy array file"),
    ("truncated", lambda c, n: truncate(clip_path(c, n), 0.6), "damaged clip (truncated)"),
    ("deleted", lambda c, n: clip_path(c, n).unlink(), "clip missing"),
    (
        "another size",
        lambda c, n: _write_clip(c, n, np.zeros((2, 3, 48, 48, 3), np.uint8)),
        "clip is uint8 [2, 3, 48, 48, 3], this cache holds uint8 [2, 3, 32, 32, 3]",
    ),
    ("an object array", lambda c, n: _write_clip(c, n, np.array([{"a": 1}], dtype=object)), "holds Python objects"),
    ("float pixels", lambda c, n: _write_clip(c, n, np.zeros((2, 3, 32, 32, 3), np.float32)), "clip is float32"),
]


@pytest.mark.parametrize("workers", [0, 1])
@pytest.mark.parametrize("what, damage, fragment", CLIPS, ids=[c[0] for c in CLIPS])
def test_damaged_clips_name_the_clip(cli, cache_copy, tmp_path, what, damage, fragment, workers):
    splits_run = tmp_path / "probe"
    from modistill.config import load_config
    from modistill.training.data import dataset_splits

    splits, *_ = dataset_splits(load_config(None, [f"data.cache={cache_copy}", "data.frames=3"]))
    name = splits["train"][0]
    damage(cache_copy, name)
    line = cli.fails(
        [
            "train",
            "demo",
            *_base(cache_copy),
            f"data.workers={workers}",
            "steps=[step1_depth]",
            "--run-dir",
            splits_run,
        ],
        fragment,
    )
    assert f"{name}.npy" in line and ("rerun the same `modistill prepare`" in line)


def test_label_outside_the_classes(cli, cache_copy, tmp_path):
    meta = json.loads((cache_copy / "cache.json").read_text())
    meta["class_names"], meta["num_classes"] = meta["class_names"][:2], 2
    (cache_copy / "cache.json").write_text(json.dumps(meta))
    cli.fails(
        ["train", "demo", *_base(cache_copy), "--run-dir", tmp_path / "run"],
        "has label 2, outside the cache's 2 classes",
    )


CACHE_STATE = [
    ("truncated cache.json", lambda c: truncate(c / "cache.json"), "cache.json: not valid JSON"),
    (
        "cache.json without sizes",
        lambda c: (c / "cache.json").write_text('{"benchmark": "ntu60"}'),
        "cache.json: lacks size, frames",
    ),
    ("corrupt manifest.json", lambda c: truncate(c / "manifest.json"), "manifest.json: corrupt manifest"),
    ("cache.json is a list", lambda c: (c / "cache.json").write_text("[1, 2]"), "cache.json: not a JSON object"),
]


@pytest.mark.parametrize("what, damage, fragment", CACHE_STATE, ids=[c[0] for c in CACHE_STATE])
def test_cache_state_files(cli, cache_copy, tmp_path, what, damage, fragment):
    damage(cache_copy)
    cli.fails(["train", "demo", *_base(cache_copy), "--run-dir", tmp_path / "run"], fragment)
    assert not (tmp_path / "run").exists()


def test_disk_full_while_checkpointing(cli, small_cache, tmp_path, monkeypatch):
    import errno

    from modistill.training import checkpoint_io

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "last.ckpt"))

    monkeypatch.setattr(checkpoint_io, "atomic_write", full)
    cli.fails(
        ["train", "demo", *_base(small_cache), "steps=[step1_depth]", "--run-dir", tmp_path / "run"],
        "last.ckpt: no space left on device",
    )
    assert not (tmp_path / "run" / "step1_depth" / "metrics.json").exists()


def test_demo_and_evaluate_refuse_options_they_would_ignore(cli, trained_run, tmp_path):
    cli.fails(["demo", "--out", tmp_path / "d", "--seed", "3", "--seeds", "1"], "give one of them")
    cli.fails(["demo", "--out", tmp_path / "d", "--workers", "0"], "--workers must be at least 1")
    cli.fails(["evaluate", trained_run, "--summary", tmp_path / "s"], "give two or more run folders")
    assert not (tmp_path / "d").exists() and not (tmp_path / "s").exists()

"""NW-UCLA- and UWA3D-II-style trees from the synthetic generator → pairs CSV with the cross-view protocols →
prepare → training."""

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import tiny_cfg

from modistill.cli import main
from modistill.data.cache import clip_path, load_manifest
from modistill.data.nwucla_uwa3d import NWUCLA_ACTIONS, write_multiview_pairs
from modistill.data.options import PrepareOptions
from modistill.data.pairs import prepare_pairs
from modistill.errors import UserError
from modistill.synthetic import SynthConfig, generate
from modistill.synthetic.multiview import sample_dirs
from modistill.training.runner import run_training


def _tree(layout, tmp_path_factory):
    cfg = SynthConfig(
        classes=3,
        subjects=2,
        cameras=4,
        replications=1,
        frames=10,
        rgb_size=(160, 90),
        depth_size=(128, 106),
        seed=3,
        layout=layout,
    )
    root = tmp_path_factory.mktemp(layout)
    generate(cfg, root, show_progress=False)
    return cfg, root


@pytest.fixture(scope="module")
def nwucla(tmp_path_factory):
    return _tree("nwucla", tmp_path_factory)


@pytest.fixture(scope="module")
def uwa3d(tmp_path_factory):
    return _tree("uwa3d", tmp_path_factory)


def test_nwucla_layout_protocol_prepare_and_train(nwucla, tmp_path):
    cfg, root = nwucla
    name = cfg.names()[0]
    rgb_dir, depth_dir = sample_dirs("nwucla", root, name)
    assert rgb_dir == depth_dir and rgb_dir.parent.name == "view_1" and rgb_dir.name == "a01_s01_e00"
    depth = cv2.imread(str(next(rgb_dir.glob("frame_0_tc_*_depth.png"))), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16 and depth.shape == (90, 160) and (depth > 0).any()  # registered to RGB size
    counts = write_multiview_pairs("nwucla", root, tmp_path / "p.csv")
    assert counts == {"train": 12, "test": 6, "unused": 6}  # views 1+2 / 3; view 4 left out
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert {r["split"] for r in rows if r["view"] == "3"} == {"test"}
    names = ["a01 pick up with one hand", "a02 pick up with two hands", "a03 drop trash"]
    assert sorted({r["label"] for r in rows}) == names
    assert not any(Path(r["rgb"]).is_absolute() for r in rows)  # relative to the CSV's folder
    cache = tmp_path / "cache"
    s = prepare_pairs(tmp_path / "p.csv", cache, PrepareOptions(size=32, frames=3), show_progress=False)
    assert s["counts"] == {"ok": 18}
    assert json.loads((cache / "cache.json").read_text())["class_names"] == names
    clip = np.load(clip_path(cache, rows[0]["id"]))
    assert clip.shape == (2, 3, 32, 32, 3) and clip[1].max() > 0
    res = run_training(tiny_cfg(cache, "steps=[step1_depth]"), tmp_path / "run")["step1_depth"]
    assert res["n"] == 6 and res["selected"] == "last.ckpt"  # no validation set: the last epoch is tested


def test_uwa3d_layout_protocols(uwa3d, tmp_path):
    cfg, root = uwa3d
    rgb_dir, depth_dir = sample_dirs("uwa3d", root, cfg.names()[0])
    assert (rgb_dir.parent.name, depth_dir.parent.name, rgb_dir.name) == ("rgb", "depth", "a01_s01_v01_e01")
    assert write_multiview_pairs("uwa3d", root, tmp_path / "a.csv") == {"train": 18, "test": 6, "unused": 0}
    assert write_multiview_pairs("uwa3d", root, tmp_path / "b.csv", (1, 2), (3, 4)) == {
        "train": 12,
        "test": 12,
        "unused": 0,
    }
    prepare_pairs(tmp_path / "a.csv", tmp_path / "cache", PrepareOptions(size=32, frames=3), show_progress=False)
    recs = load_manifest(tmp_path / "cache")
    assert len(recs) == 24 and all(r["status"] == "ok" for r in recs.values())
    assert recs["a03_s02_v04_e01"]["label"] == 2 and recs["a03_s02_v04_e01"]["split"] == "test"
    meta = json.loads((tmp_path / "cache" / "cache.json").read_text())
    assert meta["benchmark"] == "pairs" and meta["num_classes"] == 3
    assert meta["class_names"] == ["a01 one hand waving", "a02 one hand punching", "a03 two hand waving"]


def test_readme_pairs_flow_works_from_any_folder(nwucla, tmp_path, monkeypatch, capsys):
    """`modistill pairs nwucla ucla --out ucla/pairs.csv`, then the printed `prepare pairs` command (on
    2b7b8e1 every video failed with 'ucla/ucla/view_2/...: no image frames', rc 0)."""
    import shutil

    _, root = nwucla
    shutil.copytree(root, tmp_path / "ucla")
    monkeypatch.chdir(tmp_path)
    assert main(["pairs", "nwucla", "ucla", "--out", "ucla/pairs.csv"]) == 0
    printed = capsys.readouterr().out.strip().split("next: ")[1].split()
    assert printed[:5] == ["modistill", "prepare", "pairs", "--root", "ucla/pairs.csv"]
    assert (
        main(
            [
                "prepare",
                "pairs",
                "--root",
                "ucla/pairs.csv",
                "--out",
                "cache",
                "--size",
                "32",
                "--frames",
                "3",
                "--quiet",
            ]
        )
        == 0
    )
    assert {r["status"] for r in load_manifest(tmp_path / "cache").values()} == {"ok"}


def test_multiview_errors(nwucla, tmp_path, capsys):
    _, root = nwucla
    with pytest.raises(UserError, match="both train and test"):
        write_multiview_pairs("nwucla", root, tmp_path / "x.csv", (1, 2), (2,))
    with pytest.raises(UserError, match="no uwa3d videos found"):
        write_multiview_pairs("uwa3d", root, tmp_path / "x.csv")
    assert main(["pairs", "nwucla", str(tmp_path / "missing"), "--out", str(tmp_path / "x.csv")]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    with pytest.raises(UserError, match="at most 10 classes"):
        generate(SynthConfig(classes=11, layout="nwucla"), tmp_path / "s", show_progress=False)
    assert len(NWUCLA_ACTIONS) == 10

"""Users' own paired data through a CSV manifest: video or frame folders, 16-bit depth or 8-bit IR, trained with
the same pipeline."""

import json

import cv2
import numpy as np
import pytest
from test_training import tiny_cfg

from modistill.cli import main
from modistill.data import ntu
from modistill.data.cache import clip_path, load_manifest
from modistill.data.pairs import prepare_pairs, read_pairs_csv
from modistill.errors import DataError
from modistill.training.runner import run_training

SPLIT_OF = {1: "train", 2: "val", 3: "test"}


@pytest.fixture(scope="module")
def pairs_csv(tiny_ntu, tmp_path_factory):
    """Every tiny NTU sample as a pair (avi + 16-bit depth folder, class names as labels), plus one pair given as
    a JPEG frame folder with an 8-bit IR-like folder, and one pair whose files do not exist."""
    base = tmp_path_factory.mktemp("pairs")
    L = ntu.NtuLayout(tiny_ntu)
    names = L.sample_names()[0]
    classes = json.loads((tiny_ntu / "synth.json").read_text())["class_names"]
    lines = ["id,label,rgb,depth,subject,view,split"]
    for n in names:
        s = ntu.parse_name(n)
        lines.append(f"{n},{classes[s.label]},{L.rgb(n)},{L.depth_dir(n)},{s.performer},{s.camera},"
                     f"{SPLIT_OF[s.performer]}")
    folder = base / "own_clip"
    (folder / "rgb").mkdir(parents=True)
    (folder / "ir").mkdir()
    for i, f in enumerate(ntu.read_rgb_frames(L.rgb(names[0]))):
        cv2.imwrite(str(folder / "rgb" / f"{i:04d}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(folder / "ir" / f"{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2GRAY))
    lines.append(f"own_clip,{classes[0]},own_clip/rgb,own_clip/ir,9,1,train")
    lines.append(f"ghost,{classes[1]},nowhere.mp4,nowhere,9,1,train")
    path = base / "pairs.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, names, classes


def test_prepare_pairs_and_train(pairs_csv, tmp_path):
    path, names, classes = pairs_csv
    cache = tmp_path / "cache"
    s = prepare_pairs(path, cache, size=32, frames=3, show_progress=False)
    recs = load_manifest(cache)
    assert s["counts"] == {"ok": len(names) + 1, "failed": 1}
    assert recs["ghost"]["status"] == "failed" and "not found" in recs["ghost"]["reason"]
    assert json.loads((cache / "cache.json").read_text())["class_names"] == sorted(classes)
    own = np.load(clip_path(cache, "own_clip"))
    assert own.shape == (2, 3, 32, 32, 3)
    assert np.array_equal(own[1][..., 0], own[1][..., 1])  # the 8-bit IR image is kept as is (gray → 3 equal)
    assert recs["own_clip"]["label"] == sorted(classes).index(classes[0])
    ntu_clip = np.load(clip_path(cache, names[0]))
    assert np.abs(own[0].astype(int) - ntu_clip[0].astype(int)).mean() < 8  # JPEG folder ≈ the same video
    again = prepare_pairs(path, cache, size=32, frames=3, show_progress=False)
    assert again["processed"] == 1  # only the failed pair is retried

    res = run_training(tiny_cfg(cache, "steps=[step1_depth,step1_rgb,step2]"), tmp_path / "run")
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert sorted(splits["test"]) == sorted(n for n in names if ntu.parse_name(n).performer == 3)
    assert "own_clip" in splits["train"] and res["step2"]["n"] == len(splits["test"])


def test_pairs_manifest_errors_name_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,rgb,depth\na,x,y\n")
    with pytest.raises(DataError, match=r"bad.csv:1: missing column\(s\) \['label'\]"):
        read_pairs_csv(bad)
    bad.write_text("id,label,rgb,depth,split\na,0,x,y,train\nb,1,x,y,holdout\n")
    with pytest.raises(DataError, match=r"bad.csv:3: split must be one of"):
        read_pairs_csv(bad)
    bad.write_text("id,label,rgb,depth\na,0,x,y\na,1,x,y\n")
    with pytest.raises(DataError, match=r"bad.csv:3: duplicate id 'a'"):
        read_pairs_csv(bad)
    assert main(["prepare", "pairs", "--root", str(bad), "--out", str(tmp_path / "c"), "--quiet"]) == 2
    assert "duplicate id" in capsys.readouterr().err

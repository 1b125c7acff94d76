"""Users' own paired data through a CSV manifest: video or frame folders, 16-bit depth or 8-bit IR, trained with
the same pipeline."""

import json

import cv2
import numpy as np
import pytest
from helpers import tiny_cfg

from modistill.cli import main
from modistill.data import ntu, video
from modistill.data.cache import clip_path, load_manifest
from modistill.data.options import PrepareOptions
from modistill.data.pairs import prepare_pairs, read_pairs_csv
from modistill.errors import DataError, UserError
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
        lines.append(
            f"{n},{classes[s.label]},{L.rgb(n)},{L.depth_dir(n)},{s.performer},{s.camera},{SPLIT_OF[s.performer]}"
        )
    folder = base / "own_clip"
    (folder / "rgb").mkdir(parents=True)
    (folder / "ir").mkdir()
    for i, f in enumerate(video.read_rgb_frames(L.rgb(names[0]))):
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
    s = prepare_pairs(path, cache, PrepareOptions(size=32, frames=3), show_progress=False)
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
    again = prepare_pairs(path, cache, PrepareOptions(size=32, frames=3), show_progress=False)
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
    assert main(["prepare", "pairs", "--root", str(bad), "--out", str(tmp_path / "c"), "--quiet"]) == 2
    assert "missing column" in capsys.readouterr().err
    bad.write_bytes(b"id,label,rgb,depth\n\xff\xfe,0,x,y\n")
    with pytest.raises(UserError, match="bad.csv: not UTF-8 text"):
        read_pairs_csv(bad)
    with pytest.raises(UserError, match="is a directory"):
        read_pairs_csv(tmp_path)


def test_each_bad_row_fails_alone_with_its_line(tiny_ntu, tmp_path):
    """On 2b7b8e1 these rows aborted the whole prepare with a traceback or a refusal of the file."""
    L = ntu.NtuLayout(tiny_ntu)
    good = L.sample_names()[0][0]
    rows = [
        "id,label,rgb,depth,split",
        f"ok1,0,{L.rgb(good)},{L.depth_dir(good)},train",
        "short,0,x",  # too few fields
        f"dup,1,{L.rgb(good)},{L.depth_dir(good)},train",
        f"dup,1,{L.rgb(good)},{L.depth_dir(good)},test",
        f"{'x' * 300},0,{L.rgb(good)},{L.depth_dir(good)},train",
        f"holdout,1,{L.rgb(good)},{L.depth_dir(good)},holdout",
        f"zero_one,01,{L.rgb(good)},{L.depth_dir(good)},test",
    ]
    path = tmp_path / "p.csv"
    path.write_bytes("\ufeff".encode() + "\n".join(rows).encode() + b"\n")  # with Excel's byte-order mark
    records, names, bad = read_pairs_csv(path)
    assert [r["id"] for r in records] == ["ok1", "dup", "zero_one"] and names == ["0", "1"]
    assert records[2]["label"] == 1  # '01' is class 1
    reasons = dict(bad)
    assert reasons["short"] == f"{path}:3: no value for depth"
    assert reasons["line 5"] == f"{path}:5: duplicate id 'dup'"
    assert reasons["line 6"].startswith(f"{path}:6: bad id 'xxxx") and "at most 200 characters" in reasons["line 6"]
    assert reasons["holdout"].startswith(f"{path}:7: split must be one of")
    summary = prepare_pairs(path, tmp_path / "cache", PrepareOptions(size=32, frames=3), show_progress=False)
    assert summary["counts"] == {"ok": 3, "failed": 4}
    symbols = tmp_path / "s.csv"
    symbols.write_text(f"id,label,rgb,depth\na,²,{L.rgb(good)},{L.depth_dir(good)}\n")
    assert read_pairs_csv(symbols)[1] == ["²"]  # not a digit 0-9: a class name


def test_sixteen_bit_colour_frames_are_scaled_and_converted_to_rgb(tmp_path):
    import cv2

    from modistill.data.pairs import _read

    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[..., 0] = 200  # red
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"f{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    frames, n, _ = _read(folder, 3, 10)
    assert n == 3 and frames[0].dtype == np.uint8
    assert np.abs(frames[0].astype(int) - rgb).max() <= 1  # red stays red, 8-bit levels


def test_pose_images_from_keypoint_files(tiny_ntu, tmp_path):
    """A keypoints JSON per row (NTU-25 joints from the skeleton's colour coordinates, in the video's pixels; a
    COCO-17 file with an empty frame; a malformed file) gives pose images, a noted blank frame, a failed row."""
    from modistill.data.pairs import read_keypoints

    L = ntu.NtuLayout(tiny_ntu)
    names = sorted(L.sample_names()[0])[:2]
    w, h = video.read_rgb_frames(L.rgb(names[0]))[0].shape[1::-1]
    frames = ntu.read_skeleton(L.skeleton(names[0]))
    ntu_kp = [[(b.joints[:, 5:7] * [w / 1920, h / 1080]).tolist() for b in bodies] for bodies in frames]
    (tmp_path / "a.json").write_text(json.dumps({"layout": "ntu25", "frames": ntu_kp}))
    coco = [[[[w / 2, h / 2 + 3 * j, 0.9] for j in range(17)]] for _ in range(len(frames))]
    coco[0] = []  # no person in the first frame
    coco[5][0][3] = None  # an undetected joint
    for t in range(1, len(coco)):
        coco[t][0][16] = [0.0, h / 2, 0.0]  # a score of 0: not detected, so nothing is drawn at the left edge
    (tmp_path / "b.json").write_text(json.dumps(coco))
    (tmp_path / "c.json").write_text(json.dumps([[[[1, 2]] * 5]]))  # 5 joints: neither layout
    lines = ["id,label,rgb,depth,split,pose"]
    for rid, n, kp in (("a", names[0], "a.json"), ("b", names[1], "b.json"), ("c", names[1], "c.json")):
        lines.append(f"{rid},0,{L.rgb(n)},{L.depth_dir(n)},train,{kp}")
    (tmp_path / "p.csv").write_text("\n".join(lines) + "\n")
    cache = tmp_path / "cache"
    opts = PrepareOptions(size=32, frames=3, modalities=("rgb", "depth", "pose"))
    prepare_pairs(tmp_path / "p.csv", cache, opts, show_progress=False)
    recs = load_manifest(cache)
    assert recs["a"]["status"] == "ok" and recs["b"]["status"] == "ok"
    assert "c.json" in recs["c"]["reason"] and "COCO-17 or NTU-25" in recs["c"]["reason"]
    assert "pose: no body in frames [0]" in recs["b"]["reason"]
    a, b = np.load(clip_path(cache, "a")), np.load(clip_path(cache, "b"))
    assert a.shape == (3, 3, 32, 32, 3) and (a[2] > 0).mean() > 0.01
    assert b[2, 0].sum() == 0 and b[2, 1].sum() > 0
    assert b[2, 1, :, 15:17].max() > 150 and b[2, 1, :, :12].max() == 0  # the COCO column drawn at the centre
    _, layout = read_keypoints(tmp_path / "b.json")
    assert layout.name == "coco17"
    # Any order and subset with RGB, as for an NTU tree: the pose images are the same.
    prepare_pairs(tmp_path / "p.csv", tmp_path / "c2", PrepareOptions(size=32, frames=3, modalities=("pose", "rgb")))
    two = np.load(clip_path(tmp_path / "c2", "a"))
    assert two.shape == (2, 3, 32, 32, 3) and np.array_equal(two[0], a[2]) and np.array_equal(two[1], a[0])

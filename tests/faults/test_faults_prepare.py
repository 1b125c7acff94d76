"""`modistill prepare ntu` / `prepare pairs`: arguments, state files of a cache, filesystem. The per-video tree
faults (damaged videos, depth, skeletons) are in tests/data/test_prepare.py."""

from __future__ import annotations

import errno
import json
import shutil

import pytest
from faultkit import snapshot, truncate

ARGS = [
    (["--size", "100000"], "--size must be between 16 and 1024"),
    (["--size", "8"], "--size must be between 16"),
    (["--frames", "0"], "--frames must be between 1 and 256"),
    (["--workers", "0"], "--workers must be at least 1"),
]


@pytest.mark.parametrize("args, fragment", ARGS, ids=[" ".join(a[0]) for a in ARGS])
def test_prepare_arguments(cli, tiny_ntu, tmp_path, args, fragment):
    cli.fails(["prepare", "ntu", "--root", tiny_ntu, "--out", tmp_path / "c", *args], fragment)
    assert not (tmp_path / "c").exists()


def test_root_missing_or_a_file(cli, tmp_path):
    cli.fails(["prepare", "ntu", "--root", tmp_path / "none", "--out", tmp_path / "c"], "RGB folder not found")
    (tmp_path / "f").write_text("x")
    cli.fails(["prepare", "ntu", "--root", tmp_path / "f", "--out", tmp_path / "c"], "RGB folder not found")


def test_out_is_a_file(cli, tiny_ntu, tmp_path):
    (tmp_path / "c").write_text("x")
    cli.fails(
        ["prepare", "ntu", "--root", tiny_ntu, "--out", tmp_path / "c", "--size", "32", "--frames", "3"],
        "cannot create the cache folder",
    )


CACHE_STATE = [
    ("truncated cache.json", lambda c: truncate(c / "cache.json"), "cache.json: not valid JSON"),
    (
        "cache.json a directory",
        lambda c: ((c / "cache.json").unlink(), (c / "cache.json").mkdir()),
        "cache.json: is a directory",
    ),
    ("corrupt manifest.json", lambda c: truncate(c / "manifest.json"), "manifest.json: corrupt manifest"),
    ("other settings", lambda c: None, "existing cache was prepared with other settings"),
]


@pytest.mark.parametrize("what, damage, fragment", CACHE_STATE, ids=[c[0] for c in CACHE_STATE])
def test_cache_state_files_on_resume(cli, cache_copy, tiny_ntu, what, damage, fragment):
    damage(cache_copy)
    clips = snapshot(cache_copy / "clips")
    size = "48" if what == "other settings" else "32"
    cli.fails(["prepare", "ntu", "--root", tiny_ntu, "--out", cache_copy, "--size", size, "--frames", "3"], fragment)
    assert snapshot(cache_copy / "clips") == clips  # finished clips intact


@pytest.fixture
def tree(tiny_ntu, tmp_path):
    root = tmp_path / "ntu"
    shutil.copytree(tiny_ntu, root)
    return root


SYNTH = [
    ("truncated synth.json", lambda r: truncate(r / "synth.json"), "synth.json: not valid JSON"),
    (
        "synth.json without class_names",
        lambda r: (r / "synth.json").write_text('{"classes": 3}'),
        "synth.json: needs a list of 1 to 60 class_names",
    ),
    (
        "synth.json with 200 classes",
        lambda r: (r / "synth.json").write_text(json.dumps({"class_names": [str(i) for i in range(200)]})),
        "needs a list of 1 to 60 class_names",
    ),
]


@pytest.mark.parametrize("what, damage, fragment", SYNTH, ids=[c[0] for c in SYNTH])
def test_synth_json(cli, tree, tmp_path, what, damage, fragment):
    damage(tree)
    cli.fails(["prepare", "ntu", "--root", tree, "--out", tmp_path / "c", "--size", "32", "--frames", "3"], fragment)


RECOVERS = [
    ("truncated camera_fits.json", lambda c: truncate(c / "camera_fits.json")),
    ("a truncated clip record", lambda c: truncate(next((c / "clips").glob("*.json")))),
    ("a stale temp file", lambda c: (c / "clips" / ".S001C001P001R001A001.npy.x1.tmp").write_bytes(b"p")),
    ("a deleted manifest", lambda c: (c / "manifest.json").unlink()),
]


@pytest.mark.parametrize("what, damage", RECOVERS, ids=[c[0] for c in RECOVERS])
def test_state_the_rerun_repairs(cli, cache_copy, tiny_ntu, what, damage):
    """Damage that loses no finished work: the rerun succeeds and every video is ok again."""
    damage(cache_copy)
    rc, _, err = cli(
        ["prepare", "ntu", "--root", tiny_ntu, "--out", cache_copy, "--size", "32", "--frames", "3", "--quiet"]
    )
    assert rc == 0 and "Traceback" not in err
    man = json.loads((cache_copy / "manifest.json").read_text())
    assert set(man["counts"]) == {"ok"} and not list((cache_copy / "clips").glob(".*.tmp"))


def test_disk_full_at_the_manifest_write(cli, tiny_ntu, tmp_path, monkeypatch):
    from modistill.data import cache as C

    real = C.atomic_write_text

    def full(path, text):
        if path.name == "manifest.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, text)

    monkeypatch.setattr(C, "atomic_write_text", full)
    out = tmp_path / "c"
    cli.fails(
        ["prepare", "ntu", "--root", tiny_ntu, "--out", out, "--size", "32", "--frames", "3"],
        "manifest.json: cannot write the index (no space left on device); the clips are kept",
    )
    monkeypatch.setattr(C, "atomic_write_text", real)
    rc, _, _ = cli(["prepare", "ntu", "--root", tiny_ntu, "--out", out, "--size", "32", "--frames", "3", "--quiet"])
    assert rc == 0 and json.loads((out / "manifest.json").read_text())["counts"] == {"ok": 18}


PAIRS = [
    ("missing CSV", lambda d: d / "none.csv", "none.csv: pairs CSV not found"),
    ("a directory", lambda d: d, "is a directory, not a pairs CSV"),
    ("no id column", lambda d: _csv(d, "label,rgb,depth\n0,a,b\n"), "missing column(s) ['id']"),
    ("empty file", lambda d: _csv(d, ""), "missing column(s)"),
    ("header only", lambda d: _csv(d, "id,label,rgb,depth\n"), "no rows"),
    ("not UTF-8", lambda d: _csv(d, b"id,label,rgb,depth\n\xff,0,a,b\n"), "not UTF-8 text"),
]


def _csv(folder, text):
    p = folder / "p.csv"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


@pytest.mark.parametrize("what, make, fragment", PAIRS, ids=[c[0] for c in PAIRS])
def test_pairs_manifest_files(cli, tmp_path, what, make, fragment):
    cli.fails(["prepare", "pairs", "--root", make(tmp_path), "--out", tmp_path / "c"], fragment)


def test_pairs_size_is_checked(cli, tmp_path):
    p = _csv(tmp_path, "id,label,rgb,depth\na,0,x,y\n")
    cli.fails(["prepare", "pairs", "--root", p, "--out", tmp_path / "c", "--size", "100000"], "--size must be")


def test_an_impossible_joint_is_dropped_and_noted_and_the_clip_stays_clean(tiny_ntu, tmp_path):
    """One joint's colour x/y at 1e30 in one sampled frame: that joint leaves that frame (noted in the record),
    and the person box, the crop and the pose image are those of the clean video."""
    import numpy as np

    from modistill.data import ntu
    from modistill.data.cache import load_clip, load_manifest
    from modistill.data.options import PrepareOptions
    from modistill.data.prepare_ntu import prepare_ntu

    opts = PrepareOptions(size=32, frames=3, crop="person", modalities=("rgb", "depth", "pose"))
    clean = tmp_path / "clean"
    prepare_ntu(tiny_ntu, clean, opts, show_progress=False)
    root = tmp_path / "tree"
    shutil.copytree(tiny_ntu, root)
    layout = ntu.NtuLayout(root)
    name = sorted(layout.sample_names()[0])[0]
    want = load_manifest(clean)[name]
    t = want["frames"][1]
    frames = ntu.read_skeleton(layout.skeleton(name))
    frames[t][0].joints[ntu.JOINT_NAMES.index("ElbowLeft"), 5:7] = 1e30
    ntu.write_skeleton(layout.skeleton(name), frames)
    out = tmp_path / "cache"
    prepare_ntu(root, out, opts, show_progress=False)
    rec = load_manifest(out)[name]
    assert rec["status"] == "ok", rec
    assert f"1 joint(s) with impossible coordinates dropped (frame {t} joint ElbowLeft)" in rec["reason"]
    assert rec["person_box"]["box"] == pytest.approx(want["person_box"]["box"], abs=0.01)
    assert rec["crop_rgb"] == pytest.approx(want["crop_rgb"], abs=1.0)
    got, ref = load_clip(out, name).astype(int), load_clip(clean, name).astype(int)
    assert np.abs(got[:2] - ref[:2]).max() <= 8  # RGB and depth: the same crop, give or take a resampled pixel
    left = got[2, 1, :, :, 0]  # the pose image's left side (R) in the damaged frame is drawn, not blanked by NaN
    assert left.max() > 0 and np.abs(left - ref[2, 1, :, :, 0]).max() < 255


def test_impossible_keypoints_depth_and_person_boxes_of_pairs_and_depth_maps():
    import numpy as np

    from modistill.data import ntu
    from modistill.data.pairs import drop_impossible_keypoints

    body = np.array([[10.0, 20.0], [np.inf, 5.0], [1e9, 3.0], [-50.0, 30.0], [np.nan, np.nan]])
    frames = [[body]]
    assert drop_impossible_keypoints(frames, (100, 80)) == "pose: 2 keypoint(s) with impossible coordinates dropped"
    assert np.isnan(body[1:3]).all() and body[0].tolist() == [10, 20] and body[3].tolist() == [-50, 30]
    assert drop_impossible_keypoints(frames, (100, 80)) is None  # NaN means "not detected", not impossible
    depth = [np.array([[0, 4000, 60000]], np.uint16)]
    assert ntu.drop_impossible_depth(depth) == "depth: 1 pixel(s) beyond the sensor's 12000 mm read as missing"
    assert depth[0].tolist() == [[0, 4000, 0]]


def test_a_pairs_box_that_no_frame_can_hold_fails_its_row_and_impossible_keypoints_are_noted(tmp_path):
    from modistill.data.pairs import _person_box
    from modistill.errors import DataError

    pose = tmp_path / "kp.json"
    body = [[20, 20], [60, 70]] * 8 + [[1e12, 5]]  # COCO-17: 16 plausible keypoints and one no camera gives
    pose.write_text(json.dumps({"layout": "coco17", "frames": [[body]]}))
    rec = {"rgb": str(tmp_path / "clip.mp4"), "box": None, "pose": str(pose)}
    _, person = _person_box(rec, (80, 100, 3), 0.25)  # a 100 x 80 frame
    assert person["note"] == "pose: 1 keypoint(s) with impossible coordinates dropped"
    assert person["box"] == [20.0, 20.0, 60.0, 70.0]  # the box of the plausible keypoints alone
    with pytest.raises(DataError, match=r"person box \[10.0, 10.0, 500.0, 60.0\] is impossible for a 100x80 frame"):
        _person_box(rec | {"box": [10.0, 10.0, 500.0, 60.0], "pose": None}, (80, 100, 3), 0.25)
    _, kept = _person_box(rec | {"box": [-20.0, 10.0, 150.0, 60.0], "pose": None}, (80, 100, 3), 0.25)
    assert kept == {"box": [-20.0, 10.0, 150.0, 60.0], "source": "box columns"}  # partly out of view: kept

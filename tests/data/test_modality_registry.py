"""A modality is one module: the registry's choices reach the config and the command line, and a toy modality
registered from one module (``tests/plugins/depth_edges.py``) is prepared (NTU tree and pairs CSV, in worker
processes and through an installed package's entry point) and trains step 2 and step 4 as the privileged one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import tiny_cfg

from modistill.config import CONFIG_DIR, load_config
from modistill.data import modalities, ntu
from modistill.data.cache import load_cache_meta, load_clip, load_manifest
from modistill.data.modalities import registry
from modistill.data.options import PrepareOptions
from modistill.data.pairs import prepare_pairs
from modistill.data.prepare_ntu import prepare_ntu
from modistill.errors import UserError
from modistill.training.fingerprint import data_fingerprint
from modistill.training.module import StepModule
from modistill.training.runner import run_training

TESTS = Path(__file__).parents[1]


@pytest.fixture
def registry_snapshot(monkeypatch):
    """The registry as it was, after the test: what a test registers does not leak into the others."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    yield
    sys.modules.pop("plugins.depth_edges", None)


@pytest.fixture
def edges(registry_snapshot):
    import plugins.depth_edges

    return plugins.depth_edges


def _privileged(value: str) -> str:
    noise = [] if value == "depth" else ["evaluate.noise_on=encoded"]  # millimetres exist for depth only
    cfg = load_config(CONFIG_DIR / "demo.yaml", ["data.cache=/nowhere", f"model.privileged={value}", *noise])
    return cfg["model"]["privileged"]


def _demo_choices() -> tuple:
    from modistill.cli import build_parser

    demo = build_parser()._subparsers._group_actions[0].choices["demo"]  # type: ignore[union-attr]
    (action,) = [a for a in demo._actions if a.dest == "privileged"]
    return tuple(action.choices)


def test_the_config_and_the_demo_offer_what_the_registry_registers(registry_snapshot):
    assert modalities.privileged_names() == _demo_choices() == ("depth", "pose", "depth_pose")
    assert all(_privileged(m) == m for m in modalities.privileged_names())
    with pytest.raises(UserError, match="model.privileged"):
        _privileged("thermal")
    modalities.register(modalities.Modality("thermal", "Thermal", "thermal uint8", lambda m: (m.rgb, None)))
    assert _privileged("thermal") == "thermal"
    assert _demo_choices() == ("depth", "pose", "depth_pose", "thermal")
    with pytest.raises(UserError, match="Table 3's noise in millimetres needs depth"):  # it declares no decoder
        load_config(CONFIG_DIR / "demo.yaml", ["data.cache=/nowhere", "model.privileged=thermal"])


def test_names_are_checked_and_a_name_belongs_to_one_module(registry_snapshot):
    for bad in ("size", "Depth", "ir,flow", "2d"):
        with pytest.raises(ValueError, match="must be lowercase"):
            modalities.register(modalities.Modality(bad, "X", "x", lambda m: (m.rgb, None)))
    with pytest.raises(ValueError, match="already registered by modistill.data.modalities.depth"):
        modalities.register(modalities.Modality("depth", "Depth", "x", lambda m: (m.rgb, None)))
    with pytest.raises(UserError, match="unknown modality 'sonar'.*entry-point group"):
        modalities.get("sonar")


def test_the_registry_imports_no_numpy():
    """The parser reads it for --help, which must stay instant."""
    code = "import sys, modistill.data.modalities; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_an_encoder_of_the_wrong_shape_fails_its_video_not_the_prepare(registry_snapshot, tiny_ntu, tmp_path):
    modalities.register(modalities.Modality("half", "Half", "x", lambda m: (m.rgb[:, ::2], None)))
    s = prepare_ntu(tiny_ntu, tmp_path / "c", PrepareOptions(size=32, frames=3, modalities=("rgb", "half")), False)
    assert s["counts"] == {"failed": 18}
    reasons = {r["reason"] for r in load_manifest(tmp_path / "c").values()}
    assert reasons == {"the half modality's encoder gave uint8 (3, 16, 32, 3), not uint8 (3, 32, 32, 3)"}


def test_a_modality_from_one_module_is_prepared_and_trains_step2_and_step4_as_the_privileged_one(
    edges, tiny_ntu, tmp_path
):
    cache = tmp_path / "cache"
    # Two workers: fresh processes, which know the modality because the prepare imports its module in them.
    opts = PrepareOptions(size=32, frames=3, modalities=("rgb", "depth", "depth_edges"), workers=2)
    assert prepare_ntu(tiny_ntu, cache, opts, show_progress=False)["counts"] == {"ok": 18}
    meta = load_cache_meta(cache)
    assert meta["modalities"] == ["rgb", "depth", "depth_edges"]
    assert meta["depth_edges"] == {"operator": "sobel 3x3 magnitude", "scale_mm": edges.SCALE_MM}
    # The stored edges are the depth map's: strong edges sit where the encoded depth image changes colour.
    clip = load_clip(cache, sorted(load_manifest(cache))[0])
    strong = clip[2, ..., 0] > 64
    depth = clip[1].astype(int)
    changes = np.zeros(strong.shape, bool)
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        changes |= (np.roll(depth, (dy, dx), axis=(1, 2)) != depth).any(-1)
    assert strong.sum() > 20 and changes[strong].mean() > 0.95
    assert np.array_equal(clip[2, ..., 0], clip[2, ..., 2])
    # Its settings are part of what every step trained on the cache depends on.
    other = meta | {"depth_edges": meta["depth_edges"] | {"scale_mm": 100.0}}
    assert data_fingerprint(meta, {}, {}) != data_fingerprint(other, {}, {})

    cfg = tiny_cfg(cache, "model.privileged=depth_edges", "evaluate.noise_on=encoded", "steps=[step4]")
    res = run_training(cfg, tmp_path / "run")
    assert {"step2", "step4"} <= set(res)
    assert sorted(StepModule("step2", cfg, 3).modalities) == ["depth_edges", "rgb"]  # the privileged stream sees edges
    assert StepModule("step4", cfg, 3).modalities == ["rgb"]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["input"]["modalities"]["depth_edges"] == "depth gradient magnitude uint8 (grey)"
    step2 = json.loads((tmp_path / "run" / "step2" / "step.json").read_text())
    assert step2["keys"]["model.privileged"] == "depth_edges"


def test_a_pairs_csv_feeds_the_same_modality_and_8_bit_images_are_refused_by_name(edges, tiny_ntu, tmp_path):
    layout = ntu.NtuLayout(tiny_ntu)
    name = sorted(layout.sample_names()[0])[0]
    ir = tmp_path / "ir"
    ir.mkdir()
    for k in range(4):  # 8-bit images: no millimetres to take edges of
        cv2.imwrite(str(ir / f"{k}.png"), np.full((20, 20), 90, np.uint8))
    lines = ["id,label,rgb,depth,split", f"a,0,{layout.rgb(name)},{layout.depth_dir(name)},train"]
    lines.append(f"b,0,{layout.rgb(name)},{ir},train")
    (tmp_path / "p.csv").write_text("\n".join(lines) + "\n")
    opts = PrepareOptions(size=32, frames=3, modalities=("rgb", "depth_edges"))
    prepare_pairs(tmp_path / "p.csv", tmp_path / "c", opts, show_progress=False)
    recs = load_manifest(tmp_path / "c")
    assert recs["a"]["status"] == "ok" and load_clip(tmp_path / "c", "a")[1].max() > 64
    assert recs["b"]["status"] == "failed"
    assert recs["b"]["reason"].endswith(
        "the depth column holds 8-bit images, not 16-bit depth (needed for the depth_edges modality)"
    )


def test_an_installed_packages_modality_reaches_the_command_line_and_the_prepare_workers(tiny_ntu, tmp_path):
    """A package declares ``[project.entry-points."modistill.modalities"]``: ``modistill prepare`` offers it and its
    worker processes, which start fresh, encode it."""
    dist = tmp_path / "site" / "edges_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: edges-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[modistill.modalities]\ndepth_edges = plugins.depth_edges\n")
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(TESTS)])}
    cli = [sys.executable, "-m", "modistill"]
    shown = subprocess.run([*cli, "prepare", "--help"], env=env, capture_output=True, text=True, check=True).stdout
    assert "depth_edges" in " ".join(shown.split())
    out = tmp_path / "cache"
    args = ["prepare", "ntu", "--root", str(tiny_ntu), "--out", str(out), "--size", "32", "--frames", "3"]
    done = subprocess.run(
        [*cli, *args, "--modalities", "rgb,depth_edges", "--workers", "2", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert {r["status"] for r in load_manifest(out).values()} == {"ok"}
    assert load_cache_meta(out)["depth_edges"]["operator"] == "sobel 3x3 magnitude"


def test_depth_and_pose_in_one_image_are_the_grey_depth_and_the_skeletons_sides(tiny_ntu, tmp_path):
    """depth_pose: R the grey depth map, G left + centre, B right + centre of the pose image of the same video; its
    flip is the flip of both (left and right exchanged)."""
    from modistill.data.dataset import ClipDataset

    opts = PrepareOptions(size=32, frames=3, modalities=("rgb", "depth", "pose", "depth_pose"), depth_encoding="gray")
    prepare_ntu(tiny_ntu, tmp_path / "c", opts, show_progress=False)
    meta = load_cache_meta(tmp_path / "c")
    assert meta["depth_pose"]["encoding"].startswith("R depth") and meta["depth_pose"]["joints"] == "ntu25"
    name = sorted(load_manifest(tmp_path / "c"))[0]
    _, depth, pose, both = load_clip(tmp_path / "c", name).astype(int)
    assert (pose > 0).any() and (depth > 0).any()
    assert np.array_equal(both[..., 0], depth[..., 0])
    assert np.array_equal(both[..., 1], np.maximum(pose[..., 0], pose[..., 2]))
    assert np.array_equal(both[..., 2], np.maximum(pose[..., 1], pose[..., 2]))
    ds = ClipDataset(tmp_path / "c", [name], 3, train=True, flip=1.0, modalities=("depth", "pose", "depth_pose"))
    item = {k: v.permute(0, 2, 3, 1).numpy().astype(int) for k, v in ds[(0, 0)].items() if k in ds.modalities}
    assert np.array_equal(item["depth_pose"][..., 0], item["depth"][..., 0])
    assert np.array_equal(item["depth_pose"][..., 1], np.maximum(item["pose"][..., 0], item["pose"][..., 2]))
    assert not np.array_equal(item["depth_pose"], both[:, :, ::-1])  # a bare mirror keeps the sides: not enough
    once = modalities.as_privileged("step 1, depth stream | RGB & Depth", "depth_pose")
    assert once == "step 1, depth_pose stream | RGB & Depth+Pose" == modalities.as_privileged(once, "depth_pose")


def test_the_keypoints_are_read_once_per_video_however_many_modalities_draw_on_them(tiny_ntu, tmp_path, monkeypatch):
    from modistill.data import ntu as ntu_reader
    from modistill.data import prepare_ntu as reader

    read = []
    real = ntu_reader.read_skeleton
    monkeypatch.setattr(reader.ntu, "read_skeleton", lambda path: read.append(path) or real(path))
    opts = PrepareOptions(size=32, frames=3, modalities=("rgb", "pose", "depth_pose"))
    assert prepare_ntu(tiny_ntu, tmp_path / "c", opts, show_progress=False)["counts"] == {"ok": 18}
    assert len(read) == 2 * 18  # the skeleton pass, then once for both pose images

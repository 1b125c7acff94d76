"""Skeletons as a privileged modality: pose images, caches holding several modalities, model.privileged."""

import json

import numpy as np
import onnx
import pytest
import torch
from helpers import tiny_cfg

from modistill.cli import main
from modistill.config import CONFIG_DIR, load_config
from modistill.data import ntu
from modistill.data.cache import load_cache_meta, load_clip, load_manifest
from modistill.data.dataset import ClipDataset
from modistill.data.modalities import as_privileged, names, privileged_names
from modistill.data.options import PrepareOptions
from modistill.data.pose import COCO17, NTU25, flip_pose, render_pose
from modistill.data.prepare_ntu import prepare_ntu
from modistill.errors import UserError
from modistill.training.module import StepModule
from modistill.training.runner import run_training

S = 32


def _ntu_body(xy: dict[int, tuple[float, float]]) -> np.ndarray:
    joints = np.full((25, 2), np.nan)
    for j, p in xy.items():
        joints[j] = p
    return joints


def test_a_known_skeleton_peaks_at_its_joints_with_limbs_between_them():
    # Left shoulder (4) → left elbow (5): a left limb (R); spine base (0) alone: a centre joint (B).
    body = _ntu_body({4: (8.0, 10.0), 5: (20.0, 10.0), 0: (16.0, 26.0)})
    img = render_pose([body], NTU25, S, sigma=1.0 / S)
    assert img[10, 8, 0] == 255 and img[10, 20, 0] == 255  # joint centres: full value, left channel
    assert img[10, 14, 0] == 255  # on the limb between them
    assert img[26, 16, 2] == 255 and img[26, 16, 0] == 0  # the centre joint is blue only
    assert img[13, 14, 0] == 3 and img[14, 14, 0] == 0  # 3 σ off the limb: exp(-4.5); 4 σ: nothing
    assert img[..., 1].max() == 0  # no right-side joint, no green
    assert img[0, 31].sum() == 0


def test_two_bodies_and_a_frame_without_body():
    a = _ntu_body({8: (5.0, 5.0)})  # right shoulder: green
    b = _ntu_body({8: (25.0, 25.0)})
    img = render_pose([a, b], NTU25, S, sigma=1.0 / S)
    assert img[5, 5, 1] == 255 and img[25, 25, 1] == 255
    assert render_pose([], NTU25, S).sum() == 0
    assert render_pose([np.full((25, 2), np.nan)], NTU25, S).sum() == 0


def test_flip_mirrors_and_exchanges_left_and_right():
    rng = np.random.default_rng(0)
    body = rng.uniform(2, S - 3, (25, 2))
    mirrored = body.copy()
    mirrored[:, 0] = S - 1 - mirrored[:, 0]
    swap = {4: 8, 5: 9, 6: 10, 7: 11, 21: 23, 22: 24, 12: 16, 13: 17, 14: 18, 15: 19}
    swap |= {v: k for k, v in swap.items()}
    mirrored = mirrored[[swap.get(j, j) for j in range(25)]]  # the mirror image's left is the person's right
    flipped = flip_pose(render_pose([body], NTU25, S))
    direct = render_pose([mirrored], NTU25, S)
    assert np.abs(flipped.astype(int) - direct.astype(int)).max() <= 1
    assert not np.array_equal(flipped, render_pose([body], NTU25, S)[:, ::-1])  # a bare flip is not enough


def test_coco_layout_colours_sides():
    kp = np.full((17, 2), np.nan)
    kp[5], kp[6] = (8.0, 16.0), (24.0, 16.0)  # left and right shoulders, and the limb between them is centre
    img = render_pose([kp], COCO17, S, sigma=1.0 / S)
    assert img[16, 8, 0] == 255 and img[16, 24, 1] == 255 and img[16, 16, 2] == 255


def test_the_privileged_choices_are_the_registry_and_the_words_follow_them():
    assert set(privileged_names()) == set(names()) - {"rgb"}
    assert load_config(CONFIG_DIR / "demo.yaml", ["model.privileged=pose", "evaluate.noise_on=encoded"])
    text = "step 1, depth stream | RGB & Depth | `noisy_depth.png` | `/data/depth/cache` | depth_to_rgb"
    assert as_privileged(text, "pose") == (
        "step 1, pose stream | RGB & Pose | `noisy_depth.png` | `/data/depth/cache` | depth_to_rgb"
    )
    assert as_privileged(text, "depth") == text


def test_pose_with_noise_in_millimetres_is_refused():
    with pytest.raises(UserError, match="evaluate.noise_on=encoded"):
        load_config(CONFIG_DIR / "demo.yaml", ["model.privileged=pose"])


@pytest.fixture(scope="module")
def pose_cache(tiny_ntu, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache_pose")
    opts = PrepareOptions(size=S, frames=3, modalities=("rgb", "depth", "pose"))
    prepare_ntu(tiny_ntu, out, opts, show_progress=False)
    return out


def test_a_cache_holds_three_modalities_and_rgb_depth_are_those_of_a_two_modality_cache(pose_cache, small_cache):
    meta = load_cache_meta(pose_cache)
    assert meta["modalities"] == ["rgb", "depth", "pose"] and meta["pose"]["joints"] == "ntu25"
    assert "modalities" not in load_cache_meta(small_cache)  # the default pair keeps the old cache.json
    name = sorted(load_manifest(pose_cache))[0]
    three, two = load_clip(pose_cache, name), load_clip(small_cache, name)
    assert three.shape == (3, 3, S, S, 3) and two.shape == (2, 3, S, S, 3)
    np.testing.assert_array_equal(three[:2], two)
    pose = three[2]
    assert (pose > 0).mean() > 0.01  # a person is drawn
    person = (three[1] > 0).any(-1)  # masked depth: non-zero around the person
    assert (pose.max(-1) > 128)[~person].mean() < 0.05  # pose pixels lie where the person is


def test_a_frame_without_body_is_blank_and_noted(tiny_ntu, tmp_path):
    import shutil

    root = tmp_path / "tree"
    shutil.copytree(tiny_ntu, root)
    layout = ntu.NtuLayout(root)
    name = sorted(layout.sample_names()[0])[0]
    frames = ntu.read_skeleton(layout.skeleton(name))
    ntu.write_skeleton(layout.skeleton(name), [[] for _ in frames[:6]] + frames[6:])  # no body in frames 0-5
    out = tmp_path / "cache"
    prepare_ntu(root, out, PrepareOptions(size=S, frames=3, modalities=("rgb", "pose")), show_progress=False)
    rec = load_manifest(out)[name]
    assert rec["status"] == "ok" and "pose: no body in frames [0]" in rec["reason"], rec
    clip = load_clip(out, name)
    assert clip[1, 0].sum() == 0 and clip[1, 1].sum() > 0


def test_training_flip_of_pose_exchanges_channels(pose_cache):
    name = sorted(load_manifest(pose_cache))[0]
    ds = ClipDataset(pose_cache, [name], 3, train=True, flip=1.0, modalities=("rgb", "pose"))
    item = ds[(0, 1)]
    stored = load_clip(pose_cache, name)
    expected = torch.from_numpy(np.ascontiguousarray(flip_pose(stored[2]))).permute(0, 3, 1, 2)
    torch.testing.assert_close(item["pose"], expected)
    rgb = torch.from_numpy(np.ascontiguousarray(stored[0][:, :, ::-1])).permute(0, 3, 1, 2)
    torch.testing.assert_close(item["rgb"], rgb)


def test_a_cache_without_the_privileged_modality_is_refused_before_anything_is_written(small_cache, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(UserError, match="--modalities rgb,depth,pose"):
        run_training(tiny_cfg(small_cache, "model.privileged=pose", "evaluate.noise_on=encoded"), run)
    assert not run.exists()


def test_every_main_step_trains_with_pose_and_the_deployed_model_reads_only_rgb(pose_cache, tmp_path, capsys):
    run = tmp_path / "run"
    cfg = tiny_cfg(pose_cache, "model.privileged=pose", "evaluate.noise_on=encoded")
    res = run_training(cfg, run)
    assert set(res) == {"step1_rgb", "step1_depth", "step2", "step3", "step4"}
    step1 = StepModule("step1_depth", cfg, 3)
    assert step1.modalities == ["pose"]  # the privileged stream is fed pose, not depth
    assert StepModule("step4", cfg, 3).modalities == ["rgb"]
    meta = json.loads((run / "run.json").read_text())
    assert meta["model"]["privileged"] == "pose" and "pose" in meta["input"]["modalities"]
    assert main(["evaluate", str(run)]) == 0
    report = (run / "report.md").read_text()
    assert "step 1, pose stream" in report and "RGB & Pose" in report and "step 1, depth stream" not in report
    assert main(["export", str(run), "--out", str(tmp_path / "m.onnx")]) == 0
    graph = onnx.load(tmp_path / "m.onnx").graph
    assert [i.name for i in graph.input] == ["clip"] or len(graph.input) == 1
    capsys.readouterr()


def test_depth_runs_do_not_change_when_the_cache_also_holds_pose(pose_cache, small_cache, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run_training(tiny_cfg(small_cache, "steps=[step1_depth]"), a)
    run_training(tiny_cfg(pose_cache, "steps=[step1_depth]"), b)
    wa = torch.load(a / "step1_depth" / "weights.pt", weights_only=True)
    wb = torch.load(b / "step1_depth" / "weights.pt", weights_only=True)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0)


def _summary(folder, runs_by_row):
    folder.mkdir(parents=True)
    rows = [
        {
            "row": r,
            "method": m,
            "modality": "-",
            "loss": "-",
            "mean": float(np.mean(v)),
            "std": float(np.std(v, ddof=1)),
        }
        | {"runs": v}
        for r, m, v in runs_by_row
    ]
    (folder / "seeds.json").write_text(json.dumps({"table2": rows, "table3": []}))
    return folder / "seeds.md"


def test_modalities_side_by_side_name_the_claims_and_check_the_shared_rgb_stream(tmp_path):
    from modistill.evaluation.seeds import write_modality_table

    rgb = [0.30, 0.32, 0.31]
    depth = _summary(
        tmp_path / "d",
        [("1", "step 1, depth stream", [0.4, 0.41, 0.42]), ("2", "step 1, RGB stream", rgb),
         ("15", "step 4", [0.40, 0.42, 0.41]), ("5", "Hoffman et al.", [0.3, 0.3, 0.3])],
    )  # fmt: skip
    pose = _summary(
        tmp_path / "p",
        [("1", "step 1, pose stream", [0.2, 0.2, 0.25]), ("2", "step 1, RGB stream", rgb),
         ("15", "step 4", [0.31, 0.30, 0.33]), ("5", "Hoffman et al.", [0.3, 0.3, 0.3])],
    )  # fmt: skip
    text = write_modality_table({"depth": depth, "pose": pose}, tmp_path / "m.md").read_text()
    assert "| 1 | step 1, privileged stream | 41.00 ± 1.00 | 21.67 ± 2.89 |" in text
    assert "| step 4 (RGB only) beats the RGB stream of step 1 | #15 > #2 | +10.00 ± 0.00 (holds) |" in text
    assert "privileged beats RGB at step 1" in text
    assert "Rows 2 see RGB alone: the same trained models in every modality's runs" in text
    other = _summary(tmp_path / "q", [("2", "step 1, RGB stream", [0.3, 0.3, 0.4])])
    text = write_modality_table({"depth": depth, "pose": other}, tmp_path / "n.md").read_text()
    assert "Rows 2 see RGB alone: NOT the same across modalities (rows 2)." in text
    c1 = ("C1", "control: RGB alone, step 4's RGB budget")
    depth = _summary(tmp_path / "d2", [("2", "step 1, RGB stream", rgb), (*c1, [0.5, 0.5, 0.5])])
    pose = _summary(tmp_path / "p2", [("2", "step 1, RGB stream", rgb), (*c1, [0.5, 0.5, 0.6])])
    text = write_modality_table({"depth": depth, "pose": pose}, tmp_path / "o.md").read_text()
    assert "Rows 2, C1 see RGB alone: NOT the same across modalities (rows C1)." in text

"""torchvision's video ResNets as streams (#30, first part): every step trains, the connection is real, Kinetics
weights load by key, export and predict work; the 2D default is untouched."""

import json
import re

import numpy as np
import pytest
import torch
from helpers import tiny_cfg

from modistill.cli import main
from modistill.data import ntu
from modistill.deploy.bundle import load_bundle
from modistill.deploy.onnx_export import OnnxModel
from modistill.errors import UserError
from modistill.models.backbone import build_stream
from modistill.models.stream import ResNetStream
from modistill.training.runner import run_training

VIDEO = ("r3d_18", "mc3_18", "r2plus1d_18", "swin3d_t")
# One backbone per video class end to end (r3d_18 and mc3_18 share r2plus1d_18's class; every name's interface and
# every class's export are checked in test_backbone_registry).
END_TO_END = ("r2plus1d_18", "swin3d_t")


@pytest.mark.parametrize("arch", END_TO_END)
def test_every_step_trains_exports_and_predicts(arch, small_cache, tiny_ntu, tmp_path, capsys, caplog, monkeypatch):
    from modistill.models import swin_stream

    caplog.set_level("INFO", logger="modistill")
    if arch in swin_stream.SWIN_ARCHS:  # two blocks per stage, the fewest a stream takes: the same code, 8 blocks
        dim, _, heads = swin_stream.SWIN_ARCHS[arch]
        monkeypatch.setitem(swin_stream.SWIN_ARCHS, arch, (dim, [2, 2, 2, 2], heads))
    run, frames = tmp_path / "run", 2 if arch.startswith("swin") else 3  # Swin3D takes frames in pairs
    inverted = ["step2_inv", "step3_inv", "step4_inv"]
    variants = f"variants=[step2_noconn,{','.join(inverted)}]"
    res = run_training(tiny_cfg(small_cache, f"model.arch={arch}", variants, f"data.frames={frames}"), run)
    assert set(res) == {"step1_rgb", "step1_depth", "step2", "step3", "step4", "step2_noconn", *inverted}
    assert json.loads((run / "run.json").read_text())["model"]["arch"] == arch
    assert f"model.arch={arch} convolves over time itself: no temporal convs are added" in caplog.text  # noted
    assert main(["evaluate", str(run)]) in (0, None)  # Table 2 with every row trained, Table 3 (noisy depth)
    rows = {r["row"]: r for r in json.loads((run / "table2.json").read_text())}
    assert set(rows) >= {"1", "2", "6", "7", "8", "9", "13", "15", "6a", "7a", "8a", "13a", "15a"}, sorted(rows)
    assert all(r["accuracy"] not in (None, "") for r in rows.values()), rows
    assert (run / "noisy_depth.png").exists()  # Table 3
    capsys.readouterr()
    video = ntu.NtuLayout(tiny_ntu).rgb("S001C001P001R001A001")
    if arch.startswith("swin"):  # the slowest graph to export: its ONNX parity is in test_backbone_registry
        assert main(["predict", str(video), "--model", str(run), "--json"]) in (0, None)
        assert json.loads(capsys.readouterr().out)[0]["error"] is None
        return
    onnx_path = tmp_path / "m.onnx"
    # int8 quantises whatever graph the export wrote, the same code for every backbone: the video ResNets cover it.
    assert main(["export", str(run), "--out", str(onnx_path), "--quantize", "int8"]) in (0, None)
    model, meta = load_bundle(onnx_path.with_suffix(".safetensors"))
    assert meta["arch"] == arch
    x = np.random.default_rng(0).uniform(0, 255, (2, frames, 3, 32, 32)).astype(np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    assert np.abs(OnnxModel(onnx_path)(x) - ref).max() <= 1e-4
    capsys.readouterr()
    for path in (onnx_path, tmp_path / "m-int8.onnx"):
        assert main(["predict", str(video), "--model", str(path), "--json"]) in (0, None)
        assert json.loads(capsys.readouterr().out)[0]["error"] is None
    assert OnnxModel(tmp_path / "m-int8.onnx").meta["quantization"].startswith("int8 static QDQ")


@pytest.mark.parametrize("arch", VIDEO)
def test_kinetics_weights_load_by_key_and_a_mismatch_is_refused(arch, tmp_path, monkeypatch):
    import torchvision

    from modistill.models.pretrained import weights_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(1)
    state = torchvision.models.get_model(arch, weights=None).state_dict()
    path = weights_path(torchvision.models.get_model_weights(arch)["KINETICS400_V1"])
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    stream = build_stream(arch, 7, 64, pretrained="torchvision:KINETICS400_V1")
    own, head = stream.state_dict(), getattr(stream, "classifier", "fc")
    assert all(torch.equal(own[k], v) for k, v in state.items() if not k.startswith(head + "."))
    assert own[f"{head}.weight"].shape == (7, stream.feature_dim)
    key = next(k for k, v in state.items() if v.dim() > 1)
    state[key] = state[key][:5]
    torch.save(state, path)
    with pytest.raises(UserError, match=f"shapes do not match a {arch} .* at {re.escape(key)}"):
        build_stream(arch, 7, 64, pretrained="torchvision:KINETICS400_V1")


def test_the_2d_stream_enters_as_before():
    """The stream interface's ``enter`` is the old stem on the flattened frames, bit for bit, and the 2D forward
    is the old composition."""
    torch.manual_seed(0)
    s = ResNetStream("resnet18", 5, 8).eval()
    clips = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        x = s.stem(clips.flatten(0, 1))
        assert torch.equal(s.enter(clips), x)
        for k in range(4):
            x, _ = s.stage(k, x, 3)
        assert torch.equal(s(clips), s.video_logits(x, 3))


def test_video_backbones_take_the_kinetics_normalisation_in_training_and_deployment(small_cache):
    from modistill.deploy.bundle import DeployModel
    from modistill.models.multistream import RGBOnly
    from modistill.models.preprocess import KINETICS
    from modistill.training.module import StepModule

    torch.manual_seed(0)
    model = DeployModel(RGBOnly(build_stream("mc3_18", 3, 4), build_stream("mc3_18", 3, 4))).eval()
    clips = torch.rand(1, 3, 3, 32, 32) * 255
    mean, std = (torch.tensor(v).view(3, 1, 1) * 255 for v in KINETICS)
    with torch.no_grad():
        assert torch.allclose(model(clips), model.model.net({"rgb": (clips - mean) / std}).fused, atol=1e-6)
    step = StepModule("step1_rgb", tiny_cfg(small_cache, "model.arch=mc3_18"), 3).eval()
    batch = {"rgb": torch.randint(0, 256, (1, 3, 3, 32, 32), dtype=torch.uint8)}
    with torch.no_grad():
        ref = step.net({"rgb": (batch["rgb"].float() - mean) / std}).fused
        assert torch.allclose(step(batch).fused, ref, atol=1e-6)


def test_the_bundled_video_configs_load_and_name_kinetics_weights():
    from modistill.config import CONFIG_DIR, load_config

    for name, arch, frames in (
        ("ntu60_xsub_r2plus1d", "r2plus1d_18", 16),
        ("ntu120_xsub_r2plus1d", "r2plus1d_18", 16),
        ("ntu60_xsub_swin3d_t", "swin3d_t", 32),
        ("ntu120_xsub_swin3d_t", "swin3d_t", 32),
    ):
        cfg = load_config(CONFIG_DIR / f"{name}.yaml", ["data.cache=/nowhere"])
        assert (cfg["model"]["arch"], cfg["model"]["pretrained"]) == (arch, "torchvision:KINETICS400_V1")
        assert cfg["data"]["frames"] == frames and cfg["model"]["temporal"] is False
        assert cfg["data"]["benchmark"] == name.split("_")[0]


def test_a_clip_the_backbone_would_pad_is_refused_before_anything_is_written(small_cache, tmp_path, capsys):
    """Swin3D takes frames in pairs and sizes in multiples of 32 (torchvision pads the rest with zeros): refused in
    one line naming the cache, nothing written; the video ResNets and the 2D default take any clip."""
    from modistill.models.backbone import check_clip

    run = tmp_path / "run"
    with pytest.raises(UserError, match=r"3 frames of 32 px, but model.arch=swin3d_t takes a multiple of 2 frames"):
        run_training(tiny_cfg(small_cache, "model.arch=swin3d_t", "data.frames=3"), run)
    assert not run.exists()
    with pytest.raises(UserError, match="multiple of 2 frames and of 32 px"):
        check_clip("swin3d_t", 16, 112, "x")
    check_clip("swin3d_t", 32, 224, "x")
    for arch in ("resnet18", "r3d_18", "mc3_18", "r2plus1d_18"):
        check_clip(arch, 5, 97, "x")
    from modistill.demo import FULL, arch_overrides, demo_dirs

    # demo --arch: the main chain only, on the demo's cache, Swin3D reading 4 of its 5 frames, its own run folder
    assert arch_overrides("swin3d_t", FULL["frames"], FULL["size"]) == [
        "model.arch=swin3d_t",
        "data.frames=4",
        "variants=[]",
    ]
    assert arch_overrides("r3d_18", 5, 48)[1] == "data.frames=5"
    assert demo_dirs(tmp_path, "depth", "r3d_18") == (
        tmp_path / "cache",
        tmp_path / "run_r3d_18",
        tmp_path / "demo_r3d_18.json",
    )
    assert demo_dirs(tmp_path, "pose", "r3d_18")[1:] == (
        tmp_path / "run_pose_r3d_18",
        tmp_path / "demo_pose_r3d_18.json",
    )
    assert main(["demo", "--quick", "--arch", "swin3d_t", "--out", str(tmp_path / "demo")]) == 2
    assert "demo --arch swin3d_t: 4 frames of 48 px" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


def test_the_swin_stream_computes_torchvisions_swin3d_t_when_unconnected():
    import torchvision

    from modistill.models.swin_stream import SwinStream

    torch.manual_seed(0)
    ref = torchvision.models.video.swin3d_t(num_classes=5).eval()
    ours = SwinStream("swin3d_t", 5, 64).eval()
    ours.load_state_dict(ref.state_dict())
    clips = torch.randn(1, 4, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(clips), ref(clips.transpose(1, 2)))


# Float64 outputs on another CPU differ from the stored ones by summation order alone, about 1e-15 relative; a
# change to the model moves them by far more (the connection's product scaled by 1.0001: 2.6e-4 of the largest output).
REFERENCE_RTOL = 1e-10


def test_the_2d_default_matches_commit_68e3e91():
    """The paper's model, built from the same seed, gives the logits, loss and gradients it gave at 68e3e91 (before
    the stream interface and the video backbones), stored by tests/models/make_2d_reference.py. Both run in float64, so
    the comparison holds on any CPU and still catches a change in the model's arithmetic."""
    from pathlib import Path

    from make_2d_reference import OVERRIDES, outputs

    from modistill.config import CONFIG_DIR, load_config
    from modistill.training.run import LEGACY_STREAM
    from modistill.training.steps import PRIVILEGED

    ref = torch.load(Path(__file__).parent / "stream2d_reference.pt")
    assert ref["commit"].startswith("68e3e91")

    def same(a: torch.Tensor, b: torch.Tensor) -> bool:
        assert a.dtype == b.dtype == torch.float64
        return bool(((a - b).abs() <= REFERENCE_RTOL * b.abs().max()).all())

    def role(name: str) -> str:  # the reference predates the privileged stream's name for its role
        return PRIVILEGED if name == LEGACY_STREAM else name

    now = outputs(load_config(CONFIG_DIR / "ntu60_xsub.yaml", OVERRIDES))
    for step, want in ref["outputs"].items():
        got = now[step]
        for kind in ("eval_logits", "train_logits"):
            assert set(got[kind]) == {role(k) for k in want[kind]}
            assert all(same(got[kind][role(k)], want[kind][k]) for k in want[kind]), (step, kind)
        grad_name = want["grad_name"].replace(f".{LEGACY_STREAM}.", f".{PRIVILEGED}.")
        assert same(got["loss"], want["loss"]) and got["grad_name"] == grad_name, step
        assert same(got["grad"], want["grad"]), step

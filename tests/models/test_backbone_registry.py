"""The backbone registry: every registered backbone (built in, or a plug-in module) conforms to the stream interface,
and a backbone written as one new module trains the main chain, exports and predicts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import tiny_cfg
from plugins import toy_backbone  # noqa: F401  (registers toy_cnn, as a user's module would)

from modistill.errors import UserError
from modistill.models.backbone import (
    StreamBackbone,
    backbone_class,
    build_stream,
    list_backbones,
    register_backbone,
)
from modistill.models.multistream import MultiStream, RGBOnly

BACKBONES = list_backbones()


def _smallest_per_class() -> list[str]:
    """Names that share a class share its code and differ in depth or width only: the export, the slowest check,
    runs once per class, on its smallest member."""
    best: dict[type, tuple[int, str]] = {}
    for name in BACKBONES:
        size = sum(p.numel() for p in build_stream(name, 3, width=4).parameters())
        cls = backbone_class(name)
        best[cls] = min(best.get(cls, (size, name)), (size, name))
    return sorted(name for _, name in best.values())


PER_CLASS = _smallest_per_class()


def _clip(arch: str, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """The smallest clip the backbone takes whole: frames and pixels rounded up to its multiples."""
    f, s = backbone_class(arch).clip_multiples
    frames, size = math.lcm(2, f), max(32, s)
    return torch.randn(batch, frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _tiny(arch: str, classes: int = 3) -> StreamBackbone:
    return build_stream(arch, classes, width=4, temporal=True)


def test_the_registry_lists_every_built_in_backbone_and_the_plug_in():
    assert {"resnet18", "resnet50", "r3d_18", "mc3_18", "r2plus1d_18", "swin3d_t", "swin3d_s", "swin3d_b"} <= set(
        BACKBONES
    )
    assert "toy_cnn" in BACKBONES and BACKBONES == sorted(BACKBONES)


@pytest.mark.parametrize("arch", BACKBONES)
def test_every_backbone_conforms_to_the_stream_interface(arch):
    """Shapes; a connection changes only its target; the target's loss reaches the source; zero-init starts at
    uniform predictions."""
    torch.manual_seed(0)
    cls = backbone_class(arch)
    assert issubclass(cls, StreamBackbone) and len(cls.clip_multiples) == 2 and len(cls.input_stats) == 2
    src, dst = _tiny(arch), _tiny(arch)
    assert src.arch == arch and src.num_classes == 3 and src.feature_dim > 0
    x, d1, d2 = _clip(arch, seed=1), _clip(arch, seed=2), _clip(arch, seed=3)
    with torch.no_grad():
        assert src.eval()(x).shape == (2, 3)
    net = MultiStream({"rgb": dst, "depth": src}, {"rgb": "rgb", "depth": "depth"}, [("depth", "rgb")]).eval()
    with torch.no_grad():
        a, b = net({"rgb": x, "depth": d1}).logits, net({"rgb": x, "depth": d2}).logits
        c = net({"rgb": d2, "depth": d1}).logits
    assert not torch.allclose(a["rgb"], b["rgb"])  # the target hears its source
    assert torch.equal(a["depth"], c["depth"])  # the source does not hear its target
    net.train().zero_grad()
    torch.nn.functional.cross_entropy(net({"rgb": x, "depth": d1}).logits["rgb"], torch.tensor([0, 1])).backward()
    assert next(src.parameters()).grad.abs().sum() > 0
    fresh = build_stream(arch, 3, width=4, zero_init=True).eval()
    with torch.no_grad():
        assert torch.count_nonzero(fresh(x)) == 0  # uniform predictions: cross-entropy ln C


@pytest.mark.parametrize("arch", PER_CLASS)
def test_every_backbone_class_exports_to_onnx_with_the_same_outputs(arch, tmp_path, monkeypatch):
    import onnxruntime as ort

    from modistill.deploy.bundle import DeployModel
    from modistill.deploy.onnx_export import export_onnx
    from modistill.models import swin_stream

    if arch in swin_stream.SWIN_ARCHS:
        # A stage's third and later blocks repeat its second's operators (on this clip no window shifts after the
        # first stage, whose 8 x 8 patches exceed a window): two blocks per stage, the fewest a stream takes (the
        # connection enters the second), export every operator of Swin3D with 8 blocks instead of 12.
        dim, _, heads = swin_stream.SWIN_ARCHS[arch]
        monkeypatch.setitem(swin_stream.SWIN_ARCHS, arch, (dim, [2, 2, 2, 2], heads))
    torch.manual_seed(0)
    model = DeployModel(RGBOnly(_tiny(arch), _tiny(arch))).eval()
    x = (_clip(arch).abs() * 60).clamp(0, 255)
    path = export_onnx(model, {"frames": x.shape[1], "size": x.shape[-1]}, tmp_path / "m.onnx")
    with torch.inference_mode():
        ref = model(x).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"clips": x.numpy()})[0]
    assert np.abs(got - ref).max() <= 1e-4 * max(1.0, float(np.abs(ref).max()))


def test_registration_refuses_what_is_not_a_backbone_and_a_taken_name():
    with pytest.raises(TypeError, match="not a StreamBackbone"):
        register_backbone("x")(torch.nn.Linear)

    class Half(StreamBackbone):
        def enter(self, clips):
            return clips

    with pytest.raises(TypeError, match="does not implement"):
        register_backbone("half")(Half)
    with pytest.raises(ValueError, match="registered already"):
        register_backbone("resnet18")(toy_backbone.ToyStream)
    with pytest.raises(UserError, match="unknown backbone 'vgg'.*entry-point group"):
        backbone_class("vgg")


def test_a_backbone_from_one_module_trains_the_main_chain_exports_and_predicts(small_cache, tiny_ntu, tmp_path, capsys):
    from modistill.cli import main
    from modistill.data import ntu
    from modistill.training.runner import run_training

    run = tmp_path / "run"
    res = run_training(tiny_cfg(small_cache, "model.arch=toy_cnn", "model.width=4"), run)
    assert set(res) >= {"step1_rgb", "step1_depth", "step2", "step3", "step4"}
    assert json.loads((run / "run.json").read_text())["model"]["arch"] == "toy_cnn"
    onnx_path = tmp_path / "toy.onnx"
    assert main(["export", str(run), "--out", str(onnx_path)]) in (0, None)
    capsys.readouterr()
    video = ntu.NtuLayout(tiny_ntu).rgb("S001C001P001R001A001")
    for model in (onnx_path, onnx_path.with_suffix(".safetensors")):
        assert main(["predict", str(video), "--model", str(model), "--json"]) in (0, None)
        (result,) = json.loads(capsys.readouterr().out)
        assert result["error"] is None and len(result["top"]) == 3


def test_another_packages_backbone_registers_through_its_entry_point(monkeypatch):
    """A package declares ``[project.entry-points."modistill.backbones"]``; the registry imports it on first use, and
    a plug-in that fails to import is one line naming it."""
    from importlib.metadata import EntryPoint

    from modistill.models import backbone
    from modistill.utils import plugins

    loaded = []
    good = EntryPoint("toy", "plugins.toy_backbone", backbone.ENTRY_POINT_GROUP)
    monkeypatch.setattr(backbone, "_plugins_loaded", False)
    monkeypatch.setattr(plugins, "entry_points", lambda group: loaded.append(group) or [good])
    assert "toy_cnn" in backbone.list_backbones() and loaded == [backbone.ENTRY_POINT_GROUP]
    backbone.list_backbones()
    assert len(loaded) == 1  # once per process
    bad = EntryPoint("broken", "no_such_module_anywhere", backbone.ENTRY_POINT_GROUP)
    monkeypatch.setattr(backbone, "_plugins_loaded", False)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [bad])
    with pytest.raises(UserError, match="backbone plugin broken .* failed to load"):
        backbone.list_backbones()

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet18

from modistill.errors import UserError
from modistill.models import MultiStream, ResNetStream, RGBOnly, build_stream
from modistill.models.backbone import load_pretrained
from modistill.models.stream import TemporalConv


def clips(b=2, t=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, 3, size, size, generator=g)


def test_temporal_identity_init_leaves_output_unchanged():
    torch.manual_seed(0)
    with_t = ResNetStream("resnet18", 5, width=16, temporal=True).eval()
    without = ResNetStream("resnet18", 5, width=16, temporal=False).eval()
    without.load_state_dict({k: v for k, v in with_t.state_dict().items() if ".temporal." not in k})
    x = clips()
    torch.testing.assert_close(with_t(x), without(x), rtol=0, atol=1e-5)
    # And the temporal conv really mixes frames once its weights move.
    with torch.no_grad():
        with_t.layer1[1].temporal.weight[:, :, 0] += 0.1
    assert not torch.allclose(with_t(x), without(x), atol=1e-3)


def test_temporal_conv_mixes_only_neighbouring_frames_of_same_video():
    conv = TemporalConv(2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[:, :, 0] = torch.eye(2)  # output t = input t-1
    x = torch.arange(2 * 3 * 2, dtype=torch.float).reshape(6, 2, 1, 1)  # B=2, T=3
    y = conv(x, frames=3).reshape(2, 3, 2)
    xr = x.reshape(2, 3, 2)
    assert torch.equal(y[:, 0], torch.zeros(2, 2))  # zero padding at the clip start, no leak across videos
    assert torch.equal(y[:, 1:], xr[:, :-1])


def test_torchvision_state_dict_loads_by_key(tmp_path):
    ref = resnet18(num_classes=1000)
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    s = build_stream("resnet18", 7, pretrained=path)
    torch.testing.assert_close(s.layer3[1].conv2.weight, ref.layer3[1].conv2.weight)
    missing, unexpected = ResNetStream("resnet18", 1000).load_state_dict(ref.state_dict(), strict=False)
    assert unexpected == []
    assert set(missing) == {f"layer{k}.1.temporal.weight" for k in range(1, 5)}
    # Same per-frame output as the torchvision model on features (classifier differs).
    s.eval(), ref.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        f = s.stem(x)
        for k in range(4):
            f, _ = s.stage(k, f, 1)
        r = ref.layer4(ref.layer3(ref.layer2(ref.layer1(ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))))))
    torch.testing.assert_close(f, r, atol=1e-5, rtol=1e-4)


def test_bad_pretrained_files_are_refused(tmp_path):
    p = tmp_path / "wrong.pth"
    torch.save(resnet18().state_dict(), p)
    with pytest.raises(UserError, match="wrong.pth"):
        build_stream("resnet50", 5, pretrained=p)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="junk.pth"):
        load_pretrained(ResNetStream("resnet18", 5), junk)


def two_stream(connection=True, source_grad=True):
    torch.manual_seed(1)
    streams = {"rgb": ResNetStream("resnet18", 4, width=8), "depth": ResNetStream("resnet18", 4, width=8)}
    return MultiStream(
        streams, {"rgb": "rgb", "depth": "depth"}, [("depth", "rgb")] if connection else [], source_grad=source_grad
    )


def test_connection_changes_target_not_source_and_sends_gradient():
    a, b = two_stream(True), two_stream(False)
    a.eval(), b.eval()
    batch = {"rgb": clips(seed=1), "depth": clips(seed=2)}
    oa, ob = a(batch), b(batch)
    torch.testing.assert_close(oa.logits["depth"], ob.logits["depth"])
    assert not torch.allclose(oa.logits["rgb"], ob.logits["rgb"], atol=1e-4)
    torch.testing.assert_close(oa.fused, (oa.logits["rgb"] + oa.logits["depth"]) / 2)
    # The RGB loss reaches the depth stream through the connection (released code), or not when disabled.
    for source_grad, expect in ((True, True), (False, False)):
        net = two_stream(True, source_grad)
        net.train()
        out = net(batch)
        F.cross_entropy(out.logits["rgb"], torch.tensor([0, 1])).backward()
        g = net.streams["depth"].layer1[0].conv1.weight.grad
        assert (g is not None and g.abs().sum() > 0) == expect
    net = two_stream(False)
    F.cross_entropy(net(batch).logits["rgb"], torch.tensor([0, 1])).backward()
    assert net.streams["depth"].layer1[0].conv1.weight.grad is None


def test_injection_formula_matches_eq2():
    net = two_stream(True).eval()
    rgb, dep = net.streams["rgb"], net.streams["depth"]
    batch = {"rgb": clips(seed=1), "depth": clips(seed=2)}
    from modistill.models.stream import block_forward

    with torch.no_grad():
        xr, xd = rgb.stem(batch["rgb"].flatten(0, 1)), dep.stem(batch["depth"].flatten(0, 1))
        od, _ = block_forward(dep.layer1[0], xd, 3)
        o1, pre1 = block_forward(rgb.layer1[0], xr, 3, keep_pre=True)
        manual_in = o1 + pre1 * F.relu(od)
        expect, _ = block_forward(rgb.layer1[1], manual_in, 3)
        # block_forward injects in the residual branch only: the shortcut uses o1.
        got, _ = block_forward(rgb.layer1[1], o1, 3, inject=(pre1, od))
        assert not torch.allclose(got, expect)
        ident = o1
        r = rgb.layer1[1]
        h = r.relu(r.bn1(r.conv1(manual_in)))
        h = r.temporal(h, 3)
        torch.testing.assert_close(got, F.relu(r.bn2(r.conv2(h)) + ident))


def test_freezing_freezes_weights_and_bn_statistics():
    net = two_stream(True)
    net.freeze("depth")
    net.train()
    before = {k: v.clone() for k, v in net.streams["depth"].state_dict().items()}
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=0.1)
    batch = {"rgb": clips(seed=1), "depth": clips(seed=2) * 3 + 1}
    for _ in range(2):
        opt.zero_grad()
        out = net(batch)
        (F.cross_entropy(out.fused, torch.tensor([0, 1]))).backward()
        opt.step()
    after = net.streams["depth"].state_dict()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k
    assert not net.streams["depth"].training
    fresh = two_stream(True)  # same seed: the RGB stream's starting point
    assert any(
        not torch.equal(a, b)
        for a, b in zip(fresh.streams["rgb"].parameters(), net.streams["rgb"].parameters(), strict=True)
    )


def test_rgb_only_takes_rgb_and_features_exposed():
    torch.manual_seed(0)
    m = RGBOnly(ResNetStream("resnet18", 6, width=8), ResNetStream("resnet18", 6, width=8)).eval()
    x = clips(b=3, t=2)
    y = m(x)
    assert y.shape == (3, 6)
    out = m.net({"rgb": x}, return_features=True)
    assert out.features["hall"]["layer4"].shape[:2] == (6, 64)
    torch.testing.assert_close(out.fused, y)


def test_widths_and_archs():
    for arch, dim in (("resnet18", 8 * 8), ("resnet50", 8 * 8 * 4)):
        s = ResNetStream(arch, 3, width=8)
        assert s.feature_dim == dim
        assert s(clips(b=1, t=2)).shape == (1, 3)
    with pytest.raises(UserError):
        ResNetStream("vgg", 3)
    assert math.isclose(
        sum(p.numel() for p in ResNetStream("resnet18", 1000, temporal=False).parameters()),
        sum(p.numel() for p in resnet18().parameters()),
    )


def test_temporal_conv_export_form_matches():
    from modistill.models.stream import TemporalConv

    torch.manual_seed(0)
    tc = TemporalConv(6)
    with torch.no_grad():
        tc.weight.add_(0.3 * torch.randn_like(tc.weight))
    for frames in (1, 2, 5):
        x = torch.randn(2 * frames, 6, 3, 4)
        # Reference: output frame t = sum over taps j of W_j @ input frame t + j - 1, zero outside the clip.
        xv = x.reshape(2, frames, 6, 3, 4)
        ref = torch.zeros_like(xv)
        for t in range(frames):
            for j in range(3):
                if 0 <= t + j - 1 < frames:
                    ref[:, t] += torch.einsum("oi,bihw->bohw", tc.weight[:, :, j], xv[:, t + j - 1])
        ref = ref.reshape_as(x)
        torch.testing.assert_close(tc(x, frames), ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(tc.exported(x, frames), ref, atol=1e-5, rtol=1e-5)
        # Channels-last in, standard layout out (so oneDNN's layout choice cannot spread through the stream).
        out = tc(x.contiguous(memory_format=torch.channels_last), frames)
        assert out.is_contiguous()
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_named_weights_load_offline_from_the_standard_caches(tmp_path, monkeypatch):
    """torchvision:<WEIGHTS> from $TORCH_HOME/hub/checkpoints and hf-hub:<repo> from a prepared Hugging Face
    cache (HF_HUB_OFFLINE=1), tensors checked by key; nothing is downloaded."""
    from safetensors.torch import save_file

    from modistill.models.pretrained import torchvision_file

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(3)
    tv = resnet18(num_classes=1000)
    path = torchvision_file("resnet18", "IMAGENET1K_V1")
    path.parent.mkdir(parents=True)
    torch.save(tv.state_dict(), path)
    s = build_stream("resnet18", 7, pretrained="torchvision:IMAGENET1K_V1")
    for k, v in tv.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(s.state_dict()[k], v), k

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    torch.manual_seed(4)
    timm_like = resnet18(num_classes=1000)
    repo = tmp_path / "hf" / "hub" / "models--timm--resnet18.a1_in1k"
    rev = "0123456789abcdef0123456789abcdef01234567"
    (repo / "snapshots" / rev).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    save_file(
        {k: v.contiguous() for k, v in timm_like.state_dict().items()},
        str(repo / "snapshots" / rev / "model.safetensors"),
    )
    h = build_stream("resnet18", 7, pretrained="hf-hub:timm/resnet18.a1_in1k")
    for k, v in timm_like.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(h.state_dict()[k], v), k


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("torchvision:IMAGENET1K_V9", "no such resnet18 weights; known: ['IMAGENET1K_V1']"),
        ("torchvision:IMAGENET1K_V1", "not in the local torch hub cache"),
        ("hf-hub:timm/not-there", "not in the local Hugging Face cache"),
    ],
)
def test_named_weights_not_cached_are_one_line(tmp_path, monkeypatch, spec, fragment):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(UserError, match=re.escape(fragment)):
        build_stream("resnet18", 7, pretrained=spec)


def test_channels_last_path_gives_the_same_outputs_and_keeps_its_layout(monkeypatch):
    """The CUDA layout (channels_last through stems, temporal convs and connections), forced here on CPU: same
    logits as the standard layout within fp32 tolerance, and the temporal conv hands channels_last on."""
    from modistill.models import preprocess, stream

    torch.manual_seed(0)
    batch = {"rgb": clips(seed=1), "depth": clips(seed=2)}
    ref_model = two_stream(True).eval()
    with torch.no_grad():
        ref = ref_model(batch)
    seen = []
    monkeypatch.setattr(preprocess, "memory_format", lambda device: torch.channels_last)
    monkeypatch.setattr(stream, "memory_format", lambda device: torch.channels_last)
    original = stream.TemporalConv.forward

    def spy(self, x, frames):
        y = original(self, x, frames)
        seen.append((y.is_contiguous(memory_format=torch.channels_last), y.is_contiguous()))
        return y

    monkeypatch.setattr(stream.TemporalConv, "forward", spy)
    cl_model = two_stream(True).eval().to(memory_format=torch.channels_last)
    with torch.no_grad():  # per-frame channels_last, as normalize() lays clips out on CUDA
        got = cl_model(
            {
                k: v.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, v.shape[:2])
                for k, v in batch.items()
            }
        )
    assert seen and all(cl for cl, _ in seen) and not all(std for _, std in seen)  # 1x1 maps are both
    for k in ref.logits:
        torch.testing.assert_close(got.logits[k], ref.logits[k], atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(
    __import__("shutil").which("gcc") is None and __import__("shutil").which("cc") is None,
    reason="torch.compile on CPU needs a C compiler",
)
def test_compiled_stream_matches_eager():
    """train.compile compiles the networks in place (nn.Module.compile): same outputs, same state-dict keys."""
    torch.manual_seed(0)
    s = ResNetStream("resnet18", 3, width=4).eval()
    x = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        ref = s(x)
        keys = list(s.state_dict())
        s.compile()
        got = s(x)
    assert list(s.state_dict()) == keys
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)

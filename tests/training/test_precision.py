"""Every precision the config accepts trains, exports and predicts, or is refused up front in one line."""

import torch
from safetensors.torch import load_file

from modistill.cli import main
from modistill.deploy.bundle import load_bundle, save_bundle


def test_bf16_true_trains_exports_float32_and_predicts(small_cache, tiny_ntu, tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(
        [
            "train",
            "demo",
            f"data.cache={small_cache}",
            "model.width=8",
            "data.frames=3",
            "data.val_performers=1",
            "train.precision=bf16-true",
            "train.epochs=1",
            "train.step_epochs={}",
            "variants=[]",
            "train.progress=false",
            "data.workers=0",
            "--run-dir",
            str(run),
        ]
    )
    assert rc == 0
    trained = torch.load(run / "step4" / "weights.pt")
    assert trained["net.streams.rgb.conv1.weight"].dtype == torch.bfloat16  # the weights really trained in bf16
    out = tmp_path / "exp" / "model.onnx"
    assert main(["export", str(run), "--out", str(out)]) == 0
    assert "max |Δlogit|" in capsys.readouterr().out  # the ONNX-vs-PyTorch parity check ran and passed
    assert {v.dtype for v in load_file(out.with_suffix(".safetensors")).values() if v.is_floating_point()} == {
        torch.float32
    }
    video = sorted((tiny_ntu / "nturgb+d_rgb").glob("*_rgb.avi"))[0]
    for model in (out, out.with_suffix(".safetensors")):
        assert main(["predict", str(video), "--model", str(model), "--json"]) == 0
        assert '"error": null' in capsys.readouterr().out
    # A bundle holding bf16 tensors (saved by hand) saves and verifies: the checksum hashes raw bytes, as NumPy
    # has no bfloat16.
    _, meta = load_bundle(out.with_suffix(".safetensors"))
    half = {
        k: v.to(torch.bfloat16) if v.is_floating_point() else v
        for k, v in load_file(out.with_suffix(".safetensors")).items()
    }
    model, _ = load_bundle(save_bundle(half, meta, tmp_path / "bf16.safetensors"))
    assert model.model.net.streams.rgb.conv1.weight.dtype == torch.float32


def test_float16_weights_are_refused_up_front(tmp_path, capsys):
    rc = main(["train", "demo", "train.precision=16-true", "--run-dir", str(tmp_path / "run")])
    assert rc == 2 and not (tmp_path / "run").exists()
    assert "16-true" in capsys.readouterr().err

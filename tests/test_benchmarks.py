"""The benchmarks run (at a tiny size); their speed targets are measured by running them, not here."""

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).parent.parent / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_model_overhead_runs_tiny(tmp_path):
    res = _load("model_overhead").main(["--size", "32", "--batch", "1", "--frames", "2", "--iters", "1",
                                        "--steps", "step1_rgb", "step3", "--no-onnx", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "model_overhead_resnet18_32.json").read_text())
    assert saved == json.loads(json.dumps(res))
    assert [r["step"] for r in saved["train_steps"]] == ["step1_rgb", "step3"]
    for r in saved["train_steps"]:
        assert r["ours_s"] > 0 and r["bare_s"] > 0 and r["ratio"] == r["ours_s"] / r["bare_s"]
        assert 1.0 < r["flop_ratio"] < 1.5  # the temporal convs add arithmetic, a few percent of a ResNet's
    assert set(saved["inference"]) == {"torch_ours_s", "torch_bare_s", "flop_ratio"}
    assert 1.0 < saved["inference"]["flop_ratio"] < 1.5


def test_prepare_throughput_runs_tiny(tiny_ntu, tmp_path):
    rows = _load("prepare_throughput").main([str(tiny_ntu), "--limit", "4", "--workers", "1", "--size", "32",
                                             "--out", str(tmp_path)])
    assert json.loads((tmp_path / "prepare_throughput.json").read_text()) == rows
    (r,) = rows
    assert r["videos"] == 4 and r["prepare_videos_per_s"] > 0 and r["loader_clips_per_s"] > 0
    assert r["ratio"] == r["prepare_videos_per_s"] / r["decode_only_videos_per_s"]


def test_gpu_benchmark_says_so_without_cuda(capsys):
    import torch

    if torch.cuda.is_available():
        return  # on a GPU machine the script is run by hand (minutes)
    assert _load("gpu").main([]) is None
    assert capsys.readouterr().out.strip() == "benchmarks/gpu.py: no CUDA device here; nothing measured"


def test_loader_throughput_runs_tiny(tmp_path):
    rows = _load("loader_throughput").main(["--clips", "8", "--workers", "0", "--size", "32", "--batch", "4",
                                             "--out", str(tmp_path)])
    assert json.loads((tmp_path / "loader_throughput.json").read_text()) == rows
    (r,) = rows
    assert r["workers"] == 0 and r["clips_per_s"] > 0 and r["MB_per_s"] == r["clips_per_s"] * 2 * 5 * 32 * 32 * 3 / 1e6


def test_demo_calibration_runs_tiny(tmp_path):
    rows = _load("demo_calibration").main(["--quick", "--seeds", "0", "--workers", "1", "--work", str(tmp_path / "w"),
                                           "--out", str(tmp_path), "--train", "data.workers=0"])
    saved = json.loads((tmp_path / "demo_calibration.json").read_text())
    assert len(saved) == 1 and saved[0]["seed"] == 0 and saved[0]["train"] == ["data.workers=0"]
    assert 0 <= saved[0]["rgb"] <= 100 and 0 <= saved[0]["depth"] <= 100
    assert saved[0]["ratio"] == rows[0]["ratio"]

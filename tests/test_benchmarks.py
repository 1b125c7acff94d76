"""The benchmarks run (at a tiny size); their speed targets are measured by running them, not here."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_model_overhead_runs_tiny(tmp_path):
    res = _load("model_overhead").main(
        [
            "--size",
            "32",
            "--batch",
            "1",
            "--frames",
            "2",
            "--iters",
            "1",
            "--steps",
            "step1_rgb",
            "step3",
            "--out",
            str(tmp_path),
        ]
    )
    saved = json.loads((tmp_path / "model_overhead_resnet18_32.json").read_text())
    assert saved == json.loads(json.dumps(res))
    assert [r["step"] for r in saved["train_steps"]] == ["step1_rgb", "step3"]
    for r in saved["train_steps"]:
        assert r["ours_s"] > 0 and r["bare_s"] > 0 and r["ratio"] == r["ours_s"] / r["bare_s"]
        assert 1.0 < r["flop_ratio"] < 1.5  # the temporal convs add arithmetic, a few percent of a ResNet's


def test_inference_benchmark_runs_tiny_and_writes_the_readme_table(tmp_path):
    """Every CPU row is measured side by side (ratio = ours / bare per repetition), the decomposition's variants
    have their own arithmetic, and the README's table is regenerated from the saved results alone."""
    import pytest

    from modistill.errors import UserError

    pytest.importorskip("onnxruntime")
    bench = _load("inference")
    res = bench.main(
        [
            "--size",
            "32",
            "--frames",
            "2",
            "--reps",
            "2",
            "--clips",
            "1",
            "--calibration",
            "2",
            "--decompose",
            "--out",
            str(tmp_path),
        ]
    )
    saved = json.loads((tmp_path / "inference_resnet18_32.json").read_text())
    assert saved == json.loads(json.dumps(res))
    rows = {r["runtime"]: r for r in saved["rows"]}
    assert list(rows)[:5] == [
        "PyTorch eager CPU fp32",
        "ONNX Runtime CPU fp32",
        "ONNX Runtime CPU fp32, ours with no connection",
        "ONNX Runtime CPU fp32, ours with no temporal convs",
        "ONNX Runtime CPU int8 (static QDQ)",
    ]
    for r in rows.values():
        assert r["ours_ms"] > 0 and r["bare_ms"] > 0 and r["ratio_min"] <= r["ratio"] <= r["ratio_max"]
        assert r["reps"] == 2 and r["clips"] == 1
    # The temporal convs are the extra arithmetic: without them the model does the bare pair's multiply-adds.
    assert 1.0 < saved["flop_ratio"] < 1.5
    assert rows["ONNX Runtime CPU fp32, ours with no connection"]["flop_ratio"] == saved["flop_ratio"]
    assert rows["ONNX Runtime CPU fp32, ours with no temporal convs"]["flop_ratio"] == 1.0
    int8 = rows["ONNX Runtime CPU int8 (static QDQ)"]
    assert int8["speedup_vs_fp32"] == rows["ONNX Runtime CPU fp32"]["ours_ms"] / int8["ours_ms"]

    readme = tmp_path / "README.md"
    readme.write_text(f"# T\n{bench.START}\nold table\n{bench.END}\nkept\n")
    bench.main(["--readme", str(readme), "--out", str(tmp_path)])
    text = readme.read_text()
    assert "old table" not in text and text.endswith(f"{bench.END}\nkept\n")
    fp32 = rows["ONNX Runtime CPU fp32"]
    assert (
        "| resnet18 @ 32 px, 2 frames | PyTorch eager CPU fp32 |" in text
        and f"| ONNX Runtime CPU fp32 | {fp32['ours_ms']:.1f} | {fp32['bare_ms']:.1f} | {fp32['ratio']:.3f} "
        f"({fp32['ratio_min']:.3f}-{fp32['ratio_max']:.3f}) |"
        in text
    )
    readme.write_text("# no markers\n")
    with pytest.raises(UserError, match="inference benchmark table"):
        bench.main(["--readme", str(readme), "--out", str(tmp_path)])
    assert readme.read_text() == "# no markers\n"


def test_prepare_throughput_runs_tiny(tiny_ntu, tmp_path):
    rows = _load("prepare_throughput").main(
        [str(tiny_ntu), "--limit", "4", "--workers", "1", "--size", "32", "--out", str(tmp_path)]
    )
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
    rows = _load("loader_throughput").main(
        ["--clips", "8", "--workers", "0", "--size", "32", "--batch", "4", "--out", str(tmp_path)]
    )
    assert json.loads((tmp_path / "loader_throughput.json").read_text()) == rows
    (r,) = rows
    assert r["workers"] == 0 and r["clips_per_s"] > 0 and r["MB_per_s"] == r["clips_per_s"] * 2 * 5 * 32 * 32 * 3 / 1e6


def test_demo_calibration_runs_tiny(tmp_path):
    rows = _load("demo_calibration").main(
        [
            "--quick",
            "--seeds",
            "0",
            "--workers",
            "1",
            "--work",
            str(tmp_path / "w"),
            "--out",
            str(tmp_path),
            "--train",
            "data.workers=0",
        ]
    )
    saved = json.loads((tmp_path / "demo_calibration.json").read_text())
    assert len(saved) == 1 and saved[0]["seed"] == 0 and saved[0]["train"] == ["data.workers=0"]
    assert 0 <= saved[0]["rgb"] <= 100 and 0 <= saved[0]["depth"] <= 100
    assert saved[0]["ratio"] == rows[0]["ratio"]


def test_paired_timing_is_ours_over_bare_per_repetition():
    """A fake clock that each call advances by a known amount: the ratio is exact, whatever the machine's load."""
    now, calls = [0.0], []

    def call(name: str, seconds: float):
        def f():
            calls.append(name)
            now[0] += seconds

        return f

    res = _load("inference").paired(call("a", 0.04), call("b", 0.01), reps=3, clips=2, warmup=1, clock=lambda: now[0])
    assert calls == ["a", "b"] + ["a", "b"] * 6  # warm-up, then alternating clip by clip
    assert [res["ratio_min"], res["ratio"], res["ratio_max"]] == pytest.approx([4.0, 4.0, 4.0])
    assert res["ours_ms"] == pytest.approx(40.0) and res["bare_ms"] == pytest.approx(10.0)


def test_model_overhead_compares_a_video_backbone_with_its_bare_torchvision_model(tmp_path):
    res = _load("model_overhead").main(
        [
            "--arch",
            "mc3_18",
            "--size",
            "32",
            "--batch",
            "1",
            "--frames",
            "2",
            "--iters",
            "1",
            "--steps",
            "step2",
            "--out",
            str(tmp_path),
        ]
    )
    (row,) = res["train_steps"]
    assert row["ours_s"] > 0 and row["bare_s"] > 0
    assert 1.0 <= row["flop_ratio"] < 1.05  # no temporal convs: only the connection's products beyond the backbone


def test_backbones_benchmark_runs_tiny_and_writes_its_readme_table(tmp_path, monkeypatch):
    """A backbone's row: torchvision's facts, a ratio per main step and per runtime; a backbone measured earlier
    keeps its row; the README's table is rewritten from the saved results alone."""
    import pytest

    pytest.importorskip("onnxruntime")
    bench = _load("backbones")
    real_clip = bench.clip
    monkeypatch.setattr(bench, "clip", lambda arch: (2, 32, 1) if arch == "mc3_18" else real_clip(arch))
    assert real_clip("swin3d_t") == (16, 224, 1) and real_clip("r3d_18") == (16, 112, 2)  # from the registry
    ratio = {"ratio": 1.5, "ratio_min": 1.4, "ratio_max": 1.6, "reps": 1, "clips": 1}
    earlier = {
        "arch": "r3d_18", "frames": 16, "size": 112, "batch": 2,
        "params_m": 33.4, "gmacs_clip": 40.7, "k400_top1": 63.2,
        "train": [{"step": s, "ratio": 1.25, "flop_ratio": 1.0, "iters": 1} for s in bench.STEPS],
        "inference": [{"runtime": "PyTorch eager CPU fp32", **ratio}], "inference_flop_ratio": 1.0,
        "threads": 2, "machine": "x",
    }  # fmt: skip
    (tmp_path / "backbones.json").write_text(json.dumps([earlier]))
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{bench.START}\nold\n{bench.END}\n\nafter\n")
    res = bench.main(["--backbones", "mc3_18", "--iters", "1", "--reps", "1", "--clips", "1", "--out", str(tmp_path),
                      "--readme", str(readme)])  # fmt: skip
    assert [r["arch"] for r in res] == ["r3d_18", "mc3_18"]  # in the table's order, the earlier row kept
    mc3 = res[1]
    assert (round(mc3["params_m"], 1), mc3["k400_top1"]) == (11.7, 63.96)  # torchvision's mc3_18 and its metadata
    assert [r["step"] for r in mc3["train"]] == list(bench.STEPS) and all(r["ratio"] > 0 for r in mc3["train"])
    assert {r["runtime"] for r in mc3["inference"]} >= {"PyTorch eager CPU fp32", "ONNX Runtime CPU fp32"}
    text = readme.read_text()
    assert "old" not in text and text.endswith("after\n") and "| mc3_18 | 11.7M |" in text
    assert (
        "| r3d_18 | 33.4M | 40.7 (16x112) | 63.20 | 1.250 | 1.250 | 1.250 | 1.250 | 1.000 | 1.500 (1.400-1.600) | - |"
        in text
    )
    readme.write_text(f"{bench.START}\n{bench.END}\n")
    bench.main(["--table-only", "--readme", str(readme), "--out", str(tmp_path)])
    assert readme.read_text().count("| mc3_18 | 11.7M |") == 1 and "| r3d_18 | 33.4M |" in readme.read_text()


@pytest.fixture
def person_onnx(tmp_path):
    """A random tiny person-crop model with 10 classes, exported with the metadata windows need."""
    from modistill.deploy.bundle import FORMAT, DeployModel
    from modistill.deploy.onnx_export import export_onnx
    from modistill.models.backbone import make_stream
    from modistill.models.multistream import RGBOnly

    meta = {
        "format": FORMAT,
        "arch": "resnet18",
        "width": 4,
        "temporal": True,
        "num_classes": 10,
        "class_names": [f"action {i}" for i in range(10)],
        "connections": [["hall", "rgb"]],
        "size": 32,
        "frames": 3,
        "stored_frames": 4,
        "crop": {"rule": "person", "padding": 0.25, "detector": "torchvision:X.COCO_V1", "score": 0.5},
        "clip_lengths": {"frames": {"min": 15, "median": 30, "max": 60}, "fps": 30.0},
    }
    streams = [make_stream("resnet18", 10, 4, True) for _ in range(2)]
    return export_onnx(DeployModel(RGBOnly(*streams)).eval(), meta, tmp_path / "m.onnx")


def test_live_benchmark_runs_tiny_and_writes_its_docs_table(person_onnx, tmp_path):
    """Windows over a recording per number of people, fp32 rows with and without the detectors' cost, and the
    docs table regenerated from the saved results alone."""
    bench = _load("live")
    out = tmp_path / "live.json"
    res = bench.main(
        ["--model", str(person_onnx), "--seconds", "2", "--people", "1", "2", "--detector-reps", "1", "--out", str(out)]
    )
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(res))
    assert [(r["model"], r["people"]) for r in saved["rows"]] == [("fp32", 1), ("fp32", 2)]
    for r in saved["rows"]:
        assert (
            r["fps"] > 0
            and r["realtime_with_detector"] < r["realtime"]
            and r["realtime_with_320_detector"] < r["realtime"]
        )
    assert saved["window"] == {"frames": 30, "stride": 8}
    assert saved["detectors"]["default"]["input"] == 800 and saved["detectors"]["320"]["input"] == 320
    page = tmp_path / "live.md"
    page.write_text(f"# T\n{bench.START}\nold\n{bench.END}\n")
    bench.main(["--readme", str(page), "--out", str(out)])
    text = page.read_text()
    assert "old" not in text and f"| ONNX Runtime fp32 | 2 | {saved['rows'][1]['fps']} |" in text


def test_timeline_accuracy_runs_tiny_and_scores_every_frame(person_onnx, tiny_ntu, tmp_path):
    """Two performers of 3 actions each from the tiny tree: every frame of each gets a true label, the accuracy is
    the share of frames whose timeline label is that label, and the docs table comes from the results alone."""
    from modistill.data import ntu

    names = ntu.NtuLayout(tiny_ntu).sample_names()[0]
    run = tmp_path / "run"
    run.mkdir()
    (run / "splits.json").write_text(json.dumps({"test": names[:6]}))
    bench = _load("timeline_accuracy")
    args = ["--data", str(tiny_ntu), "--run", str(run), "--model", str(person_onnx), "--actions", "3"]
    res = bench.main([*args, "--threshold", "0", "--results", str(tmp_path)])
    for p in res["people"].values():
        assert p["actions"] == 3 and 0 <= p["accuracy"] <= p["labelled"] <= 1 and p["frames"] >= 30
    assert 0 <= res["clip_accuracy_same_videos"] <= 1 and len(res["videos"]) == 6
    page = tmp_path / "live.md"
    page.write_text(f"{bench.START}\n{bench.END}\n")
    text = bench.main(["--readme", str(page), "--results", str(tmp_path)])
    assert f"| 3 | {res['people']['1']['frames']} | 3 | 0 |" in text and text in page.read_text()

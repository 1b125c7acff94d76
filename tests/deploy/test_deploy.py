"""Deployment: bundle and ONNX export agree with PyTorch, predict runs on raw videos, bad models are refused."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import independent_client

from modistill.cli import main
from modistill.config import CONFIG_DIR, load_config
from modistill.data import ntu, video
from modistill.data.cache import clip_path, load_manifest
from modistill.data.dataset import ClipDataset
from modistill.deploy.bundle import build_model, bundle_from_run, load_bundle, load_deploy_model, save_bundle
from modistill.deploy.onnx_export import OnnxModel
from modistill.deploy.video import camera_clip
from modistill.errors import UserError
from modistill.models.backbone import run_stream
from modistill.models.preprocess import normalize
from modistill.synthetic.writer import write_video
from modistill.training.module import StepModule
from modistill.training.run import write_step_record
from modistill.training.runner import open_run

METRICS = json.dumps(
    {
        "accuracy": 0.5,
        "streams": {"rgb": 0.5, "hall": 0.25},
        "n": 6,
        "scores": {"fused": {"top1": 0.5, "top5": None, "mean_class": 0.5}},
    }
)


def model_run(cache: Path, run: Path, step: str = "step4") -> tuple[Path, StepModule, torch.Tensor]:
    """A run folder holding ``step``'s RGB-only model whose BatchNorm statistics come from real cached clips, the
    module, and those clips."""
    cfg = load_config(
        CONFIG_DIR / "demo.yaml",
        [f"data.cache={cache}", "model.width=8", "data.frames=3", "data.val_performers=1"],
    )
    cfg, _, _, _, records = open_run(cfg, run)
    torch.manual_seed(0)
    module = StepModule(step, cfg, 3, ema=False)
    names = sorted(load_manifest(cache))
    batch = torch.stack([ClipDataset(cache, names, 3, modalities=("rgb",))[i]["rgb"] for i in range(8)])
    module.train()
    with torch.no_grad():
        module.net({"rgb": normalize(batch)})
    (run / step).mkdir()
    torch.save(module.state_dict(), run / step / "weights.pt")
    write_step_record(run / step, records[step])
    (run / step / "metrics.json").write_text(METRICS)
    return run, module.eval(), batch


@pytest.fixture(scope="module")
def run_dir(small_cache, tmp_path_factory):
    return model_run(small_cache, tmp_path_factory.mktemp("run"))[0]


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    assert main(["export", str(run_dir), "--out", str(out / "model.onnx")]) == 0
    return out / "model.onnx", out / "model.safetensors"


def test_bundle_metadata_from_run(run_dir, small_cache):
    _, meta = bundle_from_run(run_dir)
    assert (meta["arch"], meta["width"], meta["num_classes"], meta["frames"], meta["size"]) == ("resnet18", 8, 3, 3, 32)
    assert meta["class_names"] == json.loads((small_cache / "cache.json").read_text())["class_names"]
    assert meta["connections"] == [["hall", "rgb"]]
    x0, y0, x1, y1 = meta["crop"]
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 and (x0, y0, x1, y1) != (0.0, 0.0, 1.0, 1.0)
    # How long the training videos were, from the cache's records of the run's training split: windows need it.
    recs = {r["name"]: r for r in json.loads((small_cache / "manifest.json").read_text())["videos"]}
    train = json.loads((run_dir / "splits.json").read_text())["train"]
    n = sorted(recs[k]["rgb_frames"] for k in train)
    assert meta["clip_lengths"]["frames"] == {"min": n[0], "median": int(np.median(n)), "max": n[-1]}
    assert meta["clip_lengths"]["fps"] == 30.0 and all(recs[k]["fps"] == 30.0 for k in train)


def test_released_step4_exports_without_connections(small_cache, tmp_path):
    """step4_noconn (step 4 as the released code runs it) deploys as the plain mean of its two streams' logits;
    the same weights with the paper's hall→RGB connection give other logits."""
    run, module, batch = model_run(small_cache, tmp_path / "run", "step4_noconn")
    state, meta = bundle_from_run(run, "step4_noconn")
    out = save_bundle(state, meta, tmp_path / "released.safetensors")
    model, meta = load_bundle(out)
    assert meta["connections"] == [] and meta["step"] == "step4_noconn"

    clips = batch[:2].float()
    connected = build_model(state, meta | {"connections": [["hall", "rgb"]]}, out)
    with torch.inference_mode():
        plain = sum(run_stream(module.net.streams[s], normalize(clips)) for s in ("rgb", "hall")) / 2
        assert torch.allclose(model(clips), plain, atol=1e-5)
        assert not torch.allclose(connected(clips), plain, atol=1e-3)


def test_onnx_matches_pytorch(exported, tiny_ntu):
    onnx_path, st_path = exported
    torch_model, meta = load_bundle(st_path)
    ort_model = OnnxModel(onnx_path)
    assert ort_model.meta == meta
    rng = np.random.default_rng(1)
    random_clips = rng.uniform(0, 255, (3, 3, 3, 32, 32)).astype(np.float32)
    video = ntu.NtuLayout(tiny_ntu).rgb("S001C001P001R001A001")
    video_clip = camera_clip(video, meta["frames"], meta["size"], meta["crop"])[None].astype(np.float32)
    for x in (random_clips, video_clip):
        with torch.inference_mode():
            ref = torch_model(torch.from_numpy(x)).numpy()
        assert ref.shape == (len(x), 3)
        assert np.abs(ort_model(x) - ref).max() <= 1e-4


def test_camera_clip_reproduces_training_crop(small_cache, tiny_ntu):
    """With a video's own crop (as frame fractions), the deploy preprocessing gives the cached training RGB."""
    name = "S001C002P002R001A003"
    rec = load_manifest(small_cache)[name]
    crop = (np.array(rec["crop_rgb"]) / np.tile(rec["rgb_size"], 2)).tolist()
    clip = camera_clip(ntu.NtuLayout(tiny_ntu).rgb(name), 3, 32, crop)
    cached = np.load(clip_path(small_cache, name))[0].transpose(0, 3, 1, 2)
    assert clip.shape == cached.shape == (3, 3, 32, 32)
    assert np.abs(clip.astype(int) - cached.astype(int)).mean() < 1.0


def test_predict_avi_and_mp4_with_both_runtimes(exported, tiny_ntu, tmp_path, capsys):
    onnx_path, st_path = exported
    avi = ntu.NtuLayout(tiny_ntu).rgb("S001C001P003R001A002")
    mp4 = tmp_path / "clip.mp4"
    write_video(mp4, video.read_rgb_frames(avi))
    results = {}
    for model in (onnx_path, st_path):
        capsys.readouterr()
        assert main(["predict", str(avi), str(mp4), "--model", str(model), "--topk", "2", "--json"]) == 0
        results[model.suffix] = json.loads(capsys.readouterr().out)
    for res in results.values():
        assert [r["video"] for r in res] == [str(avi), str(mp4)]
        for r in res:
            assert r["error"] is None and len(r["top"]) == 2
            assert r["top"][0]["prob"] >= r["top"][1]["prob"] > 0
    for a, b in zip(results[".onnx"], results[".safetensors"], strict=True):
        assert [t["class"] for t in a["top"]] == [t["class"] for t in b["top"]]
        assert a["top"][0]["prob"] == pytest.approx(b["top"][0]["prob"], abs=1e-5)
    # the mp4 is the same video re-encoded: same prediction
    avi_p, mp4_p = results[".safetensors"]
    assert avi_p["top"][0]["class"] == mp4_p["top"][0]["class"]
    assert avi_p["top"][0]["prob"] == pytest.approx(mp4_p["top"][0]["prob"], abs=0.02)


def test_a_fixed_crop_model_refuses_person_boxes(exported, tiny_ntu, tmp_path, capsys):
    video = ntu.NtuLayout(tiny_ntu).rgb("S001C001P001R001A001")
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({video.name: [10, 10, 50, 50]}))
    capsys.readouterr()
    assert main(["predict", str(video), "--model", str(exported[0]), "--boxes", str(boxes)]) == 2
    err = capsys.readouterr().err
    assert "this model crops every video to the fixed box" in err and "Traceback" not in err


def test_predict_reports_a_bad_video_and_keeps_going(exported, tiny_ntu, tmp_path, capsys):
    import os

    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"not a video")
    fifo = tmp_path / "camera.mp4"
    os.mkfifo(fifo)  # a stream to windows; one clip of it would wait for a writer forever
    good = ntu.NtuLayout(tiny_ntu).rgb("S001C001P001R001A001")
    assert main(["predict", str(bad), str(fifo), str(good), "--model", str(exported[0]), "--mode", "clip"]) == 2
    out = capsys.readouterr().out
    assert f"{bad}: error: cannot read video" in out and f"{fifo}: error: not a regular file" in out and "%" in out


def test_tampered_and_mismatched_models_refused(exported, run_dir, tmp_path, capsys):
    _, st_path = exported
    blob = bytearray(st_path.read_bytes())
    blob[-100] ^= 0xFF  # one weight changed
    tampered = tmp_path / "tampered.safetensors"
    tampered.write_bytes(bytes(blob))
    with pytest.raises(UserError, match="checksum mismatch"):
        load_bundle(tampered)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(UserError, match="not a readable safetensors"):
        load_bundle(garbage)
    state, meta = bundle_from_run(run_dir)
    for change, message in (
        ({"num_classes": 5, "class_names": list("abcde")}, "needs"),
        ({"width": 16}, "needs"),
        ({"arch": "resnet50"}, "not a resnet50"),
        ({"arch": "vgg16"}, "unknown backbone"),
    ):
        path = save_bundle(state, meta | change, tmp_path / "mismatch.safetensors")
        with pytest.raises(UserError, match=message):
            load_bundle(path)
    pickle_file = tmp_path / "model.pt"
    torch.save({"x": 1}, pickle_file)
    capsys.readouterr()
    assert main(["predict", str(tampered), "--model", str(pickle_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a readable safetensors" in err and "Traceback" not in err


def test_run_folder_and_bundle_give_the_same_model(exported, run_dir):
    a, _ = load_deploy_model(run_dir)
    b, _ = load_deploy_model(exported[1])
    x = torch.rand(2, 3, 3, 32, 32) * 255
    with torch.inference_mode():
        assert torch.equal(a(x), b(x))


def test_export_from_another_folder_after_the_cache_moved_and_its_manifest_was_rebuilt(
    run_dir, small_cache, tmp_path, monkeypatch, capsys
):
    """The run folder alone decides size, crop and class names: a relative data.cache, another working folder, a
    moved cache and a rebuilt manifest change nothing (on 2b7b8e1 they gave 224 px, the full frame, 'class 0')."""
    import shutil

    cache = tmp_path / "work" / "cache"
    shutil.copytree(small_cache, cache)
    monkeypatch.chdir(tmp_path / "work")
    cfg = load_config(
        CONFIG_DIR / "demo.yaml", ["data.cache=cache", "model.width=8", "data.frames=3", "data.val_performers=1"]
    )
    run = tmp_path / "work" / "run"
    _, _, splits, _, records = open_run(cfg, "run")
    (run / "step4").mkdir()
    shutil.copy(run_dir / "step4" / "weights.pt", run / "step4" / "weights.pt")
    write_step_record(run / "step4", records["step4"])
    (run / "step4" / "metrics.json").write_text(METRICS)
    manifest = load_manifest(cache)
    boxes = [np.array(manifest[n]["crop_rgb"]) / np.tile(manifest[n]["rgb_size"], 2) for n in splits["train"]]
    want_crop = [round(float(v), 4) for v in np.median(boxes, 0)]
    names = json.loads((cache / "cache.json").read_text())["class_names"]
    cache.rename(tmp_path / "moved")
    (tmp_path / "moved" / "manifest.json").write_text(
        json.dumps(
            {"videos": [{"name": n, "status": "ok", "reason": "kept from an interrupted run"} for n in manifest]}
        )
    )
    monkeypatch.chdir(tmp_path)
    assert main(["export", "work/run", "--out", "m.onnx"]) == 0
    assert "input [B, 3, 3, 32, 32]" in capsys.readouterr().out
    for meta in (
        OnnxModel(tmp_path / "m.onnx").meta,
        load_bundle(tmp_path / "m.safetensors")[1],
        load_deploy_model(run)[1],
    ):
        assert (meta["size"], meta["frames"], meta["stored_frames"]) == (32, 3, 3)
        assert meta["crop"] == want_crop and meta["crop"] != [0.0, 0.0, 1.0, 1.0]
        assert meta["class_names"] == names


def test_run_without_its_description_is_refused(run_dir, tmp_path, capsys):
    import shutil

    old = tmp_path / "old_run"
    shutil.copytree(run_dir, old)
    (old / "run.json").unlink()
    assert main(["export", str(old), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no run.json" in err
    assert not list(tmp_path.glob("m.*"))
    (old / "run.json").write_text(json.dumps({"format": "modistill-run/1", "data": {}, "model": {}}))
    with pytest.raises(UserError, match="lacks 'input'"):
        bundle_from_run(old)


def _onnx_with_meta(src, dst, change):
    import onnx

    proto = onnx.load(str(src))
    meta = json.loads(proto.metadata_props[0].value)
    for k, v in change.items():
        if v is None:
            meta.pop(k)
        else:
            meta[k] = v
    proto.metadata_props[0].value = json.dumps(meta)
    onnx.save(proto, str(dst))
    return dst


BAD_META = [
    ({"frames": 5, "stored_frames": 5}, "graph input"),
    ({"size": 64}, "graph input"),
    ({"class_names": ["a", "b"]}, "2 class names for 3 classes"),
    ({"crop": [0.5, 0.2, 0.5, 0.9]}, "crop="),
    ({"crop": [0.1, 0.2, 1.3, 0.9]}, "crop="),
    ({"crop": [0, 0, 1]}, "crop="),
    ({"size": -5}, "size=-5"),
    ({"frames": 0}, "frames=0"),
    ({"frames": 4}, "exceeds stored_frames"),
    ({"crop": None}, "lacks crop"),
    ({"num_classes": "3"}, "num_classes='3'"),
    ({"clip_lengths": {"frames": {"min": 40, "median": 30, "max": 50}, "fps": 30}}, "clip_lengths="),
    ({"clip_lengths": {"frames": {"min": 20, "median": 30, "max": 50}, "fps": 0}}, "clip_lengths="),
]


@pytest.mark.parametrize("change, message", BAD_META)
def test_model_files_with_bad_metadata_are_refused(exported, tmp_path, capsys, change, message):
    onnx_path, st_path = exported
    bad = _onnx_with_meta(onnx_path, tmp_path / "bad.onnx", change)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("[", r"\[")):
        OnnxModel(bad)
    capsys.readouterr()
    assert main(["predict", str(bad), "--model", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    if "graph" in message:
        return  # a safetensors file has no graph to disagree with
    state, meta = load_bundle(st_path)[0].model.net.state_dict(), load_bundle(st_path)[1]
    meta = {k: v for k, v in (meta | change).items() if v is not None}
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_bundle(save_bundle(state, meta, tmp_path / "bad.safetensors"))


def test_checksum_is_described_as_corruption_detection(exported):
    from modistill.deploy import bundle

    assert "not a signature" in bundle.__doc__


def test_non_finite_weights_are_never_exported(run_dir, tmp_path, capsys):
    import shutil

    nan_run = tmp_path / "nan_run"
    shutil.copytree(run_dir, nan_run)
    state = torch.load(nan_run / "step4" / "weights.pt", weights_only=True)
    key = next(k for k in state if k.endswith("fc.weight"))
    state[key][0, 0] = float("nan")
    torch.save(state, nan_run / "step4" / "weights.pt")
    assert main(["export", str(nan_run), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "NaN or infinite" in err and key.removeprefix("net.") in err
    assert not list(tmp_path.glob("m.*"))


def test_predict_json_never_holds_nan(exported, tiny_ntu, monkeypatch, capsys):
    from modistill.deploy.predict import Predictor

    monkeypatch.setattr(Predictor, "logits", lambda self, clips: np.full((len(clips), 3), np.nan, np.float32))
    video = ntu.NtuLayout(tiny_ntu).rgb("S001C001P001R001A001")
    assert main(["predict", str(video), "--model", str(exported[0]), "--json"]) == 2
    (res,) = json.loads(capsys.readouterr().out)  # strict JSON: a bare NaN token would not parse
    assert res["top"] == [] and "NaN" in res["error"]


def test_predict_samples_frames_like_training(small_cache, tiny_ntu):
    """A 2-of-3 frame model sees the training clip's frames evenly_spaced(3, 2) = (0, 2) of the stored ones."""
    name = "S001C002P002R001A003"
    rec = load_manifest(small_cache)[name]
    crop = (np.array(rec["crop_rgb"]) / np.tile(rec["rgb_size"], 2)).tolist()
    clip = camera_clip(ntu.NtuLayout(tiny_ntu).rgb(name), 2, 32, crop, stored_frames=3)
    cached = np.load(clip_path(small_cache, name))[0, [0, 2]].transpose(0, 3, 1, 2)
    assert np.abs(clip.astype(int) - cached.astype(int)).mean() < 1.0


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_files_honour_the_umask(tmp_path, umask, mode):
    import os

    from modistill.utils.io import atomic_write_text

    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "f.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == mode


def test_hub_folder_with_model_card_loads_like_the_bundle(exported, capsys, tiny_ntu):
    onnx_path, st_path = exported
    hub = onnx_path.with_name("model-hub")
    assert sorted(p.name for p in hub.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    card = (hub / "README.md").read_text()
    meta = json.loads((hub / "config.json").read_text())
    assert meta == load_bundle(st_path)[1]
    for fact in (
        "| 15 | step 4 | RGB | 50.00% | - | 50.00% |",
        "3 classes, 6 test videos (chance 33.3 %)",
        f"crop {meta['crop']}",
        "0: " + meta["class_names"][0],
        "Intended use and limits",
    ):
        assert fact in card, fact
    video = ntu.NtuLayout(tiny_ntu).rgb("S001C001P001R001A001")
    outs = []
    for model in (hub, st_path):
        assert main(["predict", str(video), "--model", str(model), "--json"]) == 0
        outs.append(json.loads(capsys.readouterr().out)[0]["top"])
    assert outs[0] == outs[1]


def test_python_api_mirrors_the_cli(exported, tiny_ntu):
    import modistill

    video = ntu.NtuLayout(tiny_ntu).rgb("S001C001P001R001A001")
    a = modistill.load(exported[0]).predict([video], topk=2)[0]
    b = modistill.load(exported[1]).predict([video], topk=2)[0]
    assert [t["class"] for t in a["top"]] == [t["class"] for t in b["top"]] and a["error"] is None
    assert callable(modistill.train) and callable(modistill.prepare) and callable(modistill.evaluate)
    with pytest.raises(AttributeError):
        modistill.not_an_api  # noqa: B018


def test_device_that_is_not_there_is_one_line(exported, tiny_ntu, capsys):
    import torch

    video = ntu.NtuLayout(tiny_ntu).rgb("S001C001P001R001A001")
    if not torch.cuda.is_available():
        assert main(["predict", str(video), "--model", str(exported[1]), "--device", "cuda"]) == 2
        assert "--device cuda: not usable here" in capsys.readouterr().err
    assert main(["predict", str(video), "--model", str(exported[0]), "--device", "mps"]) == 2
    assert "ONNX Runtime runs on cpu, cuda[:N] or tensorrt[:N]" in capsys.readouterr().err
    import onnxruntime as ort

    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        assert main(["predict", str(video), "--model", str(exported[0]), "--device", "tensorrt"]) == 2
        assert "this ONNX Runtime has no TensorrtExecutionProvider" in capsys.readouterr().err


def test_a_gpu_provider_that_does_not_start_is_refused_not_replaced_by_the_cpu(exported, monkeypatch):
    """onnxruntime runs on the CPU, with only a warning, when a listed provider fails to start; predict must not
    report CPU results as a GPU run."""
    import onnxruntime as ort

    from modistill.deploy.onnx_export import OnnxModel

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("a CUDA provider is installed here")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(UserError, match="could not start its CUDAExecutionProvider"):
        OnnxModel(exported[0], device="cuda:0")
    assert OnnxModel(exported[0]).session.get_providers() == ["CPUExecutionProvider"]


def test_an_independent_client_following_the_metadata_matches_predict(exported, tiny_ntu, tmp_path, capsys):
    """The preprocessing contract is complete: probabilities equal predict's to 1e-5, also for videos of another
    resolution and aspect ratio (on 2b7b8e1 a client got within 0.01 only)."""
    import cv2

    onnx_path = exported[0]
    L = ntu.NtuLayout(tiny_ntu)
    src = [L.rgb("S001C001P001R001A001"), L.rgb("S001C002P003R001A003")]
    frames = video.read_rgb_frames(src[0])
    for name, (w, h) in (("4x3.mp4", (160, 120)), ("square.mp4", (96, 96)), ("tall.mp4", (90, 160))):
        write_video(tmp_path / name, [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
        src.append(tmp_path / name)
    assert main(["predict", *map(str, src), "--model", str(onnx_path), "--json", "--topk", "3"]) == 0
    results = json.loads(capsys.readouterr().out)
    for r in results:
        ours = independent_client(onnx_path, r["video"])
        for t in r["top"]:
            assert abs(ours[t["class"]] - t["prob"]) <= 1e-5, (r["video"], t, ours)


def test_int8_export_reports_accuracy_and_speed(run_dir, tiny_ntu, tmp_path, capsys):
    assert main(["export", str(run_dir), "--out", str(tmp_path / "m.onnx"), "--quantize", "int8"]) == 0
    out = capsys.readouterr().out
    assert "m-int8.onnx: int8 (static, calibrated on 6 training clips); top-1 on the run's 6 test clips" in out
    assert "% float → " in out and "ms per clip on this CPU" in out
    int8 = OnnxModel(tmp_path / "m-int8.onnx")
    assert int8.meta["quantization"].startswith("int8 static QDQ")
    video = ntu.NtuLayout(tiny_ntu).rgb("S001C001P001R001A001")
    assert main(["predict", str(video), "--model", str(tmp_path / "m-int8.onnx"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["error"] is None


def test_model_card_metadata_is_written_through_huggingface_hub(exported):
    """The Hub reads pipeline_tag, the license and a model-index with this model's own results."""
    from huggingface_hub import ModelCard

    card = ModelCard.load(exported[0].with_name("model-hub") / "README.md")
    assert card.data.pipeline_tag == "video-classification" and card.data.library_name == "modistill"
    assert (card.data.license, card.data.license_name) == ("apache-2.0", None)  # trained on the synthetic tree
    top1 = next(r for r in card.data.eval_results if r.metric_type == "accuracy")
    assert (top1.metric_value, top1.dataset_split, top1.task_type) == (50.0, "test", "video-classification")
    assert top1.dataset_name.startswith("modistill synthetic") and top1.dataset_type == "modistill-synthetic"


def test_a_model_trained_on_ntu_names_the_datasets_terms(exported, run_dir):
    """The weights inherit the training data's terms: for NTU RGB+D its release agreement, by name and link."""
    import types

    import yaml

    from modistill.deploy.hub import card_metadata
    from modistill.training.run import RunInfo

    run = RunInfo(run_dir)
    real = types.SimpleNamespace(meta=run.meta | {"data": run.meta["data"] | {"origin": "ntu"}}, metrics=run.metrics)
    front = yaml.safe_load(card_metadata(load_bundle(exported[1])[1], real).strip("-\n"))
    assert (front["license"], front["license_name"]) == ("other", "ntu-rgbd-release-agreement")
    assert front["license_link"].startswith("https://rose1.ntu.edu.sg/")
    assert front["model-index"][0]["results"][0]["dataset"]["name"] == "NTU RGB+D 60"


def _hub_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    return tmp_path / "hf"


def test_predict_loads_a_hub_id_from_the_local_cache_offline(exported, tiny_ntu, tmp_path, monkeypatch, capsys):
    import shutil

    cache = _hub_cache(tmp_path, monkeypatch)
    repo = cache / "models--someone--modistill-demo"
    rev = "89abcdef0123456789abcdef0123456789abcdef"
    shutil.copytree(exported[0].with_name("model-hub"), repo / "snapshots" / rev)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    video = ntu.NtuLayout(tiny_ntu).rgb("S001C001P001R001A001")
    outs = []
    for model in ("hf-hub:someone/modistill-demo", str(exported[1])):
        assert main(["predict", str(video), "--model", model, "--json"]) == 0
        outs.append(json.loads(capsys.readouterr().out)[0]["top"])
    assert outs[0] == outs[1]
    assert main(["predict", str(video), "--model", "hf-hub:someone/not-downloaded"]) == 2
    assert "not in the local Hugging Face cache; fetch it once" in capsys.readouterr().err


def test_reexport_replaces_the_hub_folder_in_one_step(run_dir, tmp_path, monkeypatch):
    """Readers never find the folder missing: the old one is removed only once the new one is in place."""
    import shutil

    from huggingface_hub import ModelCard

    from modistill.deploy import hub

    out = tmp_path / "m-hub"
    assert main(["export", str(run_dir), "--out", str(tmp_path / "m.onnx"), "--license", "mit"]) == 0
    assert ModelCard.load(out / "README.md").data.license == "mit"  # export --license reaches the card
    (out / "config.json").write_text("old")
    seen = []
    real = shutil.rmtree

    def spy(path, *a, **k):
        seen.append((out / "config.json").read_text() if (out / "config.json").exists() else None)
        return real(path, *a, **k)

    real_rename = Path.rename

    def rename_spy(self, target):
        if Path(target) == out:
            seen.append(None if not out.exists() else "before rename")  # a rename onto out: the gap the swap avoids
        return real_rename(self, target)

    monkeypatch.setattr(hub.shutil, "rmtree", spy)
    monkeypatch.setattr(Path, "rename", rename_spy)
    hub.write_hub_folder(tmp_path / "m.safetensors", load_bundle(tmp_path / "m.safetensors")[1], run_dir, out)
    assert seen and all(s is not None and s != "old" for s in seen), seen
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-hub", "m.onnx", "m.safetensors"]

"""`modistill export`, `predict`, `evaluate`, `show-alignment`, `synth`, `pairs`: damaged run folders and models,
bad videos, bad arguments, filesystem."""

from __future__ import annotations

import json
import os
import wave

import pytest
from faultkit import snapshot, truncate

from modistill.data import ntu

RUN_DAMAGE = [
    ("truncated run.json", lambda r: truncate(r / "run.json"), "run.json: not valid JSON"),
    ("missing run.json", lambda r: (r / "run.json").unlink(), "no run.json"),
    ("run.json of another format", lambda r: (r / "run.json").write_text('{"format": "x/9"}'), "run format 'x/9'"),
    (
        "run.json without input",
        lambda r: (r / "run.json").write_text('{"format": "modistill-run/1", "data": {}}'),
        "lacks 'input'",
    ),
    ("truncated step.json", lambda r: truncate(r / "step4" / "step.json"), "step4/step.json: not valid JSON"),
    ("truncated weights", lambda r: truncate(r / "step4" / "weights.pt"), "step4/weights.pt: unreadable (truncated)"),
    ("random weights", lambda r: (r / "step4" / "weights.pt").write_bytes(os.urandom(512)), "weights.pt: unreadable"),
    ("unfinished step4", lambda r: (r / "step4" / "metrics.json").unlink(), "step4 is not finished"),
    ("crop out of the frame", lambda r: _edit_run(r, "input", "deploy_crop", [0.2, 0.1, 1.4, 0.9]), "crop="),
    ("no class names", lambda r: _edit_run(r, "data", "class_names", ["a"]), "1 class names for 3 classes"),
    ("negative size", lambda r: _edit_run(r, "input", "size", -5), "size=-5 must be a positive integer"),
]


def _edit_run(run, section, key, value):
    meta = json.loads((run / "run.json").read_text())
    meta[section][key] = value
    (run / "run.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("what, damage, fragment", RUN_DAMAGE, ids=[c[0] for c in RUN_DAMAGE])
def test_export_from_a_damaged_run(cli, run_copy, tmp_path, what, damage, fragment):
    damage(run_copy)
    cli.fails(["export", run_copy, "--out", tmp_path / "m.onnx"], fragment)
    assert not list(tmp_path.glob("m.*"))  # nothing partial: no .safetensors without its .onnx


@pytest.mark.parametrize("what, damage, fragment", RUN_DAMAGE[:8], ids=[c[0] for c in RUN_DAMAGE[:8]])
def test_predict_with_a_damaged_run(cli, run_copy, tiny_ntu, what, damage, fragment):
    damage(run_copy)
    video = ntu.NtuLayout(tiny_ntu).rgb("S001C001P001R001A001")
    cli.fails(["predict", video, "--model", run_copy], fragment)


EXPORT_ARGS = [
    ("--out without .onnx", lambda t: ["--out", t / "m.bin"], "--out must end in .onnx"),
    ("--out a directory", lambda t: ["--out", _mkdir(t / "m.onnx")], "is a directory"),
    (
        "--safetensors a directory",
        lambda t: ["--out", t / "m.onnx", "--safetensors", _mkdir(t / "b")],
        "is a directory",
    ),
    ("an empty --license", lambda t: ["--out", t / "m.onnx", "--license", ""], "is not a license identifier"),
    ("a --license with spaces", lambda t: ["--out", t / "m.onnx", "--license", "Apache 2.0"], "not a license"),
]


def _write(p, data: bytes):
    p.write_bytes(data)
    return p


def _mkdir(p):
    p.mkdir()
    return p


@pytest.mark.parametrize("what, args, fragment", EXPORT_ARGS, ids=[c[0] for c in EXPORT_ARGS])
def test_export_arguments(cli, trained_run, tmp_path, what, args, fragment):
    before = snapshot(trained_run)
    cli.fails(["export", trained_run, *args(tmp_path)], fragment)
    assert snapshot(trained_run) == before


def test_export_of_a_missing_or_non_run_folder(cli, tmp_path):
    cli.fails(["export", tmp_path / "none", "--out", tmp_path / "m.onnx"], "not a run folder")
    cli.fails(["export", tmp_path, "--out", tmp_path / "m.onnx"], "no run.json")


def _audio_only(path):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 8000)
    return path


VIDEOS = [
    ("missing", lambda t: t / "none.mp4", "not found"),
    ("a directory", lambda t: _mkdir(t / "clip.mp4"), "not a regular file"),
    ("a FIFO nobody writes to", lambda t: (os.mkfifo(t / "cam.mp4"), t / "cam.mp4")[1], "nothing arrived"),
    ("zero bytes", lambda t: _write(t / "z.mp4", b""), "cannot read video"),
    ("text", lambda t: _write(t / "t.avi", b"hello"), "cannot read video"),
    ("audio only", lambda t: _audio_only(t / "a.wav"), "no video stream (an audio-only file)"),
]


@pytest.mark.parametrize("what, make, fragment", VIDEOS, ids=[c[0] for c in VIDEOS])
def test_predict_bad_videos(cli, exported, tmp_path, monkeypatch, what, make, fragment):
    monkeypatch.setattr("modistill.deploy.source.OPEN_TIMEOUT_S", 0.3)  # a pipe waits for its writer that long
    video = make(tmp_path)
    rc, out, err = cli(["predict", video, "--model", exported[0]])
    assert rc == 2 and "Traceback" not in err
    line = out.strip().splitlines()[0]
    assert line.startswith(f"{video}: error: ") and fragment in line
    assert line.count(str(video)) == 1 and "Errno" not in line  # named once, no raw errno


def _nan_bundle(t, exported):
    """The exported bundle with one weight set to NaN and its checksum recomputed: a file that loads cleanly but
    would answer NaN for every clip."""
    from safetensors import safe_open

    from modistill.deploy.bundle import save_bundle

    with safe_open(str(exported[1]), framework="pt") as f:
        state, meta = {k: f.get_tensor(k) for k in f.keys()}, json.loads(f.metadata()["modistill"])
    key = next(k for k in state if k.endswith("fc.weight"))
    state[key][0, 0] = float("nan")
    return save_bundle(state, meta, t / "nan.safetensors")


def _nan_onnx(t, exported):
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(exported[0]))
    init = next(i for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT and "fc" in i.name)
    arr = numpy_helper.to_array(init).copy()
    arr.flat[0] = np.inf
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    onnx.save(model, str(t / "nan.onnx"))
    return t / "nan.onnx"


MODELS = [
    ("a bundle with NaN weights", _nan_bundle, "holds NaN or infinite values"),
    ("an ONNX graph with infinite weights", _nan_onnx, "holds NaN or infinite values"),
    ("missing file", lambda t, e: t / "none.onnx", "model file not found"),
    ("random .onnx", lambda t, e: _write(t / "r.onnx", os.urandom(300)), "not a loadable ONNX model"),
    ("garbage .safetensors", lambda t, e: _write(t / "g.safetensors", b"\x00" * 64), "not a readable safetensors"),
    ("a pickle", lambda t, e: _write(t / "m.pt", b"\x80\x04K\x01."), "not a readable safetensors file"),
    ("a folder that is no run", lambda t, e: _mkdir(t / "folder"), "no run.json"),
]


@pytest.mark.parametrize("what, make, fragment", MODELS, ids=[c[0] for c in MODELS])
def test_predict_bad_models(cli, exported, tiny_ntu, tmp_path, what, make, fragment):
    video = ntu.NtuLayout(tiny_ntu).rgb("S001C001P001R001A001")
    cli.fails(["predict", video, "--model", make(tmp_path, exported)], fragment)


PREDICT_OPTIONS = [
    # (what, extra args, fragment): each option is checked even where another one makes it unused
    ("a score above 1 beside --boxes", ["--boxes", "BOXES", "--detector-score", "2"], "--detector-score must be"),
    ("a score of 0 on a fixed-crop model", ["--detector-score", "0"], "--detector-score must be between 0 and 1"),
    ("a detector beside --boxes", ["--boxes", "BOXES", "--detector", "d.onnx"], "which --boxes replaces"),
    ("a valid score beside --boxes", ["--boxes", "BOXES", "--detector-score", "0.7"], "which --boxes replaces"),
    ("--topk 0", ["--topk", "0"], "--topk must be at least 1"),
]


@pytest.mark.parametrize("what, args, fragment", PREDICT_OPTIONS, ids=[c[0] for c in PREDICT_OPTIONS])
def test_predict_options_are_checked_even_when_unused(cli, exported, tiny_ntu, tmp_path, what, args, fragment):
    video = ntu.NtuLayout(tiny_ntu).rgb("S001C001P001R001A001")
    boxes = _write(tmp_path / "b.json", json.dumps({video.name: [0, 0, 10, 10]}).encode())
    cli.fails(["predict", video, "--model", exported[0], *[boxes if a == "BOXES" else a for a in args]], fragment)


def test_predict_runtime_mismatch(cli, exported, tiny_ntu):
    video = ntu.NtuLayout(tiny_ntu).rgb("S001C001P001R001A001")
    cli.fails(["predict", video, "--model", exported[1], "--runtime", "onnx"], "--runtime onnx needs an .onnx file")
    cli.fails(["predict", video, "--model", exported[0], "--runtime", "torch"], "runs with --runtime onnx")


EVALUATE = [
    ("truncated config.yaml", lambda r: (r / "config.yaml").write_text("name: [x\n"), "config.yaml: invalid YAML"),
    ("truncated metrics.json", lambda r: truncate(r / "step2" / "metrics.json"), "step2/metrics.json: not valid"),
    ("truncated run.json", lambda r: truncate(r / "run.json"), "run.json: not valid JSON"),
    ("truncated step-2 weights", lambda r: truncate(r / "step2" / "weights.pt"), "step2/weights.pt: unreadable"),
    ("cache gone", lambda r: _edit_run(r, "data", "cache", "/nonexistent/cache"), "the run's cache is gone"),
]


@pytest.mark.parametrize("what, damage, fragment", EVALUATE, ids=[c[0] for c in EVALUATE])
def test_evaluate_damaged_runs(cli, run_copy, what, damage, fragment):
    damage(run_copy)
    cli.fails(["evaluate", run_copy], fragment)


def test_evaluate_folders(cli, tmp_path):
    cli.fails(["evaluate", tmp_path / "none"], "not a run folder")
    cli.fails(["evaluate", tmp_path], "no run.json")


def test_evaluate_runs_that_differ(cli, run_copy, trained_run, tmp_path):
    _edit_run(run_copy, "model", "width", 8)
    cli.fails(["evaluate", trained_run, run_copy, "--summary", tmp_path], "differs from")
    assert not (tmp_path / "seeds.md").exists()


SHOW = [
    ("a bad name", lambda t, r: ["S1C1", "--out", t / "a.png"], "not an NTU sample name"),
    ("a zero field", lambda t, r: ["S001C001P000R001A001", "--out", t / "a.png"], "zero field"),
    ("an unknown sample", lambda t, r: ["S009C001P001R001A001", "--out", t / "a.png"], "video not found"),
    ("--out without extension", lambda t, r: ["S001C001P001R001A001", "--out", t / "a"], "--out must end in .png"),
    ("--out a directory", lambda t, r: ["S001C001P001R001A001", "--out", _mkdir(t / "d.png")], "is a directory"),
]


@pytest.mark.parametrize("what, args, fragment", SHOW, ids=[c[0] for c in SHOW])
def test_show_alignment(cli, tiny_ntu, tmp_path, what, args, fragment):
    cli.fails(["show-alignment", tiny_ntu, *args(tmp_path, tiny_ntu)], fragment)


def test_show_alignment_into_a_missing_folder_works(cli, tiny_ntu, tmp_path):
    rc, _, err = cli(["show-alignment", tiny_ntu, "S001C001P001R001A001", "--out", tmp_path / "new" / "a.png"])
    assert rc == 0 and (tmp_path / "new" / "a.png").read_bytes()[:4] == b"\x89PNG"


SYNTH = [
    (["--classes", "0"], "classes"),
    (["--frames", "0"], "frames"),
    (["--subjects", "0"], "subjects"),
]


@pytest.mark.parametrize("args, fragment", SYNTH, ids=[" ".join(a[0]) for a in SYNTH])
def test_synth_arguments(cli, tmp_path, args, fragment):
    cli.fails(["synth", tmp_path / "s", *args, "--quiet"], fragment)


def test_synth_into_a_file(cli, tmp_path):
    (tmp_path / "s").write_text("x")
    cli.fails(["synth", tmp_path / "s", "--classes", "2", "--subjects", "1", "--cameras", "1", "--quiet"], "s")


PAIRS_CMD = [
    ("missing root", lambda t: ["nwucla", t / "none", "--out", t / "p.csv"], "dataset folder not found"),
    (
        "overlapping views",
        lambda t: ["nwucla", t, "--out", t / "p.csv", "--train-views", "1", "--test-views", "1"],
        "in both train and test",
    ),
    ("no videos", lambda t: ["uwa3d", t, "--out", t / "p.csv"], "no uwa3d videos found"),
]


@pytest.mark.parametrize("what, args, fragment", PAIRS_CMD, ids=[c[0] for c in PAIRS_CMD])
def test_pairs_command(cli, tmp_path, what, args, fragment):
    cli.fails(["pairs", *args(tmp_path)], fragment)

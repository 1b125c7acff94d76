"""Person-centred crops (``prepare --crop person``): boxes from joints, the depth box through the fit, the rule
at deploy time with the user's boxes, and a person-crop model end to end."""

import json
import shutil

import numpy as np
import pytest
from helpers import independent_client, tiny_cfg

from modistill.cli import main
from modistill.data import ntu, video
from modistill.data.align import COLOR_REF, Alignment, depth_to_rgb_affine, person_crop
from modistill.data.cache import load_cache_meta, load_clip, load_manifest
from modistill.data.encode import crop_resize
from modistill.data.options import PrepareOptions
from modistill.data.person_box import DEFAULT_DETECTOR, joint_box, square_box
from modistill.data.prepare_ntu import _video_person_box, prepare_ntu
from modistill.deploy.boxes import box_for, read_boxes
from modistill.deploy.bundle import bundle_from_run, validate_meta
from modistill.deploy.detector import load_detector
from modistill.deploy.video import camera_clip, sampled_frames
from modistill.errors import DataError, UserError
from modistill.training.fingerprint import data_fingerprint
from modistill.training.runner import run_training

S = 32


def _body(xy: list[tuple[float, float]], state: int = 2) -> ntu.Body:
    j = np.zeros((25, 12))
    j[:, 5:7] = np.nan
    for k, p in enumerate(xy):
        j[k, 5:7] = p
        j[k, 11] = state
    return ntu.Body(1, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 2, j)


def test_the_square_rule_pads_centres_moves_inside_and_refuses_what_is_not_there():
    assert square_box((40, 20, 60, 60), (200, 100), 0.25) == (25.0, 15.0, 75.0, 65.0)  # side 40 * 1.25, centred
    assert square_box((0, 0, 20, 40), (200, 100), 0.25) == (0.0, 0.0, 50.0, 50.0)  # moved inside, still square
    assert square_box((10, 10, 50, 95), (200, 100), 0.25) == (0.0, 0.0, 100.0, 100.0)  # capped at the frame's height
    assert square_box((10, 0, 150, 100), (200, 100), 0.25) == (10.0, 0.0, 150.0, 100.0)  # wider than the frame is high
    assert square_box((210, 10, 260, 60), (200, 100)) is None  # outside the frame
    assert square_box((50, 50, 53, 53), (200, 100)) is None  # under 10 px


def test_boxes_from_joints_two_people_out_of_frame_and_frames_without_body():
    a = _body([(100.0, 200.0), (300.0, 700.0)])
    b = _body([(1500.0, 100.0), (2100.0, 900.0)])  # partly outside the 1920-wide frame
    hidden = _body([(5.0, 5.0)], state=0)  # not tracked: left out
    frames = [[], [a], [a, b, hidden], []]
    box = joint_box(frames)
    assert box == pytest.approx(
        [100 / COLOR_REF[0], 100 / COLOR_REF[1], 2100 / COLOR_REF[0], 900 / COLOR_REF[1]], abs=1e-6
    )
    crop = square_box([v * (1920, 1080)[i % 2] for i, v in enumerate(box)], (1920, 1080))
    assert crop == pytest.approx((100.0, 0.0, 1920.0, 1080.0), abs=0.01)  # the joints inside the frame, no further
    assert joint_box([[], []]) is None
    assert _video_person_box("S001C001P001R001A001", {"person_box": None}, []) is None  # refused per video
    fallback = _video_person_box("S001C001P001R001A001", {"person_box": None}, [[0, 0, 0.4, 0.4], [0.2, 0.2, 0.6, 1]])
    assert fallback["box"] == [0.1, 0.1, 0.5, 0.7] and fallback["source"] == "camera median"
    assert "S001C001 median box of 2 videos" in fallback["note"]


def test_the_depth_box_goes_through_the_fit():
    al = Alignment(scale=2.0, offset_x=300.0, offset_y=-50.0, joints_used=40)
    crop = person_crop(al, (700.0, 100.0, 1100.0, 500.0), (1920, 1080), (512, 424))
    ax, bx, ay, by = depth_to_rgb_affine(al, (1920, 1080), (512, 424))
    back = (ax * crop.depth[0] + bx, ay * crop.depth[1] + by, ax * crop.depth[2] + bx, ay * crop.depth[3] + by)
    assert back == pytest.approx(crop.rgb) and crop.depth == pytest.approx((200.0, 75.0, 400.0, 275.0))


@pytest.fixture(scope="module")
def person_cache(tiny_ntu, tmp_path_factory):
    out = tmp_path_factory.mktemp("person")
    assert main(
        [
            "prepare",
            "ntu",
            "--root",
            str(tiny_ntu),
            "--out",
            str(out),
            "--size",
            str(S),
            "--frames",
            "3",
            "--workers",
            "1",
            "--crop",
            "person",
            "--quiet",
        ]
    ) in (0, None)
    return out


def test_a_person_cache_crops_each_video_around_its_joints(person_cache, small_cache, tiny_ntu):
    meta = load_cache_meta(person_cache)
    assert meta["crop"] == {"policy": "person", "padding": 0.25} and "crop" not in load_cache_meta(small_cache)
    layout = ntu.NtuLayout(tiny_ntu)
    fov = load_manifest(small_cache)
    for name, rec in load_manifest(person_cache).items():
        assert rec["status"] == "ok", rec
        w, h = rec["rgb_size"]
        x0, y0, x1, y1 = rec["crop_rgb"]
        assert x1 - x0 == pytest.approx(y1 - y0, abs=0.02) and 0 <= x0 and x1 <= w and 0 <= y0 and y1 <= h
        assert rec["crop_rgb"] != fov[name]["crop_rgb"]
        joints = np.concatenate(
            [b.joints[b.joints[:, 11] != 0, 5:7] for f in ntu.read_skeleton(layout.skeleton(name)) for b in f]
        ) * (w / COLOR_REF[0], h / COLOR_REF[1])
        joints = joints[(joints >= 0).all(1) & (joints <= (w, h)).all(1)]
        inside = (joints >= (x0 - 0.01, y0 - 0.01)).all(1) & (joints <= (x1 + 0.01, y1 + 0.01)).all(1)
        assert inside.all(), name  # every joint of every frame that the camera sees lies inside the crop
        al = Alignment.from_dict(rec["alignment"])
        ax, bx, ay, by = depth_to_rgb_affine(al, (w, h), (128, 106))
        d = rec["crop_depth"]
        assert (ax * d[0] + bx, ay * d[1] + by) == pytest.approx((x0, y0), abs=0.02)


def test_a_video_without_any_body_takes_its_camera_median_box_and_says_so(tiny_ntu, tmp_path):
    root = tmp_path / "tree"
    shutil.copytree(tiny_ntu, root)
    layout = ntu.NtuLayout(root)
    name = sorted(layout.sample_names()[0])[0]
    n = len(ntu.read_skeleton(layout.skeleton(name)))
    ntu.write_skeleton(layout.skeleton(name), [[] for _ in range(n)])
    out = tmp_path / "cache"
    prepare_ntu(root, out, PrepareOptions(size=S, frames=3, crop="person"), show_progress=False)
    recs = load_manifest(out)
    rec = recs[name]
    assert rec["status"] == "ok" and "person box: no body in any skeleton frame" in rec["reason"]
    own = [r["person_box"]["box"] for k, r in recs.items() if k != name and k[:8] == name[:8]]
    assert rec["person_box"]["box"] == pytest.approx(np.median(own, 0).tolist(), abs=1e-6)


def test_the_fingerprint_tells_a_person_cache_from_a_fov_cache(person_cache, small_cache):
    splits, labels = {"train": ["a"]}, {"a": 0}
    assert data_fingerprint(load_cache_meta(person_cache), splits, labels) != data_fingerprint(
        load_cache_meta(small_cache), splits, labels
    )


def test_boxes_files(tmp_path):
    j = tmp_path / "b.json"
    j.write_text(json.dumps({"a.mp4": [1, 2, 30, 40], "/x/b.mp4": [[0, 5, 10, 20], [20, 0, 30, 10]]}))
    boxes = read_boxes(j)
    assert boxes["/x/b.mp4"] == (0, 0, 30, 20)  # merged over people and frames
    assert box_for("some/dir/a.mp4", boxes) == (1, 2, 30, 40) and box_for("/y/b.mp4", boxes) is None
    c = tmp_path / "b.csv"
    c.write_text("video,x0,y0,x1,y1\na.mp4,1,2,3,4\na.mp4,0,3,2,9\n")
    assert read_boxes(c) == {"a.mp4": (0, 2, 3, 9)}
    c.write_text("video,x0,y0,x1,y1\na.mp4,5,2,3,4\n")
    with pytest.raises(UserError, match=r"b.csv: line 2: a box is \[x0, y0, x1, y1\]"):
        read_boxes(c)
    with pytest.raises(UserError, match="header must be video,x0,y0,x1,y1"):
        c.write_text("name,a\n")
        read_boxes(c)


def test_person_model_metadata_is_checked():
    from modistill.deploy.bundle import FORMAT

    base = {
        "format": FORMAT,
        "arch": "resnet18",
        "width": 4,
        "temporal": True,
        "num_classes": 1,
        "class_names": ["a"],
        "connections": [],
        "size": 32,
        "frames": 3,
        "stored_frames": 3,
    }
    good = {"rule": "person", "padding": 0.25, "detector": DEFAULT_DETECTOR, "score": 0.5}
    assert validate_meta(base | {"crop": good}, "m")
    for bad in ({"rule": "person"}, good | {"rule": "fov"}, good | {"padding": 5}, good | {"detector": "yolo"}):
        with pytest.raises(UserError, match="model metadata crop="):
            validate_meta(base | {"crop": bad}, "m")


@pytest.fixture(scope="module")
def person_model(person_cache, tmp_path_factory):
    """A person-crop run at tiny size, exported to ONNX."""
    run = tmp_path_factory.mktemp("person_run") / "run"
    run_training(tiny_cfg(person_cache, "steps=[step4]"), run)
    assert main(["export", str(run), "--out", str(run.parent / "m.onnx")]) in (0, None)
    return run, run.parent / "m.onnx"


def test_person_crop_model_end_to_end_with_the_users_boxes(person_model, person_cache, tiny_ntu, tmp_path, capsys):
    run, onnx_path = person_model
    assert json.loads((run / "run.json").read_text())["input"]["rgb_crop"].startswith("person: ")
    _, meta = bundle_from_run(run)
    assert meta["crop"] == {"rule": "person", "padding": 0.25, "detector": DEFAULT_DETECTOR, "score": 0.5}
    assert "padding" in meta["preprocess"]["crop"]
    layout = ntu.NtuLayout(tiny_ntu)
    name = "S001C002P002R001A003"
    rec = load_manifest(person_cache)[name]
    w, h = rec["rgb_size"]
    tight = [v * (w, h)[i % 2] for i, v in enumerate(rec["person_box"]["box"])]
    # The deploy rule on the video's own joint box gives the cached training clip.
    clip = camera_clip(layout.rgb(name), 3, S, meta["crop"], 3, tight)
    cached = load_clip(person_cache, name)[0].transpose(0, 3, 1, 2)
    assert np.abs(clip.astype(int) - cached.astype(int)).mean() < 1.0
    with pytest.raises(DataError, match="no person box for this video"):
        camera_clip(layout.rgb(name), 3, S, meta["crop"], 3, None)
    impossible = [tight[0], tight[1], 1e9, tight[3]]  # a box that parses but no camera frame can hold
    with pytest.raises(DataError, match=r"person box .* is impossible for the \d+x\d+ frame"):
        camera_clip(layout.rgb(name), 3, S, meta["crop"], 3, impossible)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({name + "_rgb.avi": tight}))
    other = layout.rgb("S001C001P001R001A001")
    capsys.readouterr()
    code = main(
        ["predict", str(layout.rgb(name)), str(other), "--model", str(onnx_path), "--boxes", str(boxes), "--json"]
    )
    res = json.loads(capsys.readouterr().out)
    assert code == 2 and res[0]["error"] is None and len(res[0]["top"]) == 3
    assert "no person box for this video in --boxes" in res[1]["error"]
    code = main(["predict", str(other), "--model", str(onnx_path), "--boxes", str(boxes), "--no-person", "full-frame"])
    assert code in (0, None) and "(note: no person box for this video in --boxes: cropped to the full frame)" in (
        capsys.readouterr().out
    )


DETECTOR = "torchvision:FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1"


def _save_detector(monkeypatch, tmp_path, biases: dict[int, float]) -> dict:
    """An untrained torchvision detector in a temporary hub cache, under the file name of DETECTOR's weights; its
    classifier made to give every proposal the class scores ``biases`` (logits; others -20), so that the wiring
    can be checked offline."""
    import torch
    import torchvision

    from modistill.models.pretrained import weights_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(0)
    model = torchvision.models.get_model(
        "fasterrcnn_mobilenet_v3_large_320_fpn", weights=None, weights_backbone=None, num_classes=91
    )
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.weight.zero_()
        model.roi_heads.box_predictor.cls_score.bias.fill_(-20.0)
        for label, b in biases.items():
            model.roi_heads.box_predictor.cls_score.bias[label] = b
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = weights_path(torchvision.models.get_weight(DETECTOR.removeprefix("torchvision:")))
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return state


def test_a_detector_loads_by_name_from_the_hub_cache_and_gives_predict_its_boxes(
    person_model, tiny_ntu, tmp_path, monkeypatch, capsys
):
    import torch

    state = _save_detector(monkeypatch, tmp_path, {1: 20.0})
    det = load_detector(DETECTOR)
    loaded = det.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items()) and det.person == 1
    video = ntu.NtuLayout(tiny_ntu).rgb("S001C002P002R001A003")
    box = det.box(sampled_frames(video, 3, 3))
    assert box is not None and box[2] > box[0] and box[3] > box[1]
    capsys.readouterr()
    assert main(["predict", str(video), "--model", str(person_model[1]), "--detector", DETECTOR, "--json"]) in (0, None)
    assert json.loads(capsys.readouterr().out)[0]["error"] is None
    # The model's own detector is another file, absent here: one line saying how to fetch it.
    assert main(["predict", str(video), "--model", str(person_model[1])]) == 2
    assert "FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1: not in the local torch hub cache" in (
        capsys.readouterr().err
    )


def test_no_person_found_fails_that_video_and_a_mismatched_detector_file_is_refused(
    person_model, tiny_ntu, tmp_path, monkeypatch, capsys
):
    import math

    import torch

    state = _save_detector(monkeypatch, tmp_path, {2: 20.0})  # sure of a bicycle everywhere, of no person
    video = ntu.NtuLayout(tiny_ntu).rgb("S001C002P002R001A003")
    capsys.readouterr()
    assert main(["predict", str(video), "--model", str(person_model[1]), "--detector", DETECTOR]) == 2
    assert f"{video}: error: no person found ({DETECTOR}, score >= 0.5)" in capsys.readouterr().out
    args = ["predict", str(video), "--model", str(person_model[1]), "--detector", DETECTOR, "--detector-score", "0"]
    assert main(args) == 2  # refused, not replaced by the model's threshold
    assert "--detector-score must be between 0 and 1, got 0.0" in capsys.readouterr().err
    _save_detector(monkeypatch, tmp_path / "b", {0: math.log(7 / 3), 1: 0.0})  # a person at score 0.3
    assert load_detector(DETECTOR).box(sampled_frames(video, 3, 3)) is None
    assert load_detector(DETECTOR, score=0.2).box(sampled_frames(video, 3, 3)) is not None
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = next((tmp_path / "torch").rglob("*.pth"))
    torch.save({k: v for k, v in list(state.items())[:10]}, path)
    with pytest.raises(UserError, match="is not a fasterrcnn_mobilenet_v3_large_320_fpn state dict"):
        load_detector(DETECTOR)
    state["roi_heads.box_predictor.cls_score.bias"] = torch.zeros(5)
    torch.save(state, path)
    with pytest.raises(UserError, match="does not fit fasterrcnn_mobilenet_v3_large_320_fpn .*size mismatch"):
        load_detector(DETECTOR)


def test_pairs_take_person_boxes_from_their_columns(person_cache, tiny_ntu, tmp_path):
    """A pairs row's x0,y0,x1,y1 columns crop RGB as prepare ntu crops around the same joints; depth (registered)
    at the same fractions; a row with neither box nor keypoints fails with the reason."""
    from modistill.data.pairs import prepare_pairs

    layout = ntu.NtuLayout(tiny_ntu)
    names = ["S001C001P001R001A001", "S001C002P002R001A003"]
    lines = ["id,label,rgb,depth,split,x0,y0,x1,y1"]
    for n in names:
        rec = load_manifest(person_cache)[n]
        w, h = rec["rgb_size"]
        box = ",".join(str(v * (w, h)[i % 2]) for i, v in enumerate(rec["person_box"]["box"]))
        lines.append(f"{n},0,{layout.rgb(n)},{layout.depth_dir(n)},train,{box}")
    lines.append(f"nobox,1,{layout.rgb(names[0])},{layout.depth_dir(names[0])},test,,,,")
    (tmp_path / "p.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "cache"
    prepare_pairs(tmp_path / "p.csv", out, PrepareOptions(size=S, frames=3, crop="person"), show_progress=False)
    recs = load_manifest(out)
    assert load_cache_meta(out)["crop"] == {"policy": "person", "padding": 0.25}
    assert (
        recs["nobox"]["status"] == "failed"
        and "needs x0,y0,x1,y1 columns or a pose keypoints file" in (recs["nobox"]["reason"])
    )
    for n in names:
        assert recs[n]["crop_rgb"] == pytest.approx(load_manifest(person_cache)[n]["crop_rgb"], abs=0.02)
        ours, theirs = load_clip(out, n), load_clip(person_cache, n)
        assert np.abs(ours[0].astype(int) - theirs[0].astype(int)).mean() < 1.0
        # depth is cut at the RGB crop's fractions of its own frame: its missing pixels (black) are those there
        x0, y0, x1, y1 = (v / (192, 108)[i % 2] for i, v in enumerate(recs[n]["crop_rgb"]))
        for k, i in enumerate(video.evenly_spaced(layout.depth_count(n), 3)):
            d = ntu.read_depth(layout.depth_frame(n, int(i) + 1))
            dh, dw = d.shape
            cut = crop_resize(d, (x0 * dw, y0 * dh, x1 * dw, y1 * dh), S, nearest=True)
            assert np.array_equal(ours[1, k].sum(-1) == 0, cut == 0)


def test_an_independent_client_crops_a_person_model_like_predict(person_model, tiny_ntu, tmp_path, capsys):
    """The person rule in the metadata is complete: a client written from it matches predict to 1e-5, with boxes
    near the frame's edge, larger than its height, and partly outside it."""
    layout = ntu.NtuLayout(tiny_ntu)
    boxes = {
        "S001C001P001R001A001": [60.0, 20.0, 100.0, 90.0],
        "S001C002P003R001A003": [0.0, 0.0, 30.0, 40.0],
        "S001C001P002R001A002": [20.0, 5.0, 150.0, 108.0],
        "S001C002P001R001A001": [170.0, 40.0, 230.0, 120.0],
    }
    videos = [str(layout.rgb(n)) for n in boxes]
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps({v: b for v, b in zip(videos, boxes.values(), strict=True)}))
    capsys.readouterr()
    onnx_path = person_model[1]
    assert main(["predict", *videos, "--model", str(onnx_path), "--boxes", str(path), "--json", "--topk", "3"]) == 0
    for r, box in zip(json.loads(capsys.readouterr().out), boxes.values(), strict=True):
        ours = independent_client(onnx_path, r["video"], box)
        for t in r["top"]:
            assert abs(ours[t["class"]] - t["prob"]) <= 1e-5, (r["video"], t, ours)


def test_the_detector_exports_to_onnx_and_predict_runs_it_without_pytorch_detection(
    person_model, tiny_ntu, tmp_path, monkeypatch, capsys
):
    _save_detector(monkeypatch, tmp_path, {1: 20.0})
    onnx_det = tmp_path / "det.onnx"
    assert main(["export-detector", "--detector", DETECTOR, "--out", str(onnx_det)]) in (0, None)
    video = ntu.NtuLayout(tiny_ntu).rgb("S001C002P002R001A003")
    frames = sampled_frames(video, 3, 3)  # 192 x 108: not the size the graph was traced at
    ref, ours = load_detector(DETECTOR), load_detector(str(onnx_det))
    for f in frames:
        (b0, l0, _), (b1, l1, _) = ref.detections(f), ours.detections(f)
        assert len(b0) == len(b1) > 0 and set(l0.tolist()) == set(l1.tolist()) == {1}
    assert ref.box(frames) == pytest.approx(ours.box(frames), abs=0.05)  # the merged person box predict uses
    capsys.readouterr()
    results = []
    for det in (DETECTOR, str(onnx_det)):
        assert main(["predict", str(video), "--model", str(person_model[1]), "--detector", det, "--json"]) in (0, None)
        results.append(json.loads(capsys.readouterr().out)[0])
    assert results[0]["top"][0]["class"] == results[1]["top"][0]["class"]
    assert results[0]["top"][0]["prob"] == pytest.approx(results[1]["top"][0]["prob"], abs=1e-4)
    with pytest.raises(UserError, match="not a person detector exported by modistill"):
        load_detector(str(person_model[1]))

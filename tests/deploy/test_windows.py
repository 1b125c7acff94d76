"""Windows over untrimmed videos and streams: the timeline, the window contract, pipes, dropped frames, several
people, signals and the annotated video, with a crafted model whose answer is the clip's colour."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from colour_model import PEOPLE_BOXES, ColourModel, frames_of, two_people, write_video

import modistill.deploy.predict as predict_mod
from modistill.cli import main
from modistill.deploy.timeline import frame_labels
from modistill.deploy.tracks import DetectedPeople, GivenPeople
from modistill.deploy.windowed import WindowedPredictor, WindowOptions

THREE = [("red", 100), ("green", 80), ("blue", 120)]


@pytest.fixture
def colour_cli(monkeypatch):
    """``main([...])`` with the crafted model behind --model colour / colour-person / colour-slow."""

    def load(model, runtime="auto", device="cpu"):
        return ColourModel(person="person" in str(model), delay=0.2 if "slow" in str(model) else 0.0)

    monkeypatch.setattr(predict_mod, "Predictor", load)
    return main


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    path = tmp_path_factory.mktemp("three") / "three.mp4"
    write_video(path, frames_of(THREE))
    return path


def _truth(plan):
    return np.concatenate([np.full(n, ["red", "green", "blue"].index(c)) for c, n in plan])


def test_three_actions_give_three_segments_with_boundaries_within_one_stride(three):
    run = WindowedPredictor(ColourModel()).run(str(three))
    segs = run.segments
    assert [s.name for s in segs] == ["red", "green", "blue"]
    stride = run.plan.stride
    assert run.plan.window == 30 and stride == 8  # the model's median training video at 30 fps, a quarter of it
    assert abs(segs[0].start_frame - 0) <= stride and abs(segs[0].end_frame - 100) <= stride
    assert abs(segs[1].start_frame - 100) <= stride and abs(segs[1].end_frame - 180) <= stride
    assert abs(segs[2].start_frame - 180) <= stride and abs(segs[2].end_frame - 300) <= stride
    acc = (frame_labels(segs, 300, 0) == _truth(THREE)).mean()
    assert acc > 0.93, acc
    assert run.summary()["end"] == "end of input" and run.dropped == 0


def test_each_window_stands_for_the_stride_around_its_centre():
    """Ten windows of 30 frames every 10, the class switching at window 5, no smoothing: the segments meet at the
    point between the two windows' centres (59.5 and 69.5 less half a stride), the last runs to the last frame."""
    from modistill.deploy.timeline import Timeline
    from modistill.deploy.windows import WindowPlan

    plan = WindowPlan(30, 10, (0, 10, 20, 29), 30.0)
    timeline = Timeline(plan, ["a", "b"], smooth=1, threshold=0.5)
    segs = []
    for k in range(10):
        segs += timeline.add(1, k, np.array([0.9, 0.1]) if k < 5 else np.array([0.2, 0.8]))
    segs += timeline.finish()
    assert [(s.name, s.start_frame, s.end_frame, s.windows) for s in segs] == [("a", 0, 60, 5), ("b", 60, 120, 5)]
    assert (segs[1].start_s, segs[1].end_s) == (2.0, 4.0)
    assert segs[0].score == pytest.approx(0.9) and segs[1].score == pytest.approx(0.8)


def test_smoothing_averages_neighbours_and_the_threshold_leaves_doubt_unlabelled():
    from modistill.deploy.timeline import Timeline
    from modistill.deploy.windows import WindowPlan

    plan = WindowPlan(30, 10, (0, 10, 20, 29), 30.0)
    timeline = Timeline(plan, ["a", "b"], smooth=3, threshold=0.6)
    probs = [[0.9, 0.1]] * 4 + [[0.1, 0.9]] + [[0.9, 0.1]] * 4 + [[0.5, 0.5]] * 3  # a one-window blip, then doubt
    segs = []
    for k, p in enumerate(probs):
        segs += timeline.add(7, k, np.array(p))
    segs += timeline.finish()
    # the blip is smoothed away; window 9 (0.9, 0.5, 0.5 averaged: 0.63) is still a, windows 10-11 (0.5) are not
    assert [(s.name, s.start_frame, s.end_frame) for s in segs] == [("a", 0, 110)]


def test_windows_show_the_model_the_frames_training_sampling_picks(tmp_path):
    """Frame k of the video has red = 5k: the clip's red values name the frames the model saw."""
    frames = [np.full((32, 32, 3), (5 * k, 0, 0), np.uint8) for k in range(45)]
    write_video(tmp_path / "count.mp4", frames)
    seen = []

    class Recorder(ColourModel):
        def logits(self, clips):
            seen.append(np.rint(clips[0, :, 0].astype(np.float64).mean(axis=(1, 2)) / 5).astype(int).tolist())
            return super().logits(clips)

    run = WindowedPredictor(Recorder(), options=WindowOptions(smooth=1)).run(str(tmp_path / "count.mp4"))

    def evenly(n, k):
        return np.floor(np.linspace(0, n - 1, k)).astype(int)

    rule = evenly(30, 8)[evenly(8, 4)]  # the bundle's sampling of a 30-frame clip: 8 stored, 4 of those
    assert run.windows == len(seen) == 2
    assert seen == [rule.tolist(), (rule + 8).tolist()]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--window", "5"], "the model learned actions lasting 0.50-3.00 s"),
        (["--stride", "0"], "--stride must be a positive number of seconds"),
        (["--window", "1", "--stride", "2"], "longer than the 1 s window"),
        (["--smooth", "0"], "--smooth must be at least 1"),
        (["--threshold", "1.5"], "--threshold must be a probability"),
        (["--mode", "clip", "--window", "1"], "--window applies to windows over a long video, not to --mode clip"),
    ],
)
def test_windows_the_model_cannot_take_are_refused_in_one_line(colour_cli, three, tmp_path, capsys, args, message):
    out = tmp_path / "t.jsonl"
    assert colour_cli(["predict", str(three), "--model", "colour", "--timeline", str(out), *args]) == 2
    err = capsys.readouterr()
    text = err.err + err.out
    assert message in text and "Traceback" not in text
    assert not out.exists() and not Path(str(out) + ".partial").exists()


def test_a_video_shorter_than_one_window_and_a_model_without_lengths_are_refused(three, tmp_path):
    from modistill.errors import UserError

    write_video(tmp_path / "short.mp4", frames_of([("red", 20)]))
    with pytest.raises(UserError, match="20 frames, shorter than one 30-frame window"):
        WindowedPredictor(ColourModel()).run(str(tmp_path / "short.mp4"))
    with pytest.raises(UserError, match="does not record how long its training videos were"):
        WindowedPredictor(ColourModel(clip_lengths=False)).run(str(three))
    run = WindowedPredictor(ColourModel(clip_lengths=False), options=WindowOptions(window=1.0)).run(str(three))
    assert [s.name for s in run.segments] == ["red", "green", "blue"]
    assert any("unchecked" in n for n in run.notes)


def test_auto_mode_takes_one_clip_for_a_trimmed_file_and_windows_for_a_long_one(colour_cli, three, tmp_path, capsys):
    write_video(tmp_path / "short.mp4", frames_of([("green", 40)]))
    assert colour_cli(["predict", str(tmp_path / "short.mp4"), str(three), "--model", "colour", "--json"]) == 0
    short, long = json.loads(capsys.readouterr().out)
    assert short["mode"] == "clip" and short["top"][0]["name"] == "green"
    assert long["mode"] == "windows" and [s["name"] for s in long["segments"]] == ["red", "green", "blue"]


def _feed(fifo: Path, data: bytes, chunk: int = 4096, pause: float = 0.0) -> threading.Thread:
    def run():
        try:
            with open(fifo, "wb") as f:
                for i in range(0, len(data), chunk):
                    f.write(data[i : i + chunk])
                    f.flush()
                    if pause:
                        time.sleep(pause)
        except (BrokenPipeError, OSError):
            pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_a_pipe_cut_in_the_middle_ends_cleanly_with_what_was_seen(colour_cli, tmp_path, capsys):
    write_video(tmp_path / "three.ts", frames_of(THREE))
    data = (tmp_path / "three.ts").read_bytes()
    fifo = tmp_path / "cam.fifo"
    os.mkfifo(fifo)
    _feed(fifo, data[: len(data) * 6 // 10])  # the writer goes away after ~60 % of the stream
    out = tmp_path / "t.jsonl"
    rc = colour_cli(["predict", str(fifo), "--model", "colour", "--timeline", str(out)])
    std = capsys.readouterr()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    summary = records[-1]
    assert summary["type"] == "summary" and 100 < summary["frames_decoded"] < 300
    assert [r["name"] for r in records if r["type"] == "segment"][:1] == ["red"]
    assert rc in (0, 3) and (summary["end"] == "end of input") == (rc == 0)
    assert std.out.count(f"{fifo}: ") == 1 and "Traceback" not in std.err  # one summary line


def test_a_slow_consumer_drops_frames_counts_them_and_says_so(tmp_path):
    write_video(tmp_path / "three.ts", frames_of(THREE))
    fifo = tmp_path / "cam.fifo"
    os.mkfifo(fifo)
    _feed(fifo, (tmp_path / "three.ts").read_bytes())
    records = []
    run = WindowedPredictor(ColourModel(delay=0.05), options=WindowOptions(queue=2)).run(str(fifo), records.append)
    assert run.dropped > 0 and run.summary()["frames_dropped"] == run.dropped
    assert any(f"{run.dropped} frames dropped" in n for n in run.notes)
    windows = [r for r in records if r["type"] == "window"]
    assert sum(r["missing_samples"] for r in windows) + run.lost_windows > 0


def test_a_file_is_never_dropped_however_slow_the_model(three):
    run = WindowedPredictor(ColourModel(delay=0.01), options=WindowOptions(queue=1)).run(str(three))
    assert run.dropped == 0 and run.decoded == 300 and run.lost_windows == 0


@pytest.fixture(scope="module")
def people_video(tmp_path_factory):
    d = tmp_path_factory.mktemp("people")
    left, right = [("red", 90), ("green", 90)], [("blue", 180)]
    write_video(d / "two.mp4", two_people(left, right))
    return d / "two.mp4"


def test_two_people_get_two_timelines_each_from_their_own_crop(colour_cli, people_video, tmp_path, capsys):
    rows = ["video,frame,track,x0,y0,x1,y1"]
    for t in range(180):
        for track, b in PEOPLE_BOXES.items():
            rows.append(f"two.mp4,{t},{track},{b[0]},{b[1]},{b[2]},{b[3]}")
    (tmp_path / "boxes.csv").write_text("\n".join(rows) + "\n")
    args = ["predict", str(people_video), "--model", "colour-person", "--mode", "windows"]
    args += ["--boxes", str(tmp_path / "boxes.csv")]
    assert colour_cli([*args, "--json", "--timeline", str(tmp_path / "t.csv")]) == 0
    (res,) = json.loads(capsys.readouterr().out)
    by_track: dict[int, list[str]] = {}
    for s in res["segments"]:
        by_track.setdefault(s["track"], []).append(s["name"])
    assert by_track == {1: ["red", "green"], 2: ["blue"]}
    header, *lines = (tmp_path / "t.csv").read_text().splitlines()
    assert header.startswith("video,track,class,name") and len(lines) == 3


class Squares:
    """A detector that finds the two squares (person = label 1), a little jittered, with a weak false box."""

    person, score, spec = 1, 0.5, "squares"

    def __init__(self):
        self.rng = np.random.default_rng(0)
        self.calls = 0

    def detections(self, frame):
        self.calls += 1
        boxes = np.array([PEOPLE_BOXES[1], PEOPLE_BOXES[2], (60, 10, 70, 20)]) + self.rng.normal(0, 1, (3, 4))
        return boxes, np.array([1, 1, 1]), np.array([0.9, 0.8, 0.2])


def test_bytetrack_keeps_two_detected_people_apart(people_video):
    squares = Squares()
    run = WindowedPredictor(ColourModel(person=True), DetectedPeople(squares)).run(str(people_video))
    names = {t: [s.name for s in run.segments if s.track == t] for t in sorted(run.tracks)}
    assert names == {1: ["red", "green"], 2: ["blue"]}
    plan = run.plan
    assert squares.calls == sum(plan.is_sample(t) for t in range(180))  # every sampled frame, no other


def test_a_detection_rate_runs_the_detector_that_often_and_keeps_the_tracks(people_video):
    squares = Squares()
    run = WindowedPredictor(ColourModel(person=True), DetectedPeople(squares, rate=2.0)).run(str(people_video))
    assert squares.calls == 12  # 6 s of video, twice a second
    names = {t: [s.name for s in run.segments if s.track == t] for t in sorted(run.tracks)}
    assert names == {1: ["red", "green"], 2: ["blue"]}


def test_a_frame_without_anyone_is_a_gap_not_a_full_frame_guess(people_video):
    empty = GivenPeople({})
    run = WindowedPredictor(ColourModel(person=True), empty).run(str(people_video))
    assert run.windows == 0 and run.segments == []
    records = []
    run = WindowedPredictor(ColourModel(person=True), empty, WindowOptions(full_frame=True)).run(
        str(people_video), records.append
    )
    windows = [r for r in records if r["type"] == "window"]
    assert run.tracks == {0} and windows
    assert all(r["notes"] == ["no person found: cropped to the full frame"] for r in windows)


@pytest.mark.parametrize(
    "video, extra, message",
    [
        ("rtsp://127.0.0.1:9/cam", [], "rtsp://127.0.0.1:9/cam: error: cannot open"),
        ("/dev/video99", [], "/dev/video99: error: no such device"),
        ("THREE", ["--window", "1", "--stride", "0.1", "--boxes", "BOXES"], "--boxes has boxes for frame 999"),
    ],
)
def test_bad_inputs_are_one_line_and_write_nothing(colour_cli, three, tmp_path, capsys, video, extra, message):
    (tmp_path / "b.csv").write_text(f"video,frame,track,x0,y0,x1,y1\n{three.name},999,1,1,1,20,20\n")
    video = str(three) if video == "THREE" else video
    extra = [str(tmp_path / "b.csv") if e == "BOXES" else e for e in extra]
    model = "colour-person" if "--boxes" in extra else "colour"
    out = tmp_path / "t.jsonl"
    assert colour_cli(["predict", video, "--model", model, "--mode", "windows", "--timeline", str(out), *extra]) == 2
    std = capsys.readouterr()
    assert message in std.out and "Traceback" not in std.err + std.out
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_sigterm_stops_a_live_stream_within_a_second_and_keeps_the_timeline(tmp_path):
    write_video(tmp_path / "long.ts", frames_of(THREE * 4))
    fifo = tmp_path / "cam.fifo"
    os.mkfifo(fifo)
    out = tmp_path / "t.jsonl"
    script = Path(__file__).parent / "colour_model.py"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.Popen(
        [sys.executable, str(script), "predict", str(fifo), "--model", "colour", "--timeline", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    _feed(fifo, (tmp_path / "long.ts").read_bytes(), chunk=2048, pause=0.01)  # slower than the model reads
    partial = Path(str(out) + ".partial")
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert partial.exists(), proc.communicate()[1]
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    stdout, stderr = proc.communicate(timeout=10)
    assert time.monotonic() - sent < 10.0  # it stops at the next 0.1 s poll; the bound only catches a hang
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[-1]["type"] == "summary" and records[-1]["end"] == "stopped by SIGTERM"
    assert any(r["type"] == "window" for r in records)
    assert "stopped by SIGTERM" in stderr and "Traceback" not in stderr


def test_annotate_writes_a_video_with_each_persons_box_in_their_labels_colour(people_video, tmp_path):
    import av

    from modistill.deploy.annotate import _colour

    rows = {t: dict(PEOPLE_BOXES) for t in range(180)}
    out = tmp_path / "ann.mp4"
    drawn, plain = [], []
    WindowedPredictor(ColourModel(person=True), GivenPeople(rows)).run(str(people_video), drawn.append, out)
    WindowedPredictor(ColourModel(person=True), GivenPeople(rows)).run(str(people_video), plain.append)
    strip = [{k: v for k, v in r.items() if k != "latency_ms"} for r in drawn]
    assert strip == [{k: v for k, v in r.items() if k != "latency_ms"} for r in plain]  # drawing never feeds the model
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 180 and frames[0].shape[1] == 160
    late = frames[170].astype(int)
    x0, y0, _, y1 = (int(v) for v in PEOPLE_BOXES[1])
    edge = late[(y0 + y1) // 2, x0]  # the left edge of person 1's box, drawn in green's colour
    assert np.abs(edge - np.array(_colour(1))).max() < 40
    assert not list(tmp_path.glob("*.partial*"))


def test_auto_mode_says_when_it_compared_lengths_in_frames(three):
    """Without the training videos' frame rate the file's length is compared in frames, and the result says so."""
    from colour_model import meta

    from modistill.deploy.predict import choose_mode

    assert choose_mode(meta(), str(three), "auto") == ("windows", None)
    m = meta()
    m["clip_lengths"]["fps"] = None
    mode, note = choose_mode(m, str(three), "auto")
    assert mode == "windows" and "the model's training videos' frame rate is unknown" in note

"""Helpers shared by test modules (no test module imports another): the tiny training config, and a third-party
client of an exported model written from its metadata alone."""

from __future__ import annotations

import json

import numpy as np

from modistill.config import CONFIG_DIR, load_config

# The smallest training that runs every step in seconds on the tests' tiny cache.
TINY_TRAIN = [
    "train.epochs=1",
    "train.step_epochs={}",
    "data.val_performers=1",
    "model.width=4",
    "train.batch_size=4",
    "data.frames=3",
    "data.workers=0",
    "train.progress=false",
    "variants=[]",
]


def tiny_cfg(cache, *extra):
    """The demo config at :data:`TINY_TRAIN`'s size on ``cache``, with ``extra`` overrides."""
    return load_config(CONFIG_DIR / "demo.yaml", [f"data.cache={cache}", *TINY_TRAIN, *extra])


def person_rule(meta, person, w, h):
    """The person-crop rule as the metadata states it (``preprocess.crop``), written from that text."""
    x0, y0, x1, y1 = person
    s = min(max(x1 - x0, y1 - y0) * (1 + meta["crop"]["padding"]), min(w, h))
    out = []
    for lo, hi, extent in ((x0, x1, w), (y0, y1, h)):
        length = min(max(s, min(hi, extent) - max(lo, 0)), extent)
        start = min(max((lo + hi) / 2 - length / 2, 0), extent - length)
        out.append((start, start + length))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def independent_client(onnx_path, video_path, person=None):
    """A third-party client written from the ONNX metadata alone: PyAV, NumPy, OpenCV and onnxruntime, nothing
    of modistill's preprocessing. ``person``: the video's tight person box, for a person-crop model."""
    import av
    import cv2
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    meta = json.loads(sess.get_modelmeta().custom_metadata_map["modistill"])
    with av.open(str(video_path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]

    def evenly(n, k):
        return np.floor(np.linspace(0, n - 1, k)).astype(int)

    keep = evenly(len(frames), meta["stored_frames"])[evenly(meta["stored_frames"], meta["frames"])]
    size = meta["size"]
    clip = []
    for i in keep:
        img = frames[i]
        h, w = img.shape[:2]
        if isinstance(meta["crop"], dict):
            x0, y0, x1, y1 = person_rule(meta, person, w, h)
        else:
            x0, y0, x1, y1 = meta["crop"][0] * w, meta["crop"][1] * h, meta["crop"][2] * w, meta["crop"][3] * h
        sx, sy = size / (x1 - x0), size / (y1 - y0)
        m = np.array([[sx, 0, (0.5 - x0) * sx - 0.5], [0, sy, (0.5 - y0) * sy - 0.5]], np.float32)
        flags = cv2.INTER_AREA if sx < 1 and sy < 1 else cv2.INTER_LINEAR
        out = cv2.warpAffine(img, m, (size, size), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        clip.append(out.astype(np.uint8).transpose(2, 0, 1))
    logits = sess.run(None, {"clips": np.stack(clip)[None].astype(np.float32)})[0][0].astype(np.float64)
    p = np.exp(logits - logits.max())
    return p / p.sum()


def fake_proof_run(args, threads, log_file):
    """A proof run's stand-in, in the spawned process the proof starts for it: notes when it started and ended
    and what it was given in ``proof_runs.jsonl`` beside the seeds' folders. Runs wait for each other's notes, not
    for set times: seed 8's depth run starts its work once seed 7's has started, and seed 7's depth run ends only
    once seed 8's pose run has started (each gives up after 30 s, and the test's assertions then fail). The depth
    run of a seed with a ``fail_S`` file there ends as a user error does (its line in the log, exit code 2); a
    seed with a ``stubborn_S`` file ignores SIGTERM. A run stopped by an exception notes its name."""
    import os
    import signal
    import sys
    import time
    from pathlib import Path

    base, seed, workers, privileged = Path(args[0]), args[2], args[3], args[5]
    record = base.parent / "proof_runs.jsonl"

    def note(event):
        line = json.dumps(
            {
                "seed": seed,
                "p": privileged,
                "event": event,
                "t": time.time(),
                "threads": threads,
                "workers": workers,
                "log": str(log_file),
                "pid": os.getpid(),
            }
        )
        with open(record, "a") as f:
            f.write(line + "\n")

    def wait_for(other_seed, other_p):
        deadline = time.time() + 30
        while time.time() < deadline:
            notes = [json.loads(x) for x in record.read_text().splitlines()]
            if any((n["seed"], n["p"], n["event"]) == (other_seed, other_p, "start") for n in notes):
                return
            time.sleep(0.05)

    note("start")
    if (base.parent / f"stubborn_{seed}").exists():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        if (seed, privileged) == (8, "depth"):
            wait_for(7, "depth")
        if privileged == "depth" and (base.parent / f"fail_{seed}").exists():
            Path(log_file).write_text("modistill demo: no space left on the device\n")
            sys.exit(2)
        if (seed, privileged) == (7, "depth"):
            wait_for(8, "pose")
    except BaseException as e:
        note(f"stopped: {type(e).__name__}")
        raise
    note("end")

"""A crafted action model for the window and stream tests: its logits are the clip's mean colour, so the action
in any window is known exactly (red, green, blue). Also writes the test videos, and runs the real command line
with this model in place of a trained one (``python tests/deploy/colour_model.py predict ...``), for tests that need a
process of their own (signals)."""

from __future__ import annotations

import sys
import time

import numpy as np

from modistill.deploy.predict import Predictor

NAMES = ["red", "green", "blue"]
COLOURS = {"red": (250, 0, 0), "green": (0, 250, 0), "blue": (0, 0, 250)}
FPS = 30


def meta(person: bool = False, clip_lengths: bool = True) -> dict:
    crop = (
        {"rule": "person", "padding": 0.25, "detector": "torchvision:X_Weights.COCO_V1", "score": 0.5}
        if person
        else [0.0, 0.0, 1.0, 1.0]
    )
    m = {
        "crop": crop,
        "frames": 4,
        "stored_frames": 8,
        "size": 16,
        "num_classes": 3,
        "class_names": list(NAMES),
    }
    if clip_lengths:
        m["clip_lengths"] = {"frames": {"min": 15, "median": 30, "max": 90}, "fps": float(FPS)}
    return m


class ColourModel(Predictor):
    """``Predictor`` with crafted logits: 10 x the clip's mean of each colour channel (0-1). ``delay``: seconds
    per call, a slow model."""

    def __init__(self, person: bool = False, delay: float = 0.0, clip_lengths: bool = True):
        self.meta, self.runtime, self.delay = meta(person, clip_lengths), "crafted", delay
        self.calls = 0

    def logits(self, clips: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return clips.astype(np.float64).mean(axis=(1, 3, 4)) / 255 * 10


def frames_of(plan: list[tuple[str, int]], size=(64, 48)) -> list[np.ndarray]:
    """Solid-colour frames: ``plan`` = [(colour name, frames), ...]."""
    out = []
    for name, n in plan:
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[:] = COLOURS[name]
        out += [img] * n
    return out


def two_people(left: list[tuple[str, int]], right: list[tuple[str, int]], size=(160, 64)) -> list[np.ndarray]:
    """Two coloured 'people' (40 x 56 squares) on grey, left and right, each with its own sequence of actions."""
    seq_l = [c for c, n in left for _ in range(n)]
    seq_r = [c for c, n in right for _ in range(n)]
    out = []
    for cl, cr in zip(seq_l, seq_r, strict=True):
        img = np.full((size[1], size[0], 3), 90, np.uint8)
        img[4:60, 10:50] = COLOURS[cl]
        img[4:60, 110:150] = COLOURS[cr]
        out.append(img)
    return out


PEOPLE_BOXES = {1: (10.0, 4.0, 50.0, 60.0), 2: (110.0, 4.0, 150.0, 60.0)}


def write_video(path, frames: list[np.ndarray]) -> None:
    """H.264 at 30 fps in the container the suffix names (``.ts``: MPEG-TS, which streams through a pipe)."""
    from modistill.synthetic.writer import write_video as write

    write(path, frames, FPS)


def main(argv: list[str]) -> int:
    """The command line with :class:`ColourModel` behind ``--model colour`` / ``colour-person`` / ``colour-slow``."""
    import modistill.deploy.predict as predict

    def load(model, runtime="auto", device="cpu"):
        return ColourModel(person="person" in str(model), delay=0.2 if "slow" in str(model) else 0.0)

    predict.Predictor = load  # type: ignore[assignment,misc]
    from modistill.cli import main as cli

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

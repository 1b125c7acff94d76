"""The modalities a cache can hold, by name: what each one is and how a training flip acts on it. A new modality is
one entry here and one encoder in ``prepare``; caches list theirs in ``cache.json`` (``modalities``), and
``model.privileged`` names the one the privileged stream sees. The config's and the command line's choices are
read from here, so the module stays light (no NumPy at import): ``--help`` imports it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

POSE_ENCODING = "gaussian joints+limbs; R left, G right, B centre"


def _hflip(frames: np.ndarray) -> np.ndarray:
    return frames[..., ::-1, :]


def _flip_pose(frames: np.ndarray) -> np.ndarray:
    from modistill.data.pose import flip_pose

    return flip_pose(frames)


@dataclass(frozen=True)
class Modality:
    name: str
    title: str  # in tables and reports: "Depth", "Pose"
    words: str  # what the stored uint8 image is, for run metadata and model cards
    flip: Callable[[np.ndarray], np.ndarray]  # horizontal flip of [..., H, W, 3] frames


MODALITIES: dict[str, Modality] = {
    m.name: m
    for m in (
        Modality("rgb", "RGB", "RGB uint8", _hflip),
        Modality("depth", "Depth", "encoded depth uint8 (cache.json: depth_encoding)", _hflip),
        Modality("pose", "Pose", f"pose image uint8 ({POSE_ENCODING})", _flip_pose),
    )
}
LEGACY = ("rgb", "depth")  # caches written before they listed their modalities
PRIVILEGED = tuple(m for m in MODALITIES if m != "rgb")


def cache_modalities(meta: dict) -> tuple[str, ...]:
    """The modalities a cache holds, in the order of its clip arrays' first axis."""
    return tuple(meta.get("modalities", LEGACY))


def title(name: str) -> str:
    return MODALITIES[name].title if name in MODALITIES else name


_DEPTH_WORD = re.compile(r"\b([dD])epth\b")


def as_privileged(text: str, privileged: str = "depth") -> str:
    """Words of the paper's tables and claims ("depth stream", "RGB & Depth") for the run's privileged modality.
    Whole words outside `code spans` only, so that file, key and folder names (``noisy_depth.png``,
    ``depth_to_rgb``, a cache path) stay as they are."""
    if privileged == "depth":
        return text
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # even parts are outside code spans
        parts[i] = _DEPTH_WORD.sub(lambda m: title(privileged) if m.group(1) == "D" else privileged, parts[i])
    return "`".join(parts)

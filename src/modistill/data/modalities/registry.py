"""The modality registry: what a modality declares, and the look-ups every stage makes by a modality's name.

A modality is one module that calls :func:`register` with a :class:`Modality`: the words for its stored image, its
encoder (a video's :class:`Material` → uint8 frames), its training flip and the settings a cache records of it
(which enter the data fingerprint of every step trained on that cache). Another package's modalities register
through the ``modistill.modalities`` entry-point group. The module imports no NumPy: ``--help`` reads the choices.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modistill.errors import DataError, UserError
from modistill.utils.plugins import load_entry_points

if TYPE_CHECKING:
    import numpy as np

    from modistill.data.options import PrepareOptions
    from modistill.data.pose import JointLayout

ENTRY_POINT_GROUP = "modistill.modalities"
LEGACY = ("rgb", "depth")  # caches written before they listed their modalities
# cache.json's own keys: a modality's settings are stored under its name beside them.
RESERVED = frozenset(
    {"benchmark", "class_names", "crop", "depth_encoding", "frames", "modalities", "num_classes", "origin"}
    | {"root", "size", "source", "version", "versions", "created", "privileged"}
)


@dataclass(frozen=True)
class Keypoints:
    """The bodies of a video's sampled frames in clip pixels, as a reader found them."""

    bodies: list[list[np.ndarray]]  # per sampled frame, each body's joints [J, 2] (NaN: not tracked)
    layout: JointLayout
    blank_reason: str | None = None  # set when no frame can have a body (e.g. an unreadable skeleton)


@dataclass(frozen=True)
class Material:
    """One video at the clip's sampled frames, cut to the clip's region and size: what encoders read. A reader
    fills what its source has; an encoder that needs what is missing calls :meth:`need`, which fails the video
    with a line naming the file."""

    source: Path  # the video's RGB file or folder, named in errors
    options: PrepareOptions
    rgb: np.ndarray  # uint8 [T, S, S, 3]
    frames: list[int]  # the video's frame index of each of the T frames
    depth: np.ndarray | None = None  # uint16 millimetres [T, S, S], the same scene region as ``rgb``
    depth_range: tuple[float, float] | None = None  # near/far (mm) of the person over the video
    image: np.ndarray | None = None  # uint8 [T, S, S, 3]: a privileged column of 8-bit images (IR, flow) as given
    keypoints: Callable[[], Keypoints] | None = None  # read when an encoder asks
    missing: dict[str, str] | None = None  # what the reader lacks → why, for :meth:`need`'s message

    def __post_init__(self) -> None:
        if self.keypoints is not None:  # read once per video, however many modalities draw on them (pose, depth_pose)
            object.__setattr__(self, "keypoints", functools.cache(self.keypoints))

    def need(self, what: str, modality: str) -> None:
        if getattr(self, what) is None:
            why = (self.missing or {}).get(what, f"this source has no {what}")
            raise DataError(self.source, f"{why} (needed for the {modality} modality)")


def _hflip(frames: np.ndarray) -> np.ndarray:
    return frames[..., ::-1, :]


def _no_settings(options: PrepareOptions, reader: str) -> dict | None:
    return None


@dataclass(frozen=True)
class Modality:
    """What a modality is. ``encode`` returns uint8 [T, S, S, 3] frames of the material and a note for the video's
    record (None when there is nothing to say); ``settings(options, reader)`` what ``cache.json`` records of the
    options it used (``reader``: ``ntu`` or ``pairs``); ``describe(cache_meta)`` its words for one cache when
    they depend on those settings; ``noise_in_units``: Table 3's noise can be applied before the encoding (the
    paper's form), which needs ``evaluate.noise_on=depth``'s decoder."""

    name: str
    title: str  # in tables and reports: "Depth", "Pose"
    words: str  # what the stored uint8 image is, for run metadata and model cards
    encode: Callable[[Material], tuple[np.ndarray, str | None]]
    flip: Callable[[np.ndarray], np.ndarray] = _hflip  # horizontal flip of [..., H, W, 3] frames
    settings: Callable[[PrepareOptions, str], dict | None] = _no_settings
    describe: Callable[[dict], str] | None = None
    noise_in_units: bool = False

    def words_for(self, cache_meta: dict) -> str:
        return self.describe(cache_meta) if self.describe else self.words


_REGISTRY: dict[str, Modality] = {}
_plugins_loaded = False
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def register(modality: Modality) -> Modality:
    """Add a modality under its name (lowercase, no comma: it is a ``--modalities`` value and a cache key)."""
    name = modality.name
    if not _NAME.fullmatch(name) or name in RESERVED:
        raise ValueError(
            f"modality name {name!r} must be lowercase letters, digits and _, and not one of {sorted(RESERVED)}"
        )
    old = _REGISTRY.get(name)
    if old is not None and old.encode.__module__ != modality.encode.__module__:
        raise ValueError(f"modality {name!r} is already registered by {old.encode.__module__}")
    _REGISTRY[name] = modality
    return modality


def _load_plugins() -> None:
    """Import the modules other packages declare in the ``modistill.modalities`` entry-point group, once."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    load_entry_points(ENTRY_POINT_GROUP, "modality")


def names() -> tuple[str, ...]:
    """Every registered modality, built-ins first."""
    _load_plugins()
    return tuple(_REGISTRY)


def privileged_names() -> tuple[str, ...]:
    """What ``model.privileged`` may name: every modality but RGB."""
    return tuple(m for m in names() if m != "rgb")


def get(name: str) -> Modality:
    _load_plugins()
    if name not in _REGISTRY:
        raise UserError(
            f"unknown modality {name!r}; choose one of {list(_REGISTRY)} (another package's modality registers "
            f"through the {ENTRY_POINT_GROUP} entry-point group)"
        )
    return _REGISTRY[name]


def modules_of(chosen: Iterable[str]) -> tuple[str, ...]:
    """The modules defining these modalities: what a worker process imports so that its registry has them."""
    return tuple(sorted({get(m).encode.__module__ for m in chosen} - {"__main__", "__mp_main__"}))


def import_modules(modules: Iterable[str]) -> None:
    for m in modules:
        importlib.import_module(m)


def encode_clip(material: Material, chosen: Iterable[str]) -> tuple[np.ndarray, list[str]]:
    """The clip array ``[M, T, S, S, 3]`` of the chosen modalities, in their order, and the notes of their
    encoders, each part prefixed by the modality's name."""
    import numpy as np

    chosen = list(chosen)
    t, s = material.rgb.shape[:2]
    out = np.empty((len(chosen), t, s, s, 3), np.uint8)
    notes: list[str] = []
    for i, name in enumerate(chosen):
        frames, note = get(name).encode(material)
        if frames.shape != out.shape[1:] or frames.dtype != np.uint8:
            raise ValueError(
                f"the {name} modality's encoder gave {frames.dtype} {tuple(frames.shape)}, not uint8 {out.shape[1:]}"
            )
        out[i] = frames
        if note:
            notes.extend(f"{name}: {part}" for part in note.split("; "))
    return out, notes


def cache_modalities(meta: dict) -> tuple[str, ...]:
    """The modalities a cache holds, in the order of its clip arrays' first axis."""
    return tuple(meta.get("modalities", LEGACY))


def settings_fields(meta: dict) -> dict[str, dict]:
    """The modality settings a cache recorded (its modalities' own entries), for the data fingerprint."""
    return {m: meta[m] for m in cache_modalities(meta) if meta.get(m)}


def title(name: str) -> str:
    return _REGISTRY[name].title if name in _REGISTRY else name


_DEPTH_WORD = re.compile(r"\b([dD])epth\b")


def as_privileged(text: str, privileged: str = "depth") -> str:
    """Words of the paper's tables and claims ("depth stream", "RGB & Depth") for the run's privileged modality.
    Whole words outside `code spans` only, so that file, key and folder names (``noisy_depth.png``,
    ``depth_to_rgb``, a cache path) stay as they are."""
    if privileged == "depth":
        return text
    name = title(privileged)
    word = _DEPTH_WORD
    if name.lower().startswith("depth"):  # "Depth+Pose": words already replaced are not replaced again
        word = re.compile(_DEPTH_WORD.pattern + "(?!" + re.escape(name[5:]) + ")")
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # even parts are outside code spans
        parts[i] = word.sub(lambda m: name if m.group(1) == "D" else privileged, parts[i])
    return "`".join(parts)

"""Training/evaluation clips from a prepared cache: aligned RGB and depth ``[T, 3, H, W]`` uint8 tensors.

Normalisation happens on the device (:func:`modistill.models.preprocess.normalize`), so workers move uint8 (4x
less than float32).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from modistill.data import ntu, video
from modistill.data.cache import load_cache_meta, load_clip, load_manifest
from modistill.data.modalities import cache_modalities, get
from modistill.errors import UserError

SAMPLINGS = ("even", "mixed", "jitter")


def sample_frames(
    available: int, wanted: int, train: bool, sampling: str, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Indices into the stored frames: evenly spaced (paper, and always in evaluation); in training ``mixed`` takes
    50 % random ordered frames (released code) and ``jitter`` one random frame in each of ``wanted`` equal segments
    (TSN's sampling: the clip keeps its order and coverage, the exact instants vary)."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if train and rng is not None and available > wanted:
        if sampling == "mixed" and rng.random() < 0.5:
            return np.sort(rng.permutation(available)[:wanted])
        if sampling == "jitter":
            edges = np.linspace(0, available, wanted + 1)
            lo, hi = np.ceil(edges[:-1]).astype(int), np.ceil(edges[1:]).astype(int)
            return lo + (rng.random(wanted) * (hi - lo)).astype(int)
    return video.evenly_spaced(available, wanted)


def random_resized_box(
    rng: np.random.Generator, size: int, scale: tuple[float, float], ratio: tuple[float, float] = (3 / 4, 4 / 3)
) -> tuple[int, int, int, int]:
    """(x, y, w, h) of a random box covering ``scale`` of a ``size``² frame's area at an aspect ratio in ``ratio``
    (log-uniform), drawn as torchvision's RandomResizedCrop does (10 tries, then the whole frame), from ``rng`` so
    that the item's seed alone decides it."""
    area = size * size
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = float(np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]))))
        w, h = round(np.sqrt(target * aspect)), round(np.sqrt(target / aspect))
        if 0 < w <= size and 0 < h <= size:
            return int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1)), w, h
    return 0, 0, size, size


def sample_label(name: str, record: dict) -> int:
    """A sample's class index: pairs manifests store it, NTU names carry it."""
    return int(record["label"]) if "label" in record else ntu.parse_name(name).label


class ClipDataset(Dataset):
    """Items: ``{"rgb": uint8 [T,3,S,S], "depth": uint8 [T,3,S,S], "label": int, "index": int}``, one entry per
    modality asked for (any the cache holds, e.g. ``pose``).

    Training applies the same horizontal flip to every modality (p = ``flip``), as in the paper, each in its own
    way (a pose image also exchanges left and right), and with ``crop_scale`` the same random resized crop
    (:func:`random_resized_box`), so the modalities stay aligned.
    """

    def __init__(
        self,
        cache: str | Path,
        names: list[str],
        frames: int = 5,
        train: bool = False,
        sampling: str = "even",
        flip: float = 0.5,
        modalities: tuple[str, ...] = ("rgb", "depth"),
        crop_scale: tuple[float, float] | None = None,
    ):
        self.cache = Path(cache)
        self.names = list(names)
        meta = load_cache_meta(self.cache)
        self.held = cache_modalities(meta)
        missing = [m for m in modalities if m not in self.held]
        if missing:
            raise UserError(
                f"{self.cache}: the cache holds {', '.join(self.held)}, not {', '.join(missing)}; "
                f"prepare a cache with --modalities {','.join(dict.fromkeys([*self.held, *missing]))}"
            )
        self.shape = (len(self.held), meta["frames"], meta["size"], meta["size"], 3)
        records = load_manifest(self.cache)
        self.labels = [sample_label(n, records.get(n, {})) for n in self.names]
        self.frames, self.train, self.sampling, self.flip = frames, train, sampling, flip
        self.modalities = modalities
        self.crop_scale = (float(crop_scale[0]), float(crop_scale[1])) if crop_scale else None

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        """``key``: an index, or ``(index, seed)`` from :class:`~modistill.training.sampler.EpochSampler`, whose
        seed alone decides the item's augmentation (exact resume); a bare index in training draws a fresh seed."""
        i, seed = key if isinstance(key, tuple) else (key, None)
        rng = None  # evaluation draws nothing: evenly spaced frames, no flip
        if self.train:
            rng = np.random.default_rng(seed if seed is not None else int(torch.randint(0, 2**62, ())))
        arr = load_clip(self.cache, self.names[i], self.shape)
        idx = sample_frames(arr.shape[1], self.frames, self.train, self.sampling, rng)
        flip = rng is not None and self.flip > 0 and bool(rng.random() < self.flip)
        size = self.shape[2]
        box = random_resized_box(rng, size, self.crop_scale) if rng is not None and self.crop_scale else None
        item: dict = {"label": self.labels[i], "index": i}
        for m in self.modalities:
            x = arr[self.held.index(m), idx]  # [T, S, S, 3]
            if box is not None:
                bx, by, bw, bh = box
                x = np.stack(
                    [
                        cv2.resize(
                            np.ascontiguousarray(f[by : by + bh, bx : bx + bw]),
                            (size, size),
                            interpolation=cv2.INTER_LINEAR,
                        )
                        for f in x
                    ]
                )
            if flip:
                x = get(m).flip(x)
            item[m] = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)
        return item

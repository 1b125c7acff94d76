"""Training/evaluation clips from a prepared cache: aligned RGB and depth ``[T, 3, H, W]`` uint8 tensors.

Normalisation happens on the device (:func:`modistill.models.preprocess.normalize`), so workers move uint8 (4x
less than float32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from modistill.data import ntu, video
from modistill.data.cache import load_cache_meta, load_clip, load_manifest

MODALITIES = ("rgb", "depth")


def sample_frames(available: int, wanted: int, train: bool, sampling: str,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """Indices into the stored frames: evenly spaced (paper); ``mixed`` trains with 50% random ordered frames
    (released code)."""
    if train and sampling == "mixed" and available >= wanted and rng is not None and rng.random() < 0.5:
        return np.sort(rng.permutation(available)[:wanted])
    return video.evenly_spaced(available, wanted)


def sample_label(name: str, record: dict) -> int:
    """A sample's class index: pairs manifests store it, NTU names carry it."""
    return int(record["label"]) if "label" in record else ntu.parse_name(name).label


class ClipDataset(Dataset):
    """Items: ``{"rgb": uint8 [T,3,S,S], "depth": uint8 [T,3,S,S], "label": int, "index": int}``.

    Training applies the same horizontal flip to both modalities (p = ``flip``), as in the paper.
    """

    def __init__(self, cache: str | Path, names: list[str], frames: int = 5, train: bool = False,
                 sampling: str = "even", flip: float = 0.5, modalities: tuple[str, ...] = MODALITIES):
        self.cache = Path(cache)
        self.names = list(names)
        meta = load_cache_meta(self.cache)
        self.shape = (2, meta["frames"], meta["size"], meta["size"], 3)
        records = load_manifest(self.cache)
        self.labels = [sample_label(n, records.get(n, {})) for n in self.names]
        self.frames, self.train, self.sampling, self.flip = frames, train, sampling, flip
        self.modalities = modalities

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
        flip = self.train and self.flip > 0 and bool(rng.random() < self.flip)
        item: dict = {"label": self.labels[i], "index": i}
        for m in self.modalities:
            x = arr[MODALITIES.index(m), idx]  # [T, S, S, 3]
            if flip:
                x = x[:, :, ::-1]
            item[m] = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)
        return item

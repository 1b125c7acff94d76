"""Table 3: the step-2 model tested with clean RGB and speckle-noised depth ``I·n, n ~ N(1, σ²)``, and void depth.

Two forms (``evaluate.noise_on``): ``depth`` (default, the paper's: I is the depth map in millimetres, noised before
the jet encoding) and ``encoded`` (the released code's ``--noise``: the 8-bit encoded image is multiplied per
colour channel and re-saturated, which caps the effective variance). The cache stores the encoded image; ``depth``
decodes it back to millimetres exactly (the palette has 256 levels; each video's near/far is in its record),
noises, and encodes again.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from modistill.config import Config
from modistill.data.cache import load_cache_meta, load_manifest
from modistill.data.dataset import ClipDataset
from modistill.data.encode import depth_palette
from modistill.errors import UserError
from modistill.training.module import StepModule
from modistill.training.run import step_weights

NOISE_WHERE = {
    "depth": "the depth map in millimetres, before encoding (paper)",
    "encoded": "the encoded 8-bit depth image per colour channel (released code)",
}


def speckle(depth_u8: torch.Tensor, sigma2: float, generator: torch.Generator) -> torch.Tensor:
    """Multiplicative Gaussian noise with variance ``sigma2`` on the encoded depth image, re-saturated to uint8
    (the released code's ``--noise``); ``sigma2 < 0`` gives void (all-zero) depth."""
    if sigma2 < 0:
        return torch.zeros_like(depth_u8)
    if sigma2 == 0:
        return depth_u8
    n = 1.0 + math.sqrt(sigma2) * torch.randn(depth_u8.shape, generator=generator)
    return (depth_u8.float() * n).clamp(0, 255).round().to(torch.uint8)


class DepthCodec:
    """Decodes a cached depth image to millimetres and encodes it back, with one video's near/far."""

    def __init__(self, encoding: str):
        palette = depth_palette(encoding)
        pal = palette[:256].astype(np.int64)
        keys = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
        order = np.argsort(keys, kind="stable")
        self.keys, self.levels = keys[order], order
        self.palette = torch.from_numpy(palette)

    def levels_of(self, img: np.ndarray) -> np.ndarray:
        """(..., 3) uint8 → (...) level 0-255, or -1 for missing depth (black). In the gray encoding the farthest
        level is black too, so those pixels read as missing and stay unnoised (jet has no such ambiguity)."""
        k = (img[..., 0].astype(np.int64) << 16) | (img[..., 1].astype(np.int64) << 8) | img[..., 2]
        i = np.clip(np.searchsorted(self.keys, k), 0, len(self.keys) - 1)
        if not np.array_equal(self.keys[i][k != 0], k[k != 0]):
            raise UserError(
                "the cached depth holds colours outside its encoding's palette (resized or "
                "compressed); use evaluate.noise_on=encoded"
            )
        return np.where(k == 0, -1, self.levels[i])

    def noisy(self, img: torch.Tensor, near: float, far: float, sigma2: float, g: torch.Generator) -> torch.Tensor:
        """``img``: [T, 3, H, W] uint8 of one video; depth·n, n ~ N(1, σ²), re-encoded with the same near/far.
        Noise that makes depth non-positive makes it missing, as a sensor reports it."""
        level = torch.from_numpy(self.levels_of(img.permute(0, 2, 3, 1).numpy()))
        mm = near + (1.0 - level.double() / 255.0) * (far - near)
        mm = mm * (1.0 + math.sqrt(sigma2) * torch.randn(mm.shape, generator=g, dtype=torch.float64))
        norm = ((mm - near) / (far - near)).clamp(0.0, 1.0)
        out = ((1.0 - norm) * 255.0 + 0.5).long()
        out[(level < 0) | (mm <= 0)] = 256
        return self.palette[out].permute(0, 3, 1, 2).contiguous()


def _depth_ranges(cache: str | Path, names: list[str]) -> list[tuple[float, float]]:
    records = load_manifest(cache)
    missing = [n for n in names if "depth_mm" not in records.get(n, {})]
    if missing:
        raise UserError(
            f"{cache}: no depth range recorded for {len(missing)} test videos (e.g. {missing[0]}); "
            f"noise on the depth map needs it: use evaluate.noise_on=encoded"
        )
    return [tuple(records[n]["depth_mm"]) for n in names]


@torch.no_grad()
def noisy_depth_accuracies(
    cfg: Config,
    run_dir: str | Path,
    test_names: list[str],
    num_classes: int,
    sigma2s: list[float],
    void: bool = True,
    seed: int = 0,
) -> list[dict]:
    """Accuracy of the step-2 model for each noise level; ``void`` adds the all-zero depth row."""
    form = cfg.evaluate.noise_on
    d = cfg.data
    if form == "depth":
        encoding = load_cache_meta(d.cache_dir())["depth_encoding"]
        codec = DepthCodec(encoding)
        ranges = _depth_ranges(d.cache_dir(), test_names)
    module = StepModule("step2", cfg, num_classes, ema=False)
    state = step_weights(Path(run_dir), "step2")
    module.load_state_dict(state)
    module.eval()
    priv = cfg.model.privileged  # encoded noise only, for another modality than depth (config check)
    ds = ClipDataset(d.cache_dir(), test_names, d.frames, train=False, modalities=("rgb", priv))
    loader = DataLoader(ds, batch_size=cfg.train.batch_size, num_workers=0)
    levels = list(sigma2s) + ([-1.0] if void else [])
    rows = []
    for s2 in levels:
        g = torch.Generator().manual_seed(seed)
        correct = total = 0
        for batch in loader:
            batch = dict(batch)
            if form == "depth" and s2 > 0:
                batch["depth"] = torch.stack(
                    [
                        codec.noisy(x, *ranges[int(i)], s2, g)
                        for x, i in zip(batch["depth"], batch["index"], strict=True)
                    ]
                )
            else:
                batch[priv] = speckle(batch[priv], s2, g)
            pred = module(batch).fused.argmax(-1)
            correct += int((pred == batch["label"]).sum())
            total += len(pred)
        rows.append(
            {"sigma2": "void" if s2 < 0 else ("no noise" if s2 == 0 else f"{s2:g}"), "accuracy": correct / total}
        )
    return rows

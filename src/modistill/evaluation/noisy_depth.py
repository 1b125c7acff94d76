"""Table 3: the step-2 model tested with clean RGB and speckle-noised depth ``I·n, n ~ N(1, σ)``, and void depth."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from modistill.data.dataset import ClipDataset
from modistill.training.module import StepModule
from modistill.utils.io import load_tensors


def speckle(depth_u8: torch.Tensor, sigma2: float, generator: torch.Generator) -> torch.Tensor:
    """Multiplicative Gaussian noise with variance ``sigma2`` on the encoded depth image, re-saturated to uint8
    (the released code's ``--noise``); ``sigma2 < 0`` gives void (all-zero) depth."""
    if sigma2 < 0:
        return torch.zeros_like(depth_u8)
    if sigma2 == 0:
        return depth_u8
    n = 1.0 + math.sqrt(sigma2) * torch.randn(depth_u8.shape, generator=generator)
    return (depth_u8.float() * n).clamp(0, 255).round().to(torch.uint8)


@torch.no_grad()
def noisy_depth_accuracies(cfg: dict, run_dir: str | Path, test_names: list[str], num_classes: int,
                           sigma2s: list[float], void: bool = True, seed: int = 0) -> list[dict]:
    """Accuracy of the step-2 model for each noise level; ``void`` adds the all-zero depth row."""
    module = StepModule("step2", cfg, num_classes)
    state = load_tensors(Path(run_dir) / "step2" / "weights.pt", "retrain step2 (--retrain-from step2)")
    module.load_state_dict(state)
    module.eval()
    d = cfg["data"]
    ds = ClipDataset(d["cache"], test_names, d["frames"], train=False)
    loader = DataLoader(ds, batch_size=cfg["train"]["batch_size"], num_workers=0)
    levels = list(sigma2s) + ([-1.0] if void else [])
    rows = []
    for s2 in levels:
        g = torch.Generator().manual_seed(seed)
        correct = total = 0
        for batch in loader:
            batch = dict(batch)
            batch["depth"] = speckle(batch["depth"], s2, g)
            pred = module(batch).fused.argmax(-1)
            correct += int((pred == batch["label"]).sum())
            total += len(pred)
        rows.append({"sigma2": "void" if s2 < 0 else ("no noise" if s2 == 0 else f"{s2:g}"),
                     "accuracy": correct / total})
    return rows

"""Shared fixtures: a tiny synthetic NTU tree made once per session (tests never use real dataset files)."""

from __future__ import annotations

import pytest
import torch

from modistill.data.options import PrepareOptions
from modistill.data.prepare_ntu import prepare_ntu
from modistill.synthetic import SynthConfig, generate

torch.set_num_threads(2)

TINY = SynthConfig(
    classes=3, subjects=3, cameras=2, replications=1, frames=12, rgb_size=(192, 108), depth_size=(128, 106), seed=7
)


@pytest.fixture(scope="session")
def tiny_ntu(tmp_path_factory):
    root = tmp_path_factory.mktemp("ntu")
    generate(TINY, root, workers=1, show_progress=False)
    return root


@pytest.fixture(scope="session")
def small_cache(tiny_ntu, tmp_path_factory):
    """The tiny tree prepared at 32 px, 3 frames: enough for training and deployment tests."""
    out = tmp_path_factory.mktemp("cache32")
    prepare_ntu(tiny_ntu, out, PrepareOptions(size=32, frames=3), show_progress=False)
    return out

"""Input normalisation, part of the model: uint8 frames in, ImageNet-normalised floats out. Training applies it on
the device, and the deployable model holds it, so an exported graph takes raw RGB 0-255."""

from __future__ import annotations

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 [..., 3, H, W] → float ImageNet-normalised (applied to jet depth too, as to any 3-channel image).

    The result is in the standard (channels-first) memory format whatever the input's strides: loader clips are
    channels-last views, and on CPU oneDNN's channels-last weight gradients are not bitwise reproducible."""
    x = x.contiguous()
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(3, 1, 1) * 255.0
    std = torch.tensor(IMAGENET_STD, device=x.device).view(3, 1, 1) * 255.0
    return (x.float() - mean) / std

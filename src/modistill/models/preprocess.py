"""Input normalisation, part of the model: uint8 frames in, ImageNet-normalised floats out. Training applies it on
the device, and the deployable model holds it, so an exported graph takes raw RGB 0-255."""

from __future__ import annotations

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET = (IMAGENET_MEAN, IMAGENET_STD)
# torchvision's video models were trained on Kinetics-400 with these (their weights' transforms).
KINETICS = ((0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989))


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on CUDA (cuDNN's fast layout: 1.6x a step-2 training step at batch 32 on an H100), the
    standard layout on CPU, where oneDNN's channels-last weight gradients are not bitwise reproducible."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


def normalize(
    x: torch.Tensor, dtype: torch.dtype = torch.float32, stats: tuple[tuple[float, ...], tuple[float, ...]] = IMAGENET
) -> torch.Tensor:
    """uint8 [..., 3, H, W] → float normalised by the backbone's ``stats`` (mean, std; ImageNet's for the 2D
    ResNets, Kinetics-400's for the video ones), applied to jet depth too, as to any 3-channel image, in
    the device's memory format (:func:`memory_format`) whatever the input's strides. The arithmetic is float32;
    the result is cast to ``dtype`` afterwards, the weights' type (bf16 or fp16 under ``*-true`` precision), since
    a 0-255 image cast first would lose its low bits."""
    if x.dim() == 4:
        x = x.contiguous(memory_format=memory_format(x.device))
    elif x.device.type == "cuda":  # [B, T, 3, H, W]: channels-last per frame, as the stream flattens B·T
        x = x.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, x.shape[:2])
    else:
        x = x.contiguous()
    mean = torch.tensor(stats[0], device=x.device).view(3, 1, 1) * 255.0
    std = torch.tensor(stats[1], device=x.device).view(3, 1, 1) * 255.0
    return ((x.float() - mean) / std).to(dtype)

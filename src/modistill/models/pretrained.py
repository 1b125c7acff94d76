"""ImageNet weights for a stream: by torchvision name, from the Hugging Face Hub, or from a local file.

``model.pretrained`` accepts ``torchvision:IMAGENET1K_V2`` (the weights enum of the configured backbone),
``hf-hub:timm/resnet50.a1_in1k`` (a repository's ``model.safetensors``; timm's ResNets use torchvision's parameter
names, so they load by key without timm) and a local ``.pth``/``.pt``/``.safetensors`` file. Nothing is downloaded
at run time: named weights are read from the standard caches (``$TORCH_HOME/hub/checkpoints``, the Hugging Face
cache), filled once on a machine with network (docs/model.md: "Pretrained weights").
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import torch

from modistill.errors import UserError
from modistill.utils.hf_cache import HF_SCHEME, cached

SCHEMES = ("torchvision:", HF_SCHEME)


def is_named(spec: str) -> bool:
    return spec.startswith(SCHEMES)


def torchvision_file(arch: str, name: str) -> Path:
    """Where torch.hub keeps the file of a torchvision weights enum (it downloads nothing already there)."""
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(arch)[name]
    except KeyError:
        known = [w.name for w in torchvision.models.get_model_weights(arch)]
        raise UserError(f"torchvision:{name}: no such {arch} weights; known: {known}") from None
    return weights_path(weights)


def weights_path(weights) -> Path:
    """The file torch.hub keeps a torchvision weights enum member in."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def _read(path: Path, spec: str) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as e:
            raise UserError(f"{spec}: {path} is not a readable safetensors file ({e})") from None
    from modistill.utils.io import load_tensors

    state = load_tensors(path, "give a torchvision-style state dict (.pth) or .safetensors file")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"{spec}: {path} does not hold a state dict")
    return state


def load_pretrained_state(spec: str, arch: str) -> tuple[dict[str, torch.Tensor], str]:
    """The weights ``spec`` names for ``arch``, and the file they came from."""
    path = pretrained_file(spec, arch)
    return _read(path, spec), str(path)


def pretrained_file(spec: str, arch: str) -> Path:
    """The local file ``spec`` names for ``arch``; one line saying how to get it when it is not there."""
    if spec.startswith("torchvision:"):
        name = spec.removeprefix("torchvision:")
        path = torchvision_file(arch, name)
        if not path.is_file():
            raise UserError(
                f"{spec}: not in the local torch hub cache ({path}); fetch it once where there is "
                f"network: python -c \"import torchvision; torchvision.models.get_model_weights('{arch}')"
                f'.{name}.get_state_dict()" (TORCH_HOME sets the folder)'
            )
        return path
    if spec.startswith(HF_SCHEME):
        return cached(spec, "model.safetensors")
    path = Path(spec)
    if not path.is_file():
        raise UserError(f"{spec}: pretrained weights file not found")
    return path

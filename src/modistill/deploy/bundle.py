"""The deployable RGB-only model and everything needed to use it: weights plus metadata (backbone, classes, input
size, frames, the RGB crop used in training), saved as safetensors. Loading never unpickles code.

A bundle carries a SHA-256 of its tensors, so edited weights or metadata are refused instead of silently giving
wrong predictions.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

from modistill.data.dataset import normalize
from modistill.data.prepare import load_manifest
from modistill.errors import UserError
from modistill.models.multistream import RGBOnly
from modistill.models.stream import ARCHS, Stream
from modistill.training.steps import STEPS, connections_for
from modistill.utils.io import atomic_write

FORMAT = "modistill-rgb/1"
FULL_FRAME = (0.0, 0.0, 1.0, 1.0)


class DeployModel(nn.Module):
    """``clips``: float RGB in [0, 255], ``[B, T, 3, H, W]`` → logits ``[B, classes]``. Normalisation is inside, so
    the ONNX graph and the PyTorch module take the same raw input."""

    def __init__(self, model: RGBOnly):
        super().__init__()
        self.model = model

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.model(normalize(clips))


def _digest(state: dict[str, torch.Tensor], meta_json: str) -> str:
    h = hashlib.sha256(meta_json.encode())
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def deploy_crop(cache: str | Path | None) -> tuple[list[float], str]:
    """The RGB region (fractions of the frame) a camera image is cropped to before resizing: the median of the
    training cache's skeleton-aligned crops, which is what the model saw. Full frame when the cache is unknown."""
    recs = [r for r in (load_manifest(cache).values() if cache else ())
            if r.get("status") == "ok" and r.get("crop_rgb") and r.get("rgb_size")]
    if recs:
        boxes = np.array([np.array(r["crop_rgb"]) / np.tile(r["rgb_size"], 2) for r in recs])
        return [round(float(v), 4) for v in np.median(boxes, 0)], f"median of {len(recs)} training crops"
    return list(FULL_FRAME), "full frame (no prepared cache with crop records)"


DEPLOYABLE = ("step4", "step4_inv")


def bundle_from_run(run_dir: str | Path, step: str = "step4") -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and bundle metadata of a run's RGB-only step (step 4, or its inverted-connection variant)."""
    run_dir = Path(run_dir)
    if step not in DEPLOYABLE:
        raise UserError(f"only {DEPLOYABLE} are RGB-only models, not {step!r}")
    weights = run_dir / step / "weights.pt"
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.exists():
        raise UserError(f"{run_dir}: not a run folder (no config.yaml)")
    if not weights.exists():
        raise UserError(f"{run_dir}: {step} is not finished (no {step}/weights.pt); train it first")
    cfg = yaml.safe_load(cfg_path.read_text())
    state = torch.load(weights, map_location="cpu", weights_only=True)
    state = {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
    meta_path = Path(cfg["data"]["cache"] or "") / "cache.json"
    cache_meta = json.loads(meta_path.read_text()) if cfg["data"]["cache"] and meta_path.exists() else {}
    num_classes = int(state["streams.rgb.fc.weight"].shape[0])
    names = cache_meta.get("class_names") or [f"class {i}" for i in range(num_classes)]
    crop, crop_source = deploy_crop(cfg["data"]["cache"])
    m = cfg["model"]
    meta = {"format": FORMAT, "arch": m["arch"], "width": m["width"], "temporal": m["temporal"],
            "num_classes": num_classes, "class_names": names,
            "connections": [list(c) for c in connections_for(STEPS[step], m["connection"])],
            "size": int(cache_meta.get("size", 224)), "frames": int(cfg["data"]["frames"]), "crop": crop,
            "crop_source": crop_source, "input": "float RGB 0-255 [B, T, 3, H, W]", "run": str(run_dir), "step": step}
    return state, meta


def build_model(state: dict[str, torch.Tensor], meta: dict, source: str | Path) -> DeployModel:
    """The eval-mode deploy model; refuses metadata that does not describe the tensors."""
    if meta.get("arch") not in ARCHS:
        raise UserError(f"{source}: unknown backbone {meta.get('arch')!r} in the model metadata")
    if len(meta["class_names"]) != meta["num_classes"]:
        raise UserError(f"{source}: {len(meta['class_names'])} class names for {meta['num_classes']} classes")
    streams = [Stream(meta["arch"], meta["num_classes"], meta["width"], meta["temporal"]) for _ in range(2)]
    model = RGBOnly(*streams, connections=[tuple(c) for c in meta["connections"]])
    own = model.net.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise UserError(f"{source}: weights are not a {meta['arch']} (width {meta['width']}) RGB + hallucination "
                        f"model (missing {missing[:2]}, unexpected {unexpected[:2]})")
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise UserError(f"{source}: {k} has shape {tuple(v.shape)}, a {meta['arch']} (width {meta['width']}) "
                            f"with {meta['num_classes']} classes needs {tuple(own[k].shape)}")
    model.net.load_state_dict(state)
    return DeployModel(model).eval()


def save_bundle(state: dict[str, torch.Tensor], meta: dict, path: str | Path) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.contiguous() for k, v in state.items()}
    meta_json = json.dumps(meta, sort_keys=True)
    atomic_write(path, lambda p: save_file(state, str(p), metadata={"modistill": meta_json,
                                                                     "sha256": _digest(state, meta_json)}))
    return path


def load_bundle(path: str | Path) -> tuple[DeployModel, dict]:
    """Load a ``.safetensors`` bundle, verifying its digest and that its metadata matches its tensors."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: model file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable safetensors file ({e})") from None
    if "modistill" not in header:
        raise UserError(f"{path}: no modistill metadata; export it with `modistill export RUN`")
    try:
        meta = json.loads(header["modistill"])
    except ValueError:
        raise UserError(f"{path}: corrupt modistill metadata") from None
    if meta.get("format") != FORMAT:
        raise UserError(f"{path}: bundle format {meta.get('format')!r}, this version reads {FORMAT!r}")
    if header.get("sha256") != _digest(state, header["modistill"]):
        raise UserError(f"{path}: checksum mismatch, the weights or metadata were modified after export")
    return build_model(state, meta, path), meta


def load_deploy_model(source: str | Path, step: str = "step4") -> tuple[DeployModel, dict]:
    """A run folder (its step-4 model, or ``step``) or a ``.safetensors`` bundle."""
    source = Path(source)
    if source.is_dir():
        state, meta = bundle_from_run(source, step)
        return build_model(state, meta, source), meta
    return load_bundle(source)

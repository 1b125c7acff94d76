"""The deployable RGB-only model and everything needed to use it: weights plus metadata (backbone, classes, input
size, frames and their sampling, the RGB crop used in training), saved as safetensors. Loading never unpickles
code. The metadata comes from the run folder's own description (``run.json``, ``STEP/step.json``), never from
the training cache or config, and is validated whenever a model file is loaded.

A bundle carries a SHA-256 of its tensors and metadata. It detects corruption (a damaged download, a truncated
copy, an accidental edit); it is not a signature: anyone who edits the file can recompute it.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch
from torch import nn

from modistill.data.person_box import PERSON_RULE
from modistill.errors import NonFiniteError, UserError
from modistill.models.backbone import list_backbones, make_stream
from modistill.models.multistream import RGBOnly
from modistill.models.preprocess import normalize
from modistill.training.run import WEIGHTS, RunInfo
from modistill.training.steps import DEPLOYABLE
from modistill.utils.io import atomic_write

FORMAT = "modistill-rgb/2"
PREPROCESS = {
    "frames": "decode every frame in presentation order (n of them); keep frames "
    "evenly_spaced(n, stored_frames)[evenly_spaced(stored_frames, frames)] with "
    "evenly_spaced(n, k) = floor(linspace(0, n - 1, k))",
    "color": "RGB, 8 bits per channel (PyAV frame.to_ndarray(format='rgb24'))",
    "crop": "box in pixels x0, y0, x1, y1 = crop[0]*W, crop[1]*H, crop[2]*W, crop[3]*H for a W x H frame, not "
    "rounded (sub-pixel)",
    "resize": "cv2.warpAffine(frame, M, (size, size), flags=INTER_AREA if sx < 1 and sy < 1 else INTER_LINEAR, "
    "borderMode=BORDER_CONSTANT, borderValue=0) with sx = size / (x1 - x0), sy = size / (y1 - y0), "
    "M = [[sx, 0, (0.5 - x0) * sx - 0.5], [0, sy, (0.5 - y0) * sy - 0.5]] (float32), then uint8",
    "input": "float32 RGB 0-255 [B, frames, 3, size, size] (frames x channels x rows x columns); the "
    "backbone's normalisation (the mean and std its weights were trained with) is inside the model",
    "output": "logits [B, num_classes]; probabilities = softmax(logits)",
}

PERSON_CROP = (
    f"crop is a rule: given the tight box x0, y0, x1, y1 in pixels around every person over the sampled frames "
    f"(the user's boxes, or those of crop['detector'] with score >= crop['score'], merged over frames and people), "
    f"the crop is {PERSON_RULE}; padding = crop['padding']"
)


class DeployModel(nn.Module):
    """``clips``: float RGB in [0, 255], ``[B, T, 3, H, W]`` → logits ``[B, classes]``. Normalisation is inside, so
    the ONNX graph and the PyTorch module take the same raw input."""

    def __init__(self, model: RGBOnly):
        super().__init__()
        self.model = model

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.model(normalize(clips, stats=self.model.net.stream("rgb").input_stats))


def _digest(state: dict[str, torch.Tensor], meta_json: str) -> str:
    """SHA-256 of the metadata and of each tensor's raw bytes, whatever its dtype (NumPy has no bfloat16)."""
    h = hashlib.sha256(meta_json.encode())
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


REQUIRED = (
    "format",
    "arch",
    "width",
    "temporal",
    "num_classes",
    "class_names",
    "connections",
    "size",
    "frames",
    "stored_frames",
    "crop",
)


def _positive_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def validate_meta(meta: object, source: str | Path) -> dict:
    """Refuse model metadata that is incomplete or implausible, with one line naming the file and the key."""
    if not isinstance(meta, dict):
        raise UserError(f"{source}: model metadata is not a JSON object")
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise UserError(f"{source}: model metadata lacks {', '.join(missing)}")
    if meta["format"] != FORMAT:
        raise UserError(f"{source}: model format {meta['format']!r}, this version reads {FORMAT!r}; export again")
    for k in ("width", "num_classes", "size", "frames", "stored_frames"):
        if not _positive_int(meta[k]):
            raise UserError(f"{source}: model metadata {k}={meta[k]!r} must be a positive integer")
    if meta["frames"] > meta["stored_frames"]:
        raise UserError(
            f"{source}: model metadata frames={meta['frames']} exceeds stored_frames={meta['stored_frames']}"
        )
    crop = meta["crop"]
    if isinstance(crop, dict):
        pad, score = crop.get("padding"), crop.get("score")
        if (
            crop.get("rule") != "person"
            or not isinstance(pad, int | float)
            or isinstance(pad, bool)
            or not 0 <= pad <= 2
            or not str(crop.get("detector", "")).startswith("torchvision:")
            or not isinstance(score, int | float)
            or not 0 < score < 1
        ):
            raise UserError(
                f"{source}: model metadata crop={crop!r} must be a box [x0, y0, x1, y1] or "
                f'{{"rule": "person", "padding": p, "detector": "torchvision:...", "score": s}} with 0 <= p <= 2 '
                f"and 0 < s < 1"
            )
    elif (
        not isinstance(crop, list)
        or len(crop) != 4
        or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in crop)
        or not (0 <= crop[0] < crop[2] <= 1 and 0 <= crop[1] < crop[3] <= 1)
    ):
        raise UserError(
            f"{source}: model metadata crop={crop!r} must be [x0, y0, x1, y1] fractions with "
            f"0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1"
        )
    names = meta["class_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(names) != meta["num_classes"]:
        raise UserError(
            f"{source}: model metadata has {len(names) if isinstance(names, list) else 'no list of'} "
            f"class names for {meta['num_classes']} classes"
        )
    _check_clip_lengths(meta.get("clip_lengths"), source)
    if meta["arch"] not in list_backbones():
        raise UserError(
            f"{source}: unknown backbone {meta['arch']!r} in the model metadata (registered: {list_backbones()}; "
            "import or install the package that registers it)"
        )
    return meta


def _check_clip_lengths(c: object, source: str | Path) -> None:
    """The training videos' lengths decide the windows over a long video: implausible ones are refused."""
    if c is None:
        return
    frames = c.get("frames") if isinstance(c, dict) else None
    fps = c.get("fps") if isinstance(c, dict) else None
    if (
        not isinstance(frames, dict)
        or not all(_positive_int(frames.get(k)) for k in ("min", "median", "max"))
        or not frames["min"] <= frames["median"] <= frames["max"]
        or not (fps is None or (isinstance(fps, int | float) and not isinstance(fps, bool) and 1 <= fps <= 1000))
    ):
        raise UserError(
            f'{source}: model metadata clip_lengths={c!r} must be {{"frames": {{"min", "median", "max"}} '
            f'(positive integers in order), "fps": null or 1-1000}}'
        )


def check_finite(tensors: dict[str, torch.Tensor], source: str | Path) -> None:
    bad = next((k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise NonFiniteError(f"{source}: weight {bad} holds NaN or infinite values; retrain that step")


def bundle_from_run(run_dir: str | Path, step: str = "step4") -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and bundle metadata of a run's RGB-only step (step 4, or its inverted-connection variant), from the
    run folder alone."""
    if step not in DEPLOYABLE:
        raise UserError(f"only {DEPLOYABLE} are RGB-only models, not {step!r}")
    run = RunInfo(run_dir)
    rec = run.step(step)
    weights = run.dir / step / WEIGHTS
    state = run.weights(step)
    # float32 whatever the training precision (bf16-true, 64-true): the ONNX graph and PyTorch deploy in float32
    state = {
        k.removeprefix("net."): v.float() if v.is_floating_point() else v
        for k, v in state.items()
        if k.startswith("net.")
    }
    check_finite(state, weights)
    try:
        inp, data, model = run.meta["input"], run.meta["data"], run.meta["model"]
        meta = {
            "format": FORMAT,
            "arch": model["arch"],
            "width": model["width"],
            "temporal": model["temporal"],
            "num_classes": data["num_classes"],
            "class_names": data["class_names"],
            "connections": rec["connections"],
            "size": inp["size"],
            "frames": inp["frames"],
            "stored_frames": inp["stored_frames"],
            "crop": inp["deploy_crop"],
            "crop_source": inp["deploy_crop_source"],
            "crop_policy": inp["rgb_crop"],
            "clip_lengths": inp.get("clip_lengths"),  # None for runs made before they were kept
            "preprocess": PREPROCESS | ({"crop": PERSON_CROP} if isinstance(inp["deploy_crop"], dict) else {}),
            "run": str(run.dir.resolve()),
            "step": step,
            "step_fingerprint": rec["fingerprint"],
        }
    except KeyError as e:
        raise UserError(f"{run.dir}: run.json or {step}/step.json lacks {e}; retrain into a new --run-dir") from None
    return state, validate_meta(meta, run.dir / "run.json")


def build_model(state: dict[str, torch.Tensor], meta: dict, source: str | Path) -> DeployModel:
    """The eval-mode deploy model; refuses metadata that does not describe the tensors."""
    validate_meta(meta, source)
    rgb, hall = (make_stream(meta["arch"], meta["num_classes"], meta["width"], meta["temporal"]) for _ in range(2))
    model = RGBOnly(rgb, hall, connections=[(str(a), str(b)) for a, b in meta["connections"]])
    own = model.net.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise UserError(
            f"{source}: weights are not a {meta['arch']} (width {meta['width']}) RGB + hallucination "
            f"model (missing {missing[:2]}, unexpected {unexpected[:2]})"
        )
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise UserError(
                f"{source}: {k} has shape {tuple(v.shape)}, a {meta['arch']} (width {meta['width']}) "
                f"with {meta['num_classes']} classes needs {tuple(own[k].shape)}"
            )
    model.net.load_state_dict(state)
    return DeployModel(model).eval()


def save_bundle(state: dict[str, torch.Tensor], meta: dict, path: str | Path) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.contiguous() for k, v in state.items()}
    meta_json = json.dumps(meta, sort_keys=True)
    atomic_write(
        path, lambda p: save_file(state, str(p), metadata={"modistill": meta_json, "sha256": _digest(state, meta_json)})
    )
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
    validate_meta(meta, path)
    if header.get("sha256") != _digest(state, header["modistill"]):
        raise UserError(f"{path}: checksum mismatch: the file is damaged or was edited after export")
    check_finite(state, path)
    return build_model(state, meta, path), meta


def load_deploy_model(source: str | Path, step: str = "step4") -> tuple[DeployModel, dict]:
    """A run folder (its step-4 model, or ``step``), a Hub-style folder, ``hf-hub:USER/NAME`` (a Hub-style folder
    in the local Hugging Face cache) or a ``.safetensors`` bundle."""
    from modistill.deploy.hub import WEIGHTS, hub_folder, is_hub_folder
    from modistill.utils.hf_cache import HF_SCHEME

    if str(source).startswith(HF_SCHEME):
        return load_bundle(hub_folder(str(source)) / WEIGHTS)
    source = Path(source)
    if is_hub_folder(source):
        return load_bundle(source / WEIGHTS)
    if source.is_dir():
        state, meta = bundle_from_run(source, step)
        return build_model(state, meta, source), meta
    return load_bundle(source)

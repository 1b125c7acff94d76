"""The person box of a video from RGB alone: a torchvision detector, loaded by name from the local torch hub cache.

``torchvision:FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1`` (the default: the cheapest Faster R-CNN with a
useful box mAP) or any torchvision detection weights whose categories include ``person`` (for example
``KeypointRCNN_ResNet50_FPN_Weights.COCO_V1``). Nothing is downloaded: the file must already be in
``$TORCH_HOME/hub/checkpoints``, where torchvision keeps it. The detector runs on the video's sampled frames (the
frames the action model sees); person boxes scoring at least ``score`` are merged over frames and people (NTU has
two-person actions) into one tight box, which the model's crop rule then pads and squares
(:mod:`modistill.data.person_box`). ``export-detector`` writes it as its own ONNX file, which ``predict
--detector FILE.onnx`` runs on onnxruntime, so that the whole pipeline runs without PyTorch.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from modistill.data.person_box import DEFAULT_DETECTOR, DETECTOR_SCORE, Box, union_box
from modistill.errors import UserError
from modistill.utils.io import atomic_write

META_KEY = "modistill_detector"


def _image(frame: np.ndarray) -> np.ndarray:
    """What the detector takes: float32 RGB [3, H, W] in [0, 1]."""
    return np.ascontiguousarray(frame.transpose(2, 0, 1), dtype=np.float32) / 255.0


@dataclass
class PersonDetector:
    spec: str
    model: nn.Module
    person: int  # the label index of "person"
    score: float

    def detections(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes [N, 4] (pixels), labels [N] and scores [N] of one RGB frame (H, W, 3 uint8)."""
        with torch.inference_mode():
            o = self.model([torch.from_numpy(_image(frame))])[0]
        return o["boxes"].numpy(), o["labels"].numpy(), o["scores"].numpy()

    def box(self, frames: Sequence[np.ndarray]) -> Box | None:
        """The tight box (pixels) around every person found in the RGB ``frames`` (H, W, 3 uint8); None when none
        scores at least ``score``."""
        found = []
        for f in frames:
            boxes, labels, scores = self.detections(f)
            found.extend(boxes[(labels == self.person) & (scores >= self.score)].tolist())
        return union_box(found)


class OnnxPersonDetector(PersonDetector):
    """The same detector from its ONNX file (:func:`export_detector`), on onnxruntime: no PyTorch needed."""

    def __init__(self, path: Path, score: float | None = None):
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            meta = json.loads(self.session.get_modelmeta().custom_metadata_map[META_KEY])
        except KeyError:
            raise UserError(f"{path}: not a person detector exported by modistill (no {META_KEY} metadata)") from None
        except Exception as e:  # onnxruntime raises its own exception types for unreadable files
            raise UserError(f"{path}: not a readable ONNX file ({str(e).splitlines()[0]})") from None
        self.spec, self.person = str(path), int(meta["person"])
        self.score = meta["score"] if score is None else score

    def detections(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        boxes, labels, scores = self.session.run(None, {"image": _image(frame)})
        return boxes, labels, scores


def export_detector(det: PersonDetector, out: str | Path) -> Path:
    """Write the detector as ONNX (one frame of any size per call; the TorchScript-based exporter, which
    torchvision's detection models support), with what it is and which label is a person in its metadata."""
    import onnx

    out = Path(out)
    meta = {"spec": det.spec, "person": det.person, "score": det.score, "input": "image: float32 RGB [3, H, W], 0-1"}

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                det.model,
                ([torch.rand(3, 240, 320)],),
                str(tmp),
                opset_version=17,
                input_names=["image"],
                output_names=["boxes", "labels", "scores"],
                dynamic_axes={"image": [1, 2], "boxes": [0], "labels": [0], "scores": [0]},
                dynamo=False,
            )
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, json.dumps(meta)
        onnx.save(proto, str(tmp))

    atomic_write(out, write)
    return out


def _weights(spec: str):
    import torchvision

    name = spec.removeprefix("torchvision:")
    if not spec.startswith("torchvision:") or "." not in name:
        raise UserError(f"{spec}: a detector is named torchvision:WEIGHTS_ENUM.MEMBER, e.g. {DEFAULT_DETECTOR}")
    try:
        return torchvision.models.get_weight(name)
    except (ValueError, KeyError, AttributeError):
        raise UserError(f"{spec}: no such torchvision weights") from None


def _builder(weights) -> str:
    import torchvision
    from torchvision.models import detection

    for name in torchvision.models.list_models(module=detection):
        if torchvision.models.get_model_weights(name) is type(weights):
            return name
    raise UserError(f"torchvision:{weights}: not the weights of a torchvision detection model")


def load_detector(spec: str = DEFAULT_DETECTOR, score: float = DETECTOR_SCORE) -> PersonDetector:
    """The eval-mode detector ``spec`` names (torchvision weights, read from the hub cache by key, or an ``.onnx``
    file of :func:`export_detector`); one line when the file is missing or does not fit the architecture."""
    import torchvision

    from modistill.models.pretrained import _read, weights_path

    if not 0 < score < 1:
        raise UserError(f"--detector-score must be between 0 and 1, got {score}")
    if spec.endswith(".onnx"):
        if not Path(spec).is_file():
            raise UserError(f"{spec}: detector file not found")
        return OnnxPersonDetector(Path(spec), score)
    weights = _weights(spec)
    categories = weights.meta.get("categories") or []
    if "person" not in categories:
        raise UserError(f"{spec}: its categories have no 'person'")
    arch = _builder(weights)
    path = weights_path(weights)
    if not path.is_file():
        raise UserError(
            f"{spec}: not in the local torch hub cache ({path}); fetch it once where there is network: "
            f"python -c \"import torchvision; torchvision.models.get_weight('{weights}').get_state_dict()\" "
            "(TORCH_HOME sets the folder)"
        )
    # Built without weights (that would download), then loaded by key. Untrained builders use BatchNorm2d where the
    # trained ones use FrozenBatchNorm2d: the same arithmetic in eval mode, plus a batch counter the file lacks.
    model = torchvision.models.get_model(arch, weights=None, weights_backbone=None, num_classes=len(categories))
    state = _read(path, spec)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        first = next((ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln), str(e).splitlines()[0])
        raise UserError(f"{spec}: {path} does not fit {arch} ({first.rstrip('.')})") from None
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise UserError(
            f"{spec}: {path} is not a {arch} state dict (missing {missing[:2]}, unexpected {unexpected[:2]})"
        )
    return PersonDetector(spec, model.eval(), categories.index("person"), score)

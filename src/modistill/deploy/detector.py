"""The person box of a video from RGB alone: a torchvision detector, loaded by name from the local torch hub cache.

``torchvision:FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1`` (the default: the cheapest Faster R-CNN with a
useful box mAP) or any torchvision detection weights whose categories include ``person`` (for example
``KeypointRCNN_ResNet50_FPN_Weights.COCO_V1``). Nothing is downloaded: the file must already be in
``$TORCH_HOME/hub/checkpoints``, where torchvision keeps it. The detector runs on the video's sampled frames (the
frames the action model sees); person boxes scoring at least ``score`` are merged over frames and people (NTU has
two-person actions) into one tight box, which the model's crop rule then pads and squares
(:mod:`modistill.data.person_box`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from modistill.data.person_box import DEFAULT_DETECTOR, DETECTOR_SCORE, Box, union_box
from modistill.errors import UserError


@dataclass
class PersonDetector:
    spec: str
    model: nn.Module
    person: int  # the label index of "person"
    score: float

    def box(self, frames: Sequence[np.ndarray]) -> Box | None:
        """The tight box (pixels) around every person found in the RGB ``frames`` (H, W, 3 uint8); None when none
        scores at least ``score``."""
        images = [torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1).float().div_(255) for f in frames]
        with torch.inference_mode():
            found = self.model(images)
        boxes = [o["boxes"][(o["labels"] == self.person) & (o["scores"] >= self.score)].tolist() for o in found]
        return union_box([b for per_frame in boxes for b in per_frame])


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
    """The eval-mode detector ``spec`` names, its weights read from the hub cache by key; one line when the file
    is missing or does not fit the architecture."""
    import torchvision

    from modistill.models.pretrained import _read, weights_path

    if not 0 < score < 1:
        raise UserError(f"--detector-score must be between 0 and 1, got {score}")
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

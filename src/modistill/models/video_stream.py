"""One stream on a torchvision video ResNet (r3d_18, mc3_18, r2plus1d_18), behind the same stream interface as
the paper's per-frame 2D ResNet (:class:`modistill.models.backbone.StreamBackbone`): ``enter`` (clips → stem output),
``stage`` (one of four stages, sending its unit-1 output and receiving another stream's), ``video_logits``.

These backbones convolve over time themselves, so no temporal convolution is added (``temporal`` is ignored).
The multiplicative connection sits where it sits in the 2D case, on the residual branch input of each stage's
second unit: ``x + x_pre ⊙ m`` (paper eq. 2), with ``x_pre`` the pre-activation of the target's unit 1 and ``m``
the source's unit-1 output; the shortcut still sees ``x``. Feature maps are ``[B, C, T, H, W]``; parameter names
are torchvision's, so Kinetics-400 state dicts load by key (``torchvision:KINETICS400_V1``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import video as tv_video
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D, Conv3DNoTemporal, Conv3DSimple

from modistill.models.backbone import StreamBackbone, register_backbone
from modistill.models.preprocess import KINETICS

VIDEO_ARCHS = {
    "r3d_18": [Conv3DSimple] * 4,
    "mc3_18": [Conv3DSimple] + [Conv3DNoTemporal] * 3,
    "r2plus1d_18": [Conv2Plus1D] * 4,
}
STAGES = ("layer1", "layer2", "layer3", "layer4")


def video_block(
    block: BasicBlock, x: torch.Tensor, inject: tuple[torch.Tensor, torch.Tensor] | None = None, keep_pre: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """torchvision's video BasicBlock, with the injection of eq. 2 on its residual branch; returns (output,
    pre-activation sum if ``keep_pre`` else None)."""
    identity = x if block.downsample is None else block.downsample(x)
    r = x if inject is None else torch.addcmul(x, inject[0], inject[1])
    r = block.conv2(block.conv1(r)) + identity
    return F.relu(r), (r if keep_pre else None)


@register_backbone(*VIDEO_ARCHS)
class VideoStream(tv_video.VideoResNet, StreamBackbone):
    """A torchvision video ResNet as a stream; ``width`` rescales its channels (64 = torchvision's) for small CPU
    models, with the same parameter names."""

    input_stats = KINETICS  # the normalisation its pretrained weights expect
    per_frame = False  # convolves over time itself: no temporal convs are added
    clip_multiples = (1, 1)  # strided convolutions pad as part of the model: any clip
    clip_why = "any clip"
    reference_clip = (16, 112)  # torchvision's Kinetics-400 evaluation clip
    # torchvision's submodules, typed for the interface's methods
    stem: nn.Module
    avgpool: nn.Module
    fc: nn.Linear

    def __init__(self, arch: str = "r2plus1d_18", num_classes: int = 60, width: int = 64, temporal: bool = True):
        stem = tv_video.resnet.R2Plus1dStem if arch == "r2plus1d_18" else tv_video.resnet.BasicStem
        super().__init__(BasicBlock, VIDEO_ARCHS[arch], [2, 2, 2, 2], stem, num_classes)
        if width != 64:
            self._rescale(arch, width, num_classes)
        self.arch, self.width, self.num_classes = arch, width, num_classes
        self.feature_dim = self.fc.in_features

    def _rescale(self, arch: str, width: int, num_classes: int) -> None:
        mid = max(1, 45 * width // 64)  # the (2+1)D stem's middle channels scale with the width, as 45 of 64
        if arch == "r2plus1d_18":
            self.stem = nn.Sequential(
                nn.Conv3d(3, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
                nn.BatchNorm3d(mid),
                nn.ReLU(inplace=True),
                nn.Conv3d(mid, width, (3, 1, 1), (1, 1, 1), (1, 0, 0), bias=False),
                nn.BatchNorm3d(width),
                nn.ReLU(inplace=True),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv3d(3, width, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                nn.BatchNorm3d(width),
                nn.ReLU(inplace=True),
            )
        self.inplanes = width
        makers = VIDEO_ARCHS[arch]
        for k, name in enumerate(STAGES):
            layer = tv_video.VideoResNet._make_layer(self, BasicBlock, makers[k], width * 2**k, 2, 1 if k == 0 else 2)
            setattr(self, name, layer)
        self.fc = nn.Linear(width * 8, num_classes)
        for m in self.modules():  # VideoResNet's own initialisation
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.fc.weight, 0, 0.01)
        nn.init.zeros_(self.fc.bias)

    def enter(self, clips: torch.Tensor) -> torch.Tensor:
        """``clips`` [B, T, 3, H, W] → the stem's output [B, C, T, h, w]."""
        return self.stem(clips.transpose(1, 2))

    def stage(
        self, k: int, x: torch.Tensor, frames: int, source: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run stage ``k`` (0-3): (stage output, unit-1 output: what this stream sends to a target); ``source``:
        the other stream's unit-1 output of the same stage, injected into this stream's unit 2."""
        units = getattr(self, STAGES[k])
        out1, pre1 = video_block(units[0], x, keep_pre=source is not None)
        y = out1
        for i, unit in enumerate(units[1:], start=1):
            inject = (pre1, source) if (i == 1 and source is not None and pre1 is not None) else None
            y, _ = video_block(unit, y, inject)
        return y, out1

    def video_logits(self, feat: torch.Tensor, frames: int) -> torch.Tensor:
        """Video logits of a [B, C, T, h, w] feature map (global average over time and space)."""
        return self.fc(torch.flatten(self.avgpool(feat), 1))

    forward = StreamBackbone.forward  # the stream interface's, not VideoResNet's

    def zero_init_residuals(self) -> None:
        """Zero the last BatchNorm scale of every residual unit and the classifier (as the 2D streams' option)."""
        for name in STAGES:
            for unit in getattr(self, name):
                nn.init.zeros_(unit.conv2[1].weight)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

"""A backbone from one module, as a user would write it: a class with the stream interface and the registry's
decorator; nothing else in modistill is edited. Importing this module registers ``toy_cnn``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from modistill.models.backbone import StreamBackbone, register_backbone


class _Unit(nn.Module):
    """conv → BN → ReLU, with eq. 2's product on its input when a source is given."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, inject: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        r = x if inject is None else torch.addcmul(x, inject[0], inject[1])
        return F.relu(self.bn(self.conv(r)))


@register_backbone("toy_cnn")
class ToyStream(StreamBackbone):
    """Per frame, four stages of two conv units; frame logits averaged per video."""

    per_frame = True
    reference_clip = (3, 32)

    def __init__(self, arch: str = "toy_cnn", num_classes: int = 10, width: int = 8, temporal: bool = True):
        super().__init__()
        self.arch, self.width, self.num_classes = arch, width, num_classes
        self.stem = nn.Conv2d(3, width, 3, 2, 1)
        chans = [width * 2**k for k in range(4)]
        self.stages = nn.ModuleList(
            nn.ModuleList([_Unit(chans[max(k - 1, 0)], c, 1 if k == 0 else 2), _Unit(c, c, 1)])
            for k, c in enumerate(chans)
        )
        self.fc = nn.Linear(chans[-1], num_classes)
        self.feature_dim = chans[-1]

    def enter(self, clips: torch.Tensor) -> torch.Tensor:
        return F.relu(self.stem(clips.flatten(0, 1)))

    def stage(self, k, x, frames, source=None):
        first, second = self.stages[k]
        out1 = first(x)
        return second(out1, None if source is None else (out1, source)), out1

    def video_logits(self, feat: torch.Tensor, frames: int) -> torch.Tensor:
        logits = self.fc(F.adaptive_avg_pool2d(feat, 1).flatten(1))
        return logits.reshape(-1, frames, logits.shape[-1]).mean(1)

    def zero_init_residuals(self) -> None:
        for _, second in self.stages:
            nn.init.zeros_(second.bn.weight)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

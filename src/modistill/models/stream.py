"""The paper's backbone: a torchvision ResNet run per frame, with a temporal convolution in the second residual unit
of each stage (Feichtenhofer et al. 2017, as in the paper's Fig. 2) and an injection point for a multiplicative
cross-stream connection in the same unit; registered as resnet18/34/50/101.

Frames are laid out ``[B*T, C, H, W]``, video-major. Parameter names are torchvision's, so ImageNet state dicts
load by key; the only new parameters are ``layerK.1.temporal.weight`` and the classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet
from torchvision.models.resnet import BasicBlock, Bottleneck

from modistill.errors import UserError
from modistill.models.backbone import StreamBackbone, list_backbones, register_backbone
from modistill.models.preprocess import memory_format

ARCHS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
}
STAGES = ("layer1", "layer2", "layer3", "layer4")


class TemporalConv(nn.Module):
    """A 3x1x1 (time x space) convolution C→C across the T frames of each video, zero-padded at the clip ends.

    Initialised as an exact identity (centre tap = identity matrix), so a pretrained stream's output is unchanged
    at initialisation (paper sec. 3.1). The authors' released TF code initialised it differently, not as an
    identity; we follow the paper.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels, channels, 3))
        with torch.no_grad():
            self.weight[:, :, 1] = torch.eye(channels)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        if torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export():
            return self.exported(x, frames)
        bt, c, h, w = x.shape
        # [B*T, C, H, W] → a [B, C, T, H, W] view (no copy): oneDNN/cuDNN run the 3x1x1 conv on it directly,
        # without the two transposes a conv1d over [B*H*W, C, T] needs (benchmarks/model_overhead.py).
        y = x.reshape(bt // frames, frames, c, h, w).transpose(1, 2)
        y = F.conv3d(y, self.weight[:, :, :, None, None], padding=(1, 0, 0))
        # On CUDA a channels-last input makes this view NDHWC, cuDNN's fast conv3d layout, and the result channels-last
        # again. On CPU the standard layout is restored: for few channels oneDNN returns channels-last, which would
        # carry on through the stream, and its channels-last weight gradients are not bitwise reproducible.
        return y.transpose(1, 2).reshape(bt, c, h, w).contiguous(memory_format=memory_format(x.device))

    def exported(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """The same convolution in the form written to ONNX: a (3, 1) conv over a ``[B, C, T, H*W]`` view, with
        exactly the needed multiplications. The moves between that view and the frames are written as NCHW↔NHWC
        transposes around a reshape: onnxruntime folds those into the layout reorders its blocked (NCHWc) fp32
        convolutions need anyway, and its int8 path, which runs in NHWC, cancels them (the measurements of this and
        the other forms tried are in docs/benchmarks.md)."""
        bt, c, h, w = x.shape
        y = x.permute(0, 2, 3, 1).reshape(bt // frames, frames, h * w, c).permute(0, 3, 1, 2)
        y = F.conv2d(y, self.weight[:, :, :, None], padding=(1, 0))
        return y.permute(0, 2, 3, 1).reshape(bt, h, w, c).permute(0, 3, 1, 2)


def block_forward(
    block: BasicBlock | Bottleneck,
    x: torch.Tensor,
    frames: int,
    inject: tuple[torch.Tensor, torch.Tensor] | None = None,
    keep_pre: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run a torchvision residual unit; returns (output, pre-activation sum if ``keep_pre`` else None).

    ``inject=(x_pre, m)``: the residual branch input becomes ``x + x_pre * relu(m)`` (paper eq. 2, the released
    code's placement); the shortcut still sees ``x``. A ``temporal`` submodule, when present, runs after the first
    conv (BasicBlock) or the 3x3 conv (Bottleneck), followed by nothing else (it is linear, identity at init).
    The shortcut add and the final ReLU are in place, as in torchvision, unless the pre-activation is kept: on CPU
    two fresh activation-sized tensors per unit cost ResNet-50 training a few percent.
    """
    identity = x if block.downsample is None else block.downsample(x)
    # relu(m) of eq. 2 is m itself: m is a unit's output, which ends with a ReLU. Leaving the ReLU out saves a pass
    # over the feature map (in training and in the exported graph) and changes no value and no gradient (the
    # source's own ReLU already zeroes the gradient where m = 0).
    r = x if inject is None else torch.addcmul(x, inject[0], inject[1])
    temporal = getattr(block, "temporal", None)
    if isinstance(block, Bottleneck):
        r = block.relu(block.bn1(block.conv1(r)))
        r = block.relu(block.bn2(block.conv2(r)))
        if temporal is not None:
            r = temporal(r, frames)
        r = block.bn3(block.conv3(r))
    else:
        r = block.relu(block.bn1(block.conv1(r)))
        if temporal is not None:
            r = temporal(r, frames)
        r = block.bn2(block.conv2(r))
    r += identity
    if keep_pre:
        return F.relu(r), r
    return F.relu(r, inplace=True), None


@register_backbone(*ARCHS)
class ResNetStream(StreamBackbone):
    """A per-frame ResNet stream with temporal convs; logits are per frame and averaged per video."""

    per_frame = True  # runs each frame alone: time is modelled by the temporal convs it adds
    reference_clip = (5, 224)  # the paper's clip

    def __init__(self, arch: str = "resnet50", num_classes: int = 60, width: int = 64, temporal: bool = True):
        super().__init__()
        if arch not in ARCHS:
            raise UserError(f"unknown backbone {arch!r}; choose one of {list_backbones()}")
        block, layers = ARCHS[arch]
        net = resnet.ResNet(block, layers, num_classes=num_classes)
        if width != 64:
            _rescale(net, block, layers, width, num_classes)
        self.arch, self.width, self.num_classes = arch, width, num_classes
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.fc = net.fc
        self.feature_dim = net.fc.in_features
        if temporal:
            for name in STAGES:
                unit = getattr(self, name)[1]
                channels = unit.conv2.out_channels if isinstance(unit, Bottleneck) else unit.conv1.out_channels
                unit.add_module("temporal", TemporalConv(channels))

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def enter(self, clips: torch.Tensor) -> torch.Tensor:
        """``clips`` [B, T, 3, H, W] → the stem's output per frame, [B*T, C, h, w] (the stream interface)."""
        return self.stem(clips.flatten(0, 1))

    def zero_init_residuals(self) -> None:
        """Zero the last BatchNorm scale of every residual unit and the classifier (see :func:`build_stream`)."""
        for name in STAGES:
            for unit in getattr(self, name):
                nn.init.zeros_(unit.bn3.weight if isinstance(unit, Bottleneck) else unit.bn2.weight)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def stage(
        self, k: int, x: torch.Tensor, frames: int, source: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run stage ``k`` (0-3). Returns (stage output, unit-1 output: what this stream sends to a target).

        ``source``: the other stream's unit-1 output of the same stage, injected into this stream's unit 2.
        """
        units = getattr(self, STAGES[k])
        out1, pre1 = block_forward(units[0], x, frames, keep_pre=source is not None)
        y = out1
        for i, unit in enumerate(units[1:], start=1):
            inject = (pre1, source) if (i == 1 and source is not None and pre1 is not None) else None
            y, _ = block_forward(unit, y, frames, inject)
        return y, out1

    def video_logits(self, feat: torch.Tensor, frames: int) -> torch.Tensor:
        """Per-frame logits of a [B*T, C, h, w] feature map, averaged over the T frames → [B, classes]."""
        logits = self.fc(torch.flatten(F.adaptive_avg_pool2d(feat, 1), 1))
        return logits.reshape(-1, frames, logits.shape[-1]).mean(1)


def _rescale(net: resnet.ResNet, block, layers, width: int, num_classes: int) -> None:
    """Rebuild a torchvision ResNet with base width ``width`` instead of 64 (small CPU models); same key names."""
    net.inplanes = width
    net.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    net.layer1 = net._make_layer(block, width, layers[0])
    net.layer2 = net._make_layer(block, width * 2, layers[1], stride=2)
    net.layer3 = net._make_layer(block, width * 4, layers[2], stride=2)
    net.layer4 = net._make_layer(block, width * 8, layers[3], stride=2)
    net.fc = nn.Linear(width * 8 * block.expansion, num_classes)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

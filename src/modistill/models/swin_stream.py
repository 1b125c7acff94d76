"""One stream on torchvision's Video Swin Transformer (swin3d_t, swin3d_s, swin3d_b), behind the stream interface
of :class:`modistill.models.backbone.StreamBackbone` (``enter``, four ``stage``s, ``video_logits``).

Where the connection sits, and why. A Swin stage is a patch merging (stages 2-4) and a sequence of transformer
blocks, the analogue of a ResNet stage's residual units; the stream interface's stage boundaries are torchvision's
``features.0/.2/.4/.6``. As in the 2D case, the connection goes into the **second block** of each stage and only
into its residual branch: the block computes ``x + attn(norm1(x + x ⊙ relu(m)))`` and then its MLP as usual, with
``x`` the stage's first-block output and ``m`` the source's. A transformer block has no final activation, so its
output is its own pre-activation (``x_pre = x``), and ``m`` is not non-negative: eq. 2's ReLU is applied to it. The
shortcut (``x``) is untouched, so a zero ``m`` leaves the block unchanged, as in the paper.

Feature maps are channels-last ``[B, T, H, W, C]`` (torchvision's layout); eq. 3 compares them as they are. The
input normalisation is ImageNet's (torchvision's Swin3D weights were trained with it). ``width`` scales the
embedding dimension (64 = torchvision's) for small CPU models; parameter names are torchvision's, so
``torchvision:KINETICS400_V1`` (or ``KINETICS400_IMAGENET22K_V1`` for swin3d_b) loads by key.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.video import swin_transformer as tv_swin

from modistill.models.backbone import StreamBackbone, register_backbone
from modistill.models.preprocess import IMAGENET

# torchvision's builders: embedding dim, blocks per stage, heads per stage (patch 2x4x4, window 8x7x7).
SWIN_ARCHS = {
    "swin3d_t": (96, [2, 2, 6, 2], [3, 6, 12, 24]),
    "swin3d_s": (96, [2, 2, 18, 2], [3, 6, 12, 24]),
    "swin3d_b": (128, [2, 2, 18, 2], [4, 8, 16, 32]),
}


def swin_block(block, x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
    """torchvision's Swin block (pre-norm attention, then MLP), with the injection on its attention branch."""
    r = x if source is None else torch.addcmul(x, x, F.relu(source))
    x = x + block.stochastic_depth(block.attn(block.norm1(r)))
    return x + block.stochastic_depth(block.mlp(block.norm2(x)))


@register_backbone(*SWIN_ARCHS)
class SwinStream(tv_swin.SwinTransformer3d, StreamBackbone):
    """A torchvision Video Swin Transformer as a stream."""

    input_stats = IMAGENET  # the normalisation its pretrained weights expect
    classifier = "head"  # its classifier's parameter prefix, left out when pretrained weights load
    per_frame = False  # attends over time itself: no temporal convs are added
    clip_multiples = (2, 32)
    clip_why = (
        "its patches are 2 frames x 4 px and three patch mergings halve the grid; torchvision pads the rest with zeros"
    )
    reference_clip = (32, 224)  # torchvision's Kinetics-400 evaluation clip
    # torchvision's submodules, typed for the interface's methods
    patch_embed: nn.Module
    pos_drop: nn.Module
    features: nn.Sequential
    norm: nn.Module
    avgpool: nn.Module
    head: nn.Linear

    def __init__(self, arch: str = "swin3d_t", num_classes: int = 60, width: int = 64, temporal: bool = True):
        dim, depths, heads = SWIN_ARCHS[arch]
        if width != 64:  # heads scale with the width, at least one; the dimension stays a multiple of them
            h0 = max(1, heads[0] * width // 64)
            heads = [h0 * 2**k for k in range(4)]
            dim = max(h0, dim * width // 64 // h0 * h0)
        super().__init__(
            patch_size=[2, 4, 4],
            embed_dim=dim,
            depths=depths,
            num_heads=heads,
            window_size=[8, 7, 7],
            stochastic_depth_prob=0.1,
            num_classes=num_classes,
        )
        self.arch, self.width, self.num_classes = arch, width, num_classes
        self.feature_dim = self.head.in_features

    def enter(self, clips: torch.Tensor) -> torch.Tensor:
        """``clips`` [B, T, 3, H, W] → patch embeddings [B, T', H', W', C]."""
        return self.pos_drop(self.patch_embed(clips.transpose(1, 2)))

    def stage(
        self, k: int, x: torch.Tensor, frames: int, source: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run stage ``k`` (0-3; the patch merging before it for k > 0): (stage output, first-block output: what
        this stream sends); ``source``: the other stream's first-block output, injected into the second block."""
        if k > 0:
            x = self.features[2 * k - 1](x)
        blocks = cast(nn.Sequential, self.features[2 * k])  # a stage's transformer blocks
        out1 = swin_block(blocks[0], x)
        y = swin_block(blocks[1], out1, source)
        for block in blocks[2:]:
            y = swin_block(block, y)
        return y, out1

    def video_logits(self, feat: torch.Tensor, frames: int) -> torch.Tensor:
        """Video logits of a [B, T, H, W, C] feature map: final norm, global average, classifier."""
        x = self.norm(feat).permute(0, 4, 1, 2, 3)
        return self.head(torch.flatten(self.avgpool(x), 1))

    forward = StreamBackbone.forward  # the stream interface's, not SwinTransformer3d's

    def zero_init_residuals(self) -> None:
        """Zero the classifier (uniform predictions at the start, as the other streams' option); the transformer
        blocks keep torchvision's initialisation."""
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

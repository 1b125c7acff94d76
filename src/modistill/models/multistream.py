"""Multiple-stream networks: streams run stage by stage so that a source stream's unit-1 output can be injected
multiplicatively into a target stream's second unit (paper eq. 2, Fig. 2) at all four stages.

Fusion is the mean of the streams' video logits (released code); per-stream logits stay available for the
per-stream rows of Table 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import torch
from torch import nn

from modistill.models.backbone import StreamBackbone


@dataclass
class StreamOutput:
    """Video logits per stream, the fused logits, and (when asked) each stream's stage outputs."""

    logits: dict[str, torch.Tensor]
    fused: torch.Tensor
    features: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)


class MultiStream(nn.Module):
    """Streams by name (e.g. ``rgb``, ``depth``, ``hall``), each fed one input modality.

    ``connections``: (source, target) pairs; ``source_grad``: whether the target's loss reaches the source through
    the connection (released code: yes). Frozen streams are always detached and kept in eval mode (BN statistics
    do not move).
    """

    def __init__(
        self,
        streams: dict[str, StreamBackbone],
        inputs: dict[str, str],
        connections: list[tuple[str, str]] | tuple = (),
        fuse: list[str] | None = None,
        source_grad: bool = True,
    ):
        super().__init__()
        self.streams = nn.ModuleDict(streams)
        self.inputs = dict(inputs)
        self.connections = [tuple(c) for c in connections]
        self.fuse = list(fuse or streams)
        self.source_grad = source_grad
        self.frozen: set[str] = set()
        targets = [t for _, t in self.connections]
        if len(set(targets)) != len(targets):
            raise ValueError("a stream can receive at most one connection")
        for s, t in self.connections:
            if s not in streams or t not in streams or s == t:
                raise ValueError(f"bad connection {s}->{t}")
        self._order = [n for n in streams if n not in targets] + [n for n in streams if n in targets]

    def freeze(self, name: str) -> None:
        self.frozen.add(name)
        for p in self.streams[name].parameters():
            p.requires_grad_(False)
        self.streams[name].eval()

    def train(self, mode: bool = True):
        super().train(mode)
        for name in self.frozen:
            self.streams[name].eval()
        return self

    def stream(self, name: str) -> StreamBackbone:
        """A stream as what it is: a registered backbone (``streams`` holds it as a plain module)."""
        return cast(StreamBackbone, self.streams[name])

    def forward(self, batch: dict[str, torch.Tensor], return_features: bool = False) -> StreamOutput:
        """``batch``: modality → clips [B, T, 3, H, W]."""
        first = batch[self.inputs[self._order[0]]]
        t = first.shape[1]
        x = {}
        for name in self._order:
            with torch.set_grad_enabled(torch.is_grad_enabled() and name not in self.frozen):
                x[name] = self.stream(name).enter(batch[self.inputs[name]])
        source_of = {tgt: src for src, tgt in self.connections}
        feats: dict[str, dict[str, torch.Tensor]] = {n: {} for n in self._order}
        for k in range(4):
            unit1: dict[str, torch.Tensor] = {}
            for name in self._order:
                src = source_of.get(name)
                m = None
                if src is not None:
                    m = unit1[src]
                    if src in self.frozen or not self.source_grad:
                        m = m.detach()
                with torch.set_grad_enabled(torch.is_grad_enabled() and name not in self.frozen):
                    x[name], unit1[name] = self.stream(name).stage(k, x[name], t, m)
                if return_features:
                    feats[name][f"layer{k + 1}"] = x[name]
        logits = {n: self.stream(n).video_logits(x[n], t) for n in self._order}
        fused = torch.stack([logits[n] for n in self.fuse]).mean(0)
        return StreamOutput(logits, fused, feats if return_features else {})


class RGBOnly(nn.Module):
    """The deployable model: RGB stream + hallucination stream, both fed RGB (step 4).

    ``forward(clips [B, T, 3, H, W], ImageNet-normalised) → fused logits [B, classes]``. No depth, no skeleton.
    ``connections``: hall→RGB for the paper's direction, RGB→hall for the inverted study, none for the ablation.
    """

    def __init__(
        self, rgb: StreamBackbone, hall: StreamBackbone, connections: list[tuple[str, str]] | tuple = (("hall", "rgb"),)
    ):
        super().__init__()
        self.net = MultiStream({"rgb": rgb, "hall": hall}, {"rgb": "rgb", "hall": "rgb"}, list(connections))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.net({"rgb": clips}).fused

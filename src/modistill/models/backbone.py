"""The backbone registry and the one interface every stream follows.

A backbone is a :class:`StreamBackbone` subclass registered under one or more names with
:func:`register_backbone`. Steps, connections, losses, export and predict only use this interface, so a new
backbone is one module: a class and its decorator. Built-in backbones register when :mod:`modistill.models` is
imported (the paper's 2D ResNets, torchvision's video ResNets and Video Swin); another package's module registers
through the ``modistill.backbones`` entry-point group, loaded the first time the registry is read.

The interface: ``enter`` (clips → the stem's output), four ``stage`` calls (each returns the stage's output and the
feature map its first unit sends to another stream, and takes the other stream's as ``source``), ``video_logits``
(→ ``[B, classes]``), ``zero_init_residuals``; and class attributes that state what the backbone needs of its
input (:attr:`StreamBackbone.clip_multiples`, :attr:`StreamBackbone.input_stats`) and how it models time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, TypeVar

import torch
from torch import nn

from modistill.errors import UserError
from modistill.models.preprocess import IMAGENET
from modistill.utils.plugins import load_entry_points

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "modistill.backbones"
STAGE_COUNT = 4


class StreamBackbone(nn.Module):
    """What a backbone provides. Subclasses are built as ``cls(arch, num_classes, width, temporal)``, keep those
    as attributes (``arch``, ``num_classes``, ``width``) and set ``feature_dim`` (the classifier's input size)."""

    #: True when it runs each frame alone (time then comes from the temporal convs it adds), False when it models
    #: time itself (``model.temporal`` is then ignored, and the run's log says so).
    per_frame: ClassVar[bool] = True
    #: (frames, pixels) the clip must be a multiple of, and why: a clip the backbone would pad is refused.
    clip_multiples: ClassVar[tuple[int, int]] = (1, 1)
    clip_why: ClassVar[str] = "any clip"
    #: The (mean, std) its pretrained weights expect, applied inside the model (training and export alike).
    input_stats: ClassVar[tuple[tuple[float, ...], tuple[float, ...]]] = IMAGENET
    #: The classifier's parameter prefix: left out when pretrained weights load.
    classifier: ClassVar[str] = "fc"
    #: (frames, pixels) its weights were evaluated at: the clip benchmarks time it with.
    reference_clip: ClassVar[tuple[int, int]] = (5, 224)

    arch: str
    width: int
    num_classes: int
    feature_dim: int

    def enter(self, clips: torch.Tensor) -> torch.Tensor:
        """``clips`` [B, T, 3, H, W], normalised → the stem's output, in the backbone's own layout."""
        raise NotImplementedError

    def stage(
        self, k: int, x: torch.Tensor, frames: int, source: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage ``k`` (0-3): (its output, the first unit's output: what this stream sends to a target). ``source``:
        the other stream's first-unit output of the same stage, multiplied into this stream's second unit."""
        raise NotImplementedError

    def video_logits(self, feat: torch.Tensor, frames: int) -> torch.Tensor:
        """The last stage's output → video logits [B, classes]."""
        raise NotImplementedError

    def zero_init_residuals(self) -> None:
        """Start as the shortcut path with uniform predictions: zero the last scale of each residual unit (where it
        has one) and the classifier."""
        raise NotImplementedError

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """``clips``: [B, T, 3, H, W] → video logits [B, classes]: the stream alone."""
        return run_stream(self, clips)


def run_stream(stream: StreamBackbone, clips: torch.Tensor) -> torch.Tensor:
    """A stream on its own, through the interface: ``enter``, the four stages, ``video_logits``."""
    t = clips.shape[1]
    x = stream.enter(clips)
    for k in range(STAGE_COUNT):
        x, _ = stream.stage(k, x, t)
    return stream.video_logits(x, t)


_REGISTRY: dict[str, type[StreamBackbone]] = {}
_plugins_loaded = False
B = TypeVar("B", bound=type[StreamBackbone])


def register_backbone(*names: str) -> Callable[[B], B]:
    """Class decorator: register a :class:`StreamBackbone` subclass under ``names`` (``model.arch`` values)."""
    if not names:
        raise ValueError("register_backbone needs at least one name")

    def register(cls: B) -> B:
        if not (isinstance(cls, type) and issubclass(cls, StreamBackbone)):
            raise TypeError(f"{cls!r} is not a StreamBackbone subclass")
        missing = [m for m in ("enter", "stage", "video_logits", "zero_init_residuals") if m not in _overridden(cls)]
        if missing:
            raise TypeError(f"{cls.__name__} does not implement {missing} of the stream interface")
        for name in names:
            if _REGISTRY.get(name, cls) is not cls:
                raise ValueError(f"backbone {name!r} is registered already, by {_REGISTRY[name].__qualname__}")
            _REGISTRY[name] = cls
        return cls

    return register


def _overridden(cls: type) -> set[str]:
    return {name for klass in cls.__mro__ if klass is not StreamBackbone for name in vars(klass)}


def _load_plugins() -> None:
    """Import the modules other packages declare in the ``modistill.backbones`` entry-point group, once."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    load_entry_points(ENTRY_POINT_GROUP, "backbone")


def list_backbones() -> list[str]:
    """Every registered backbone name, sorted."""
    _load_plugins()
    return sorted(_REGISTRY)


def backbone_class(arch: str) -> type[StreamBackbone]:
    """The class registered as ``arch``; one line naming the choices when there is none."""
    _load_plugins()
    if arch not in _REGISTRY:
        raise UserError(
            f"unknown backbone {arch!r}; choose one of {sorted(_REGISTRY)} (another package's backbone registers "
            f"through the {ENTRY_POINT_GROUP} entry-point group)"
        )
    return _REGISTRY[arch]


def make_stream(arch: str, num_classes: int, width: int = 64, temporal: bool = True) -> StreamBackbone:
    """A randomly initialised stream of backbone ``arch``."""
    return backbone_class(arch)(arch, num_classes, width, temporal)


def check_clip(arch: str, frames: int, size: int, where: str) -> None:
    """Refuse, in one line naming ``where`` the clip comes from, a clip the backbone would silently pad with zero
    frames or pixels (its ``clip_multiples``)."""
    cls = backbone_class(arch)
    f, s = cls.clip_multiples
    if frames % f or size % s:
        raise UserError(
            f"{where}: {frames} frames of {size} px, but model.arch={arch} takes a multiple of {f} frames and of {s} "
            f"px ({cls.clip_why}); change data.frames or prepare another --size"
        )


def load_pretrained(stream: StreamBackbone, spec: str | Path) -> None:
    """Load pretrained weights (see :mod:`modistill.models.pretrained`) into a stream by key; the classifier is
    kept as initialised. Only tensors are read. Missing keys may only be temporal convs; a shape or key mismatch
    elsewhere is one line naming the weights and the first key that differs."""
    from modistill.models.pretrained import load_pretrained_state

    spec = str(spec)
    state, source = load_pretrained_state(spec, stream.arch)
    head = stream.classifier + "."
    state = {k: v for k, v in state.items() if not k.startswith(head)}
    own = stream.state_dict()
    bad = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if bad:
        raise UserError(f"{spec}: shapes do not match a {stream.arch} (width {stream.width}) at {bad[0]}")
    missing, unexpected = stream.load_state_dict(state, strict=False)
    missing = [k for k in missing if ".temporal." not in k and not k.startswith(head)]
    if missing or unexpected:
        raise UserError(
            f"{spec}: not a torchvision-style {stream.arch} state dict "
            f"(missing {missing[:2]}, unexpected {list(unexpected)[:2]})"
        )
    log.info("loaded pretrained weights %s (%d tensors) from %s", spec, len(state), source)


def build_stream(
    arch: str,
    num_classes: int,
    width: int = 64,
    temporal: bool = True,
    pretrained: str | Path | None = None,
    zero_init: bool = False,
) -> StreamBackbone:
    """A stream of backbone ``arch`` with pretrained weights (``pretrained``: ImageNet for the 2D ResNets,
    Kinetics-400 for the video ones), else random init. ``zero_init``: zero the last BatchNorm scale of every
    residual unit and the classifier (Goyal et al. 2017; torchvision's ``zero_init_residual``), so that a randomly
    initialised stream starts as its shortcut path with uniform predictions (loss ln C), which shortens the initial
    plateau of training from scratch on small data."""
    stream = make_stream(arch, num_classes, width, temporal)
    if pretrained:
        load_pretrained(stream, pretrained)
    elif zero_init:
        stream.zero_init_residuals()
    return stream

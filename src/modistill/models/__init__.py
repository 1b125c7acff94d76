"""Models: stream backbones behind one interface (:mod:`modistill.models.backbone`, a registry), multiple-stream
networks with multiplicative connections. Importing this package registers the built-in backbones."""

from modistill.models import stream, swin_stream, video_stream  # noqa: F401  (each registers its backbones)
from modistill.models.backbone import StreamBackbone, build_stream, list_backbones, register_backbone
from modistill.models.multistream import MultiStream, RGBOnly
from modistill.models.stream import ResNetStream

__all__ = [
    "MultiStream",
    "RGBOnly",
    "ResNetStream",
    "StreamBackbone",
    "build_stream",
    "list_backbones",
    "register_backbone",
]

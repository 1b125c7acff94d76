"""Models: ResNet streams with temporal convolutions, multiple-stream networks with multiplicative connections."""

from modistill.models.multistream import MultiStream, RGBOnly
from modistill.models.stream import Stream, build_stream

__all__ = ["MultiStream", "RGBOnly", "Stream", "build_stream"]

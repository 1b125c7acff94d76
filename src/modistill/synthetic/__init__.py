"""A synthetic RGB-D action benchmark written in the exact NTU RGB+D on-disk layout.

An articulated 25-joint skeleton performs class-specific motions; subjects differ in proportions, clothing and
speed; each camera position is a Kinect-v2-like pair of a colour and a depth camera that are not pixel-aligned.
Depth is masked to the person and clean(ish); RGB has clutter, lighting changes and distractors. The whole
pipeline (readers, alignment, prepare, training) runs on it unchanged.
"""

from modistill.synthetic.config import SynthConfig

__all__ = ["SynthConfig", "generate"]


def __getattr__(name: str):
    """The generator (NumPy, OpenCV) is imported on first use, so that reading :class:`SynthConfig` stays light."""
    if name == "generate":
        from modistill.synthetic.writer import generate

        return generate
    raise AttributeError(f"module 'modistill.synthetic' has no attribute {name!r}")

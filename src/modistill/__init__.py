"""modistill: modality distillation with multiple stream networks (Garcia, Morerio & Murino, ECCV 2018).

Train action recognition with RGB and depth, deploy with RGB only.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "evaluate", "export", "load", "prepare", "train"]


def __getattr__(name: str):
    """The API functions (:mod:`modistill.api`), imported on first use so that ``import modistill`` stays light."""
    if name in ("evaluate", "export", "load", "prepare", "train"):
        from modistill import api

        return getattr(api, name)
    raise AttributeError(f"module 'modistill' has no attribute {name!r}")

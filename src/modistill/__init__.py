"""modistill: modality distillation with multiple stream networks (Garcia, Morerio & Murino, ECCV 2018).

Train action recognition with RGB and depth, deploy with RGB only.
"""

__version__ = "0.1.0"

"""The modalities a cache can hold, one module each: :mod:`.rgb`, :mod:`.depth` (the paper's privileged modality),
:mod:`.pose` and :mod:`.depth_pose` (both in one image); the registry they join is :mod:`.registry`. A new
modality is one module that registers a :class:`Modality` (and, from another package, names that module in the
``modistill.modalities`` entry-point group).
"""

from modistill.data.modalities import depth, depth_pose, pose, rgb
from modistill.data.modalities.pose import POSE_ENCODING
from modistill.data.modalities.registry import (
    ENTRY_POINT_GROUP,
    LEGACY,
    Keypoints,
    Material,
    Modality,
    as_privileged,
    cache_modalities,
    encode_clip,
    get,
    import_modules,
    modules_of,
    names,
    privileged_names,
    register,
    settings_fields,
    title,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "LEGACY",
    "POSE_ENCODING",
    "Keypoints",
    "Material",
    "Modality",
    "as_privileged",
    "cache_modalities",
    "depth",
    "depth_pose",
    "encode_clip",
    "get",
    "import_modules",
    "modules_of",
    "names",
    "pose",
    "privileged_names",
    "register",
    "rgb",
    "settings_fields",
    "title",
]

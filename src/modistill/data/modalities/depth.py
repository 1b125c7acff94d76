"""Depth, the paper's privileged modality: millimetres encoded as a 3-channel image (jet colour map, the paper's,
or the grey value repeated, the released code's; ``--depth-encoding``) between the person's near and far depth
over the video. A pairs CSV's privileged column of 8-bit images (IR, optical flow) is stored as given."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modistill.data.modalities.registry import Material, Modality, register

if TYPE_CHECKING:
    import numpy as np


def _encode(m: Material) -> tuple[np.ndarray, str | None]:
    import numpy as np

    from modistill.data.encode import encode_depth

    if m.depth is None and m.image is not None:
        return m.image, None
    m.need("depth", "depth")
    assert m.depth is not None and m.depth_range is not None
    near, far = m.depth_range
    return np.stack([encode_depth(d, near, far, m.options.depth_encoding) for d in m.depth]), None


def _describe(cache_meta: dict) -> str:
    return f"{cache_meta['depth_encoding']}-encoded depth uint8"


DEPTH = register(
    Modality(
        "depth",
        "Depth",
        "encoded depth uint8 (cache.json: depth_encoding)",
        _encode,
        describe=_describe,
        noise_in_units=True,
    )
)

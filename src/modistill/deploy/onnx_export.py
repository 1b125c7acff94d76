"""ONNX export of the deploy model (batch dimension dynamic; frames and size fixed by the bundle) and an
onnxruntime session that reads the same metadata back from the file."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from modistill.deploy.bundle import DeployModel
from modistill.errors import UserError
from modistill.utils.io import atomic_write

META_KEY = "modistill"


def export_onnx(model: DeployModel, meta: dict, path: str | Path, opset: int = 18) -> Path:
    """Write ``model`` as ONNX with ``meta`` in the file's metadata_props (class names, frames, size, crop)."""
    import onnx

    path = Path(path)
    x = torch.full((2, meta["frames"], 3, meta["size"], meta["size"]), 127.0)
    batch = torch.export.Dim("batch", min=1, max=4096)

    def write(tmp: Path) -> None:
        logging.getLogger("onnx_ir").setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prog = torch.onnx.export(model.eval(), (x,), input_names=["clips"], output_names=["logits"],
                                     dynamic_shapes={"clips": {0: batch}}, dynamo=True, opset_version=opset,
                                     verbose=False)
        proto = prog.model_proto
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, json.dumps(meta, sort_keys=True)
        onnx.save(proto, str(tmp))

    atomic_write(path, write)
    return path


class OnnxModel:
    """Callable like the PyTorch deploy model: float RGB 0-255 ``[B, T, 3, H, W]`` → logits (numpy in, numpy out)."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        path = Path(path)
        if not path.exists():
            raise UserError(f"{path}: model file not found")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types for bad files
            raise UserError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0][:200]})") from None
        props = self.session.get_modelmeta().custom_metadata_map
        if META_KEY not in props:
            raise UserError(f"{path}: no modistill metadata; export it with `modistill export RUN`")
        self.meta = json.loads(props[META_KEY])

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"clips": np.ascontiguousarray(clips, dtype=np.float32)})[0]

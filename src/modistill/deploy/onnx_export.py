"""ONNX export of the deploy model (batch dimension dynamic; frames and size fixed by the bundle) and an
onnxruntime session that reads the same metadata back from the file."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from modistill.deploy.bundle import DeployModel, validate_meta
from modistill.errors import NonFiniteError, UserError
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
            prog = torch.onnx.export(
                model.eval(),
                (x,),
                input_names=["clips"],
                output_names=["logits"],
                dynamic_shapes={"clips": {0: batch}},
                dynamo=True,
                opset_version=opset,
                verbose=False,
            )
        if prog is None:  # the dynamo exporter always returns its program; None is the legacy exporter's
            raise RuntimeError("torch.onnx.export(dynamo=True) returned no program")
        proto = prog.model_proto
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, json.dumps(meta, sort_keys=True)
        onnx.save(proto, str(tmp))

    atomic_write(path, write)
    return path


def providers_for(device: str, available: list[str]) -> list:
    """ONNX Runtime providers for ``cpu``, ``cuda[:N]`` or ``tensorrt[:N]`` (TensorRT, then CUDA for the
    nodes TensorRT does not take, then the CPU)."""
    kind, _, index = device.partition(":")
    if kind == "cpu" and not index:
        return ["CPUExecutionProvider"]
    if kind not in ("cuda", "tensorrt") or not (index or "0").isdigit():
        raise UserError(f"--device {device}: ONNX Runtime runs on cpu, cuda[:N] or tensorrt[:N]")
    gpu = {"device_id": int(index or "0")}
    chain = [("CUDAExecutionProvider", gpu), "CPUExecutionProvider"]
    if kind == "tensorrt":
        chain.insert(0, ("TensorrtExecutionProvider", gpu))
    wanted = chain[0][0]
    if wanted not in available:
        raise UserError(
            f"--device {device}: this ONNX Runtime has no {wanted} (available: {available}); "
            f"install modistill[onnx-gpu]" + (" and TensorRT" if kind == "tensorrt" else "")
        )
    return chain


def open_session(path: str | Path, device: str = "cpu", opts: object | None = None):
    """An onnxruntime session on ``device`` (see :func:`providers_for`). A file onnxruntime cannot load is one
    line, and so is a GPU provider it lists but could not start: onnxruntime would then run on the CPU with only a
    warning (missing CUDA/TensorRT libraries), and every number measured on it would be mislabelled."""
    import onnxruntime as ort

    providers = providers_for(device, ort.get_available_providers())
    try:
        session = ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types for bad files
        raise UserError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0][:200]})") from None
    wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
    if wanted not in session.get_providers():
        raise UserError(
            f"--device {device}: ONNX Runtime could not start its {wanted} (running: "
            f"{session.get_providers()}); check the CUDA/TensorRT installation"
        )
    return session


class OnnxModel:
    """Callable like the PyTorch deploy model: float RGB 0-255 ``[B, T, 3, H, W]`` → logits (numpy in, numpy out)."""

    def __init__(self, path: str | Path, threads: int | None = None, device: str = "cpu"):
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError(
                "ONNX Runtime is not installed: pip install 'modistill[onnx]' (CPU) or "
                "'modistill[onnx-gpu]' (CUDA); the two packages cannot be installed together"
            ) from None

        path = Path(path)
        if not path.exists():
            raise UserError(f"{path}: model file not found")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = open_session(path, device, opts)
        props = self.session.get_modelmeta().custom_metadata_map
        if META_KEY not in props:
            raise UserError(f"{path}: no modistill metadata; export it with `modistill export RUN`")
        try:
            meta = json.loads(props[META_KEY])
        except ValueError:
            raise UserError(f"{path}: corrupt modistill metadata (not JSON)") from None
        self.meta = validate_meta(meta, path)
        self._check_graph(path)
        check_onnx_finite(path)

    def _check_graph(self, path: Path) -> None:
        """The graph's fixed input and output sizes must be those its metadata promises to clients."""
        m = self.meta
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        want_in = [m["frames"], 3, m["size"], m["size"]]
        if len(inputs) != 1 or len(inputs[0].shape) != 5 or list(inputs[0].shape[1:]) != want_in:
            got = [list(i.shape) for i in inputs]
            raise UserError(
                f"{path}: graph input {got} does not match the metadata (frames {m['frames']}, size "
                f"{m['size']}: [B, {', '.join(map(str, want_in))}])"
            )
        if len(outputs) != 1 or len(outputs[0].shape) != 2 or outputs[0].shape[1] != m["num_classes"]:
            raise UserError(
                f"{path}: graph output {[list(o.shape) for o in outputs]} does not match the "
                f"metadata's {m['num_classes']} classes"
            )

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"clips": np.ascontiguousarray(clips, dtype=np.float32)})[0]


def check_onnx_finite(path: Path) -> None:
    """A graph whose float weights hold NaN or infinity would answer NaN for every clip: refused at load, naming the
    first such weight (the same rule as the safetensors bundle's)."""
    import onnx
    from onnx import numpy_helper

    for init in onnx.load(str(path), load_external_data=False).graph.initializer:
        if init.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16):
            if not np.isfinite(numpy_helper.to_array(init)).all():
                raise NonFiniteError(f"{path}: weight {init.name} holds NaN or infinite values; re-export the model")

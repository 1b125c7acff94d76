"""``modistill export --quantize int8``: ONNX Runtime's static int8 quantisation (QDQ, per-channel weights)
calibrated on the run's training clips, with what it costs and gains measured on the run's own data: top-1 on
the run's test clips for the float and the int8 graph, and the latency of both on one clip."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modistill.data.cache import load_clip, load_manifest
from modistill.data.dataset import sample_label
from modistill.data.video import evenly_spaced
from modistill.errors import UserError
from modistill.training.run import RunInfo
from modistill.utils.io import atomic_write

if TYPE_CHECKING:
    import onnx

CALIBRATION_CLIPS = 32


def _clips(cache: Path, names: list[str], meta: dict) -> np.ndarray:
    """RGB clips as the model takes them (float32 RGB 0-255 [N, T, 3, S, S]) from the run's cache."""
    idx = evenly_spaced(meta["stored_frames"], meta["frames"])
    shape = (2, meta["stored_frames"], meta["size"], meta["size"], 3)
    return np.stack([load_clip(cache, n, shape)[0, idx].transpose(0, 3, 1, 2) for n in names]).astype(np.float32)


def int8_graph(onnx_path: str | Path, calib: np.ndarray) -> onnx.ModelProto:
    """ONNX Runtime's static int8 quantisation of a graph with input ``clips`` (QDQ, per-channel int8 weights,
    uint8 activations), calibrated on the clips ``calib`` [N, T, 3, S, S] one at a time."""
    try:
        import onnx
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise UserError("int8 export needs ONNX Runtime: pip install 'modistill[onnx]'") from None

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calib[i : i + 1] for i in range(len(calib)))

        def get_next(self):
            x = next(self.items, None)
            return None if x is None else {"clips": x}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
        quantized = Path(tmp) / "int8.onnx"
        quantize_static(
            str(prepared),
            str(quantized),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        return onnx.load(str(quantized))


def quantize_int8(onnx_path: str | Path, run_dir: str | Path, meta: dict, out: str | Path) -> dict:
    """Write the int8 graph (with the same metadata) and return accuracy and latency of both graphs."""
    try:
        import onnx
        import onnxruntime as ort
    except ImportError:
        raise UserError("int8 export needs ONNX Runtime: pip install 'modistill[onnx]'") from None
    run = RunInfo(run_dir)
    cache = Path(run.meta["data"]["cache"])
    if not (cache / "cache.json").exists():
        raise UserError(f"{cache}: the run's cache is gone; int8 calibration reads its training clips")
    splits = run.splits()
    calibration = spread(splits["train"], CALIBRATION_CLIPS)
    proto = int8_graph(onnx_path, _clips(cache, calibration, meta))
    entry = proto.metadata_props.add()
    entry.key, entry.value = (
        "modistill",
        json.dumps(
            meta | {"quantization": "int8 static QDQ, per-channel weights, calibrated on training clips"},
            sort_keys=True,
        ),
    )
    out = Path(out)
    atomic_write(out, lambda p: onnx.save(proto, str(p)))

    sessions = {
        k: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        for k, p in (("float", onnx_path), ("int8", out))
    }
    records = load_manifest(cache)
    labels = np.array([sample_label(n, records.get(n, {})) for n in splits["test"]])
    test = _clips(cache, splits["test"], meta)
    report: dict[str, float] = {"test_videos": len(labels), "calibration_clips": len(calibration)}
    for k, s in sessions.items():
        pred = np.concatenate([s.run(None, {"clips": test[i : i + 8]})[0].argmax(-1) for i in range(0, len(test), 8)])
        report[f"{k}_top1"] = float((pred == labels).mean())
        one = test[:1]
        s.run(None, {"clips": one})
        times = []
        for _ in range(7):
            t = time.perf_counter()
            s.run(None, {"clips": one})
            times.append(time.perf_counter() - t)
        report[f"{k}_ms"] = 1000 * statistics.median(times)
    report["speedup"] = report["float_ms"] / report["int8_ms"]
    return report


def spread(names: list[str], k: int) -> list[str]:
    """``k`` names spread evenly over the sorted list (deterministic, every class likely represented)."""
    names = sorted(names)
    return [names[i] for i in evenly_spaced(len(names), min(k, len(names)))]

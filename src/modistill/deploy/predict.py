"""``modistill predict``: top-k actions for raw RGB videos with a run folder, a safetensors bundle or an ONNX
file, on PyTorch or onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from modistill.deploy.video import camera_clip
from modistill.errors import DataError, UserError
from modistill.utils.hf_cache import HF_SCHEME


class Predictor:
    """Loads a model once; :meth:`logits` takes uint8 clips ``[B, T, 3, S, S]``."""

    def __init__(self, model: str | Path, runtime: str = "auto", device: str = "cpu"):
        hub_id = str(model) if str(model).startswith(HF_SCHEME) else None
        model = Path(model)
        self.device = device
        if runtime == "auto":
            runtime = "onnx" if model.suffix == ".onnx" else "torch"
        if runtime == "onnx" and model.suffix != ".onnx":
            raise UserError(f"{model}: --runtime onnx needs an .onnx file (make one with `modistill export`)")
        if runtime == "torch" and model.suffix == ".onnx":
            raise UserError(f"{model}: an .onnx file runs with --runtime onnx")
        self.runtime = runtime
        if runtime == "onnx":
            from modistill.deploy.onnx_export import OnnxModel

            self._onnx = OnnxModel(model, device=device)
            self.meta = self._onnx.meta
        else:
            from modistill.deploy.bundle import load_deploy_model

            self._torch, self.meta = load_deploy_model(hub_id or model)
            try:
                self._torch.to(torch.device(device))
            except (RuntimeError, AssertionError) as e:
                raise UserError(f"--device {device}: not usable here ({str(e).splitlines()[0]})") from None

    def logits(self, clips: np.ndarray) -> np.ndarray:
        x = clips.astype(np.float32)
        if self.runtime == "onnx":
            return self._onnx(x)
        with torch.inference_mode():
            return self._torch(torch.from_numpy(x).to(self.device)).float().cpu().numpy()

    def predict(self, videos: list[str | Path], topk: int = 5) -> list[dict]:
        """One result per video: ``{"video", "top": [{"class", "name", "prob"}], "error"}``; a bad video gets an
        error entry and the others still run."""
        m = self.meta
        k = max(1, min(topk, m["num_classes"]))
        out = []
        for v in videos:
            if not Path(v).is_file():  # a FIFO or device would block the decoder forever
                why = "not found" if not Path(v).exists() else "not a regular file"
                out.append({"video": str(v), "top": [], "error": why})
                continue
            try:
                clip = camera_clip(v, m["frames"], m["size"], m["crop"], m["stored_frames"])
            except DataError as e:  # the entry names the video already: keep the problem only
                out.append({"video": str(v), "top": [], "error": e.problem if Path(e.path) == Path(v) else str(e)})
                continue
            z = self.logits(clip[None])[0].astype(np.float64)
            if not np.isfinite(z).all():
                out.append({"video": str(v), "top": [], "error": "the model gave NaN or infinite logits"})
                continue
            p = np.exp(z - z.max())
            p /= p.sum()
            order = np.argsort(-p)[:k]
            out.append(
                {
                    "video": str(v),
                    "error": None,
                    "top": [{"class": int(i), "name": m["class_names"][i], "prob": float(p[i])} for i in order],
                }
            )
        return out

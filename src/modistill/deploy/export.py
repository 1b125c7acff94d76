"""``modistill export``: a run's RGB-only model as ONNX, safetensors bundle and Hub-style folder, checked before
anything is kept: finite weights and outputs, and the ONNX graph computing what the PyTorch model computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from modistill.deploy.bundle import build_model, bundle_from_run, save_bundle
from modistill.deploy.hub import check_license, write_hub_folder
from modistill.deploy.onnx_export import OnnxModel, export_onnx
from modistill.errors import NonFiniteError, UserError


def export_checked(
    run: str | Path,
    out: str | Path,
    safetensors: str | Path | None = None,
    hub_dir: str | Path | None = None,
    step: str = "step4",
    quantize: str | None = None,
    license: str | None = None,
) -> dict:
    """Write the three artefacts (ONNX last checked, so a failure leaves nothing partial) and return their paths,
    the metadata and the largest ONNX-vs-PyTorch logit difference on a random clip."""
    check_license(license)
    out = Path(out)
    if out.suffix != ".onnx":
        raise UserError(f"{out}: --out must end in .onnx")
    bundle_path = Path(safetensors) if safetensors else out.with_suffix(".safetensors")
    hub_dir = Path(hub_dir) if hub_dir else out.with_name(out.stem + "-hub")
    for p in (out, bundle_path):
        if p.is_dir():
            raise UserError(f"{p}: is a directory; give a file path")
    state, meta = bundle_from_run(run, step)
    model = build_model(state, meta, run)
    x = np.random.default_rng(0).uniform(0, 255, (2, meta["frames"], 3, meta["size"], meta["size"]))
    x = x.astype(np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    if not np.isfinite(ref).all():
        raise NonFiniteError(f"{run}: {step} gives NaN or infinite logits; nothing exported")
    onnx_path = export_onnx(model, meta, out)
    diff = float(np.abs(OnnxModel(onnx_path)(x) - ref).max())
    if not diff <= 1e-3 * max(1.0, float(np.abs(ref).max())):  # also refuses NaN
        onnx_path.unlink()
        raise UserError(
            f"{out}: the ONNX graph differs from the PyTorch model (max |Δlogit| = {diff:.3g}); nothing exported"
        )
    bundle = save_bundle(state, meta, bundle_path)
    write_hub_folder(bundle, meta, run, hub_dir, license)
    result = {"onnx": onnx_path, "safetensors": bundle, "hub": hub_dir, "meta": meta, "max_abs_diff": diff}
    if quantize == "int8":
        from modistill.deploy.quantize import quantize_int8

        int8 = out.with_name(out.stem + "-int8.onnx")
        result.update(int8=int8, int8_report=quantize_int8(onnx_path, run, meta, int8))
    elif quantize is not None:
        raise UserError(f"--quantize {quantize}: only int8 is offered")
    return result

"""Deployment sub-commands: export (safetensors bundle + ONNX) and predict (raw RGB videos)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_export(a: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from modistill.deploy.bundle import build_model, bundle_from_run, save_bundle
    from modistill.deploy.onnx_export import OnnxModel, export_onnx
    from modistill.errors import NonFiniteError, UserError

    if a.out.suffix != ".onnx":
        raise UserError(f"{a.out}: --out must end in .onnx")
    bundle_path = a.safetensors or a.out.with_suffix(".safetensors")
    for p in (a.out, bundle_path):
        if p.is_dir():
            raise UserError(f"{p}: is a directory; give a file path")
    state, meta = bundle_from_run(a.run, a.step)
    model = build_model(state, meta, a.run)
    x = np.random.default_rng(0).uniform(0, 255, (2, meta["frames"], 3, meta["size"], meta["size"]))
    x = x.astype(np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    if not np.isfinite(ref).all():
        raise NonFiniteError(f"{a.run}: {a.step} gives NaN or infinite logits; nothing exported")
    onnx_path = export_onnx(model, meta, a.out)
    diff = float(np.abs(OnnxModel(onnx_path)(x) - ref).max())
    if not diff <= 1e-3 * max(1.0, float(np.abs(ref).max())):  # also refuses NaN
        onnx_path.unlink()
        raise UserError(f"{a.out}: the ONNX graph differs from the PyTorch model (max |Δlogit| = {diff:.3g}); "
                        f"nothing exported")
    st = save_bundle(state, meta, bundle_path)
    hub_dir = a.hub_dir or a.out.with_name(a.out.stem + "-hub")
    from modistill.deploy.hub import write_hub_folder

    write_hub_folder(st, meta, a.run, hub_dir)
    print(f"wrote {onnx_path}, {st} and the Hub-style folder {hub_dir}: {meta['arch']} (width {meta['width']}), "
          f"{meta['num_classes']} classes, "
          f"input [B, {meta['frames']}, 3, {meta['size']}, {meta['size']}] RGB 0-255, crop {meta['crop']} "
          f"({meta['crop_source']}); ONNX vs PyTorch max |Δlogit| = {diff:.2e}")


def cmd_predict(a: argparse.Namespace) -> int | None:
    from modistill.deploy.predict import Predictor

    results = Predictor(a.model, a.runtime, a.device).predict(a.videos, a.topk)
    if a.json:
        print(json.dumps(results, indent=2, allow_nan=False))
    else:
        for r in results:
            if r["error"]:
                print(f"{r['video']}: error: {r['error']}")
                continue
            print(r["video"])
            for t in r["top"]:
                print(f"  {100 * t['prob']:6.2f}%  {t['class']:3d}  {t['name']}")
    return 2 if any(r["error"] for r in results) else None


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("export", help="export a run's RGB-only (step 4) model to ONNX and a safetensors bundle")
    e.add_argument("run", type=Path, help="run folder with a finished step4")
    e.add_argument("--out", type=Path, required=True, help="ONNX path (model.onnx)")
    e.add_argument("--safetensors", type=Path, default=None, help="bundle path (default: OUT with .safetensors)")
    e.add_argument("--hub-dir", type=Path, default=None,
                   help="Hub-style folder: config.json, model.safetensors, model card (default: OUT's name + -hub)")
    e.add_argument("--step", choices=["step4", "step4_inv"], default="step4",
                   help="which RGB-only model of the run (step4_inv: the inverted-connection study)")
    e.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="top-k actions of raw RGB videos (no depth, no skeleton needed)")
    p.add_argument("videos", nargs="+", type=Path)
    p.add_argument("--model", type=Path, required=True,
                   help="run folder, Hub-style folder, .safetensors bundle or .onnx file")
    p.add_argument("--runtime", choices=["auto", "torch", "onnx"], default="auto",
                   help="auto: onnxruntime for .onnx, PyTorch otherwise")
    p.add_argument("--device", default="cpu",
                   help="cpu, cuda or cuda:N (PyTorch); for ONNX Runtime, cuda selects its CUDA provider")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.set_defaults(func=cmd_predict)

"""The Python API: the command line's steps as functions, for notebooks and scripts."""

from __future__ import annotations

from pathlib import Path

from modistill.deploy.predict import Predictor


def prepare(
    root: str | Path,
    out: str | Path,
    *,
    dataset: str = "ntu",
    size: int = 224,
    frames: int = 5,
    depth_encoding: str = "jet",
    benchmark: str = "ntu60",
    workers: int = 1,
    show_progress: bool = True,
    modalities: tuple[str, ...] = ("rgb", "depth"),
    pose_sigma: float | None = None,
    crop: str = "fov",
    person_padding: float = 0.25,
) -> dict:
    """Build or resume a cache from an NTU RGB+D tree (``dataset="ntu"``) or a pairs CSV (``"pairs"``), with the
    options of ``modistill prepare``; ``modalities``: what each clip stores (rgb and any registered modality:
    depth, pose, a plugin's); ``crop``: ``fov`` (the paper's) or ``person`` (:mod:`modistill.data.person_box`).
    Returns the summary ``modistill prepare`` prints."""
    from modistill.data.prepare import PrepareOptions
    from modistill.data.prepare import prepare as run

    opts = PrepareOptions(
        size=size,
        frames=frames,
        depth_encoding=depth_encoding,
        benchmark=benchmark,
        workers=workers,
        modalities=tuple(modalities),
        pose_sigma=pose_sigma,
        crop=crop,
        person_padding=person_padding,
    )
    return run(dataset, root, out, opts, show_progress)


def train(
    config: str | Path,
    run_dir: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    retrain_from: str | None = None,
    reuse_from: tuple[str | Path, ...] = (),
) -> dict[str, dict]:
    """Run a config's steps into ``run_dir`` (a bundled config name or a YAML path, with dotted overrides);
    returns each step's metrics. ``reuse_from``: runs whose finished steps with this run's fingerprints are copied
    instead of trained."""
    from modistill.config import load_config, resolve_config_path
    from modistill.training.runner import run_training

    return run_training(
        load_config(resolve_config_path(config), overrides), run_dir, retrain_from, reuse_from=reuse_from
    )


def evaluate(run_dir: str | Path) -> Path:
    """Write the run's report.md (tables, noisy depth, curves, confusion) and return its path."""
    from modistill.evaluation.report import evaluate_run

    return evaluate_run(run_dir)


def export(run_dir: str | Path, out: str | Path, step: str = "step4") -> tuple[Path, Path, Path]:
    """Export the run's RGB-only model: ONNX, safetensors bundle and Hub-style folder, with the same checks as
    ``modistill export``; returns their paths."""
    from modistill.deploy.export import export_checked

    r = export_checked(run_dir, out, step=step)
    return r["onnx"], r["safetensors"], r["hub"]


def load(model: str | Path, runtime: str = "auto", device: str = "cpu") -> Predictor:
    """A predictor for a run folder, Hub-style folder, ``hf-hub:USER/NAME`` (offline, from the local Hugging Face
    cache), ``.safetensors`` bundle or ``.onnx`` file: ``load(m).predict(["clip.mp4"], topk=5)`` for trimmed clips,
    ``load(m).windows("recording.mp4", detector=...)`` for a timeline per person over a long video or a stream."""
    return Predictor(model, runtime, device)

"""Where a step's metrics and hyperparameters go: Lightning's CSV (always: the report plots it), TensorBoard,
Weights & Biases and MLflow loggers, by the names in ``train.loggers``. A logger whose package is missing is
refused before the run writes anything, never dropped silently."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modistill.config import Config
from modistill.errors import UserError

if TYPE_CHECKING:
    from lightning.pytorch.loggers import Logger

# logger → (packages that can serve it, the pip name to install)
PACKAGES: dict[str, tuple[tuple[str, ...], str]] = {
    "tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"),
    "wandb": (("wandb",), "wandb"),
    "mlflow": (("mlflow",), "mlflow"),
}


def check_loggers(names: list[str]) -> None:
    """Refuse, in one line, a configured logger whose package is not installed."""
    for name in names:
        if name not in PACKAGES:
            continue
        modules, pip_name = PACKAGES[name]
        if not any(importlib.util.find_spec(m) for m in modules):
            raise UserError(
                f"config train.loggers lists {name}, but its package is not installed: "
                f"pip install {pip_name}, or remove {name} from train.loggers"
            )


def flat_hyperparameters(cfg: dict, prefix: str = "") -> dict[str, Any]:
    """The resolved config as dotted keys with scalar values (lists and mappings as text), as trackers want."""
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out |= flat_hyperparameters(v, key + ".")
        else:
            out[key] = v if isinstance(v, int | float | str | bool) else str(v)
    return out


def make_loggers(cfg: Config, run_dir: Path, step: str) -> list[Logger]:
    """One Lightning logger per name in ``train.loggers``, each given the step's resolved config as its
    hyperparameters (the run checked the packages with :func:`check_loggers` before writing anything). A resumed
    step logs to a new CSV/TensorBoard version folder, so the interrupted part's record is kept."""
    import lightning as L

    step_dir = run_dir / step
    loggers: list[Logger] = []
    for name in cfg.train.loggers:
        if name == "csv":
            loggers.append(L.pytorch.loggers.CSVLogger(step_dir, name="logs"))
        elif name == "tensorboard":
            loggers.append(L.pytorch.loggers.TensorBoardLogger(step_dir, name="tb"))
        elif name == "wandb":  # WANDB_MODE=offline keeps it on disk; the project from WANDB_PROJECT
            loggers.append(
                L.pytorch.loggers.WandbLogger(
                    name=f"{cfg.name}/{step}",
                    group=cfg.name,
                    save_dir=str(step_dir),
                    project=os.environ.get("WANDB_PROJECT", "modistill"),
                )
            )
        elif name == "mlflow":
            uri = os.environ.get("MLFLOW_TRACKING_URI") or (run_dir / "mlruns").resolve().as_uri()
            loggers.append(L.pytorch.loggers.MLFlowLogger(experiment_name=cfg.name, run_name=step, tracking_uri=uri))
    params = flat_hyperparameters(cfg) | {"step": step}
    for lg in loggers:
        lg.log_hyperparams(params)
    return loggers

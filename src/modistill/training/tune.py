"""``modistill tune RUN``: selects α, λ and T of eq. 7 (or a step-1 learning rate) on the validation split, as
the paper does (sec. 3.1), with Optuna's TPE sampler instead of a hand-written grid.

Each trial trains the step once, in ``RUN/tune/trial_NNN/``, next to links to the run's finished parent steps
(the teacher is never retrained). The objective is the step's best validation accuracy; the test split is never
looked at. The study lives in ``RUN/tune/study.db`` (SQLite), so an interrupted tune resumes where it stopped: a
trial cut short is marked failed and its folder removed. ``RUN/tune/tune.json`` records the space, every trial and
the best values; ``best.yaml`` holds them as config overrides.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from modistill.config import dump_config, load_config
from modistill.errors import UserError
from modistill.training.steps import STEPS, resolve_order
from modistill.utils.io import atomic_write_text
from modistill.utils.lock import exclusive_lock

log = logging.getLogger("modistill")

# name → (config key, low, high, log scale)
SPACE = {
    "alpha": ("distill.alpha", 0.0, 1.0, False),
    "lambda": ("distill.lambda", 0.0, 1.0, False),
    "temperature": ("distill.temperature", 1.0, 50.0, True),
    "lr": ("train.lr", 1e-5, 1e-2, True),
}
DISTILL_PARAMS = ("alpha", "lambda", "temperature")


def _check(run_dir: Path, step: str, params: list[str], cfg: dict) -> list[str]:
    """The parent steps to link; refuses what the tune cannot do before anything is written."""
    if step not in STEPS:
        raise UserError(f"tune: unknown step {step!r}; known: {sorted(STEPS)}")
    unknown = [p for p in params if p not in SPACE]
    if unknown or not params:
        raise UserError(f"tune: --params must name some of {', '.join(SPACE)}, got {params}")
    parents = [s for s in resolve_order([step]) if s != step]
    if "lr" in params and parents:
        raise UserError(f"tune: the learning rate is part of every step's fingerprint, so tuning it for {step} "
                        f"would retrain {', '.join(parents)}; tune lr on step1_rgb or step1_depth")
    if STEPS[step].loss == "ce" and any(p in DISTILL_PARAMS for p in params):
        raise UserError(f"tune: {step} trains with cross-entropy only; α, λ and T act on the distillation steps "
                        f"(step3, its variants, hoffman_*)")
    if cfg["data"]["validation"] is None:
        raise UserError(f"{run_dir}: the run has no validation split (data.validation is null); the tune selects "
                        f"on it")
    missing = [p for p in parents if not (run_dir / p / "metrics.json").exists()]
    if missing:
        raise UserError(f"{run_dir}: {', '.join(missing)} not finished; train the run up to {step}'s parents first")
    return parents


def _objective(run_dir: Path, tune_dir: Path, step: str, params: list[str], parents: list[str], base: list[str]):
    from modistill.training.runner import run_training

    def objective(trial) -> float:
        values = {}
        for p in params:
            _, lo, hi, log_scale = SPACE[p]
            values[p] = trial.suggest_float(p, lo, hi, log=log_scale)
        trial_dir = tune_dir / f"trial_{trial.number:03d}"
        shutil.rmtree(trial_dir, ignore_errors=True)
        trial_dir.mkdir(parents=True)
        for parent in parents:
            (trial_dir / parent).symlink_to(run_dir / parent, target_is_directory=True)
        overrides = [f"{SPACE[p][0]}={v!r}" for p, v in values.items()]
        cfg = load_config(run_dir / "config.yaml", [*base, *overrides])
        res = run_training(cfg, trial_dir)[step]
        acc = res.get("best_val_acc")
        if acc is None:
            raise UserError(f"{trial_dir / step}: no validation accuracy was recorded")
        trial.set_user_attr("dir", str(trial_dir))
        log.info("tune: trial %d %s → validation accuracy %.2f%%", trial.number,
                 ", ".join(f"{p}={v:.4g}" for p, v in values.items()), 100 * acc)
        return float(acc)

    return objective


def tune(run_dir: str | Path, step: str = "step3", params: list[str] | None = None, trials: int = 20,
         seed: int = 0) -> Path:
    """Run (or resume) the study until ``trials`` trials are complete; returns ``RUN/tune/tune.json``."""
    try:
        import optuna
    except ModuleNotFoundError:
        raise UserError("tune needs Optuna: pip install 'modistill[tune]'") from None
    run_dir = Path(run_dir).resolve()
    params = list(params or DISTILL_PARAMS)
    if not (run_dir / "config.yaml").exists():
        raise UserError(f"{run_dir}: not a run folder (no config.yaml); train it first")
    cfg = load_config(run_dir / "config.yaml")
    parents = _check(run_dir, step, params, cfg)
    if trials < 1:
        raise UserError(f"tune: --trials must be at least 1, got {trials}")
    tune_dir = run_dir / "tune"
    tune_dir.mkdir(exist_ok=True)
    with exclusive_lock(tune_dir / ".lock", f"{tune_dir}: another tune is running on this run (pid {{pid}})",
                        f"{tune_dir}: cannot write"):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            study_name=step, storage=f"sqlite:///{tune_dir / 'study.db'}", direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed), load_if_exists=True)
        recorded = study.user_attrs.get("params")
        if recorded is not None and recorded != params:
            raise UserError(f"{tune_dir}: this study tunes {recorded}, not {params}; tune into another run folder "
                            f"or delete {tune_dir}")
        study.set_user_attr("params", params)
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            # Left running by an interrupted tune (the lock says no one else runs): failed, its folder removed.
            study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            shutil.rmtree(tune_dir / f"trial_{t.number:03d}", ignore_errors=True)
            log.info("tune: trial %d was interrupted; marked failed", t.number)
        done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
        base = [f"steps=[{step}]", "variants=[]", "train.progress=false"]
        if done < trials:
            log.info("tune %s: %d of %d trials done; %s on the validation split", step, done, trials,
                     ", ".join(params))
            study.optimize(_objective(run_dir, tune_dir, step, params, parents, base), n_trials=trials - done,
                           catch=())
        return _record(study, run_dir, tune_dir, step, params)


def _record(study, run_dir: Path, tune_dir: Path, step: str, params: list[str]) -> Path:
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    best = study.best_trial
    overrides = {SPACE[p][0]: best.params[p] for p in params}
    record = {
        "step": step, "objective": f"best validation accuracy of {step} (validation split; test never read)",
        "sampler": "optuna TPESampler", "space": {p: dict(zip(("key", "low", "high", "log"), SPACE[p], strict=True))
                                                  for p in params},
        "trials": [{"number": t.number, "params": t.params, "val_acc": t.value} for t in complete],
        "best": {"number": best.number, "val_acc": best.value, "overrides": overrides},
        "apply": f"modistill train {run_dir / 'config.yaml'} "
                 + " ".join(f"{k}={v:.4g}" for k, v in overrides.items())
                 + f" --run-dir {run_dir} --retrain-from {step}",
    }
    atomic_write_text(tune_dir / "tune.json", json.dumps(record, indent=2))
    nested: dict = {}
    for key, v in overrides.items():
        section, name = key.split(".")
        nested.setdefault(section, {})[name] = v
    atomic_write_text(tune_dir / "best.yaml", dump_config(nested))
    return tune_dir / "tune.json"

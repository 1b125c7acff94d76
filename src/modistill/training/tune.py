"""``modistill tune RUN``: selects α, λ and T of eq. 7 (or a step-1 learning rate) on the validation split, as
the paper does (sec. 3.1), with Optuna's TPE sampler instead of a hand-written grid.

Each trial trains the step once, in ``RUN/tune/trial_NNN/``, next to links to the run's finished parent steps
(the teacher is never retrained). The objective is the step's best validation accuracy; the test split is never
looked at. The study lives in ``RUN/tune/study.db`` (SQLite), so an interrupted tune resumes where it stopped: a
trial cut short is marked failed, its folder removed, and it is run again. A trial that diverges (non-finite
weights) is marked failed and the study goes on; a pruner stops trials whose validation curve falls behind.
``RUN/tune/tune.json`` records the space, every trial and the best values; ``best.yaml`` holds them as config
overrides. Only Optuna's public API is used.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from modistill.config import Config, dump_config, load_run_config
from modistill.errors import NonFiniteError, UserError
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


def _check(run_dir: Path, step: str, params: list[str], cfg: Config) -> list[str]:
    """The parent steps to link; refuses what the tune cannot do before anything is written."""
    if step not in STEPS:
        raise UserError(f"tune: unknown step {step!r}; known: {sorted(STEPS)}")
    unknown = [p for p in params if p not in SPACE]
    if unknown or not params:
        raise UserError(f"tune: --params must name some of {', '.join(SPACE)}, got {params}")
    parents = [s for s in resolve_order([step]) if s != step]
    if "lr" in params and parents:
        raise UserError(
            f"tune: the learning rate is part of every step's fingerprint, so tuning it for {step} "
            f"would retrain {', '.join(parents)}; tune lr on step1_rgb or step1_depth"
        )
    if STEPS[step].loss == "ce" and any(p in DISTILL_PARAMS for p in params):
        raise UserError(
            f"tune: {step} trains with cross-entropy only; α, λ and T act on the distillation steps "
            f"(step3, its variants, hoffman_*)"
        )
    if cfg.data.validation is None:
        raise UserError(f"{run_dir}: the run has no validation split (data.validation is null); the tune selects on it")
    from modistill.training.run import is_finished

    missing = [p for p in parents if not is_finished(run_dir, p)]
    if missing:
        raise UserError(f"{run_dir}: {', '.join(missing)} not finished; train the run up to {step}'s parents first")
    return parents


def _pruning_callback(trial):
    """Reports each epoch's validation accuracy to the trial and stops the trial when the pruner says so."""
    import lightning as L
    import optuna

    class ReportToTrial(L.pytorch.callbacks.Callback):
        def on_validation_end(self, trainer, pl_module) -> None:
            acc = trainer.callback_metrics.get("val/acc")
            if trainer.sanity_checking or acc is None:
                return
            trial.report(float(acc), trainer.current_epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {trainer.current_epoch}: validation accuracy {float(acc):.4f}")

    return ReportToTrial()


def _objective(run_dir: Path, tune_dir: Path, step: str, params: list[str], parents: list[str], base: list[str]):
    from modistill.training import runner

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
        cfg = load_run_config(run_dir, [*base, *overrides])
        trial.set_user_attr("dir", str(trial_dir))
        described = ", ".join(f"{p}={v:.4g}" for p, v in values.items())
        try:
            res = runner.run_training(cfg, trial_dir, callbacks=(_pruning_callback(trial),))[step]
        except NonFiniteError as e:  # a diverging trial is a result of the search, not a fault of the tune
            trial.set_user_attr("failed", str(e))
            log.warning("tune: trial %d %s diverged; marked failed, the study goes on", trial.number, described)
            raise
        acc = res.get("best_val_acc")
        if acc is None:
            raise UserError(f"{trial_dir / step}: no validation accuracy was recorded")
        log.info("tune: trial %d %s → validation accuracy %.2f%%", trial.number, described, 100 * acc)
        return float(acc)

    return objective


PRUNERS = ("median", "none")


def _pruner(name: str):
    """median: stop a trial whose validation accuracy after an epoch is below the median of the earlier trials at
    that epoch, once 4 trials have finished and from its second epoch on (Optuna's MedianPruner)."""
    import optuna

    if name == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)


def _finished(study) -> int:
    """Trials that count towards ``--trials``: complete, pruned, or diverged (failed with a recorded reason); a trial
    cut short by an interrupted tune does not count and is run again."""
    from optuna.trial import TrialState

    return sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (t.state == TrialState.FAIL and "failed" in t.user_attrs)
        for t in study.get_trials(deepcopy=False)
    )


def tune(
    run_dir: str | Path,
    step: str = "step3",
    params: list[str] | None = None,
    trials: int = 20,
    seed: int = 0,
    pruner: str = "median",
) -> Path:
    """Run (or resume) the study until ``trials`` trials are finished (complete, pruned or diverged); returns
    ``RUN/tune/tune.json``."""
    try:
        import optuna
    except ModuleNotFoundError:
        raise UserError("tune needs Optuna: pip install 'modistill[tune]'") from None
    run_dir = Path(run_dir).resolve()
    if not (run_dir / "config.yaml").exists():
        raise UserError(f"{run_dir}: not a run folder (no config.yaml); train it first")
    if pruner not in PRUNERS:
        raise UserError(f"tune: --pruner must be one of {PRUNERS}, got {pruner!r}")
    from modistill.training.run import run_lock  # NumPy: imported here, so the command line's parser stays light

    with run_lock(run_dir, "tune"):
        return _tune(optuna, run_dir, step, list(params or DISTILL_PARAMS), trials, seed, pruner)


def _tune(optuna, run_dir: Path, step: str, params: list[str], trials: int, seed: int, pruner: str) -> Path:
    cfg = load_run_config(run_dir)
    parents = _check(run_dir, step, params, cfg)
    if trials < 1:
        raise UserError(f"tune: --trials must be at least 1, got {trials}")
    tune_dir = run_dir / "tune"
    tune_dir.mkdir(exist_ok=True)
    with exclusive_lock(
        tune_dir / ".lock",
        f"{tune_dir}: another tune is running on this run (pid {{pid}})",
        f"{tune_dir}: cannot write",
    ):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            study_name=step,
            storage=f"sqlite:///{tune_dir / 'study.db'}",
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=_pruner(pruner),
            load_if_exists=True,
        )
        recorded = study.user_attrs.get("params")
        if recorded is not None and recorded != params:
            raise UserError(
                f"{tune_dir}: this study tunes {recorded}, not {params}; tune into another run folder "
                f"or delete {tune_dir}"
            )
        study.set_user_attr("params", params)
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            # Left running by an interrupted tune (the lock says no one else runs): failed, its folder removed.
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            shutil.rmtree(tune_dir / f"trial_{t.number:03d}", ignore_errors=True)
            log.info("tune: trial %d was interrupted; marked failed", t.number)
        done = _finished(study)
        base = [f"steps=[{step}]", "variants=[]", "train.progress=false"]
        if done < trials:
            log.info(
                "tune %s: %d of %d trials done; %s on the validation split, %s pruning",
                step,
                done,
                trials,
                ", ".join(params),
                pruner,
            )
            # Optuna reports a caught failure with its traceback; the objective has said it in one line already.
            verbosity = optuna.logging.get_verbosity()
            optuna.logging.set_verbosity(optuna.logging.ERROR)
            try:
                study.optimize(
                    _objective(run_dir, tune_dir, step, params, parents, base),
                    n_trials=trials - done,
                    catch=(NonFiniteError,),
                )
            finally:
                optuna.logging.set_verbosity(verbosity)
        return _record(study, run_dir, tune_dir, step, params, pruner)


def _record(study, run_dir: Path, tune_dir: Path, step: str, params: list[str], pruner: str) -> Path:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    record = {
        "step": step,
        "objective": f"best validation accuracy of {step} (validation split; test never read)",
        "sampler": "optuna TPESampler",
        "pruner": pruner,
        "space": {p: dict(zip(("key", "low", "high", "log"), SPACE[p], strict=True)) for p in params},
        "trials": [{"number": t.number, "params": t.params, "val_acc": t.value} for t in complete],
        "pruned": [
            {
                "number": t.number,
                "params": t.params,
                "last_epoch": t.last_step,
                "val_acc": t.intermediate_values.get(t.last_step),
            }
            for t in trials
            if t.state == TrialState.PRUNED
        ],
        "failed": [
            {"number": t.number, "params": t.params, "reason": t.user_attrs["failed"]}
            for t in trials
            if t.state == TrialState.FAIL and "failed" in t.user_attrs
        ],
    }
    if not complete:
        atomic_write_text(tune_dir / "tune.json", json.dumps(record | {"best": None}, indent=2))
        raise UserError(
            f"{tune_dir}: no trial completed ({len(record['pruned'])} pruned, {len(record['failed'])} "
            f"diverged); see tune.json, then tune again with more --trials or --pruner none"
        )
    best = study.best_trial
    overrides = {SPACE[p][0]: best.params[p] for p in params}
    record["best"] = {"number": best.number, "val_acc": best.value, "overrides": overrides}
    record["apply"] = (
        f"modistill train {run_dir / 'config.yaml'} "
        + " ".join(f"{k}={v:.4g}" for k, v in overrides.items())
        + f" --run-dir {run_dir} --retrain-from {step}"
    )
    atomic_write_text(tune_dir / "tune.json", json.dumps(record, indent=2))
    nested: dict = {}
    for key, v in overrides.items():
        section, name = key.split(".")
        nested.setdefault(section, {})[name] = v
    atomic_write_text(tune_dir / "best.yaml", dump_config(nested))
    return tune_dir / "tune.json"

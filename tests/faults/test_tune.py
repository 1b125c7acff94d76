"""`modistill tune`: α, λ, T selected on the validation split, resumable, recorded in the run."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
import yaml

optuna = pytest.importorskip("optuna")


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tune_selects_on_validation_and_resumes(run_copy, cli):
    teacher = _digest(run_copy / "step2" / "weights.pt")
    rc, out, err = cli(["tune", run_copy, "--trials", "2"])
    assert rc == 0, err[-2000:]
    rec = json.loads((run_copy / "tune" / "tune.json").read_text())
    assert len(rec["trials"]) == 2
    # The objective is each trial's own best validation accuracy, never its test accuracy.
    for t in rec["trials"]:
        m = json.loads((run_copy / "tune" / f"trial_{t['number']:03d}" / "step3" / "metrics.json").read_text())
        assert t["val_acc"] == m["best_val_acc"]
        cfg = yaml.safe_load((run_copy / "tune" / f"trial_{t['number']:03d}" / "config.yaml").read_text())
        assert cfg["distill"]["alpha"] == pytest.approx(t["params"]["alpha"])
        assert cfg["distill"]["temperature"] == pytest.approx(t["params"]["temperature"])
    best = max(rec["trials"], key=lambda t: t["val_acc"])
    assert rec["best"]["val_acc"] == best["val_acc"]
    applied = yaml.safe_load((run_copy / "tune" / "best.yaml").read_text())
    assert applied["distill"]["lambda"] == pytest.approx(rec["best"]["overrides"]["distill.lambda"])
    assert _digest(run_copy / "step2" / "weights.pt") == teacher  # the teacher is linked, never retrained

    # A trial left running by a killed tune is marked failed and its folder removed; the study goes on.
    study = optuna.load_study(study_name="step3", storage=f"sqlite:///{run_copy / 'tune' / 'study.db'}")
    cut = study.ask()
    (run_copy / "tune" / f"trial_{cut.number:03d}" / "step3").mkdir(parents=True)
    rc, out, err = cli(["tune", run_copy, "--trials", "3"])
    assert rc == 0, err[-2000:]
    states = {
        t.number: t.state
        for t in optuna.load_study(study_name="step3", storage=f"sqlite:///{run_copy / 'tune' / 'study.db'}").trials
    }
    assert states[cut.number] == optuna.trial.TrialState.FAIL
    assert not (run_copy / "tune" / f"trial_{cut.number:03d}").exists()
    assert sum(s == optuna.trial.TrialState.COMPLETE for s in states.values()) == 3
    assert len(json.loads((run_copy / "tune" / "tune.json").read_text())["trials"]) == 3


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--step", "step2"], "step2 trains with cross-entropy only"),
        (["--params", "lr"], "the learning rate is part of every step's fingerprint"),
        (["--trials", "0"], "--trials must be at least 1"),
    ],
)
def test_tune_refusals(run_copy, cli, args, fragment):
    cli.fails(["tune", run_copy, *args], fragment)
    assert not (run_copy / "tune").exists()


def test_tune_needs_finished_parents(run_copy, cli):
    (run_copy / "step2" / "metrics.json").unlink()
    cli.fails(["tune", run_copy], "step2 not finished")


def test_tune_refuses_a_run_without_validation(run_copy, cli):
    cfg = run_copy / "config.yaml"
    text = cfg.read_text()
    assert "validation: performers" in text
    cfg.write_text(text.replace("validation: performers", "validation: null"))
    cli.fails(["tune", run_copy], "the run has no validation split")
    assert not (run_copy / "tune").exists()


def _states(run):
    study = optuna.load_study(study_name="step3", storage=f"sqlite:///{run / 'tune' / 'study.db'}")
    return {t.number: t for t in study.trials}


def test_a_diverging_trial_is_marked_failed_and_the_study_goes_on(run_copy, cli, monkeypatch):
    from modistill.errors import NonFiniteError
    from modistill.training import runner

    real = runner.run_training
    calls = []

    def diverge_first(cfg, run_dir, retrain_from=None, callbacks=()):
        calls.append(run_dir)
        if len(calls) == 1:
            raise NonFiniteError("step3: the selected weights hold NaN or infinite values")
        return real(cfg, run_dir, retrain_from, callbacks)

    monkeypatch.setattr(runner, "run_training", diverge_first)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("optuna").addHandler(handler)  # optuna's loggers do not propagate to pytest's capture
    try:
        rc, out, err = cli(["tune", run_copy, "--trials", "2"])
    finally:
        logging.getLogger("optuna").removeHandler(handler)
    assert rc == 0, err[-2000:]
    # one line for the failed trial, from modistill; no traceback from Optuna's own report of it
    assert not [r for r in records if r.levelno >= logging.WARNING], [r.getMessage()[:200] for r in records]
    assert "Traceback" not in err and err.count("diverged; marked failed") == 1, err[-2000:]
    trials = _states(run_copy)
    assert [t.state for t in trials.values()] == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]
    rec = json.loads((run_copy / "tune" / "tune.json").read_text())
    assert [f["number"] for f in rec["failed"]] == [0] and "NaN" in rec["failed"][0]["reason"]
    assert rec["best"]["number"] == 1
    assert "1 complete, 0 pruned, 1 diverged" in out


def test_the_pruner_stops_a_trial_from_its_validation_curve(run_copy, cli, monkeypatch):
    """Every epoch's validation accuracy reaches the trial; a trial the pruner condemns stops before its end."""
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: self.number == 0)
    rc, out, err = cli(["tune", run_copy, "--trials", "2"])
    assert rc == 0, err[-2000:]
    trials = _states(run_copy)
    assert trials[0].state == optuna.trial.TrialState.PRUNED
    assert not (run_copy / "tune" / "trial_000" / "step3" / "metrics.json").exists()  # stopped, not finished
    assert trials[1].state == optuna.trial.TrialState.COMPLETE
    m = json.loads((run_copy / "tune" / "trial_001" / "step3" / "metrics.json").read_text())
    assert trials[1].intermediate_values == {0: pytest.approx(m["best_val_acc"])}  # one epoch, reported
    assert json.loads((run_copy / "tune" / "tune.json").read_text())["pruned"][0]["number"] == 0


def test_tune_uses_only_public_optuna_apis():
    from pathlib import Path

    import modistill.training.tune as tune_module

    source = Path(tune_module.__file__).read_text()
    assert "._storage" not in source and "._trial_id" not in source

"""Budget-matched controls: a comparison of step 4 with RGB alone that gives both the same training."""

from __future__ import annotations

import json

import pytest
from helpers import tiny_cfg

from modistill.cli import main
from modistill.config import CONFIG_DIR, epochs_for, load_config
from modistill.training.runner import run_training
from modistill.training.steps import STEPS, stream_epochs


@pytest.mark.parametrize(
    "overrides",
    [
        [],  # the demo: RGB 20, later steps 3 / 2 / 3
        ["train.step_epochs={}", "train.epochs=7"],
        ["train.step_epochs={step1_rgb: 4, step2: 5, step4: 1}", "distill.hall_init=depth"],
    ],
)
def test_the_control_has_trained_exactly_as_long_as_step_4s_rgb_stream(overrides):
    cfg = load_config(CONFIG_DIR / "demo.yaml", ["data.cache=/nowhere", *overrides])

    def epochs(step: str) -> int:
        return epochs_for(cfg, step)

    hall_init = cfg["distill"]["hall_init"]
    rgb_path = stream_epochs("step4", "rgb", epochs, hall_init)  # step 1 + step 2 + step 4
    assert rgb_path == epochs("step1_rgb") + epochs("step2") + epochs("step4")
    assert stream_epochs("rgb_budget", "rgb", epochs, hall_init) == rgb_path
    assert STEPS["rgb_budget"].loss == "ce" and STEPS["rgb_budget"].inputs == {"rgb": "rgb"}  # RGB alone


def test_the_control_is_a_row_a_claim_and_explained_in_the_report(small_cache, tmp_path):
    run = tmp_path / "run"
    res = run_training(tiny_cfg(small_cache, "steps=[step4]", "variants=[rgb_budget]"), run)
    record = json.loads((run / "rgb_budget" / "step.json").read_text())
    assert record["keys"]["train.epochs"] == 2  # the tiny config's step 2 + step 4: 1 + 1
    assert "rgb_budget" in res and main(["evaluate", str(run)]) in (0, None)
    rows = {r["row"]: r for r in json.loads((run / "table2.json").read_text())}
    assert rows["C1"]["accuracy"] == res["rgb_budget"]["accuracy"] and rows["C1"]["modality"] == "RGB"
    report = (run / "report.md").read_text()
    assert "| step 4 beats RGB trained as long (budget-matched control) | #15 > #C1 |" in report
    assert "Row C1 is a control: the step-1 RGB stream trained on alone, 3 epochs in all" in report

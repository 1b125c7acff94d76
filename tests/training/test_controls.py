"""Budget-matched controls: a comparison of step 4 with RGB alone that gives both the same training."""

from __future__ import annotations

import json

import pytest
from helpers import tiny_cfg

from modistill.cli import main
from modistill.config import CONFIG_DIR, epochs_for, load_config
from modistill.training.runner import run_training
from modistill.training.steps import STEPS, init_for, stream_epochs


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
    # The ensemble: each of its two RGB streams has trained as long as the step-4 stream it stands for.
    assert stream_epochs("rgb_ensemble", "rgb", epochs, hall_init) == rgb_path
    assert stream_epochs("rgb_ensemble", "hall", epochs, hall_init) == stream_epochs("step4", "hall", epochs, hall_init)
    # Its second stream starts where step 4's hallucination stream's chain starts, and trains the rest alone.
    start = ("step1_rgb", "rgb") if hall_init == "rgb" else None
    assert init_for(STEPS["ens_rgb2"], hall_init) == {"rgb": start}
    assert epochs("ens_rgb2") == epochs("step2") + epochs("step3") + (0 if start else epochs("step1_depth"))
    # C2i: the same ensemble with an independent second network, from random init whatever hall_init.
    assert init_for(STEPS["ens_rgb2_indep"], hall_init) == {"rgb": None}
    assert epochs("ens_rgb2_indep") == stream_epochs("step3", "hall", epochs, hall_init)
    assert stream_epochs("rgb_ensemble_indep", "hall", epochs, hall_init) == stream_epochs(
        "step4", "hall", epochs, hall_init
    )
    ens = STEPS["rgb_ensemble"]
    assert ens.inputs == {"rgb": "rgb", "hall": "rgb"} and ens.connection and ens.loss == STEPS["step4"].loss
    assert all(STEPS[src].inputs == {"rgb": "rgb"} for src, _ in ens.init.values())  # no privileged modality


def test_the_control_is_a_row_a_claim_and_explained_in_the_report(small_cache, tmp_path):
    run = tmp_path / "run"
    variants = "variants=[rgb_budget, rgb_ensemble, rgb_ensemble_indep]"
    res = run_training(tiny_cfg(small_cache, "steps=[step4]", variants), run)
    record = json.loads((run / "rgb_budget" / "step.json").read_text())
    assert record["keys"]["train.epochs"] == 2  # the tiny config's step 2 + step 4: 1 + 1
    assert "rgb_budget" in res and main(["evaluate", str(run)]) in (0, None)
    rows = {r["row"]: r for r in json.loads((run / "table2.json").read_text())}
    assert rows["C1"]["accuracy"] == res["rgb_budget"]["accuracy"] and rows["C1"]["modality"] == "RGB"
    report = (run / "report.md").read_text()
    assert "| step 4 beats RGB trained as long (budget-matched control) | #15 > #C1 |" in report
    assert "Row C1 is a control: the step-1 RGB stream trained on alone, 3 epochs in all" in report
    assert rows["C2"]["accuracy"] == res["rgb_ensemble"]["accuracy"]
    assert "| step 4 beats an RGB ensemble fused as it is (ensemble control) | #15 > #C2 |" in report
    assert "Row C2 is a control: two RGB networks and no depth" in report and "row C2 tests that" in report
    assert rows["C2i"]["accuracy"] == res["rgb_ensemble_indep"]["accuracy"]
    assert "| step 4 beats two independent RGB networks fused as it is (ensemble control) | #15 > #C2i |" in report
    assert "Row C2i is the same ensemble with an independent second network" in report
    parents = json.loads((run / "ens_rgb2_indep" / "step.json").read_text())["parents"]
    assert parents == {}  # random init, although the demo's hallucination stream starts from the RGB stream
    assert "Every step trained a fixed number of epochs (no early stopping)" in report  # the demo's budgets


@pytest.mark.parametrize("hall_init", ["depth", "rgb"])
def test_the_ensembles_second_stream_trains_with_another_seed_from_where_the_hallucination_stream_starts(
    small_cache, tmp_path, hall_init
):
    """From random init with the paper's hall_init (its own initialisation, not a copy of the step-1 RGB stream's),
    from the step-1 RGB stream with hall_init=rgb; either way with the next seed's clip order, so the two differ."""
    import torch

    from modistill.training.data import step_seed

    cfg = tiny_cfg(
        small_cache,
        "steps=[step1_rgb]",
        "variants=[ens_rgb2]",
        "train.step_epochs={ens_rgb2: 1}",
        f"distill.hall_init={hall_init}",
    )
    assert step_seed(cfg, "ens_rgb2") == cfg["seed"] + 1 and step_seed(cfg, "step1_rgb") == cfg["seed"]
    run = tmp_path / "run"
    run_training(cfg, run)
    parents = json.loads((run / "ens_rgb2" / "step.json").read_text())["parents"]
    assert list(parents) == ([] if hall_init == "depth" else ["step1_rgb"])
    a = torch.load(run / "step1_rgb" / "weights.pt", weights_only=True)
    b = torch.load(run / "ens_rgb2" / "weights.pt", weights_only=True)
    first = next(k for k in a if k.startswith("net.streams.rgb.") and a[k].is_floating_point())
    assert a.keys() == b.keys() and not torch.equal(a[first], b[first])


def test_make_demo_runs_both_controls_and_all_rows_adds_rows_3_and_4(capsys):
    from modistill.demo import ALL_ROWS, all_rows_override
    from modistill.evaluation.tables import TABLE2

    cfg = load_config(CONFIG_DIR / "demo.yaml", ["data.cache=/nowhere"])
    assert {"rgb_budget", "rgb_ensemble"} <= set(cfg["variants"])  # rows C1 and C2 in make demo
    assert not set(ALL_ROWS) & set(cfg["variants"])  # make demo's 10 minutes leave them out
    override = all_rows_override()
    extended = load_config(CONFIG_DIR / "demo.yaml", ["data.cache=/nowhere", override])["variants"]
    assert extended == [*ALL_ROWS, *cfg["variants"]]
    assert all_rows_override(["variants=[rgb_budget]"]) == f"variants=[{', '.join(ALL_ROWS)}, rgb_budget]"
    rows = {r[0] for r in TABLE2 if r[4] in ALL_ROWS}
    assert rows == {"3", "4", "9", "10", "11", "12", "C2i"}  # what --all-rows's help and make demo-all-rows promise
    assert main(["demo", "--all-rows", "--arch", "r3d_18", "--out", "/nowhere"]) == 2
    assert "--all-rows adds rows to the full demo" in capsys.readouterr().err

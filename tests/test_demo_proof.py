"""The proof run (``demo --proof``): its recipe, the order of its runs, what they share, and its results section."""

from __future__ import annotations

import json
import os
from pathlib import Path

from modistill.cli import main
from modistill.config import CONFIG_DIR, load_config


def test_the_proof_trains_every_step_to_convergence_on_its_harder_colour_camera():
    from modistill.demo import FULL, PROOF

    cfg = load_config(CONFIG_DIR / "demo.yaml", ["data.cache=/nowhere", *PROOF["overrides"]])
    assert cfg.train.patience > 0 and cfg.train.step_epochs["step1_rgb"] >= 60 and cfg.train.epochs >= 10
    # The streams that start from random init: the patience the calibration converged with.
    assert cfg.train.step_patience == {"step1_rgb": 20, "step1_depth": 20, "ens_rgb2_indep": 20}
    assert PROOF["synth"]["rgb_noise"] > FULL["synth"].get("rgb_noise", 5.0)
    assert PROOF["synth"]["motion_blur"] > 0
    assert {k: v for k, v in PROOF["synth"].items() if k not in ("rgb_noise", "motion_blur")} == FULL["synth"]


def test_the_proof_runs_depth_on_every_seed_first_and_the_other_modalities_reuse_its_rgb_steps(tmp_path, monkeypatch):
    import modistill.demo as demo
    import modistill.evaluation.readme as readme
    import modistill.evaluation.seeds as seeds

    calls = []

    def fake_demo(out, mode, seed, workers, overrides, privileged, dirs, modalities, reuse_from):
        calls.append((seed, privileged, dirs[0], dirs[1], modalities, reuse_from, overrides))

    monkeypatch.setattr(demo, "_demo", fake_demo)
    monkeypatch.setattr(seeds, "write_seed_summary", lambda runs, out: Path(out) / "seeds.md")
    written = []
    monkeypatch.setattr(readme, "write_proof_section", lambda *a: written.append(a))
    monkeypatch.setattr(seeds, "write_modality_table", lambda summaries, out: (out, list(summaries)))
    demo.run_proof(tmp_path, [7, 8], readme=tmp_path / "page.md", privileged=("pose", "depth_pose"))
    assert [(c[0], c[1]) for c in calls] == [
        (7, "depth"),
        (8, "depth"),
        (7, "pose"),
        (8, "pose"),
        (7, "depth_pose"),
        (8, "depth_pose"),
    ]
    for seed, p, cache, run, modalities, reuse, overrides in calls:
        base = tmp_path / f"seed_{seed}"
        assert cache == base / "cache" and modalities == ("rgb", "depth", "pose", "depth_pose")
        assert run == base / ("run" if p == "depth" else f"run_{p}")
        assert reuse == (() if p == "depth" else (base / "run",))
        variants = load_config(CONFIG_DIR / "demo.yaml", ["data.cache=/nowhere", *overrides]).variants
        assert {"rgb_budget", "rgb_ensemble", "rgb_ensemble_indep"} <= set(variants)
        assert ("hoffman_eq7" in variants) == (p == "depth")
    # The section is written once the depth runs have finished, and again as each other modality finishes.
    assert [(w[3], w[4]) for w in written] == [
        (None, ["pose", "depth_pose"]),
        ((tmp_path / "modalities.md", ["depth", "pose"]), ["depth_pose"]),
        ((tmp_path / "modalities.md", ["depth", "pose", "depth_pose"]), []),
    ]
    for page, summary, runs, _, _ in written:
        assert page == tmp_path / "page.md"
        assert summary == tmp_path / "seeds.md" and runs == [tmp_path / "seed_7" / "run", tmp_path / "seed_8" / "run"]


def _records(out: Path) -> list[dict]:
    path = out / "proof_runs.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_the_proofs_parallel_runs_start_another_modality_only_after_the_seeds_depth_run(tmp_path, monkeypatch):
    from helpers import fake_proof_run

    import modistill.demo as demo

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    finished = []
    demo._proof_runs(
        tmp_path, demo.QUICK_PROOF, [7, 8], 2, ("depth", "pose"), 2, lambda p, runs: finished.append((p, runs)),
        fake_proof_run,
    )  # fmt: skip
    rec = _records(tmp_path)
    start = {(r["seed"], r["p"]): r["t"] for r in rec if r["event"] == "start"}
    end = {(r["seed"], r["p"]): r["t"] for r in rec if r["event"] == "end"}
    assert sorted(start) == sorted(end) == [(7, "depth"), (7, "pose"), (8, "depth"), (8, "pose")]
    assert max(start[7, "depth"], start[8, "depth"]) < min(end[7, "depth"], end[8, "depth"])  # two at once
    assert start[8, "pose"] >= end[8, "depth"] and start[7, "pose"] >= end[7, "depth"]  # adopts its depth run
    assert start[8, "pose"] < end[7, "depth"]  # and starts as soon as its own depth run has finished
    for r in rec:  # two runs at once on 2 cores: one thread and one writer process each, in a process each
        assert r["threads"] == 1 and r["workers"] == 1 and r["pid"] != os.getpid()
        assert r["log"] == str(tmp_path / f"seed_{r['seed']}" / ("run.log" if r["p"] == "depth" else "run_pose.log"))
    assert finished == [
        ("depth", [tmp_path / "seed_7" / "run", tmp_path / "seed_8" / "run"]),
        ("pose", [tmp_path / "seed_7" / "run_pose", tmp_path / "seed_8" / "run_pose"]),
    ]


def test_a_failed_parallel_run_stops_the_running_ones_and_starts_no_other(tmp_path):
    import pytest
    from helpers import fake_proof_run

    import modistill.demo as demo
    from modistill.errors import UserError

    (tmp_path / "fail_8").touch()
    with pytest.raises(UserError) as e:
        demo._proof_runs(tmp_path, demo.QUICK_PROOF, [7, 8, 9], 2, ("depth",), 2, lambda *a: None, fake_proof_run)
    assert str(e.value) == (
        "proof: seed 8, privileged depth failed: modistill demo: no space left on the device "
        f"(log: {tmp_path / 'seed_8' / 'run.log'})"
    )
    rec = _records(tmp_path)
    # 7 unwound by the SIGTERM (its loaders and semaphores closed), 8's SystemExit is its own failure, 9 never started
    assert {(r["seed"], r["event"]) for r in rec} == {
        (7, "start"), (7, "stopped: Interrupted"), (8, "start"), (8, "stopped: SystemExit")
    }  # fmt: skip
    pid = next(r["pid"] for r in rec if r["seed"] == 7)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_run_that_ignores_the_stop_is_killed_after_the_grace_time(tmp_path, monkeypatch):
    import pytest
    from helpers import fake_proof_run

    import modistill.demo as demo
    from modistill.errors import UserError

    monkeypatch.setattr(demo, "PROOF_STOP_GRACE_S", 1.0)
    (tmp_path / "fail_8").touch()
    (tmp_path / "stubborn_7").touch()
    with pytest.raises(UserError, match="proof: seed 8, privileged depth failed"):
        demo._proof_runs(tmp_path, demo.QUICK_PROOF, [7, 8], 2, ("depth",), 2, lambda *a: None, fake_proof_run)
    rec = _records(tmp_path)
    assert [r["event"] for r in rec if r["seed"] == 7] == ["start"]  # killed: neither unwound nor ended by itself
    with pytest.raises(ProcessLookupError):
        os.kill(next(r["pid"] for r in rec if r["seed"] == 7), 0)


def test_the_proof_section_is_its_own_with_its_own_figures(tmp_path):
    import pytest

    from modistill.errors import UserError
    from modistill.evaluation.readme import END, PROOF_END, PROOF_START, START, write_proof_section

    page = tmp_path / "docs" / "results.md"
    page.parent.mkdir()
    page.write_text(f"# R\n{START}\nseeds\n{END}\n## Proof\n{PROOF_START}\n{PROOF_END}\n")
    out = tmp_path / "proof"
    (out / "seed_1" / "run").mkdir(parents=True)
    (out / "seed_1" / "run" / "run.json").write_text(
        '{"data": {"benchmark": "ntu60", "protocol": "cross-subject", "class_names": ["a"]}, '
        '"input": {"size": 96, "frames": 5}, "model": {"arch": "resnet18", "width": 16, "pretrained": null}}'
    )
    (out / "seeds.png").write_bytes(b"png")
    (out / "seeds.md").write_text("# Test accuracy over 1 runs\n\n| # |\n\n![bars](seeds.png)\n")
    (out / "modalities.md").write_text("| # | Method | privileged: Pose |\n")
    rows = [{"row": "1", "mean": 0.8, "runs": [0.8, 0.8]}, {"row": "2", "mean": 0.76, "runs": [0.72, 0.8]}]
    (out / "seeds.json").write_text(json.dumps({"table2": rows}))
    runs = [out / "seed_1" / "run", out / "seed_2" / "run"]
    for run, (rgb, depth) in zip(runs, [(0.5, 1.0), (0.9, 0.9)], strict=True):
        for step, best in (("step1_rgb", rgb), ("step1_depth", depth)):
            (run / step).mkdir(parents=True)
            (run / step / "metrics.json").write_text(json.dumps({"accuracy": 0.5, "best_val_acc": best}))
    write_proof_section(page, out / "seeds.md", runs, out / "modalities.md")
    text = page.read_text()
    assert text.index(START) < text.index("seeds") < text.index(END)  # the seeds section is kept as it was
    proof = text[text.index(PROOF_START) : text.index(PROOF_END)]
    assert "make demo-proof" in proof and "![bars](results/proof_seeds.png)" in proof and "privileged: Pose" in proof
    assert (page.parent / "results" / "proof_seeds.png").read_bytes() == b"png"
    assert (
        "(row 2 / row 1), per run: 0.90, 1.00 on test accuracy, 0.50, 1.00 on best validation accuracy; of the means: "
        "0.95 and 0.74 (the benchmark was calibrated for 0.90-0.96 on best validation accuracy" in proof
    )
    assert "Not finished" not in proof
    write_proof_section(page, out / "seeds.md", runs, None, ["pose", "depth_pose"])
    proof = page.read_text().split(PROOF_START)[1]
    assert "**Not finished yet:** the runs with Pose and Depth+Pose as the privileged modality" in proof
    assert "privileged: Pose" not in proof
    (runs[1] / "step1_rgb" / "metrics.json").write_text('{"accuracy": 0.5, "best_val_acc": null}')
    with pytest.raises(UserError, match="step1_rgb/metrics.json: no best validation accuracy recorded"):
        write_proof_section(page, out / "seeds.md", runs, None)


def test_the_proof_refuses_what_would_change_it(capsys):
    for extra in (["--seed", "3"], ["--all-rows"], ["--arch", "r3d_18"], ["train.epochs=3"]):
        assert main(["demo", "--proof", "--out", "/nowhere", *extra]) == 2
        assert "demo: --proof runs its own recipe, seeds and rows; drop" in capsys.readouterr().err
    assert main(["demo", "--jobs", "2", "--out", "/nowhere"]) == 2
    assert "--jobs runs several of the proof's runs at once; it goes with --proof" in capsys.readouterr().err
    assert main(["demo", "--proof", "--jobs", "0", "--out", "/nowhere"]) == 2


def test_make_demo_proof_names_the_proofs_seeds_and_the_results_page_has_its_section():
    import re

    from modistill.demo import PROOF_SEEDS
    from modistill.evaluation.readme import PROOF_END, PROOF_START

    root = Path(__file__).parents[1]
    line = next(x for x in (root / "Makefile").read_text().splitlines() if "demo --proof" in x)
    assert tuple(map(int, re.search(r"--seeds ([\d ]+)", line).group(1).split())) == PROOF_SEEDS
    page = (root / "docs" / "results.md").read_text()
    assert page.count(PROOF_START) == 1 and page.index(PROOF_START) < page.index(PROOF_END)

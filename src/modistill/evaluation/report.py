"""``modistill evaluate RUN``: report.md with Table 1/2 rows, Table 3 (noisy depth), Fig. 4 curves and a
confusion matrix, all from measured numbers of the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from modistill.config import Config, describe_epochs, describe_init, describe_recipe, load_run_config, patience_for
from modistill.data.modalities import as_privileged
from modistill.errors import UserError
from modistill.evaluation.claims import check_claims, claims_markdown, noise_claim, wilson
from modistill.evaluation.noisy_depth import NOISE_WHERE, noisy_depth_accuracies
from modistill.evaluation.plots import (
    confusion_matrix_png,
    curves_csv,
    epoch_curves,
    hallucination_curves,
    noise_curve_png,
    training_curves_png,
)
from modistill.evaluation.tables import markdown_table, paper_value, per_video_correct, table2_rows
from modistill.training.run import RunInfo, describe_crop, run_lock
from modistill.training.steps import STEPS
from modistill.utils.io import atomic_write_text


def evaluate_run(run_dir: str | Path) -> Path:
    """Write the run's report (report.md, its figures and tables) into the run folder, holding the folder's lock."""
    if not Path(run_dir).is_dir():
        RunInfo(run_dir)  # the one-line refusal of a missing run folder, before a lock would create it
    with run_lock(run_dir, "evaluate"):
        return _evaluate(run_dir)


def _evaluate(run_dir: str | Path) -> Path:
    run = RunInfo(run_dir)
    run_dir = run.dir
    cfg = load_run_config(run_dir)
    metrics = run.metrics()
    if not metrics:
        raise UserError(f"{run_dir}: no finished steps to evaluate")
    data, inp = run.meta["data"], run.meta["input"]
    meta = {"num_classes": data["num_classes"], "class_names": data["class_names"], "size": inp["size"]}
    privileged = cfg.model.privileged
    rows = table2_rows(metrics, privileged)
    n_test = next((m["n"] for m in metrics.values() if m.get("n")), 0)
    protocol = cfg.data.protocol
    for r in rows:
        lo, hi = wilson(r["accuracy"], n_test)
        r["interval"] = f"{100 * lo:.1f}-{100 * hi:.1f}"
        r["paper"] = paper_value(r["row"], protocol) if data["benchmark"] != "pairs" else "-"
    lines = _setup_lines(cfg, data, inp, meta, n_test) + _table2_lines(rows, protocol) + _control_lines(cfg, rows)
    lines += _stopping_lines(cfg, metrics)
    noisy = _noisy_depth(cfg, run_dir, metrics, data, meta)
    correct = per_video_correct(metrics)
    claims = check_claims(
        {r["row"]: [r["accuracy"]] for r in rows}, n_test, {row: [np.array(v)] for row, v in correct.items()}
    )
    noise = noisy and noise_claim({r["sigma2"]: [r["accuracy"]] for r in noisy}, [metrics["step4"]["accuracy"]], n_test)
    if noise:
        claims.append(noise)
    lines += claims_markdown(claims, 1, n_test)
    if noisy:
        lines += _table3_lines(cfg, run_dir, noisy, metrics["step4"]["accuracy"], privileged)
    lines += _figure_lines(run_dir, metrics, meta)
    out = run_dir / "report.md"
    atomic_write_text(out, as_privileged("\n".join(lines), privileged))
    atomic_write_text(run_dir / "table2.json", json.dumps(rows, indent=2))
    return out


def _stopping_lines(cfg: Config, metrics: dict[str, dict]) -> list[str]:
    """With early stopping, how long each step trained (of its maximum) and the epoch it kept: a step compared
    while under-trained would show as one that ran its maximum."""
    if not any("epochs_trained" in m and patience_for(cfg, step) for step, m in metrics.items()):
        return []
    said = [
        f"{step} {m['epochs_trained']} of {m['max_epochs']} (kept {m['selected_epoch']})"
        for step, m in metrics.items()
        if "epochs_trained" in m
    ]
    return [f"Epochs trained with early stopping, of each step's maximum: {', '.join(said)}.", ""]


def _setup_lines(cfg: Config, data: dict, inp: dict, meta: dict, n_test: int) -> list[str]:
    """The report's opening: data, model, recipe, test-set size and chance, what the test modality means."""
    return [
        f"# modistill report: {cfg.name}",
        "",
        f"Data: `{data['cache']}` ({meta['num_classes']} classes, {meta['size']} px{describe_crop(inp)}, "
        f"{cfg.data.frames} frames), protocol {cfg.data.protocol}. Model: {cfg.model.arch} "
        f"(width {cfg.model.width}), "
        f"connections {cfg.model.connection}, "
        f"{describe_init(cfg.model.pretrained)} init. "
        f"Seed {cfg.seed}, {describe_epochs(cfg.train)}; {describe_recipe(cfg)}.",
        "",
        f"Test set: {n_test} videos; chance {100 / meta['num_classes']:.1f} %. Intervals are 95 % Wilson "
        f"intervals of each accuracy on this test size. The test modality says what each row saw at test "
        f"time: rows 7 and 11-13 receive real depth through the connections; only rows 2-5, 10, 14 and 15 "
        f"are RGB only.",
        "",
    ]


def _table2_lines(rows: list[dict], protocol: str) -> list[str]:
    return [
        "## Table 2: steps and ablations (test accuracy)",
        "",
        markdown_table(
            rows,
            [
                ("row", "#"),
                ("method", "Method"),
                ("modality", "Test modality"),
                ("loss", "Loss"),
                ("accuracy", "Top-1"),
                ("interval", "95 % interval"),
                ("top5", "Top-5"),
                ("mean_class", "Mean class"),
                ("paper", f"Paper ({protocol})"),
            ],
        ),
        "",
    ]


def _control_lines(cfg: Config, rows: list[dict]) -> list[str]:
    """What the budget-matched controls (rows C1, C2) rule out, with the epochs each side had."""
    have = {r["row"] for r in rows} & {"C1", "C2", "C2i"}
    if not have:
        return []
    from modistill.config import epochs_for
    from modistill.training.steps import stream_epochs

    hall_init = cfg.distill.hall_init  # load_run_config filled it for runs made before it existed

    def total(step: str, stream: str) -> int:
        return stream_epochs(step, stream, lambda s: epochs_for(cfg, s), hall_init)

    n, h = total("step4", "rgb"), total("step4", "hall")
    lines = []
    if "C1" in have:
        rest = "row C2 tests that" if "C2" in have else "it does not rule out that"
        lines.append(
            f"Row C1 is a control: the step-1 RGB stream trained on alone, {total('rgb_budget', 'rgb')} epochs in "
            f"all, as many as step 4's RGB stream has had through steps 1, 2 and 4 ({n}). If step 4 beats it, step "
            f"4's gain is not only its longer training; {rest} a second RGB network without the privileged modality "
            "(an ensemble) would help as much."
        )
    if "C2" in have:
        second = (
            f"a second copy of it trained on with seed {cfg.seed + 1}, as step 4's hallucination stream starts from it"
            if hall_init == "rgb"
            else f"a second one from seed {cfg.seed + 1}"
        )
        lines.append(
            f"Row C2 is a control: two RGB networks and no {cfg.model.privileged}, the step-1 RGB stream and "
            f"{second}, fused and fine-tuned exactly as step 4 fuses its RGB and "
            f"hallucination streams, each with the epochs of the stream it stands for ({total('rgb_ensemble', 'rgb')}"
            f" and {total('rgb_ensemble', 'hall')}; step 4's: {n} and {h}). If step 4 beats it, the privileged "
            "modality taught the hallucination stream something a second RGB network "
            + ("fine-tuned from the same start does not bring." if hall_init == "rgb" else "does not bring.")
        )
    if "C2i" in have:
        lines.append(
            f"Row C2i is the same ensemble with an independent second network (random init, seed {cfg.seed + 1}, "
            f"{total('rgb_ensemble_indep', 'hall')} epochs in all): the stronger competitor, two networks that "
            "never shared weights."
        )
    lines.append(
        "Every step trained a fixed number of epochs (no early stopping): the controls match step 4's budget, not its "
        "convergence (`train.patience` stops each step by validation accuracy; `make demo-proof` runs so)."
        if not any(patience_for(cfg, s) for s in STEPS)
        else "With early stopping these epochs are maxima; each step stopped by the same rule (epochs below)."
    )
    return [" ".join(lines), ""]


def _noisy_depth(cfg: Config, run_dir: Path, metrics: dict, data: dict, meta: dict) -> list[dict]:
    """Table 3's accuracies (step 2 re-tested with noisy depth), when the run has steps 2 and 4; else none."""
    if not ("step2" in metrics and "step4" in metrics):
        return []
    if not (Path(data["cache"]) / "cache.json").exists():
        raise UserError(
            f"{data['cache']}: the run's cache is gone (Table 3 re-tests step 2 on its test clips); restore it there"
        )
    return noisy_depth_accuracies(
        cfg,
        run_dir,
        metrics["step2"]["test_names"],
        meta["num_classes"],
        cfg.evaluate.noise_sigma2,
        cfg.evaluate.void,
        cfg.seed,
    )


def _table3_lines(cfg: Config, run_dir: Path, noisy: list[dict], s4: float, privileged: str) -> list[str]:
    """Table 3 and its plot against step 4's RGB-only accuracy (also written as noisy_depth.json)."""
    row = {"what": "Accuracy (step 2, RGB + noisy depth)"} | {r["sigma2"]: r["accuracy"] for r in noisy}
    table3 = markdown_table([row], [("what", "σ²")] + [(r["sigma2"], r["sigma2"]) for r in noisy])
    beaten = [r["sigma2"] for r in noisy if r["accuracy"] < s4]
    form = NOISE_WHERE[cfg.evaluate.noise_on]
    noise_curve_png(
        [{"sigma2": r["sigma2"], "mean": r["accuracy"], "std": 0.0} for r in noisy],
        (s4, 0.0),
        run_dir / "noisy_depth.png",
        f"Table 3: noise {as_privileged(form, privileged)}",
        privileged,
    )
    atomic_write_text(run_dir / "noisy_depth.json", json.dumps(noisy, indent=2))
    return [
        "## Table 3: step-2 model with noisy depth",
        "",
        f"Noise n ~ N(1, σ²) multiplies {form} (`evaluate.noise_on`).",
        "",
        table3,
        "",
        "![Table 3](noisy_depth.png)",
        "",
        f"Step 4 (RGB only, hallucinated depth): {100 * s4:.2f}%, the red line; numerically above step 2 "
        f"fed noisy depth at {', '.join(beaten) if beaten else 'no level'} (the claims table says where "
        f"the difference exceeds the test-size interval).",
        "",
    ]


def _figure_lines(run_dir: Path, metrics: dict, meta: dict) -> list[str]:
    """Fig. 4 (the hallucination loss), the training curves, the confusion matrix and the steps' times."""
    lines: list[str] = []
    curves = {
        s: lab
        for s, lab in (
            ("step3", "w/ connections (row 13)"),
            ("step3_noconn", "w/o connections (row 14)"),
            ("step3_eq3", "w/ connections, eq. 3 (row 11)"),
        )
        if s in metrics
    }
    if curves and hallucination_curves(run_dir, run_dir / "hall_loss.png", curves):
        lines += ["## Fig. 4: hallucination loss during step 3", "", "![hallucination loss](hall_loss.png)", ""]
    order = [s for s in STEPS if s in metrics]  # step order, not alphabetical
    per_epoch = {s: epoch_curves(run_dir / s) for s in order}
    if training_curves_png(per_epoch, run_dir / "training_curves.png"):
        atomic_write_text(run_dir / "training_curves.csv", curves_csv(per_epoch))
        lines += [
            "## Training curves",
            "",
            "Per step and epoch: training loss, validation accuracy (the selection criterion) and learning "
            "rate (`training_curves.csv`).",
            "",
            "![training curves](training_curves.png)",
            "",
        ]
    final = "step4" if "step4" in metrics else sorted(metrics)[-1]
    m = metrics[final]
    confusion_matrix_png(
        m["label"],
        m["pred"],
        meta["class_names"],
        run_dir / "confusion.png",
        f"{final}: test confusion ({100 * m['accuracy']:.1f}%)",
    )
    lines += [f"## Confusion matrix ({final})", "", "![confusion matrix](confusion.png)", ""]
    timing = [
        {"step": s, "seconds": f"{metrics[s]['train_seconds']:.0f}", "best val": metrics[s].get("best_val_acc") or "-"}
        for s in order
    ]
    return lines + [
        "## Steps run",
        "",
        markdown_table(timing, [("step", "Step"), ("seconds", "Train+test s"), ("best val", "Best val acc")]),
        "",
    ]

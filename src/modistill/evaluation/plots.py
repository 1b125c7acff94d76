"""PNG figures: Fig. 4-style hallucination-loss curves, per-epoch training curves, a confusion matrix and Table 3.

Figures are built with matplotlib's object API (``Figure``, no pyplot), so importing modistill never switches the
backend of a notebook or a GUI session. Each is written atomically.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from modistill.utils.io import atomic_write


def save_png(fig: Figure, out: str | Path) -> Path:
    fig.tight_layout()
    atomic_write(out, lambda p: fig.savefig(p, dpi=120, format="png"))
    return Path(out)


def read_curve(
    step_dir: str | Path, key: str = "train/hall_loss_step", x: str = "step"
) -> tuple[list[int], list[float]]:
    """A logged metric over iterations (``x="step"``) or epochs (``x="epoch"``), across the CSV versions of a step
    (one per resumed session; a later version's point replaces an earlier one's)."""
    versions = sorted(
        (Path(step_dir) / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1])
    )
    points: dict[int, float] = {}
    for path in versions:
        with open(path) as f:
            for row in csv.DictReader(f):
                if row.get(key) and row.get(x):
                    points[int(float(row[x]))] = float(row[key])
    xs = sorted(points)
    return xs, [points[x] for x in xs]


# What the training curves show per epoch: (logged key, panel title, column of training_curves.csv, log scale).
EPOCH_CURVES = (
    ("train/loss_epoch", "training loss", "train_loss", False),
    ("val/acc", "validation accuracy", "val_acc", False),
    ("train/lr", "learning rate", "lr", True),
)


def epoch_curves(step_dir: str | Path) -> dict[str, tuple[list[int], list[float]]]:
    """Per epoch (1-based): training loss, validation accuracy and learning rate, as logged."""
    out = {}
    for key, *_ in EPOCH_CURVES:
        xs, ys = read_curve(step_dir, key, "epoch")
        if xs:
            out[key] = ([e + 1 for e in xs], ys)
    return out


def training_curves_png(curves: dict[str, dict[str, tuple[list[int], list[float]]]], out: str | Path) -> Path | None:
    """One panel per quantity of :data:`EPOCH_CURVES`, one line per step: where a step is still improving, how
    it left the initial plateau, what the schedule did. ``curves``: step → :func:`epoch_curves`."""
    if not any(curves.values()):
        return None
    fig = Figure(figsize=(13, 3.8))
    axes = fig.subplots(1, len(EPOCH_CURVES))
    colours = [f"C{i % 10}" for i in range(len(curves))]
    styles = ["-" if i < 10 else "--" for i in range(len(curves))]  # past ten steps the colours repeat
    for ax, (key, label, _, log) in zip(axes, EPOCH_CURVES, strict=True):
        for (step, c), colour, style in zip(curves.items(), colours, styles, strict=True):
            if key in c:
                ax.plot(*c[key], marker=".", lw=1, color=colour, ls=style, label=step)
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.grid(alpha=0.3)
        if log:
            ax.set_yscale("log")
    axes[0].legend(fontsize=6, ncol=2)
    return save_png(fig, out)


def curves_csv(curves: dict[str, dict[str, tuple[list[int], list[float]]]]) -> str:
    """step,epoch and one column per quantity of :data:`EPOCH_CURVES`: one line per step and epoch."""
    lines = ["step,epoch," + ",".join(column for _, _, column, _ in EPOCH_CURVES)]
    for step, c in curves.items():
        values = {key: dict(zip(*c[key], strict=True)) for key in c}
        for e in sorted({e for xs, _ in c.values() for e in xs}):
            lines.append(
                f"{step},{e},"
                + ",".join(f"{values[k][e]:.6g}" if e in values.get(k, {}) else "" for k, *_ in EPOCH_CURVES)
            )
    return "\n".join(lines) + "\n"


def hallucination_curves(run_dir: str | Path, out: str | Path, steps: dict[str, str]) -> Path | None:
    """Eq. 3 loss over training iterations for the given steps (label per step), like the paper's Fig. 4."""
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    any_curve = False
    for step, label in steps.items():
        xs, ys = read_curve(Path(run_dir) / step)
        if xs:
            ax.plot(xs, ys, label=label, lw=1.2)
            any_curve = True
    if not any_curve:
        return None
    ax.set_xlabel("iteration")
    ax.set_ylabel("$L_{hall}$ (eq. 3)")
    ax.set_title("Hallucination loss during step 3")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_png(fig, out)


def noise_curve_png(
    rows: list[dict], step4: tuple[float, float], out: str | Path, title: str, privileged: str = "depth"
) -> Path:
    """Table 3 as a figure: step-2 accuracy against the noise variance (mean ± std over runs when several), with
    the step-4 RGB-only accuracy drawn across. ``rows``: ``{"sigma2", "mean", "std"}``, fractions; void last."""
    levels = [r for r in rows if r["sigma2"] not in ("no noise", "void")]
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    xs = [float(r["sigma2"]) for r in levels]
    ax.errorbar(
        xs,
        [100 * r["mean"] for r in levels],
        [100 * r["std"] for r in levels],
        marker="o",
        capsize=3,
        label=f"step 2, RGB + noisy {privileged}",
    )
    ax.set_xscale("log")
    for r, style in (
        (next((r for r in rows if r["sigma2"] == "no noise"), None), ":"),
        (next((r for r in rows if r["sigma2"] == "void"), None), "--"),
    ):
        if r is not None:
            ax.axhline(100 * r["mean"], color="tab:blue", ls=style, lw=1, label=f"step 2, {r['sigma2']}")
    ax.axhline(100 * step4[0], color="tab:red", lw=1.5, label="step 4, RGB only")
    if step4[1] > 0:
        ax.axhspan(100 * (step4[0] - step4[1]), 100 * (step4[0] + step4[1]), color="tab:red", alpha=0.12)
    ax.set_xlabel("noise variance σ²")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_png(fig, out)


def confusion_matrix_png(
    labels: list[int], preds: list[int], class_names: list[str], out: str | Path, title: str
) -> Path:
    n = len(class_names)
    cm = np.zeros((n, n), int)
    for y, p in zip(labels, preds, strict=True):
        cm[y, p] += 1
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    size = max(5, 0.45 * n)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), class_names, fontsize=7)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(
                        j,
                        i,
                        cm[i, j],
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}; chance {100 / n:.0f}%")
    bar = fig.colorbar(im, ax=ax, fraction=0.046)
    bar.set_label("fraction of the true class's test videos")
    return save_png(fig, out)

"""Several runs of the same config (different seeds): Table 2 rows as mean ± std, in Markdown, JSON and a bar
plot with error bars, so orderings are judged against the seed-to-seed spread rather than one draw."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from modistill.errors import UserError
from modistill.evaluation.tables import load_metrics, markdown_table, table2_rows
from modistill.utils.io import atomic_write, atomic_write_text


def seed_rows(run_dirs: list[Path]) -> list[dict]:
    """One row per Table-2 row present in every run: mean and sample std of the accuracy (fractions)."""
    per_run = [{r["row"]: r for r in table2_rows(load_metrics(d))} for d in run_dirs]
    if not all(per_run):
        empty = [str(d) for d, rows in zip(run_dirs, per_run, strict=True) if not rows]
        raise UserError(f"{empty[0]}: no finished steps to summarise")
    rows = []
    for key, first in per_run[0].items():
        if not all(key in r for r in per_run):
            continue
        accs = np.array([r[key]["accuracy"] for r in per_run])
        rows.append({"row": key, "method": first["method"], "modality": first["modality"], "loss": first["loss"],
                     "mean": float(accs.mean()), "std": float(accs.std(ddof=1)) if len(accs) > 1 else 0.0,
                     "runs": [float(a) for a in accs]})
    return rows


def write_seed_summary(run_dirs: list[str | Path], out_dir: str | Path) -> Path:
    """``seeds.md``, ``seeds.json`` and ``seeds.png`` under ``out_dir``."""
    run_dirs = [Path(d) for d in run_dirs]
    out_dir = Path(out_dir)
    rows = seed_rows(run_dirs)
    table = [dict(r, acc=f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}",
                  each=", ".join(f"{100 * a:.1f}" for a in r["runs"])) for r in rows]
    text = "\n".join([f"# Test accuracy over {len(run_dirs)} runs (mean ± sample std, %)", "",
                      "Runs: " + ", ".join(f"`{d}`" for d in run_dirs), "",
                      markdown_table(table, [("row", "#"), ("method", "Method"), ("modality", "Test modality"),
                                             ("loss", "Loss"), ("acc", "Accuracy"), ("each", "Per run")]),
                      "", "![accuracy per row](seeds.png)", ""])
    out = out_dir / "seeds.md"
    atomic_write_text(out, text)
    atomic_write_text(out_dir / "seeds.json", json.dumps(rows, indent=2))
    _plot(rows, out_dir / "seeds.png")
    return out


def _plot(rows: list[dict], path: Path) -> None:
    from modistill.evaluation.plots import plt

    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(rows)), 4))
    x = np.arange(len(rows))
    ax.bar(x, [100 * r["mean"] for r in rows], yerr=[100 * r["std"] for r in rows], capsize=3, color="#4c72b0")
    for i, r in enumerate(rows):
        ax.scatter([i] * len(r["runs"]), [100 * a for a in r["runs"]], s=8, color="k", zorder=3)
    ax.set_xticks(x, [r["row"] for r in rows])
    ax.set_xlabel("Table 2 row")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("mean ± std over runs (dots: each run)")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=120, format="png"))
    plt.close(fig)

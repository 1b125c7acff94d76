"""Several runs of the same config (different seeds): Table 2 rows and Table 3 as mean ± std, in Markdown, JSON and
a bar plot with error bars, so orderings are judged against the seed-to-seed spread rather than one draw. Runs
that differ in what they measure (data, classes, protocol, input, model) are refused, not averaged."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modistill.data.modalities import as_privileged
from modistill.errors import UserError
from modistill.evaluation.claims import check_claims, claims_markdown, noise_claim
from modistill.evaluation.tables import markdown_table, per_video_correct, table2_rows
from modistill.training.run import RunInfo
from modistill.utils.io import atomic_write_text

# What must agree between runs for their mean to mean anything (seed and the synthetic data's draw may differ).
COMPARED = (
    ("data", "benchmark"),
    ("data", "protocol"),
    ("data", "class_names"),
    ("input", "size"),
    ("input", "frames"),
    ("input", "stored_frames"),
    ("model", "arch"),
    ("model", "width"),
    ("model", "privileged"),
    ("model", "temporal"),
    ("model", "connection"),
    ("model", "pretrained"),
)


# Table 2's test modalities of the rows that see RGB and nothing else at test time.
RGB_ONLY = ("RGB", "RGB (hall)")


def check_comparable(runs: list[RunInfo]) -> None:
    """One line naming the first setting in which a run differs from the first run."""
    first = runs[0]
    for run in runs[1:]:
        for sec, key in COMPARED:
            a, b = first.meta.get(sec, {}).get(key), run.meta.get(sec, {}).get(key)
            if a != b:
                shown = (
                    f"{len(a)} classes" if isinstance(a, list) else repr(a),
                    f"{len(b)} classes" if isinstance(b, list) else repr(b),
                )
                if shown[0] == shown[1]:
                    shown = ("other class names", "")
                raise UserError(
                    f"{run.dir}: differs from {first.dir} in {sec}.{key} ({shown[0]} vs "
                    f"{shown[1]}); runs summarised together must differ only in their seed"
                )


def noisy_rows(run_dirs: list[Path]) -> list[dict]:
    """Table 3 (step 2 with noisy depth) as mean and std per noise level, when every run has it."""
    paths = [d / "noisy_depth.json" for d in run_dirs]
    if not all(p.exists() for p in paths):
        return []
    per_run = []
    for p in paths:
        try:
            per_run.append({r["sigma2"]: r["accuracy"] for r in json.loads(p.read_text())})
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"{p}: unreadable; rerun `modistill evaluate {p.parent}`") from None
    rows = []
    for level in per_run[0]:
        if all(level in r for r in per_run):
            accs = np.array([r[level] for r in per_run])
            rows.append(
                {
                    "sigma2": level,
                    "mean": float(accs.mean()),
                    "std": float(accs.std(ddof=1)) if len(accs) > 1 else 0.0,
                    "runs": accs.tolist(),
                }
            )
    return rows


def seed_rows(run_dirs: list[Path]) -> list[dict]:
    """One row per Table-2 row present in every run: mean and sample std of the accuracy (fractions)."""
    infos = [RunInfo(d) for d in run_dirs]
    check_comparable(infos)
    privileged = infos[0].privileged
    per_run = [{r["row"]: r for r in table2_rows(info.metrics(), privileged)} for info in infos]
    if not all(per_run):
        empty = [str(d) for d, rows in zip(run_dirs, per_run, strict=True) if not rows]
        raise UserError(f"{empty[0]}: no finished steps to summarise")
    rows = []
    for key, first in per_run[0].items():
        if not all(key in r for r in per_run):
            continue
        accs = np.array([r[key]["accuracy"] for r in per_run])
        rows.append(
            {
                "row": key,
                "method": first["method"],
                "modality": first["modality"],
                "loss": first["loss"],
                "mean": float(accs.mean()),
                "std": float(accs.std(ddof=1)) if len(accs) > 1 else 0.0,
                "runs": [float(a) for a in accs],
            }
        )
    return rows


def per_video_rows(run_dirs: list[Path]) -> dict[str, list[np.ndarray]]:
    """Row → per run, its test videos' 0/1 correctness (sorted name order), for the rows every run recorded."""
    per_run = [per_video_correct(RunInfo(d).metrics()) for d in run_dirs]
    common = set.intersection(*(set(r) for r in per_run)) if per_run else set()
    return {row: [np.array(r[row]) for r in per_run] for row in common}


def write_seed_summary(runs: Sequence[str | Path], out_dir: str | Path) -> Path:
    """``seeds.md``, ``seeds.json`` and ``seeds.png`` under ``out_dir``."""
    run_dirs = [Path(d) for d in runs]
    out_dir = Path(out_dir)
    rows = seed_rows(run_dirs)
    noisy = noisy_rows(run_dirs)

    def shown(r: dict) -> dict:
        return dict(
            r, acc=f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}", each=", ".join(f"{100 * a:.1f}" for a in r["runs"])
        )

    lines = [
        f"# Test accuracy over {len(run_dirs)} runs (mean ± sample std, %)",
        "",
        "Runs: " + ", ".join(f"`{d}`" for d in run_dirs),
        "",
        markdown_table(
            [shown(r) for r in rows],
            [
                ("row", "#"),
                ("method", "Method"),
                ("modality", "Test modality"),
                ("loss", "Loss"),
                ("acc", "Accuracy"),
                ("each", "Per run"),
            ],
        ),
        "",
        "![accuracy per row](seeds.png)",
        "",
    ]
    n_test = next((m["n"] for m in RunInfo(run_dirs[0]).metrics().values() if m.get("n")), 0)
    claims = check_claims({r["row"]: r["runs"] for r in rows}, n_test, per_video_rows(run_dirs))
    s4 = next((r for r in rows if r["row"] == "15"), None)
    noise = noise_claim({r["sigma2"]: r["runs"] for r in noisy}, s4["runs"], n_test) if noisy and s4 else None
    if noise:
        claims.append(noise)
    lines += claims_markdown(claims, len(run_dirs), n_test)
    if noisy:
        lines += [
            "## Table 3: step 2 with noisy depth",
            "",
            markdown_table([shown(r) for r in noisy], [("sigma2", "σ²"), ("acc", "Accuracy"), ("each", "Per run")]),
            "",
        ]
        if s4 is not None:
            from modistill.evaluation.plots import noise_curve_png

            noise_curve_png(
                noisy,
                (s4["mean"], s4["std"]),
                out_dir / "noisy_depth.png",
                f"Table 3 over {len(run_dirs)} runs (mean ± std)",
                RunInfo(run_dirs[0]).privileged,
            )
            lines += ["![Table 3](noisy_depth.png)", ""]
    out = out_dir / "seeds.md"
    atomic_write_text(out, as_privileged("\n".join(lines), RunInfo(run_dirs[0]).privileged))
    atomic_write_text(out_dir / "seeds.json", json.dumps({"table2": rows, "table3": noisy}, indent=2))
    classes = RunInfo(run_dirs[0]).meta.get("data", {}).get("class_names") or []
    _plot(rows, out_dir / "seeds.png", 1 / max(len(classes), 1), RunInfo(run_dirs[0]).privileged)
    return out


def bar_labels(rows: list[dict]) -> list[str]:
    """Row, method and loss: rows 3-5 and 11-13 share their method and differ only in the loss."""
    return [f"{r['row']}: {r['method']}, {r['loss']}" for r in rows]


def _plot(rows: list[dict], path: Path, chance: float, privileged: str = "depth") -> None:
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from modistill.evaluation.plots import save_png

    fig = Figure(figsize=(max(7, 0.7 * len(rows)), 5))
    ax = fig.subplots()
    x = np.arange(len(rows))
    rgb_only = [r["modality"] in RGB_ONLY for r in rows]
    colours = ["#c44e52" if only else "#4c72b0" for only in rgb_only]
    ax.bar(x, [100 * r["mean"] for r in rows], yerr=[100 * r["std"] for r in rows], capsize=3, color=colours)
    for i, r in enumerate(rows):
        ax.scatter([i] * len(r["runs"]), [100 * a for a in r["runs"]], s=8, color="k", zorder=3)
    line = ax.axhline(100 * chance, color="grey", ls="--", lw=1)
    top = max([100 * (r["mean"] + r["std"]) for r in rows] + [100 * a for r in rows for a in r["runs"]], default=100)
    ax.set_ylim(0, 1.35 * top)  # headroom above the bars for the legend
    ax.legend(
        [Patch(color="#c44e52"), Patch(color="#4c72b0"), line],
        [
            "RGB only at test time",
            f"sees {privileged} at test time (input or connections)",
            f"chance ({100 * chance:.0f}%)",
        ],
        loc="upper left",
        fontsize=8,
        ncol=3,
    )
    ax.set_xticks(x, bar_labels(rows), rotation=55, ha="right", fontsize=7)
    ax.set_xlabel("Table 2 row")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"mean ± sd over {len(rows[0]['runs']) if rows else 0} runs (dots: each run)")
    save_png(fig, path)


SIDE_BY_SIDE_ROWS = ("1", "2", "5", "8", "13", "15", "C1", "C2", "C2i")
RGB_ONLY_ROWS = ("2", "C1", "C2", "C2i")  # trained without the privileged modality: one model per seed for all of them
SIDE_BY_SIDE_CLAIMS = ("1", "2"), ("15", "2"), ("15", "5"), ("15", "C1"), ("15", "C2"), ("15", "C2i"), ("8", "15")


def write_modality_table(summaries: dict[str, Path], out: Path) -> Path:
    """The privileged modalities side by side over the same seeds (``summaries``: modality → its seeds.md, with
    seeds.json beside it): the rows that differ between them, and the headline claims with their across-run
    interval. Says whether the rows that see RGB alone are the same models in every modality's runs, as they
    should be."""
    from modistill.data.modalities import as_privileged, title
    from modistill.evaluation.claims import CLAIMS

    tables: dict[str, dict[str, dict]] = {}
    for p, md in summaries.items():
        path = Path(md).with_name("seeds.json")
        try:
            tables[p] = {r["row"]: r for r in json.loads(path.read_text())["table2"]}
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"{path}: unreadable; rerun the seeds summary") from None
    names = list(tables)
    head = "| # | Method | " + " | ".join(f"privileged: {title(p)}" for p in names) + " |"
    lines = [head, "|---|---|" + "---|" * len(names)]
    for row in SIDE_BY_SIDE_ROWS:
        if not all(row in t for t in tables.values()):
            continue
        method = tables[names[0]][row]["method"].replace(title(names[0]), "privileged").replace(names[0], "privileged")
        cells = [f"{100 * t[row]['mean']:.2f} ± {100 * t[row]['std']:.2f}" for t in tables.values()]
        lines.append(f"| {row} | {method} | " + " | ".join(cells) + " |")
    lines += ["", "| Claim | Rows | " + " | ".join(title(p) for p in names) + " |", "|---|---|" + "---|" * len(names)]
    words = {(a, b): claim for claim, a, b, _ in CLAIMS}
    for a, b in SIDE_BY_SIDE_CLAIMS:
        if not all(a in t and b in t for t in tables.values()):
            continue
        cells = []
        for t in tables.values():
            found = check_claims({a: t[a]["runs"], b: t[b]["runs"]}, 0)
            c = next(x for x in found if x["rows"] == f"#{a} > #{b}")
            cells.append(f"{c['ours']:+.2f} ± {c['interval']:.2f} ({c['verdict']})")
        claim = as_privileged(words[(a, b)], "privileged")
        lines.append(f"| {claim} | #{a} > #{b} | " + " | ".join(cells) + " |")
    shared = [row for row in RGB_ONLY_ROWS if all(row in t for t in tables.values())]
    differ = [row for row in shared if len({tuple(t[row]["runs"]) for t in tables.values()}) > 1]
    runs = len(tables[names[0]]["2"]["runs"]) if "2" in tables[names[0]] else "-"
    lines += ["", f"Runs per modality: {runs} (the same seeds and synthetic data)."]
    if shared:
        lines[-1] += f" Rows {', '.join(shared)} see RGB alone: " + (
            f"NOT the same across modalities (rows {', '.join(differ)})."
            if differ
            else "the same trained models in every modality's runs (identical accuracies)."
        )
    text = "\n".join(lines) + "\n"
    atomic_write_text(out, text)
    return out

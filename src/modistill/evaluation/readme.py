"""Writes a seeds summary into a results page (``docs/results.md``, or any Markdown file with the markers), so the
numbers a reader sees are the tool's output.

The section lies between two marker lines (``START`` and ``END``); everything else in the page is kept. The
summary's figures are copied into ``results/`` beside the page so that the links work where the page is read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from modistill.config import describe_epochs, describe_init, describe_recipe, load_run_config
from modistill.errors import UserError
from modistill.evaluation.tables import TABLE2
from modistill.synthetic.config import SynthConfig
from modistill.training.run import describe_crop
from modistill.utils.io import read_json, read_text, replace_marked_section

START = "<!-- modistill:results:start -->"
END = "<!-- modistill:results:end -->"


def _n(k: int, word: str, plural: str = "") -> str:
    return f"{k} {word if k == 1 else plural or word + 's'}"


def _setup(runs: list[Path]) -> str:
    """One paragraph describing what was run, from the runs' own records."""
    meta = read_json(runs[0] / "run.json", "rerun the demo")
    cfg_path = runs[0] / "config.yaml"
    cfg = load_run_config(runs[0]) if cfg_path.exists() else None
    epochs = f", {describe_epochs(cfg.train)}; {describe_recipe(cfg)}" if cfg else ""
    d, inp, model = meta["data"], meta["input"], meta["model"]
    classes = _n(len(d["class_names"]), "class", "classes")
    text = (
        f"{_n(len(runs), 'run')}, {d['benchmark']} {d['protocol']}, {classes}; "
        f"{model['arch']} width {model['width']}, {inp['size']} px{describe_crop(inp)}, {inp['frames']} frames, "
        f"{describe_init(model['pretrained'])} init{epochs}."
    )
    # The demo's layout: OUT/seed_S/{data,cache,run}; the generator's settings are in data/synth.json.
    synth_path = runs[0].parent / "data" / "synth.json"
    if synth_path.exists():
        s = json.loads(synth_path.read_text())
        text += (
            f" Synthetic benchmark (seed = run seed): {_n(s['classes'], 'class', 'classes')} x "
            f"{_n(s['subjects'], 'subject')} x {_n(s['cameras'], 'camera')} x "
            f"{_n(s['replications'], 'replication')}, clutter {s['clutter']}"
        )
        default = SynthConfig()
        if (s.get("rgb_noise", default.rgb_noise), s.get("motion_blur", default.motion_blur)) != (
            default.rgb_noise,
            default.motion_blur,
        ):  # the colour camera made harder
            text += f", RGB sensor noise sd {s['rgb_noise']:g}, motion blur up to {s['motion_blur']:g} px"
        if "depth_mask" in s:  # generators before the ROI depth did not record it
            text += f", depth mask {s['depth_mask']}"
            text += f" (ROI margin {s['roi_margin']})" if s["depth_mask"] == "roi" else ""
        text += "."
    return text


def write_results_section(
    readme: str | Path,
    summary: str | Path,
    runs: list[Path],
    markers: tuple[str, str] = (START, END),
    written_by: str = "`modistill demo --seeds ... --results-page PAGE` (`make demo-seeds`)",
    extra: str = "",
    prefix: str = "",
) -> Path:
    """Replace the page's section between ``markers`` (the results section by default) with ``summary`` (a
    seeds.md) and ``extra`` after it, its figures copied with ``prefix`` before their names; returns the page's
    path."""
    readme, summary = Path(readme), Path(summary)
    body = read_text(summary, "rerun the seeds summary")
    figures = readme.parent / "results"
    copies: list[tuple[Path, Path]] = []

    def relink(m: re.Match) -> str:
        src = summary.parent / m.group(2)
        if not src.exists():
            return m.group(0)
        copies.append((src, figures / f"{prefix}{src.name}"))
        return f"![{m.group(1)}]({os.path.relpath(figures / f'{prefix}{src.name}', readme.parent)})"

    body = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", relink, body)
    body = body.replace("# Test accuracy over", "#### Test accuracy over", 1)
    body = re.sub(r"^## ", "#### ", body, flags=re.M)
    body = re.sub(r"^Runs: .*\n\n", "", body, flags=re.M)
    section = f"_Written by {written_by}; do not edit by hand._ {_setup([Path(r) for r in runs])}\n\n{body}{extra}"
    replace_marked_section(readme, *markers, section, "results section" if markers == (START, END) else "section")
    figures.mkdir(parents=True, exist_ok=True)
    for src, dst in copies:
        shutil.copyfile(src, dst)
    return readme


MODALITIES_START = "<!-- modistill:modalities:start -->"
MODALITIES_END = "<!-- modistill:modalities:end -->"


def write_modalities_section(readme: str | Path, table: str | Path) -> Path:
    """Replace the page's side-by-side section of the privileged modalities with ``table`` (a modalities.md)."""
    readme = Path(readme)
    body = read_text(Path(table), "rerun the seeds summary")
    section = (
        "_Written by `modistill demo --seeds --privileged ... --results-page PAGE` (`make demo-modalities`); do not "
        f"edit by hand._\n\n{body}"
    )
    replace_marked_section(readme, MODALITIES_START, MODALITIES_END, section, "privileged-modalities section")
    return readme


PROOF_START = "<!-- modistill:proof:start -->"
PROOF_END = "<!-- modistill:proof:end -->"


def _ratio_line(seeds_json: Path, runs: list[Path]) -> str:
    """Step-1 RGB over step-1 privileged (rows 2 and 1), per run and of the means, on test accuracy and on the best
    validation accuracy (what the benchmark's calibration read): where the runs landed against its regime."""
    rows = {r["row"]: r for r in read_json(seeds_json, "rerun the proof")["table2"]}
    if not ("1" in rows and "2" in rows):
        return ""
    rgb, priv = rows["2"], rows["1"]
    each = ", ".join(f"{a / b:.2f}" for a, b in zip(rgb["runs"], priv["runs"], strict=True))
    steps = {row[0]: row[4] for row in TABLE2}
    val = [[_best_val(run / steps[row] / "metrics.json") for row in ("2", "1")] for run in runs]
    each_val = ", ".join(f"{a / b:.2f}" for a, b in val)
    mean_val = sum(a for a, _ in val) / sum(b for _, b in val)
    return (
        f"Step-1 RGB / step-1 privileged stream (row 2 / row 1), per run: {each} on test accuracy, {each_val} on best "
        f"validation accuracy; of the means: {rgb['mean'] / priv['mean']:.2f} and {mean_val:.2f} (the benchmark was "
        "calibrated for 0.90-0.96 on best validation accuracy of other seeds)."
    )


def _best_val(metrics: Path) -> float:
    best = read_json(metrics, "rerun the proof").get("best_val_acc")
    if best is None:
        raise UserError(f"{metrics}: no best validation accuracy recorded (the step trained without validation)")
    return float(best)


def write_proof_section(
    readme: str | Path, summary: str | Path, runs: list[Path], table: Path | None, pending: list[str] | None = None
) -> Path:
    """Replace the page's proof-run section with the depth runs' ``summary`` and the modalities' side-by-side
    ``table`` (``modistill demo --proof``); ``pending``: the privileged modalities whose runs have not all finished,
    named so that nobody reads the section as complete."""
    from modistill.data.modalities import title

    extra = f"\n\n{_ratio_line(Path(summary).with_name('seeds.json'), runs)}"
    if table is not None:
        extra += "\n\n#### The privileged modalities side by side\n\n" + read_text(table, "rerun the proof")
    if pending:
        names = " and ".join(title(p) for p in pending)
        extra += f"\n\n**Not finished yet:** the runs with {names} as the privileged modality; rerun the same command."
    return write_results_section(
        readme,
        summary,
        runs,
        (PROOF_START, PROOF_END),
        "`modistill demo --proof --results-page PAGE` (`make demo-proof`)",
        extra,
        "proof_",
    )

"""The exported RGB-only model as a Hugging Face Hub-style folder: ``config.json`` (the model's metadata),
``model.safetensors`` (the same self-describing bundle ``export`` writes) and a generated model card
``README.md`` with the run's results, protocol, preprocessing, classes, intended use and limits. The folder
uploads as is (``hf upload``); ``predict --model FOLDER`` and :func:`modistill.load` read it."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from modistill.evaluation.tables import markdown_table, table2_rows
from modistill.training.run import RunInfo

CONFIG = "config.json"
WEIGHTS = "model.safetensors"


def is_hub_folder(path: Path) -> bool:
    return path.is_dir() and (path / WEIGHTS).is_file() and (path / CONFIG).is_file()


def model_card(meta: dict, run: RunInfo) -> str:
    """A model card from the run's own records: what the model is, how it was measured, how to feed it."""
    data = run.meta["data"]
    rows = table2_rows(run.metrics())
    table = markdown_table(rows, [("row", "#"), ("method", "Method"), ("modality", "Test modality"),
                                  ("accuracy", "Top-1"), ("top5", "Top-5"), ("mean_class", "Mean class")])
    n_test = next((m.get("n") for m in run.metrics().values() if m.get("n")), "?")
    classes = ", ".join(f"{i}: {n}" for i, n in enumerate(meta["class_names"]))
    pp = meta["preprocess"]
    return "\n".join([
        "---", "library_name: modistill", "tags: [action-recognition, video-classification, rgb-d, distillation]",
        "license: other", "---", "",
        f"# {meta['arch']} RGB-only action recogniser ({meta['step']}, modistill)", "",
        "Trained with RGB **and depth**, run with **RGB only**: the hallucination-stream method of Garcia, "
        "Morerio & Murino, *Modality Distillation with Multiple Stream Networks for Action Recognition* "
        "(ECCV 2018), as implemented by modistill.", "",
        "## Data and protocol", "",
        f"Benchmark `{data['benchmark']}`, protocol {data['protocol']}, {meta['num_classes']} classes, "
        f"{n_test} test videos (chance {100 / meta['num_classes']:.1f} %). Cache fingerprint "
        f"`{data['fingerprint']}`; run `{run.dir}`.", "",
        "## Results of the run (test split)", "", table, "",
        "Rows whose test modality includes depth used real depth at test time; only the RGB rows describe what "
        "this model does on plain RGB.", "",
        "## Input", "",
        f"- {meta['frames']} frames of a video: {pp['frames']} (stored_frames = {meta['stored_frames']})",
        f"- crop {meta['crop']} as fractions of the frame ({meta['crop_source']}): {pp['crop']}",
        f"- resize to {meta['size']} x {meta['size']}: {pp['resize']}", f"- {pp['input']}", "",
        "## Classes", "", classes, "",
        "## Intended use and limits", "",
        "Recognising the listed actions of one person filmed by a fixed RGB camera, framed like the training "
        "data (the crop above is the median person box of training). Not for other actions, viewpoints far from "
        "training, several people, or decisions about individuals. Accuracy is the run's, on its own test split.",
        "", "## Use", "", "```python", "import modistill", "model = modistill.load('PATH_TO_THIS_FOLDER')",
        "print(model.predict(['clip.mp4'], topk=3))", "```", ""])


def write_hub_folder(bundle: Path, meta: dict, run_dir: str | Path, out: str | Path) -> Path:
    """Write the folder next to an exported bundle; replaced whole (a temporary folder, then a rename)."""
    out = Path(out)
    run = RunInfo(run_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copyfile(bundle, tmp / WEIGHTS)
        (tmp / CONFIG).write_text(json.dumps(meta, indent=1))
        (tmp / "README.md").write_text(model_card(meta, run))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out

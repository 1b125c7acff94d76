"""The exported RGB-only model as a Hugging Face Hub-style folder: ``config.json`` (the model's metadata),
``model.safetensors`` (the same self-describing bundle ``export`` writes) and a generated model card
``README.md`` with the run's results, protocol, preprocessing, classes, intended use and limits; its metadata
(pipeline tag, license, a model-index with the run's results) is written by ``huggingface_hub``'s card classes. The
folder uploads as is (``hf upload``); ``predict --model FOLDER`` (or ``hf-hub:USER/NAME`` once downloaded) and
:func:`modistill.load` read it."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from modistill.errors import UserError
from modistill.evaluation.tables import markdown_table, table2_rows
from modistill.training.run import RunInfo
from modistill.utils.io import current_umask

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
HUB_SCHEME = "hf-hub:"
# The terms a model inherits from its training data, by benchmark, when export is not given --license.
DATA_LICENSES = {
    "ntu60": ("ntu-rgbd-release-agreement", "https://rose1.ntu.edu.sg/dataset/actionRecognition/"),
    "ntu120": ("ntu-rgbd-release-agreement", "https://rose1.ntu.edu.sg/dataset/actionRecognition/"),
}
DATASET_NAMES = {"ntu60": "NTU RGB+D 60", "ntu120": "NTU RGB+D 120", "pairs": "own RGB-D data (pairs CSV)"}


def hub_folder(spec: str) -> Path:
    """``hf-hub:USER/NAME`` (optionally ``@REVISION``): the model folder in the local Hugging Face cache, offline;
    one line saying how to fetch it when it is not there."""
    repo, _, revision = spec.removeprefix(HUB_SCHEME).partition("@")
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
    except ImportError:
        raise UserError(f"{spec}: the Hugging Face Hub client is not installed: pip install huggingface_hub") from None
    try:
        path = Path(snapshot_download(repo, revision=revision or None, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError):
        raise UserError(
            f"{spec}: not in the local Hugging Face cache; fetch it once where there is network: "
            f"hf download {repo} (HF_HOME sets the folder)"
        ) from None
    except HFValidationError as e:
        raise UserError(f"{spec}: not a Hub repository id ({str(e).splitlines()[0]})") from None
    if not is_hub_folder(path):
        raise UserError(
            f"{spec}: the cached repository ({path}) has no {CONFIG} and {WEIGHTS}; it is not a modistill model"
        )
    return path


def is_hub_folder(path: Path) -> bool:
    return path.is_dir() and (path / WEIGHTS).is_file() and (path / CONFIG).is_file()


def card_metadata(meta: dict, run: RunInfo, license: str | None = None) -> str:
    """The card's YAML front matter through ``huggingface_hub``: library, ``pipeline_tag: video-classification``,
    a named license (``license`` as given, else the training data's terms by name and link), and a model-index
    holding this model's own test results."""
    from huggingface_hub import EvalResult, ModelCardData

    data = run.meta["data"]
    scores = run.metrics()[meta["step"]]
    dataset = DATASET_NAMES.get(data["benchmark"], data["benchmark"])
    values = [("accuracy", "Top-1 accuracy", scores["accuracy"])]
    for key, name in (("top5", "Top-5 accuracy"), ("mean_class", "Mean class accuracy")):
        value = scores.get("scores", {}).get("fused", {}).get(key)
        if value is not None:
            values.append((key if key != "top5" else "top_5_accuracy", name, value))
    results = [
        EvalResult(
            task_type="video-classification",
            task_name="Action recognition from RGB only",
            dataset_type=data["benchmark"],
            dataset_name=dataset,
            dataset_config=data["protocol"],
            dataset_split="test",
            metric_type=kind,
            metric_name=name,
            metric_value=round(100 * float(v), 2),
        )
        for kind, name, v in values
    ]
    terms: dict[str, Any]
    if license:
        terms = {"license": license}
    else:
        name, link = DATA_LICENSES.get(data["benchmark"], ("training-data-terms", None))
        terms = {"license": "other", "license_name": name} | ({"license_link": link} if link else {})
    card = ModelCardData(
        library_name="modistill",
        pipeline_tag="video-classification",
        tags=["action-recognition", "rgb-d", "privileged-information", "distillation"],
        model_name=f"{meta['arch']} RGB-only ({meta['step']}, {dataset} {data['protocol']})",
        eval_results=results,
        **terms,
    )
    return f"---\n{card.to_yaml()}\n---"


def model_card(meta: dict, run: RunInfo, license: str | None = None) -> str:
    """A model card from the run's own records: what the model is, how it was measured, how to feed it."""
    data = run.meta["data"]
    rows = table2_rows(run.metrics())
    table = markdown_table(
        rows,
        [
            ("row", "#"),
            ("method", "Method"),
            ("modality", "Test modality"),
            ("accuracy", "Top-1"),
            ("top5", "Top-5"),
            ("mean_class", "Mean class"),
        ],
    )
    n_test = next((m.get("n") for m in run.metrics().values() if m.get("n")), "?")
    classes = ", ".join(f"{i}: {n}" for i, n in enumerate(meta["class_names"]))
    pp = meta["preprocess"]
    return "\n".join(
        [
            card_metadata(meta, run, license),
            "",
            f"# {meta['arch']} RGB-only action recogniser ({meta['step']}, modistill)",
            "",
            "Trained with RGB **and depth**, run with **RGB only**: the hallucination-stream method of Garcia, "
            "Morerio & Murino, *Modality Distillation with Multiple Stream Networks for Action Recognition* "
            "(ECCV 2018), as implemented by modistill.",
            "",
            "## Data and protocol",
            "",
            f"Benchmark `{data['benchmark']}`, protocol {data['protocol']}, {meta['num_classes']} classes, "
            f"{n_test} test videos (chance {100 / meta['num_classes']:.1f} %). Cache fingerprint "
            f"`{data['fingerprint']}`; run `{run.dir}`.",
            "",
            "## Results of the run (test split)",
            "",
            table,
            "",
            "Rows whose test modality includes depth used real depth at test time; only the RGB rows describe what "
            "this model does on plain RGB.",
            "",
            "## Input",
            "",
            f"- {meta['frames']} frames of a video: {pp['frames']} (stored_frames = {meta['stored_frames']})",
            f"- crop {meta['crop']} as fractions of the frame ({meta['crop_source']}): {pp['crop']}",
            f"- resize to {meta['size']} x {meta['size']}: {pp['resize']}",
            f"- {pp['input']}",
            "",
            "## Classes",
            "",
            classes,
            "",
            "## Intended use and limits",
            "",
            "Recognising the listed actions of one person filmed by a fixed RGB camera, framed like the training "
            "data (the crop above is the median person box of training). Not for other actions, viewpoints far from "
            "training, several people, or decisions about individuals. Accuracy is the run's, on its own test split.",
            "",
            "## Use",
            "",
            "```python",
            "import modistill",
            "model = modistill.load('PATH_TO_THIS_FOLDER')",
            "print(model.predict(['clip.mp4'], topk=3))",
            "```",
            "",
        ]
    )


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def replace_folder(new: Path, out: Path) -> None:
    """Put folder ``new`` at ``out``. An existing ``out`` is swapped with ``new`` in one step, so readers always
    find a complete folder, old or new; where the system cannot swap (not Linux, or a filesystem without
    RENAME_EXCHANGE) the old folder is renamed aside first, a gap of one rename."""
    if not out.exists():
        new.rename(out)
        return
    if not _exchange(new, out):
        aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        aside.rmdir()
        out.rename(aside)
        new.rename(out)
        new = aside
    shutil.rmtree(new)


def write_hub_folder(
    bundle: Path, meta: dict, run_dir: str | Path, out: str | Path, license: str | None = None
) -> Path:
    """Write the folder next to an exported bundle; replaced whole (a temporary folder, then a swap)."""
    out = Path(out)
    run = RunInfo(run_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; a plain mkdir would honour the umask
        shutil.copyfile(bundle, tmp / WEIGHTS)
        (tmp / CONFIG).write_text(json.dumps(meta, indent=1))
        (tmp / "README.md").write_text(model_card(meta, run, license))
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out

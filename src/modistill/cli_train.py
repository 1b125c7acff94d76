"""Training-side sub-commands: train, evaluate, demo."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from modistill.errors import UserError

log = logging.getLogger("modistill")
CONFIG_DIR = Path(__file__).parent / "configs"


def resolve_config_path(name: str | Path) -> Path:
    """A config path, or the name of a bundled config (``demo``, ``ntu60_xsub``, ...)."""
    p = Path(name)
    if p.exists():
        return p
    bundled = CONFIG_DIR / (p.name if p.suffix == ".yaml" else f"{p.name}.yaml")
    if bundled.exists():
        return bundled
    raise UserError(f"{name}: config file not found (bundled: {sorted(x.stem for x in CONFIG_DIR.glob('*.yaml'))})")


def cmd_train(a: argparse.Namespace) -> None:
    from modistill.config import load_config
    from modistill.training.runner import run_training

    cfg = load_config(resolve_config_path(a.config), a.overrides)
    run_dir = a.run_dir or Path("runs") / cfg["name"]
    results = run_training(cfg, run_dir, a.retrain_from)
    from lightning.pytorch.utilities import rank_zero_only

    if rank_zero_only.rank != 0:  # DDP: every rank ran the steps; one prints
        return
    for step, r in results.items():
        print(f"{step:18s} test accuracy {100 * r['accuracy']:6.2f}%")
    print(f"run folder: {run_dir}")


def cmd_evaluate(a: argparse.Namespace) -> None:
    from modistill.evaluation.report import evaluate_run

    for run in a.runs:
        out = evaluate_run(run)
        if len(a.runs) == 1:
            print(out.read_text())
        print(f"report: {out}")
    if len(a.runs) > 1:
        from modistill.evaluation.seeds import write_seed_summary

        summary = write_seed_summary(a.runs, a.summary or Path(a.runs[0]).parent)
        print(summary.read_text())
        print(f"summary over {len(a.runs)} runs: {summary}")


QUICK = {"synth": dict(classes=4, subjects=4, cameras=2, replications=1, frames=12, rgb_size=(192, 108),
                       depth_size=(128, 106)),
         "size": 48, "overrides": ["train.epochs=1", "model.width=8", "train.batch_size=4", "train.log_every_n_steps=1",
                       "variants=[step3_noconn]"]}
FULL = {"synth": dict(classes=10, subjects=8, cameras=3, replications=2), "size": 112, "overrides": []}


def cmd_demo(a: argparse.Namespace) -> None:
    from modistill.config import load_config
    from modistill.data.prepare import PrepareOptions, prepare_ntu
    from modistill.data.synthetic import SynthConfig, generate
    from modistill.evaluation.report import evaluate_run
    from modistill.training.runner import run_training

    t0 = time.time()
    mode = QUICK if a.quick else FULL
    out = Path(a.out)
    data, cache, run = out / "data", out / "cache", out / "run"
    log.info("demo 1/4: synthetic RGB-D benchmark (NTU layout) → %s", data)
    generate(SynthConfig(seed=a.seed, **mode["synth"]), data, workers=a.workers)
    log.info("demo 2/4: align, crop and cache → %s", cache)
    s = prepare_ntu(data, cache, PrepareOptions(size=mode["size"], frames=5, workers=a.workers))
    log.info("prepared %s", s["counts"])
    overrides = [f"data.cache={cache}", f"seed={a.seed}", *mode["overrides"], *a.overrides]
    cfg = load_config(CONFIG_DIR / "demo.yaml", overrides)
    log.info("demo 3/4: training steps %s + variants %s", cfg["steps"], cfg["variants"])
    run_training(cfg, run)
    log.info("demo 4/4: evaluation")
    report = evaluate_run(run)
    print(report.read_text())
    print(f"demo finished in {time.time() - t0:.0f}s; report: {report}")
    (out / "demo.json").write_text(json.dumps({"seconds": time.time() - t0, "report": str(report)}))


def register(sub: argparse._SubParsersAction) -> None:
    from modistill.training.steps import STEPS

    main_steps = ["step1_rgb", "step1_depth", "step2", "step3", "step4"]
    epilog = (f"bundled configs: {', '.join(sorted(x.stem for x in CONFIG_DIR.glob('*.yaml')))}. "
              f"steps: {', '.join(main_steps)}. variants (ablations, the inverted study, Hoffman et al.): "
              f"{', '.join(s for s in STEPS if s not in main_steps)}.")
    t = sub.add_parser("train", epilog=epilog,
                       help="run the configured steps (skips finished steps, resumes interrupted ones)")
    t.add_argument("config", help="YAML config path or bundled config name")
    t.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.epochs=3 data.cache=cache/")
    t.add_argument("--run-dir", type=Path, default=None, help="default: runs/<name>")
    t.add_argument("--retrain-from", default=None, metavar="STEP",
                   help="delete STEP and every step initialised from it in the run folder, then train them again "
                        "(needed when a finished step's config changed)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="write report.md (tables, noisy depth, curves, confusion) for each run; "
                                        "with several runs (seeds) also a mean ± std summary")
    e.add_argument("runs", type=Path, nargs="+")
    e.add_argument("--summary", type=Path, default=None,
                   help="folder for seeds.md/json/png (default: the first run's parent)")
    e.set_defaults(func=cmd_evaluate)

    d = sub.add_parser("demo", help="synthetic benchmark → prepare → all steps → report, on CPU")
    d.add_argument("--out", type=Path, default=Path("demo_out"))
    d.add_argument("--quick", action="store_true", help="tiny sizes (what CI runs)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--workers", type=int, default=2)
    d.add_argument("overrides", nargs="*", help="config overrides for the training")
    d.set_defaults(func=cmd_demo)

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from helpers import TINY_TRAIN, tiny_cfg

from modistill.cli import main
from modistill.config import CONFIG_DIR as CONFIGS
from modistill.config import load_config
from modistill.errors import UserError
from modistill.evaluation.noisy_depth import speckle
from modistill.training.runner import run_training
from modistill.training.steps import STEPS, connections_for, resolve_order


def test_step_order_and_connections():
    assert resolve_order(["step4"]) == ["step1_rgb", "step1_depth", "step2", "step3", "step4"]
    assert resolve_order(["hoffman_eq7"]) == ["step1_rgb", "step1_depth", "hoffman_eq7"]
    assert connections_for(STEPS["step2"], "depth_to_rgb") == [("privileged", "rgb")]
    assert connections_for(STEPS["step2"], "rgb_to_depth") == [("rgb", "privileged")]
    assert connections_for(STEPS["step2_noconn"], "depth_to_rgb") == []
    assert connections_for(STEPS["step4"], "depth_to_rgb") == [("hall", "rgb")]
    with pytest.raises(UserError, match="unknown step"):
        resolve_order(["step9"])


def test_four_steps_chain_and_resume(small_cache, tmp_path):
    cfg = tiny_cfg(small_cache, "variants=[step3_noconn]")
    run = tmp_path / "run"
    res = run_training(cfg, run)
    assert list(res) == ["step1_rgb", "step1_depth", "step2", "step3", "step4", "step3_noconn"]
    for step, r in res.items():
        assert 0.0 <= r["accuracy"] <= 1.0 and r["n"] > 0
        assert (run / step / "config.yaml").exists() and (run / step / "weights.pt").exists()
    assert set(res["step2"]["streams"]) == {"rgb", "privileged"}
    # Step 3: the frozen teacher equals the step-2 depth stream, the student started from it too.
    s2 = torch.load(run / "step2" / "weights.pt", weights_only=True)
    s3 = torch.load(run / "step3" / "weights.pt", weights_only=True)
    teacher = [k for k in s2 if k.startswith("net.streams.privileged.")]
    assert teacher and all(torch.equal(s2[k], s3[k]) for k in teacher)
    s4 = torch.load(run / "step4" / "weights.pt", weights_only=True)
    assert any(
        not torch.equal(s3[k], v) for k, v in s4.items() if k.startswith("net.streams.hall.") and v.is_floating_point()
    )
    # Rerun: every step is skipped, metrics identical.
    before = {s: (run / s / "metrics.json").read_text() for s in res}
    again = run_training(cfg, run)
    assert {s: (run / s / "metrics.json").read_text() for s in again} == before


def test_changed_config_is_refused_and_retrain_from_replaces_the_step(small_cache, tmp_path):
    run = tmp_path / "run"
    run_training(tiny_cfg(small_cache, "steps=[step1_depth]"), run)
    before = {p: (run / p).read_bytes() for p in ("config.yaml", "run.json", "step1_depth/weights.pt")}
    for change, key in (
        ("train.lr=0.5", "train.lr"),
        ("model.width=8", "model.width"),
        ("data.frames=2", "data.frames"),
    ):
        with pytest.raises(UserError, match=f"step1_depth was trained with another config.*{key}.*--retrain-from"):
            run_training(tiny_cfg(small_cache, "steps=[step1_depth]", change), run)
        assert {p: (run / p).read_bytes() for p in before} == before  # nothing overwritten
    # Settings that do not change what a step learns are free to change.
    run_training(tiny_cfg(small_cache, "steps=[step1_depth]", "train.log_every_n_steps=3"), run)
    assert (run / "step1_depth/weights.pt").read_bytes() == before["step1_depth/weights.pt"]
    # A child step records its parent's fingerprint: retraining the parent invalidates it.
    run_training(tiny_cfg(small_cache, "steps=[step2]"), run)
    with pytest.raises(UserError, match=r"step2 was trained with another config \(model.connection"):
        run_training(tiny_cfg(small_cache, "steps=[step2]", "model.connection=none"), run)
    w2 = (run / "step2/weights.pt").read_bytes()
    res = run_training(tiny_cfg(small_cache, "steps=[step2]", "model.connection=none"), run, retrain_from="step2")
    assert json.loads((run / "step2" / "step.json").read_text())["keys"]["model.connection"] == "none"
    assert (run / "step2/weights.pt").read_bytes() != w2
    assert (run / "step1_depth/weights.pt").read_bytes() == before["step1_depth/weights.pt"]  # parents kept
    assert set(res) == {"step1_rgb", "step1_depth", "step2"}


def test_frames_above_the_cache_and_benchmark_mismatch_are_refused(small_cache, tmp_path):
    with pytest.raises(UserError, match="stores 3 frames per video.*data.frames=4"):
        run_training(tiny_cfg(small_cache, "data.frames=4"), tmp_path / "a")
    with pytest.raises(UserError, match="prepared as ntu60.*data.benchmark=ntu120"):
        run_training(tiny_cfg(small_cache, "data.benchmark=ntu120"), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(UserError, match="unknown config key 'data.num_classes'"):
        tiny_cfg(small_cache, "data.num_classes=7")


def test_non_finite_loss_stops_the_step(small_cache, tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(
        [
            "train",
            "demo",
            f"data.cache={small_cache}",
            *TINY_TRAIN,
            "steps=[step1_depth]",
            "train.lr=1e30",
            "--run-dir",
            str(run),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "step1_depth: training loss is nan at epoch" in err[-1] and "Traceback" not in "".join(err)
    assert not (run / "step1_depth" / "metrics.json").exists()
    assert not (run / "step1_depth" / "weights.pt").exists()


def test_run_paths_are_absolute(small_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(small_cache.parent)
    run_training(tiny_cfg(small_cache.name, "steps=[step1_depth]"), tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["data"]["cache"] == str(small_cache.resolve())
    assert load_config(tmp_path / "run" / "config.yaml")["data"]["cache"] == str(small_cache.resolve())


def test_deterministic_cpu_runs(small_cache, tmp_path):
    a = run_training(tiny_cfg(small_cache, "steps=[step1_depth]"), tmp_path / "a")["step1_depth"]
    b = run_training(tiny_cfg(small_cache, "steps=[step1_depth]"), tmp_path / "b")["step1_depth"]
    assert a["pred"] == b["pred"]
    wa = torch.load(tmp_path / "a" / "step1_depth" / "weights.pt", weights_only=True)
    wb = torch.load(tmp_path / "b" / "step1_depth" / "weights.pt", weights_only=True)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_speckle_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.full((1000,), 100, dtype=torch.uint8)
    assert torch.equal(speckle(x, 0.0, g), x)
    assert speckle(x, -1, g).sum() == 0
    y = speckle(x, 0.01, g).float()
    assert 95 < y.mean() < 105 and 7 < y.std() < 13  # sigma = sqrt(0.01) = 0.1 → std ≈ 10


def test_depth_noise_before_encoding():
    """Paper form of Table 3: the depth map in mm is multiplied by n ~ N(1, σ²), then encoded again."""
    import numpy as np

    from modistill.data.encode import encode_depth
    from modistill.evaluation.noisy_depth import DepthCodec

    rng = np.random.default_rng(0)
    near, far = 1500.0, 4500.0
    mm = rng.uniform(2500, 3500, (2, 16, 16)).astype(np.float32)
    mm[:, :2] = 0  # missing depth stays missing
    img = np.stack([encode_depth(m.astype(np.uint16), near, far) for m in mm])
    codec = DepthCodec("jet")
    level = codec.levels_of(img)
    assert (level[:, :2] == -1).all()
    decoded = near + (1 - level[:, 2:] / 255) * (far - near)
    assert np.abs(decoded - mm[:, 2:]).max() <= (far - near) / 255 / 2 + 1  # exact up to the 8-bit step
    x = torch.from_numpy(img).permute(0, 3, 1, 2)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(codec.noisy(x, near, far, 1e-12, g), x)
    y = codec.noisy(x, near, far, 0.01, g).permute(0, 2, 3, 1).numpy()
    back = near + (1 - codec.levels_of(y)[:, 2:] / 255) * (far - near)
    ratio = back / decoded
    assert (codec.levels_of(y)[:, :2] == -1).all()
    assert 0.08 < ratio.std() < 0.12 and abs(ratio.mean() - 1) < 0.02  # σ = 0.1 on the depth, not on the colours


def test_inverted_chain_trains_with_the_teacher_frozen_as_trained(small_cache, tmp_path):
    run = tmp_path / "run"
    res = run_training(tiny_cfg(small_cache, "steps=[step4_inv]"), run)
    assert set(res) == {"step1_rgb", "step1_depth", "step2_inv", "step3_inv", "step4_inv"}
    s2 = torch.load(run / "step2_inv" / "weights.pt", weights_only=True)
    s3 = torch.load(run / "step3_inv" / "weights.pt", weights_only=True)
    for stream in ("rgb", "privileged"):  # both frozen in step 3, BN statistics included
        keys = [k for k in s2 if k.startswith(f"net.streams.{stream}.")]
        assert keys and all(torch.equal(s2[k], s3[k]) for k in keys)
    assert any(not torch.equal(s3[k], s2[k.replace(".hall.", ".privileged.")]) for k in s3 if ".hall." in k)


def test_step_epochs_override_the_epochs_of_one_step(small_cache, tmp_path):
    run = tmp_path / "run"
    run_training(tiny_cfg(small_cache, "steps=[step1_depth,step1_rgb]", "train.step_epochs={step1_depth: 3}"), run)
    assert torch.load(run / "step1_depth" / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 2  # 0-based
    assert torch.load(run / "step1_rgb" / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 0
    assert json.loads((run / "step1_depth" / "step.json").read_text())["keys"]["train.epochs"] == 3
    with pytest.raises(UserError, match="step1_depth was trained with another config"):
        run_training(tiny_cfg(small_cache, "steps=[step1_depth]", "train.step_epochs={step1_depth: 2}"), run)


@pytest.fixture(scope="module")
def trained_small_run(small_cache, tmp_path_factory):
    run = tmp_path_factory.mktemp("step2run") / "run"
    run_training(tiny_cfg(small_cache, "steps=[step2]"), run)
    return run, load_config(run / "config.yaml")


def test_table3_noise_on_the_depth_map_is_the_default(trained_small_run, monkeypatch):
    """The paper's form never touches the encoded image with the released code's speckle; `encoded` does."""
    from modistill.evaluation import noisy_depth as nd

    calls = []
    real = nd.speckle
    monkeypatch.setattr(nd, "speckle", lambda x, s2, g: calls.append(s2) or real(x, s2, g))
    decoded = []
    real_noisy = nd.DepthCodec.noisy
    monkeypatch.setattr(nd.DepthCodec, "noisy", lambda self, *a: decoded.append(a[3]) or real_noisy(self, *a))
    run, cfg = trained_small_run
    names = json.loads((run / "step2" / "metrics.json").read_text())["test_names"]
    nd.noisy_depth_accuracies(cfg, run, names, 3, [0.0, 0.1], void=False)
    assert decoded and set(decoded) == {0.1} and all(s2 == 0 for s2 in calls)
    calls.clear(), decoded.clear()
    cfg["evaluate"]["noise_on"] = "encoded"
    nd.noisy_depth_accuracies(cfg, run, names, 3, [0.0, 0.1], void=False)
    assert not decoded and 0.1 in calls


def test_config_errors():
    with pytest.raises(UserError, match="unknown config key 'train.epochz'"):
        load_config(CONFIGS / "demo.yaml", ["train.epochz=3"])
    with pytest.raises(UserError, match="model.connection"):
        load_config(CONFIGS / "demo.yaml", ["model.connection=sideways"])
    with pytest.raises(UserError, match="expects an integer"):
        load_config(CONFIGS / "demo.yaml", ["train.epochs=many"])


def test_cli_user_errors_exit_2_one_line(capsys, tmp_path):
    assert main(["train", "demo", "train.epochz=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.epochz" in err[0]
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err
    assert main(["prepare", "ntu", "--root", str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    assert "RGB folder not found" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 2


def test_demo_seeds_take_every_finished_seed_through_the_demo_again(tmp_path, monkeypatch):
    """A finished seed is resumed, not skipped: its run gains the steps a newer config adds before the summary."""
    import modistill.demo as demo
    import modistill.evaluation.seeds as seeds

    calls = []

    def fake_demo(out, quick, seed, workers, overrides, privileged):
        calls.append((seed, privileged))
        record = demo.demo_dirs(Path(out), privileged)[2]
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text("{}")  # what a finished demo leaves

    def fake_summary(runs, out):
        calls.append([Path(r).relative_to(tmp_path).as_posix() for r in runs])
        return tmp_path / "seeds.md"

    monkeypatch.setattr(demo, "run_demo", fake_demo)
    monkeypatch.setattr(seeds, "write_seed_summary", fake_summary)
    for _ in range(2):
        demo.run_demo_seeds(tmp_path, [7, 8])
    assert calls == 2 * [(7, "depth"), (8, "depth"), ["seed_7/run", "seed_8/run"]]


def test_quick_demo_end_to_end(tmp_path, capsys):
    assert (
        main(
            [
                "demo",
                "--quick",
                "--out",
                str(tmp_path / "demo"),
                "--workers",
                "1",
                "train.progress=false",
                "data.workers=0",
            ]
        )
        == 0
    )
    report = (tmp_path / "demo" / "run" / "report.md").read_text()
    # The demo caches person crops (its calibrated input), and the report says so.
    assert json.loads((tmp_path / "demo" / "cache" / "cache.json").read_text())["crop"]["policy"] == "person"
    assert json.loads((tmp_path / "demo" / "run" / "run.json").read_text())["input"]["deploy_crop"]["rule"] == "person"
    # Its hallucination stream starts from the RGB stream (demo.yaml), which the step record and the report carry.
    step3 = json.loads((tmp_path / "demo" / "run" / "step3_noconn" / "step.json").read_text())
    assert step3["keys"]["distill.hall_init"] == "rgb" and "step2" in step3["parents"]
    for row in (
        "48 px, person crops, 5 frames",
        "hallucination stream initialised from the RGB stream",
        "step 1, depth stream",
        "step 2",
        "step 4",
        "Table 3",
        "void",
        "1 epoch per step",
        "chance 25.0 %",
        "## The paper's claims",
        "| 7 | step 2, RGB stream | RGB + depth via connections",
        "Paper (cross-subject)",
        "| the gap from step 2 to step 4 | #8 > #15 |",
        "| step 4 (RGB only) beats step 2 fed noisy depth (Table 3) | #15 > Table 3 |",
        "multiplies the depth map in millimetres, before encoding (paper)",
    ):
        assert row.replace("| the gap", "| depth at test time still helps: the gap") in report, row
    assert (tmp_path / "demo" / "run" / "noisy_depth.png").read_bytes()[:4] == b"\x89PNG"
    steps = report.split("## Steps run")[1]
    assert steps.index("step1_rgb") < steps.index("step2") < steps.index("step4") < steps.index("step3_noconn")
    assert (tmp_path / "demo" / "run" / "confusion.png").stat().st_size > 1000
    assert (tmp_path / "demo" / "run" / "hall_loss.png").exists()
    rows = json.loads((tmp_path / "demo" / "run" / "table2.json").read_text())
    assert {r["row"] for r in rows} >= {"1", "2", "6", "7", "8", "13", "14", "15"}
    assert "%" not in json.dumps([r["accuracy"] for r in rows])
    # Per-step curves: every epoch of every step with its loss, validation accuracy and learning rate.
    assert "## Training curves" in report and "| Verdict (paired) |" in report
    curves = (tmp_path / "demo" / "run" / "training_curves.csv").read_text().splitlines()
    assert curves[0] == "step,epoch,train_loss,val_acc,lr" and len(curves) == 1 + 6  # six steps of one epoch
    assert all(all(line.split(",")[2:]) for line in curves[1:]), curves
    assert (tmp_path / "demo" / "run" / "training_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_ddp_two_cpu_processes_gloo(small_cache, tmp_path):
    """Two gloo processes through Lightning's DDP: each rank trains on half the batches, the steps chain across
    ranks, and the test metrics cover every test video exactly once."""
    import subprocess
    import sys

    run = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "modistill",
        "train",
        "demo",
        f"data.cache={small_cache}",
        "train.accelerator=cpu",
        "train.devices=2",
        "train.strategy=ddp",
        "train.epochs=1",
        "train.step_epochs={}",
        "data.val_performers=1",
        "model.width=4",
        "train.batch_size=2",
        "data.workers=0",
        "data.frames=3",
        "train.progress=false",
        "steps=[step1_depth,step1_rgb,step2]",
        "variants=[]",
        "--run-dir",
        str(run),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.count("step2 ") == 1  # only rank 0 prints the summary
    assert p.stderr.count("step 3/3: step2") == 1 and p.stderr.count("step1_rgb: test accuracy") == 1, p.stderr
    assert "sync_dist" not in p.stderr  # the epoch curves are reduced over the ranks
    splits = json.loads((run / "splits.json").read_text())
    m = json.loads((run / "step2" / "metrics.json").read_text())
    assert sorted(m["test_names"]) == sorted(splits["test"]) and m["n"] == len(splits["test"])
    ckpt = torch.load(run / "step2" / "checkpoints" / "last.ckpt", weights_only=True)
    per_rank = -(-len(splits["train"]) // 2)  # DistributedSampler shard
    assert ckpt["global_step"] == -(-per_rank // 2)


def test_checkpoint_write_is_atomic(tmp_path):
    from modistill.training.checkpoint_io import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        io.save_checkpoint({"epoch": 2, "w": torch.zeros(3), "bad": Boom()}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_inverted_connection_variants():
    inv = {n: connections_for(STEPS[n], "depth_to_rgb") for n in ("step2_inv", "step3_inv", "step4_inv")}
    assert inv == {
        "step2_inv": [("rgb", "privileged")],
        "step3_inv": [("rgb", "privileged"), ("privileged", "hall")],
        "step4_inv": [("rgb", "hall")],
    }
    assert resolve_order(["step4_inv"]) == ["step1_rgb", "step1_depth", "step2_inv", "step3_inv", "step4_inv"]


def test_released_step4_variant_drops_only_the_connections():
    """step4_noconn is step 4 as the released code runs it: the same streams and starts, no hall→RGB connection,
    and its own Table 2 row."""
    from modistill.evaluation.tables import table2_rows

    paper, released = STEPS["step4"], STEPS["step4_noconn"]
    assert connections_for(paper, "depth_to_rgb") == [("hall", "rgb")]
    assert connections_for(released, "depth_to_rgb") == connections_for(released, "rgb_to_depth") == []
    assert (released.streams, released.inputs, released.init) == (paper.streams, paper.inputs, paper.init)
    assert resolve_order(["step4_noconn"]) == ["step1_rgb", "step1_depth", "step2", "step3", "step4_noconn"]
    rows = table2_rows({"step4_noconn": {"accuracy": 0.4, "streams": {}}, "step4": {"accuracy": 0.5, "streams": {}}})
    assert [(r["row"], r["modality"], r["accuracy"]) for r in rows] == [("15", "RGB", 0.5), ("15r", "RGB", 0.4)]


def test_inverted_step3_teacher_runs_as_trained():
    """The frozen depth teacher of the inverted step 3 gives the logits it gave in step 2, RGB injection included."""
    from modistill.models.backbone import build_stream
    from modistill.models.multistream import MultiStream

    torch.manual_seed(0)
    rgb, depth = build_stream("resnet18", 3, 4, True, None), build_stream("resnet18", 3, 4, True, None)
    step2 = MultiStream(
        {"rgb": rgb, "privileged": depth},
        STEPS["step2_inv"].inputs,
        connections_for(STEPS["step2_inv"], "depth_to_rgb"),
    ).eval()
    spec = STEPS["step3_inv"]
    hall = build_stream("resnet18", 3, 4, True, None)
    step3 = MultiStream(
        {"rgb": rgb, "privileged": depth, "hall": hall}, spec.inputs, connections_for(spec, "depth_to_rgb")
    ).eval()
    batch = {"rgb": torch.randn(2, 3, 3, 32, 32), "privileged": torch.randn(2, 3, 3, 32, 32)}
    with torch.no_grad():
        want, got = step2(batch).logits["privileged"], step3(batch).logits["privileged"]
    assert torch.equal(want, got)
    assert set(spec.frozen) == {"rgb", "privileged"} and spec.init["rgb"] == ("step2_inv", "rgb")


def _fake_run(run, classes=("a", "b"), protocol="cross-subject"):
    from modistill.training.run import RUN_FORMAT

    run.mkdir(parents=True, exist_ok=True)
    (run / "run.json").write_text(
        json.dumps(
            {
                "format": RUN_FORMAT,
                "data": {"benchmark": "ntu60", "protocol": protocol, "class_names": list(classes)},
                "input": {"size": 32, "frames": 3, "stored_frames": 3},
                "model": {
                    "arch": "resnet18",
                    "width": 4,
                    "temporal": True,
                    "connection": "depth_to_rgb",
                    "pretrained": None,
                },
            }
        )
    )
    return run


def test_seed_summary_mean_and_std(tmp_path):
    from modistill.evaluation.seeds import write_seed_summary

    runs = []
    for i, (d, s2) in enumerate(((0.5, 0.6), (0.7, 0.8))):
        run = _fake_run(tmp_path / f"seed{i}")
        for step, acc in (("step1_depth", d), ("step2", s2)):
            (run / step).mkdir(parents=True)
            (run / step / "metrics.json").write_text(
                json.dumps({"accuracy": acc, "streams": {"rgb": acc / 2, "depth": acc - 0.1}})
            )
        (run / "noisy_depth.json").write_text(
            json.dumps([{"sigma2": "no noise", "accuracy": s2}, {"sigma2": "void", "accuracy": d / 5}])
        )
        runs.append(run)
    (runs[1] / "step2_inv").mkdir()  # a row only one run has is left out
    only_one = {"accuracy": 1.0, "streams": {"rgb": 1.0, "depth": 1.0}}
    (runs[1] / "step2_inv" / "metrics.json").write_text(json.dumps(only_one))
    out = write_seed_summary(runs, tmp_path)
    summary = json.loads((tmp_path / "seeds.json").read_text())
    rows = {r["row"]: r for r in summary["table2"]}
    assert sorted(rows) == ["1", "6", "7", "8"]
    assert rows["1"]["mean"] == pytest.approx(0.6) and rows["1"]["std"] == pytest.approx(0.1414214, abs=1e-6)
    assert rows["7"]["runs"] == pytest.approx([0.3, 0.4])
    assert "| 1 | step 1, depth stream | Depth | x-entr | 60.00 ± 14.14 | 50.0, 70.0 |" in out.read_text()
    assert [r["sigma2"] for r in summary["table3"]] == ["no noise", "void"]
    assert summary["table3"][0]["mean"] == pytest.approx(0.7)
    assert summary["table3"][1]["runs"] == pytest.approx([0.1, 0.14])
    assert "| no noise | 70.00 ± 14.14 | 60.0, 80.0 |" in out.read_text()
    assert (tmp_path / "seeds.png").read_bytes()[:4] == b"\x89PNG"

    # The README's results section is this summary, written by the tool; the rest of the README is kept.
    from modistill.evaluation.readme import END, START, write_results_section

    readme = tmp_path / "repo" / "docs" / "results.md"
    readme.parent.mkdir(parents=True)
    readme.write_text(f"# T\n\n## Results\n{START}\nhand-written 99.9 %\n{END}\n\n## Next\nkept\n")
    write_results_section(readme, out, runs)
    text = readme.read_text()
    section = text[text.index(START) : text.index(END)]
    assert "hand-written" not in text and text.endswith(f"{END}\n\n## Next\nkept\n")
    assert "| 1 | step 1, depth stream | Depth | x-entr | 60.00 ± 14.14 | 50.0, 70.0 |" in section
    assert "](results/seeds.png)" in section and (readme.parent / "results/seeds.png").exists()
    readme.write_text("# no markers\n")
    with pytest.raises(UserError, match="results section"):
        write_results_section(readme, out, runs)
    assert readme.read_text() == "# no markers\n"


@pytest.mark.parametrize(
    "other, fragment",
    [
        ({"classes": ("a", "b", "c", "d")}, "data.class_names (2 classes vs 4"),
        ({"classes": ("b", "a")}, "data.class_names (other class names"),
        ({"protocol": "cross-view"}, "data.protocol ('cross-subject' vs"),
    ],
)
def test_seed_summary_refuses_runs_that_differ(tmp_path, capsys, other, fragment):
    runs = [_fake_run(tmp_path / "a"), _fake_run(tmp_path / "b", **other)]
    for run in runs:
        (run / "step1_depth").mkdir()
        (run / "step1_depth" / "metrics.json").write_text(json.dumps({"accuracy": 0.5, "streams": {}}))
    from modistill.evaluation.seeds import write_seed_summary

    with pytest.raises(UserError, match=f"differs from .* in {re.escape(fragment)}"):
        write_seed_summary(runs, tmp_path)
    assert not (tmp_path / "seeds.md").exists()


def test_console_says_each_thing_once(small_cache, tmp_path):
    """A fresh `modistill train`: stdout holds the results only, stderr no duplicated line and nothing from
    third parties at INFO, and the overall position of each step with an ETA."""
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "modistill",
        "train",
        "demo",
        f"data.cache={small_cache}",
        "train.epochs=1",
        "train.step_epochs={}",
        "data.val_performers=1",
        "model.width=4",
        "data.frames=3",
        "data.workers=0",
        "steps=[step2]",
        "variants=[]",
        "--run-dir",
        str(tmp_path / "run"),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.splitlines()[-1] == f"run folder: {tmp_path / 'run'}" and "it/s" not in p.stdout
    lines = [line for line in p.stderr.replace("\r", "\n").splitlines() if line.strip()]
    logged = [line.split(" ", 1)[1] for line in lines if line[:2].isdigit() and line[2] == ":"]
    assert len(logged) == len(set(logged)), "a message was logged twice"
    assert not [line for line in logged if line.startswith("INFO") and "modistill" not in line.split(":")[0]]
    assert not [line for line in lines if line.startswith("INFO:")]  # Lightning's own handler
    assert any("step 2/3: step1_depth (elapsed" in line and "ETA" in line for line in logged)


def test_importing_modistill_leaves_the_matplotlib_backend_alone():
    import subprocess
    import sys

    code = (
        "import matplotlib; matplotlib.use('svg'); import modistill.evaluation.plots, modistill.evaluation.seeds;"
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "svg", out.stderr[-500:]


def test_classification_scores_by_hand():
    from modistill.training.module import classification_scores

    labels = torch.tensor([0, 0, 0, 1, 2, 6])
    logits = torch.full((6, 7), -1.0)
    for i, top in enumerate([0, 0, 1, 1, 2, 3]):  # right on 0, 0, 1, 2; wrong on the second 0 and on 6
        logits[i, top] = 5.0
    logits[5, 6] = 4.0  # class 6 is second best for the last video: inside the top 5
    s = classification_scores(logits, labels, 7)
    assert s["top1"] == pytest.approx(4 / 6)
    assert s["mean_class"] == pytest.approx((2 / 3 + 1 + 1 + 0) / 4)  # classes 0, 1, 2, 6 present
    assert s["top5"] == pytest.approx(1.0)
    assert classification_scores(logits[:, :5], labels.clamp(max=4), 5)["top5"] is None


def test_a_thin_split_is_warned_about(small_cache, caplog):
    from modistill.training.data import dataset_splits

    with caplog.at_level("WARNING"):
        dataset_splits(load_config(None, [f"data.cache={small_cache}", "data.frames=3"]))
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "leaves fewer than 5 training videos for 3 of 3 classes" in msg and "6 train / 6 validation" in msg


def test_claims_verdicts_account_for_the_test_size():
    from modistill.evaluation.claims import check_claims, wilson

    # One run on 100 videos: 10 points apart holds (SE of the difference ~6.7 points), 3 points is not separated.
    got = {c["rows"]: c for c in check_claims({"1": [0.60], "2": [0.50], "8": [0.53], "6": [0.50]}, 100)}
    assert got["#1 > #2"]["verdict"] == "not separated"  # 10 points on 100 videos: 1.96·SE = 13.7 points
    got = {c["rows"]: c for c in check_claims({"1": [0.60], "2": [0.40]}, 400)}
    assert got["#1 > #2"]["verdict"] == "holds" and got["#1 > #2"]["ours"] == pytest.approx(20.0)
    got = {c["rows"]: c for c in check_claims({"1": [0.40], "2": [0.60]}, 400)}
    assert got["#1 > #2"]["verdict"] == "does not hold"
    # Three seeds: the per-run differences and a t-interval (t = 4.3027 for 2 degrees of freedom).
    got = {c["rows"]: c for c in check_claims({"1": [0.50, 0.52, 0.54], "2": [0.40, 0.41, 0.42]}, 180)}
    assert got["#1 > #2"]["verdict"] == "holds"
    assert got["#1 > #2"]["interval"] == pytest.approx(4.3027 * 1.0 / 3**0.5, abs=1e-3)  # sd 1 point, k = 3
    lo, hi = wilson(0.5, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)


def test_noise_claim_names_the_lowest_separated_level():
    from modistill.evaluation.claims import noise_claim

    step4 = [0.50, 0.51, 0.52]
    noisy = {
        "no noise": [0.70, 0.71, 0.72],
        "0.01": [0.49, 0.51, 0.53],
        "0.1": [0.45, 0.47, 0.49],
        "1": [0.30, 0.31, 0.32],
        "void": [0.10, 0.10, 0.10],
    }
    c = noise_claim(noisy, step4, 180)
    # 0.01: not separated (mean difference 0); 0.1: +4 points, sd 1, t-interval 2.5: holds from 0.1.
    assert c["verdict"] == "holds" and c["ours"] == "from σ² = 0.1 (+4.00)"
    c = noise_claim({"0.1": [0.60, 0.61, 0.62], "1": [0.55, 0.56, 0.57]}, step4, 180)
    assert c["verdict"] == "does not hold" and c["ours"] == "at no level"
    c = noise_claim({"0.1": [0.60, 0.61, 0.62], "1": [0.45, 0.51, 0.58]}, step4, 180)
    assert c["verdict"] == "not separated"


def test_learning_rate_drops_once_at_the_configured_epoch(small_cache, tmp_path):
    run = tmp_path / "run"
    run_training(
        tiny_cfg(small_cache, "steps=[step1_depth]", "train.epochs=4", "train.schedule=step", "train.lr_drop_epoch=2"),
        run,
    )
    ckpt = torch.load(run / "step1_depth" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(1e-4)  # 1e-3 → 1e-4, not 1e-5
    assert json.loads((run / "step1_depth" / "step.json").read_text())["keys"]["train.lr_drop_epoch"] == 2


def test_mixed_sampling_without_spare_frames_is_refused(small_cache, tmp_path):
    with pytest.raises(
        UserError, match="data.train_sampling=mixed draws 3 of the stored frames, but the cache stores only 3"
    ):
        run_training(tiny_cfg(small_cache, "data.train_sampling=mixed"), tmp_path / "run")


def test_hyperparameters_are_logged_with_the_metrics(trained_small_run):
    import yaml

    run, cfg = trained_small_run
    hparams = yaml.safe_load((run / "step2" / "logs" / "version_0" / "hparams.yaml").read_text())
    assert hparams["train.lr"] == cfg["train"]["lr"] and hparams["step"] == "step2"
    assert hparams["distill.temperature"] == cfg["distill"]["temperature"]
    assert list((run / "step2" / "tb").glob("version_0/events.out.tfevents.*"))  # the default tensorboard logger


@pytest.mark.parametrize("logger", ["wandb", "mlflow"])
def test_a_logger_without_its_package_is_refused_before_anything_is_written(
    small_cache, tmp_path, monkeypatch, capsys, logger
):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == logger else real(name, *a))
    rc = main(
        [
            "train",
            "demo",
            f"data.cache={small_cache}",
            "data.frames=3",
            f"train.loggers=[csv,{logger}]",
            "--run-dir",
            str(tmp_path / "run"),
        ]
    )
    assert rc == 2 and not (tmp_path / "run").exists()
    assert f"pip install {logger}" in capsys.readouterr().err


def test_the_csv_logger_cannot_be_removed(capsys):
    assert main(["config", "show", "demo", "train.loggers=[tensorboard]"]) == 2
    assert "must keep csv" in capsys.readouterr().err


def test_wandb_and_mlflow_loggers_get_the_run_and_its_hyperparameters(small_cache, tmp_path, monkeypatch):
    """Neither package is installed here: stand-ins with Lightning's logger interface record what modistill passes
    (the names, where MLflow writes, the hyperparameters and the metrics)."""
    import importlib.util

    import lightning.pytorch.loggers as pl_loggers

    made = {}

    class Recorder(pl_loggers.Logger):
        def __init__(self, **kwargs):
            super().__init__()
            self.kwargs, self.params, self.metrics = kwargs, {}, []
            made[type(self).__name__] = self

        name = property(lambda self: "recorder")
        version = property(lambda self: 0)

        def log_hyperparams(self, params, *args, **kwargs):
            self.params.update(params)

        def log_metrics(self, metrics, step=None):
            self.metrics.append(dict(metrics))

    monkeypatch.setattr(pl_loggers, "WandbLogger", type("WandbLogger", (Recorder,), {}))
    monkeypatch.setattr(pl_loggers, "MLFlowLogger", type("MLFlowLogger", (Recorder,), {}))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: object() if n in ("wandb", "mlflow") else real(n, *a)
    )
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = tmp_path / "run"
    cfg = tiny_cfg(small_cache, "steps=[step1_rgb]", "train.loggers=[csv,wandb,mlflow]", "name=trackers")
    run_training(cfg, run)
    wandb, mlflow = made["WandbLogger"], made["MLFlowLogger"]
    assert wandb.kwargs["name"] == "trackers/step1_rgb" and wandb.kwargs["save_dir"] == str(run / "step1_rgb")
    assert mlflow.kwargs["experiment_name"] == "trackers" and mlflow.kwargs["run_name"] == "step1_rgb"
    assert mlflow.kwargs["tracking_uri"] == (run / "mlruns").resolve().as_uri()
    for lg in (wandb, mlflow):
        assert lg.params["train.lr"] == cfg["train"]["lr"] and lg.params["step"] == "step1_rgb"
        assert any("val/acc" in m for m in lg.metrics)


def test_a_run_that_named_the_privileged_stream_depth_evaluates_and_trains_on(small_cache, tmp_path):
    """Runs made before the privileged stream was named by its role hold ``net.streams.depth.*`` tensors and
    ``depth`` per-stream metrics: read through the run folder's format, they give the same tables and the same next
    step as a run made now."""
    from modistill.evaluation.tables import table2_rows
    from modistill.training.run import RunInfo

    now, old = tmp_path / "now", tmp_path / "old"
    run_training(tiny_cfg(small_cache, "steps=[step3]"), now)
    shutil.copytree(now, old)
    for path in old.rglob("*"):  # back to the old names
        if path.name == "weights.pt":
            state = torch.load(path, weights_only=True)
            torch.save({k.replace(".privileged.", ".depth."): v for k, v in state.items()}, path)
        elif path.suffix == ".ckpt":
            ckpt = torch.load(path, weights_only=False)
            ckpt["state_dict"] = {k.replace(".privileged.", ".depth."): v for k, v in ckpt["state_dict"].items()}
            torch.save(ckpt, path)
        elif path.name == "metrics.json":
            path.write_text(path.read_text().replace('"privileged"', '"depth"'))
    assert '"depth"' in (old / "step2" / "metrics.json").read_text()
    assert RunInfo(old).metrics() == RunInfo(now).metrics()
    assert table2_rows(RunInfo(old).metrics()) == table2_rows(RunInfo(now).metrics())
    for run in (now, old):  # step 3 cut short after its last checkpoint: it resumes from it
        (run / "step3" / "metrics.json").unlink()
        (run / "step3" / "weights.pt").unlink()
    step4 = {run: run_training(tiny_cfg(small_cache, "steps=[step4]"), run)["step4"] for run in (now, old)}
    assert step4[old]["pred"] == step4[now]["pred"]
    want, got = (torch.load(run / "step4" / "weights.pt", weights_only=True) for run in (now, old))
    assert all(torch.equal(want[k], got[k]) for k in want)

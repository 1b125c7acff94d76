"""The CPU allocator setting keeps freed memory mapped (checked in a fresh process: it is process-wide)."""

import subprocess
import sys

import pytest

SCRIPT = """
import sys
import numpy as np
from modistill.utils.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
a = np.ones(64 * 2**20, np.uint8)  # 64 MiB, every page touched
before = rss()
del a
print(before - rss())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc and /proc are Linux-only")
def test_keep_freed_memory_keeps_a_freed_block_mapped():
    def released(mode):
        out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
        return int(out.stdout)

    assert released("default") > 60 * 2**20  # glibc unmaps a large block as soon as it is freed
    assert released("keep") < 2**20  # kept for the next step's activations


def test_the_python_api_leaves_process_wide_settings_as_it_found_them(monkeypatch, tmp_path):
    """Only the command line (which owns its process) sets the allocator; cuDNN's benchmark mode is restored after a
    run whoever started it."""
    import torch

    from modistill.config import CONFIG_DIR, load_config
    from modistill.training import runner
    from modistill.utils import memory

    cfg = load_config(CONFIG_DIR / "demo.yaml", ["data.cache=/nowhere"])
    seen, calls = [], []
    monkeypatch.setattr(runner, "open_run", lambda cfg, run_dir, retrain, reuse: (cfg, [], {}, {}, {}))
    monkeypatch.setattr(runner, "_train_in_order", lambda *a: seen.append(torch.backends.cudnn.benchmark) or {})
    monkeypatch.setattr(runner, "keep_freed_memory", lambda: calls.append("mallopt") or True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(memory, "_process_owned", False)
    runner._run_steps(cfg, tmp_path, None, (), ())
    assert calls == []  # a notebook's allocator is its own
    monkeypatch.setattr(memory, "_process_owned", True)
    runner._run_steps(cfg, tmp_path, None, (), ())
    assert calls == ["mallopt"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the GPU path sets benchmark mode, then restores it
    runner._run_steps(cfg, tmp_path, None, (), ())
    assert seen[-1] is True and torch.backends.cudnn.benchmark is False

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

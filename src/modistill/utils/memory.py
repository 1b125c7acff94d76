"""CPU memory allocator settings for training."""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc <malloc.h>
_process_owned = False


def own_process() -> None:
    """Declare that modistill owns this process (the command line does): settings that last as long as the process,
    such as the allocator's below, may then be made. The Python API leaves a caller's process as it found it."""
    global _process_owned
    _process_owned = True


def process_owned() -> bool:
    return _process_owned


def keep_freed_memory() -> bool:
    """Make glibc's malloc serve every allocation from its heap and keep freed memory for reuse.

    Why: a CPU training step allocates and frees activation-sized tensors by the hundred. By default glibc maps
    each large one fresh from the kernel and unmaps it when freed, so every step page-faults on all its
    activations again (the measured effect is in docs/benchmarks.md). The cost: the process keeps its peak
    memory until it exits. Returns False where the C library is not glibc.
    """
    try:  # the malloc this process already uses, not a libc found by name
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1

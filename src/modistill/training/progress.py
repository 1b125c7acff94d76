"""Console progress of training: Lightning's bars on stderr (stdout carries results, so ``cmd > log`` captures
no bar frames), and the overall position (step k of N, elapsed, ETA) of a multi-step run."""

from __future__ import annotations

import contextlib
import sys
import time

from lightning.pytorch.callbacks import TQDMProgressBar


def _on_stderr(method):
    def init(self):
        with contextlib.redirect_stdout(sys.stderr):  # Lightning passes file=sys.stdout, read at call time
            return method(self)

    init.__doc__ = method.__doc__
    return init


class StderrProgressBar(TQDMProgressBar):
    """Lightning's tqdm bars, written to stderr."""

    init_sanity_tqdm = _on_stderr(TQDMProgressBar.init_sanity_tqdm)
    init_train_tqdm = _on_stderr(TQDMProgressBar.init_train_tqdm)
    init_validation_tqdm = _on_stderr(TQDMProgressBar.init_validation_tqdm)
    init_test_tqdm = _on_stderr(TQDMProgressBar.init_test_tqdm)
    init_predict_tqdm = _on_stderr(TQDMProgressBar.init_predict_tqdm)


def clock(seconds: float) -> str:
    """``1h02m`` or ``3m07s``: a duration as the console says it."""
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class StepClock:
    """``step k/N`` with elapsed time and an ETA from the mean duration of the steps finished so far."""

    def __init__(self, total: int):
        self.total, self.done, self.t0 = total, 0, time.time()

    def start(self, name: str) -> str:
        elapsed = time.time() - self.t0
        eta = f", ETA {clock(elapsed / self.done * (self.total - self.done))}" if self.done else ""
        return f"step {self.done + 1}/{self.total}: {name} (elapsed {clock(elapsed)}{eta})"

    def finish(self) -> None:
        self.done += 1

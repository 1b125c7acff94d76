"""Helpers of the fault-injection suite (see conftest.py): the CLI runner that checks the user-error contract,
and small file damagers."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import TINY_TRAIN  # noqa: F401  (the fault suite's tiny training is the tests' one)

from modistill.cli import main

LOG_LINE = re.compile(r"\d\d:\d\d:\d\d (DEBUG|INFO|WARNING) ")  # progress logging (and bars), not the error


class Cli:
    """Runs ``modistill`` in-process and checks the user-error contract."""

    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = main([str(a) for a in argv])
        out, err = self.capsys.readouterr()
        return rc, out, err

    def fails(self, argv: list, fragment: str, rc: int = 2) -> str:
        """Exit ``rc``, no traceback, one stderr line holding ``fragment``; returns that line."""
        got, _, err = self(argv)
        lines = [
            line
            for line in err.replace("\r", "\n").splitlines()
            if line.strip() and not LOG_LINE.match(line) and "%|" not in line
        ]
        assert "Traceback" not in err, err[-3000:]
        assert got == rc, (got, err[-2000:])
        assert len(lines) == 1, err[-2000:]
        assert fragment in lines[0], lines[0]
        return lines[0]


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes: finished work must be byte-identical after a refused command."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def train_cmd(cache: Path, run: Path, *overrides: str) -> list[str]:
    """`python -m modistill train demo` on the tiny cache in a subprocess (for signals); later overrides win."""
    import sys

    base = [
        "train.step_epochs={}",
        "data.val_performers=1",
        "model.width=4",
        "train.batch_size=2",
        "data.workers=0",
        "data.frames=3",
        "train.progress=false",
        "variants=[]",
    ]
    return [
        sys.executable,
        "-m",
        "modistill",
        "train",
        "demo",
        f"data.cache={cache}",
        *base,
        *overrides,
        "--run-dir",
        str(run),
    ]

"""Advisory file locks (flock) that refuse at once, naming the holder, instead of waiting."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from modistill.errors import UserError


def _lock_owner(path: Path) -> str:
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"


def flock_or_refuse(fd: int, mode: int, path: Path, message: str) -> None:
    """Take the lock without waiting, or refuse with ``message`` (its ``{pid}``: the holder's, from the file)."""
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UserError(message.format(pid=_lock_owner(path))) from None


@contextmanager
def exclusive_lock(path: Path, busy: str, cannot_write: str) -> Iterator[None]:
    """Hold ``path`` exclusively (the file keeps our pid for the refusal message); released when the process
    ends, however it ends."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise UserError(f"{cannot_write} ({e.strerror or e})") from None
    try:
        flock_or_refuse(fd, fcntl.LOCK_EX, path, busy)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)  # closing releases the lock

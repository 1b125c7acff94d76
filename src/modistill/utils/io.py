"""Atomic writes: a crash leaves either the old file or the new one, never a half-written file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)``, flush it to disk, then rename onto ``path`` (same folder, so the rename is
    atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as f:
            # After the write: mkstemp makes 0600, and a writer may recreate the file (safetensors does); a plain
            # open() would honour the umask, so the result does too.
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process umask (read by setting and restoring it: the OS offers no plain getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def read_json(path: str | Path, remedy: str) -> dict:
    """A JSON state file as a dict, or a one-line :class:`UserError` naming the file, the problem and ``remedy``."""
    from modistill.errors import UserError

    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: missing; {remedy}") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a JSON file; {remedy}") from None
    except (OSError, ValueError) as e:
        why = "not valid JSON (truncated or damaged)" if isinstance(e, ValueError) else (e.strerror or "unreadable")
        raise UserError(f"{path}: {why}; {remedy}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a JSON object; {remedy}")
    return data


def load_tensors(path: str | Path, remedy: str) -> dict:
    """A torch file of tensors (``weights_only``: nothing else is unpickled), or one line naming it and ``remedy``."""
    import torch

    from modistill.errors import UserError

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: missing; {remedy}") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory; {remedy}") from None
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError, UnpicklingError, EOFError, ... for bad files
        first = (str(e).splitlines() or [type(e).__name__])[0]
        why = (
            "truncated"
            if "central directory" in first or "EOF" in first or isinstance(e, EOFError)
            else "holds more than tensors"
            if "weights_only" in first or "Unpickl" in type(e).__name__
            else "damaged"
        )
        raise UserError(f"{path}: unreadable ({why}); {remedy}") from None


def read_text(path: str | Path, what: str, encoding: str = "utf-8") -> str:
    """A text file's content, or one line naming the file and the problem (missing, a folder, not UTF-8, ...)."""
    from modistill.errors import UserError

    path = Path(path)
    try:
        return path.read_bytes().decode(encoding)
    except FileNotFoundError:
        raise UserError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a {what}") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start}); save the {what} as UTF-8") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the {what} ({e.strerror})") from None


def replace_marked_section(path: str | Path, start: str, end: str, section: str, what: str) -> None:
    """Replace the text between the marker lines ``start`` and ``end`` (kept) of a file, atomically; everything
    else is kept. A file without exactly one of each, in that order, is refused and left as it was."""
    from modistill.errors import UserError

    path = Path(path)
    text = read_text(path, "page")
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise UserError(f"{path}: needs one line {start} and, after it, one line {end} around the {what}")
    atomic_write_text(
        path, text[: text.index(start)] + f"{start}\n{section.strip()}\n{end}" + text[text.index(end) + len(end) :]
    )

"""User-facing errors: the CLI prints them as one line and exits with code 2, without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (files, config, arguments), not a bug in modistill."""


class DataError(UserError, ValueError):
    """A data file that cannot be read; the message names the file (and line where known)."""

    def __init__(self, path: object, problem: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem

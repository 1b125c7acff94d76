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


class NonFiniteError(UserError):
    """A loss, weight or output that is NaN or infinite: the result would be meaningless, so the work stops."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived. A BaseException (like KeyboardInterrupt) so that no ``except Exception`` swallows
    it, but not a KeyboardInterrupt, which Lightning turns into ``sys.exit(1)``."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

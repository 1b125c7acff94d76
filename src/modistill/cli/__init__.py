"""The ``modistill`` command line: the parser, logging, and errors turned into exit codes (user errors print one
line and exit 2; SIGINT 130, SIGTERM 143). The sub-commands live in :mod:`.data`, :mod:`.train` and
:mod:`.deploy`; they parse and print, the work is done by the library."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from modistill.errors import Interrupted, UserError
from modistill.utils.ranks import is_launch_process

log = logging.getLogger("modistill")

DESCRIPTION = """Train action recognition on RGB + depth, deploy on RGB only: the modality distillation method of
Garcia, Morerio & Murino (ECCV 2018). Typical flow: `prepare` a dataset into a cache, `train` the four steps,
`evaluate` the run (paper-style tables), `export` the RGB-only model and `predict` on plain videos. `demo` runs
everything on a built-in synthetic RGB-D benchmark. User errors print one line and exit 2; Ctrl-C exits 130 and
SIGTERM 143, keeping finished work."""


def _shown(value) -> str:
    """A default as the user types it: 384x216 for a size, space-separated lists, plain paths."""
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{value[0]}x{value[1]}"
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    return str(value)


class HelpFormatter(argparse.HelpFormatter):
    """Each option's real default once: not on required options, flags or empty defaults, and not again where the
    help text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            action.required
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or isinstance(action, argparse._VersionAction | argparse._HelpAction)
            or "default" in text
        ):
            return text
        return f"{text} (default: {_shown(default).replace('%', '%%')})"


class _SubParser(argparse.ArgumentParser):
    """A sub-command's parser, with the same help formatting as the main one."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line. It imports no torch, NumPy or OpenCV, so that ``--help``, ``--version`` and shell
    completion answer at once; each sub-command imports what it needs when it runs."""
    from modistill import __version__

    p = argparse.ArgumentParser(prog="modistill", description=DESCRIPTION, formatter_class=HelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging, third-party messages included")
    p.add_argument("--version", action="version", version=f"modistill {__version__}")
    sub = p.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        parser_class=_SubParser,
    )

    from modistill.cli import data, deploy, tools, train

    for module in (data, train, deploy, tools):
        module.register(sub)
    return p


class _StderrHandler(logging.StreamHandler):
    """Writes to the current ``sys.stderr`` (not the one at set-up), so a redirected or replaced stderr works."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


THIRD_PARTY = (
    "lightning",
    "lightning_fabric",
    "pytorch_lightning",
    "torch",
    "onnxscript",
    "onnx_ir",
    "onnxruntime",
    "matplotlib",
    "PIL",
    "fsspec",
)
# Lightning warnings that say nothing to a modistill user: an internal deprecation, the logging interval of tiny
# runs, and the frozen (eval-mode) teacher streams that the method freezes on purpose.
BENIGN_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)",
    r"The number of training batches .* is smaller than the logging",
    r"Found \d+ module\(s\) in eval mode",
    r"torch.distributed.nn.functional.all_gather is deprecated",
)


def _setup_logging(verbose: bool, command: str) -> None:
    """One handler on the root logger (installed once), modistill at INFO, third-party libraries at WARNING and
    through that handler only (Lightning adds its own, which would print every message twice)."""
    import warnings

    if command in ("train", "demo", "evaluate"):
        import lightning.pytorch  # noqa: F401 - its import configures its loggers: quiet them after it
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    worker = not is_launch_process()  # a DDP process other than rank 0: errors only, rank 0 says everything else once
    handler.setLevel(logging.ERROR if worker else logging.NOTSET)
    for name in [n for n in list(logging.root.manager.loggerDict) if n.split(".")[0] in THIRD_PARTY]:
        lg = logging.getLogger(name)
        lg.setLevel(logging.NOTSET if "." in name else logging.DEBUG if verbose else logging.WARNING)
        for h in list(lg.handlers):
            lg.removeHandler(h)
        lg.propagate = True
    for top in THIRD_PARTY:
        logging.getLogger(top).setLevel(logging.DEBUG if verbose else logging.WARNING)
    if worker:
        warnings.simplefilter("ignore")
    elif not verbose:
        for pattern in BENIGN_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)


def _one_line(message: str) -> str:
    """A user error raised in a DataLoader worker comes back wrapped with the worker's traceback: keep its own
    last line, without the exception's class name."""
    if "Original Traceback" in message:
        last = message.strip().splitlines()[-1]
        return last.split(": ", 1)[1] if ": " in last and last.split(": ", 1)[0].endswith("Error") else last
    return message


def _raise_interrupted(signum, _frame) -> None:
    raise Interrupted(signum)


def parse_command_line(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parse_args``, except that config overrides may also follow options (``train demo --run-dir R
    train.lr=1e-4``): argparse fills a positional list once, so overrides after an option would be refused."""
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "overrides", None), list):
        if all("=" in e and not e.startswith("-") for e in extra):
            args.overrides += extra
            return args
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    from modistill.utils.memory import own_process

    parser = build_parser()
    args = parse_command_line(parser, argv)
    own_process()  # the command line owns its process: process-wide settings (the allocator's) are its to make
    _setup_logging(args.verbose, args.command)
    # SIGINT (Ctrl-C) and SIGTERM (SLURM, Kubernetes, `timeout`) end every command the same way: one line, exit
    # 128 + signal number, finished work kept. Lightning adds its SIGTERM notifier in front of this handler.
    previous = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        rc = args.func(args)
    except UserError as e:
        print(f"modistill {args.command}: error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except OSError as e:  # the filesystem refused: permission, no space, not a directory, name too long, ...
        from modistill.data.cache import os_reason

        where = f"{e.filename}: " if e.filename else ""
        print(f"modistill {args.command}: error: {where}{os_reason(e).lower()}", file=sys.stderr)
        return 2
    except (Interrupted, KeyboardInterrupt) as e:
        signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
        what = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
        print(f"modistill {args.command}: {what}; finished work is kept, rerun to resume", file=sys.stderr)
        return 128 + signum
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())

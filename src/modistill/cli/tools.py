"""Helper sub-commands: ``config list`` / ``show`` / ``reference`` (the bundled configs, what a config resolves
to, and every key) and
``completion`` (a shell completion script generated from the parser)."""

from __future__ import annotations

import argparse
import sys

SHELLS = ("bash", "zsh", "tcsh")


def cmd_config(a: argparse.Namespace) -> None:
    from modistill.config import dump_config, load_config, reference_markdown, resolve_config_path
    from modistill.errors import UserError

    if a.action in ("reference", "list"):
        if a.target is not None or a.overrides:
            raise UserError(f"config {a.action} takes no config or overrides")
        print(reference_markdown() if a.action == "reference" else _config_list(), end="")
        return
    if a.target is None:
        raise UserError("config show needs a config: a YAML path or a bundled name (e.g. demo)")
    sys.stdout.write(dump_config(load_config(resolve_config_path(a.target), a.overrides)))


def _config_list() -> str:
    """Each bundled config's name and the first line of its own description (its leading comment)."""
    from modistill.config import CONFIG_DIR, bundled_configs

    rows = []
    for name in bundled_configs():
        first = next((ln for ln in (CONFIG_DIR / f"{name}.yaml").read_text().splitlines() if ln.startswith("#")), "")
        rows.append(f"{name:<24} {first.lstrip('# ').strip()}")
    return "\n".join(rows) + "\n"


def cmd_completion(a: argparse.Namespace) -> None:
    import shtab

    from modistill.cli import build_parser

    print(shtab.complete(build_parser(), shell=a.shell))


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser(
        "config",
        help="list the bundled configs (list), print a resolved config (show) or the reference of every key "
        "(reference)",
        epilog="e.g. modistill config list; modistill config show demo train.epochs=3",
    )
    c.add_argument(
        "action",
        choices=["list", "show", "reference"],
        help="list: the bundled configs, each with its first line; show: the config after its file and the "
        "overrides, validated, as YAML; reference: every key with its default, kind, allowed values and meaning "
        "(Markdown)",
    )
    c.add_argument(
        "target", nargs="?", default=None, metavar="CONFIG", help="YAML config path or bundled config name (show only)"
    )
    c.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.epochs=3")
    c.set_defaults(func=cmd_config)

    s = sub.add_parser(
        "completion",
        help="print a shell completion script",
        epilog='e.g. bash: eval "$(modistill completion bash)"; zsh: modistill completion zsh > '
        '"${fpath[1]}/_modistill"',
    )
    s.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    s.set_defaults(func=cmd_completion)

"""MkDocs hooks: the home page is the README (its links to docs/ made relative to the site, its links to other
files of the repository left as text), and the command-line page is every sub-command's --help, so that neither
can drift from its source."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _cli_help() -> str:
    from modistill.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parts = ["## modistill", "", "```text", parser.format_help().rstrip(), "```", ""]
    for name, p in sub.choices.items():
        parts += [f"## modistill {name}", "", "```text", p.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if "{{ README }}" in markdown:
        readme = (ROOT / "README.md").read_text().replace("](docs/", "](")
        readme = re.sub(r"\[([^\]]+)\]\((?!https?:|#)([^)]+\.(?:cff|txt|toml)|LICENSE|Makefile)\)", r"\1", readme)
        markdown = markdown.replace("{{ README }}", readme)
    if "{{ CLI }}" in markdown:
        markdown = markdown.replace("{{ CLI }}", _cli_help())
    return markdown

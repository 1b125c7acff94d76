"""The config reference page (docs/config.md), generated from the schema so that it cannot drift from the code."""

from __future__ import annotations

from typing import Any

import yaml

from modistill.config.fields import ROLE_WORDS, allowed
from modistill.config.schema import SCHEMA


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def reference_markdown() -> str:
    """The config reference (docs/config.md), one table per section, generated from :data:`SCHEMA` so that it
    cannot drift from the code; a test compares the committed file with this."""
    lines = [
        "# Config reference",
        "",
        "Every key a config file or a `key=value` override can set. Generated from the schema in "
        "`src/modistill/config/schema.py` by `modistill config reference`; a test keeps this page equal to it. A rerun "
        "reuses a finished step only when no key that step depends on changed (the fifth column); otherwise it "
        "refuses, naming the keys, until `--retrain-from` names the step.",
        "Unknown keys, values of the wrong kind and values out of range are refused in one line before "
        "anything is written. `modistill config show NAME [overrides]` prints a resolved config.",
        "",
    ]
    sections: dict[str, list[str]] = {}
    for key in SCHEMA:
        sections.setdefault(key.split(".")[0] if "." in key else "top level", []).append(key)
    for section, keys in sections.items():
        lines += [
            f"## {section}",
            "",
            "| key | default | kind | allowed | finished steps it invalidates | what it does |",
            "|---|---|---|---|---|---|",
        ]
        for key in keys:
            f = SCHEMA[key]
            kind = f.kind + (", or null" if f.nullable else "")
            cells = [f"`{key}`", f"`{_shown(f.default)}`", kind, allowed(f), ROLE_WORDS[f.role], f.help]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)

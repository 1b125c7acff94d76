"""The README and the docs site against the code: every `modistill ...` command they show parses with the real
parser, every dotted config key they name exists in the schema, and every page the README links to exists. A
renamed flag or key breaks this test before it breaks a reader."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from modistill.cli import build_parser, parse_command_line
from modistill.config import SCHEMA

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SECTIONS = {k.split(".")[0] for k in SCHEMA if "." in k}
FILE_SUFFIXES = {"onnx", "safetensors", "json", "yaml", "md", "py", "pt", "pth", "csv", "png", "txt", "ckpt", "db"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
KEY = re.compile(r"\b([a-z_]+)\.([a-z_][a-z0-9_]*)\b")


def _normalise(words: list[str]) -> list[str]:
    """A usage line in prose: ``[--opt X]`` is taken as given, ``a|b`` as its first choice, ``...`` dropped."""
    out = []
    for w in words:
        w = w.strip("[]")
        if w in ("", "...", "…"):
            continue
        out.append(w.split("|")[0] if "|" in w and not w.startswith(("'", '"')) else w)
    return out


def _command_lines(text: str) -> list[tuple[str, bool]]:
    """Shell lines of the page's bash blocks (continuations joined), whole commands; and inline spans that start
    with modistill, which may be fragments of one (``modistill prepare ntu --root NTU_ROOT``)."""
    lines = []
    for lang, body in FENCE.findall(text):
        if lang in ("bash", "sh", "shell", "console"):
            lines += [(ln, True) for ln in body.replace("\\\n", " ").splitlines() if "modistill" in ln]
    lines += [(m, False) for m in INLINE.findall(FENCE.sub("", text)) if m.startswith("modistill ")]
    return lines


def _modistill_args(line: str) -> list[str] | None:
    """The arguments after the modistill program in a shell line (`modistill`, `.venv/bin/modistill`, `python -m
    modistill`, behind srun or torchrun); None when the line does not run it."""
    words = shlex.split(line, comments=True)
    for i, w in enumerate(words):
        if w == "modistill" and i > 0 and words[i - 1] == "-m" or w.endswith("/modistill") or w == "modistill":
            if i > 0 and words[i - 1] in ("import", "pip", "from"):
                return None
            return _normalise(words[i + 1 :])
    return None


def _examples() -> list[tuple[str, str, bool]]:
    return [
        (f"{p.relative_to(ROOT)}: {ln.strip()}", ln, whole)
        for p in PAGES
        for ln, whole in _command_lines(p.read_text())
    ]


EXAMPLES = _examples()


def test_the_pages_show_commands():
    assert sum(whole for *_, whole in EXAMPLES) > 40  # a broken pattern would pass every case vacuously
    assert any("README.md: modistill prepare ntu" in e for e, *_ in EXAMPLES)


def _subparser(args: list[str]):
    """The parser of the sub-command that ``args`` name, and the arguments after its name."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert args and args[0] in sub.choices, f"no sub-command {args[:1]}"
    return sub.choices[args[0]], args[1:]


@pytest.mark.parametrize("where, line, whole", EXAMPLES, ids=[e for e, *_ in EXAMPLES])
def test_every_documented_command_parses(where, line, whole, capsys):
    """A command in a code block parses whole; a fragment in prose names a sub-command and options it has."""
    args = _modistill_args(line)
    if args is None or not args or args[0].startswith("-"):
        if args:
            build_parser().parse_known_args(args[:1]) if args[0] not in ("--help", "-h", "--version") else None
        return
    if not whole:
        sub, rest = _subparser(args)
        options = set(sub._option_string_actions)
        unknown = [w.split("=", 1)[0] for w in rest if w.startswith("-") and w.split("=", 1)[0] not in options]
        assert not unknown, f"{where}: modistill {args[0]} has no option {unknown}"
        keys = [w.split("=", 1)[0] for w in rest if "=" in w and not w.startswith("-")]
        assert all(k in SCHEMA for k in keys), f"{where}: not config keys: {[k for k in keys if k not in SCHEMA]}"
        return
    try:
        ns = parse_command_line(build_parser(), args)
    except SystemExit as e:  # --help and --version exit 0 after printing
        if e.code != 0:
            pytest.fail(f"{where}\n{capsys.readouterr().err.strip()[-300:]} (exit {e.code})")
        return
    for item in getattr(ns, "overrides", None) or []:
        key = item.split("=", 1)[0]
        assert "=" in item and key in SCHEMA, f"{where}: {item!r} is not a config override of a schema key"


def _keys_named(text: str) -> set[str]:
    keys = set()
    for span in INLINE.findall(text) + [ln for _, body in FENCE.findall(text) for ln in body.splitlines()]:
        if span.startswith("unknown config key"):  # the error message for a mistyped key, quoted on purpose
            continue
        for section, name in KEY.findall(span):
            if section in SECTIONS and name not in FILE_SUFFIXES:
                keys.add(f"{section}.{name}")
    return keys


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_config_key_the_docs_name_exists(page):
    unknown = sorted(k for k in _keys_named(page.read_text()) if k not in SCHEMA)
    assert not unknown, f"{page.relative_to(ROOT)} names config keys the schema does not have: {unknown}"


def test_the_readme_links_to_pages_that_exist():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(((?:docs/)?[\w./-]+\.(?:md|png))(?:#[\w-]+)?\)", text)
    assert links and all((ROOT / link).exists() for link in links), [x for x in links if not (ROOT / x).exists()]


def test_a_renamed_flag_or_key_is_caught():
    """The checks above can fail: a mutated example does not parse, a mutated key is not in the schema."""
    line = "modistill predict clip.mp4 --model model.onnx --top-k 5"
    with pytest.raises(SystemExit):
        build_parser().parse_args(_modistill_args(line))
    assert "train.epoch" not in SCHEMA and _keys_named("set `train.epoch=3`") == {"train.epoch"}

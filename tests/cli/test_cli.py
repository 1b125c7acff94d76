"""The command line: fast to start, every option's help and default shown once, `config show` / `reference`,
suggestions for mistyped keys, and shell completion."""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from modistill.cli import build_parser, main
from modistill.config import SCHEMA, allowed, reference_markdown

DOCS = Path(__file__).parents[2] / "docs"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_building_the_parser_imports_no_heavy_library():
    """--help, --version and completion must not pay for torch (seconds) or NumPy/OpenCV."""
    code = (
        "import sys; from modistill.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'torchvision', 'numpy', 'cv2', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_option_has_help_and_shows_its_real_default_once():
    parsers = {"modistill": build_parser()} | _subparsers(build_parser())
    for name, parser in parsers.items():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"{name} {action.dest} has no help"
        text = parser.format_help()
        assert "(default: None)" not in text, name
        flat = " ".join(text.split())
        for action in parser._actions:
            if action.help and action.option_strings:
                shown = parser.formatter_class(name)._get_help_string(action)
                assert shown.lower().count("default") <= 1, f"{name} {action.dest}: {shown}"
                if action.required:
                    assert "default" not in shown, f"{name} {action.dest}: required yet shows a default"
        assert "(default: %" not in flat
    synth = _subparsers(build_parser())["synth"].format_help()
    assert "(default: 384x216)" in " ".join(synth.split())
    prepare = " ".join(_subparsers(build_parser())["prepare"].format_help().split())
    assert "parallel decoding processes (default:" in prepare


def test_config_show_prints_the_resolved_config(capsys):
    assert main(["config", "show", "demo", "train.epochs=3", "seed=9"]) == 0
    import yaml

    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["train"]["epochs"] == 3 and shown["seed"] == 9 and shown["model"]["arch"] == "resnet18"
    assert shown["train"]["loggers"] == SCHEMA["train.loggers"].default  # defaults filled in


def test_unknown_key_suggests_the_closest(capsys):
    assert main(["config", "show", "demo", "train.epoch=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'train.epoch'; did you mean 'train.epochs'" in err and len(err.splitlines()) == 1


def test_every_schema_key_is_described_and_the_reference_is_current(capsys, monkeypatch):
    from modistill.models import backbone

    # The committed reference documents the built-in backbones; another test registers a toy one from its module.
    builtin = {k: v for k, v in backbone._REGISTRY.items() if v.__module__.startswith("modistill.")}
    monkeypatch.setattr(backbone, "_REGISTRY", builtin)
    assert [k for k, f in SCHEMA.items() if len(f.help) < 10] == []
    assert all(allowed(f) for f in SCHEMA.values())
    assert main(["config", "reference"]) == 0
    assert capsys.readouterr().out == reference_markdown()
    committed = (DOCS / "config.md").read_text()
    assert committed == reference_markdown(), "docs/config.md is stale: modistill config reference > docs/config.md"
    for key in SCHEMA:
        assert f"| `{key}` |" in committed


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script_lists_the_commands(shell, capsys):
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for command in ("train", "prepare", "export", "predict", "config"):
        assert command in script
    assert "--run-dir" in script


def test_packaging_declares_posix_and_ships_type_information():
    import tomllib

    root = Path(__file__).parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert "Operating System :: POSIX" in project["project"]["classifiers"]
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["modistill"]
    assert (root / "src" / "modistill" / "py.typed").is_file()
    floors = subprocess.run(
        [sys.executable, str(root / ".ci" / "floor_constraints.py")], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "huggingface_hub==0.25.*" in floors  # huggingface_hub.errors, imported by pretrained.py and hub.py
    assert not any(f.startswith(("torch==", "torchvision==")) for f in floors)


def test_overrides_may_follow_options_and_anything_else_is_refused(capsys):
    from modistill.cli import build_parser, parse_command_line

    args = parse_command_line(build_parser(), ["train", "demo", "data.workers=0", "--run-dir", "r", "train.lr=1e-4"])
    assert args.overrides == ["data.workers=0", "train.lr=1e-4"] and str(args.run_dir) == "r"
    for extra in (["--bogus"], ["stray"]):
        with pytest.raises(SystemExit) as e:
            parse_command_line(build_parser(), ["train", "demo", "--run-dir", "r", *extra])
        assert e.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a command without overrides takes none
        parse_command_line(build_parser(), ["export", "run", "--out", "m.onnx", "train.lr=1"])


def test_config_list_names_every_bundled_config_with_its_first_line(capsys):
    from modistill.config import CONFIG_DIR, bundled_configs

    assert main(["config", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == bundled_configs()
    first = (CONFIG_DIR / "ntu60_xsub.yaml").read_text().splitlines()[0].lstrip("# ")
    assert any(ln.startswith("ntu60_xsub ") and ln.endswith(first) for ln in lines)
    assert main(["config", "list", "demo"]) == 2  # takes no config

"""The privileged modality's choices, in the config and on the command line, are the modality registry's."""

from __future__ import annotations

import subprocess
import sys

import pytest

from modistill.config import CONFIG_DIR, load_config
from modistill.data import modalities
from modistill.errors import UserError


def _privileged(value: str) -> str:
    noise = [] if value == "depth" else ["evaluate.noise_on=encoded"]  # millimetres exist for depth only
    cfg = load_config(CONFIG_DIR / "demo.yaml", ["data.cache=/nowhere", f"model.privileged={value}", *noise])
    return cfg["model"]["privileged"]


def test_the_config_accepts_what_the_registry_registers(monkeypatch):
    assert all(_privileged(m) == m for m in modalities.PRIVILEGED)
    with pytest.raises(UserError, match="model.privileged"):
        _privileged("thermal")
    monkeypatch.setattr(modalities, "PRIVILEGED", (*modalities.PRIVILEGED, "thermal"))
    assert _privileged("thermal") == "thermal"


def test_the_demos_choices_are_the_registrys(monkeypatch):
    from modistill.cli import build_parser

    def choices() -> tuple:
        demo = build_parser()._subparsers._group_actions[0].choices["demo"]  # type: ignore[union-attr]
        (action,) = [a for a in demo._actions if a.dest == "privileged"]
        return tuple(action.choices)

    assert choices() == modalities.PRIVILEGED == ("depth", "pose")
    monkeypatch.setattr(modalities, "PRIVILEGED", (*modalities.PRIVILEGED, "thermal"))
    assert choices() == ("depth", "pose", "thermal")


def test_the_registry_imports_no_numpy():
    """The parser reads it for --help, which must stay instant."""
    code = "import sys, modistill.data.modalities; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

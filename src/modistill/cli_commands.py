"""Sub-commands beyond ``synth`` (prepare, train, evaluate, demo, ...), registered on the main parser."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the pipeline sub-commands; each imports its heavy dependencies lazily."""

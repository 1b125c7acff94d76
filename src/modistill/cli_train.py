"""Training-side sub-commands (registered once the training package exists)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add train/evaluate/demo sub-commands."""

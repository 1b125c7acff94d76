"""Plugins: modules other packages declare in an entry-point group, imported when a registry is first read."""

from __future__ import annotations

from importlib.metadata import entry_points

from modistill.errors import UserError


def load_entry_points(group: str, what: str) -> None:
    """Import every module declared in ``group``; a plugin that fails to import is one line naming it (``what``:
    the kind of plugin, for that line) instead of a traceback in every command."""
    for ep in entry_points(group=group):
        try:
            ep.load()
        except Exception as e:
            raise UserError(f"{what} plugin {ep.name} ({ep.value}) failed to load: {e}") from None

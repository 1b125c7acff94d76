"""Rules of the code's shape that reviews would otherwise have to remember: no import cycle between modistill's
modules, no function over 80 lines, tests laid out like ``src/`` and sharing helpers instead of importing each
other."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parents[1] / "src" / "modistill"
TESTS = Path(__file__).parent
HELPERS = {"helpers", "colour_model", "crashy", "faultkit", "plugins"}  # shared by tests, never tests themselves


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_time_imports(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    """The modistill modules a module imports when it is imported: its top-level imports, outside
    ``if TYPE_CHECKING:`` blocks (imports inside functions run later, when called)."""
    out: set[str] = set()
    base = name if is_package else name.rpartition(".")[0]
    for node in tree.body:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                mod = ".".join(base.split(".")[: len(base.split(".")) - node.level + 1] + ([mod] if mod else []))
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return {m for m in out if m.startswith("modistill")}


def test_no_import_cycle_between_modistill_modules():
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        name = _module_name(path)
        graph[name] = _import_time_imports(ast.parse(path.read_text()), name, path.name == "__init__.py")
    graph = {k: {m for m in v if m in graph and m != k} for k, v in graph.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1 and not nxt.startswith(node + ".") and not node.startswith(nxt + "."):
                cycles.append(stack[stack.index(nxt) :] + [nxt])  # a package importing its own parts is not one
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                if node.end_lineno - node.lineno + 1 > 80:
                    long.append(f"{path.relative_to(SRC)}::{node.name}")
    assert long == []


def test_tests_mirror_src_and_no_test_module_imports_another():
    folders = {p.name for p in SRC.iterdir() if p.is_dir() and not p.name.startswith("_")}
    for path in TESTS.rglob("test_*.py"):
        where = path.parent.relative_to(TESTS).parts
        assert not where or where[0] in folders | {"faults"}, f"{path}: no src/modistill/{where[0]} to mirror"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                top = node.module.split(".")[0]
                assert not top.startswith("test_") and top != "conftest", f"{path} imports {node.module}"
            if isinstance(node, ast.Import):
                for a in node.names:
                    assert not a.name.split(".")[0].startswith("test_"), f"{path} imports {a.name}"
    shared = {p.stem for p in TESTS.rglob("*.py") if not p.stem.startswith(("test_", "conftest", "__init__"))}
    assert shared - {"make_2d_reference"} <= HELPERS | {"toy_backbone", "depth_edges"}

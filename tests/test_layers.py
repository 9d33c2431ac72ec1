"""The package's shape (DESIGN.md, layers): every import points down, there is no cycle, and the CLI talks to
the API only. Imports inside functions count; `if TYPE_CHECKING:` imports (annotations only) do not."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cnnlab"

# Rows from the bottom up; a module may import modules of lower rows only (and of its own package).
LAYERS: list[tuple[str, ...]] = [
    ("errors", "_version", "log"),
    ("io", "registry", "options", "parent", "html"),
    ("config",),
    ("data", "models", "optim"),
    ("evaluate",),
    ("train",),
    ("runs",),
    ("experiments",),
    ("viz",),
    ("explain",),
    ("api",),
    ("cli",),
    ("_entry",),
    ("__init__", "__main__"),
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def unit(module: str) -> str:
    """'cnnlab.train.trainer' -> 'train': the package (or top-level module) a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1] if len(parts) > 1 else parts
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[str, int]]:
    """(imported cnnlab module, line) for every import in the file, nested ones included, except those
    under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for child in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("cnnlab")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("cnnlab"):
                if not node.module and node.level:  # `from . import x`: x is a module of the package
                    found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
                else:
                    found.append((target, node.lineno))
    return found


def all_imports() -> dict[str, list[tuple[str, int]]]:
    return {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_package_is_placed_in_a_layer() -> None:
    units = {unit(module) for module in all_imports()}
    assert units <= set(RANK), f"place these in LAYERS: {sorted(units - set(RANK))}"


def test_imports_only_point_down() -> None:
    upward = []
    for module, imports in all_imports().items():
        for target, line in imports:
            source, destination = unit(module), unit(target)
            if source != destination and RANK[destination] >= RANK[source]:
                upward.append(f"{module}:{line} imports {target} ({source} is not above {destination})")
    assert not upward, "\n".join(upward)


def test_no_import_cycles_between_files() -> None:
    graph = {module: {target for target, _ in imports} for module, imports in all_imports().items()}
    modules = set(graph)
    # an import of a package means its __init__ module; of a name inside a module, that module
    graph = {m: {t if t in modules else t.rpartition(".")[0] for t in targets} & modules - {m}
             for m, targets in graph.items()}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "\n".join(cycles)


def test_the_cli_talks_to_the_api_only() -> None:
    """The command line parses, calls `cnnlab.api`, and formats: nothing below the API."""
    allowed = {"api", "cli", "errors", "io", "_version"}
    reached = [f"{module}:{line} imports {target}" for module, imports in all_imports().items()
               if unit(module) == "cli" for target, line in imports if unit(target) not in allowed]
    assert not reached, "\n".join(reached)


def test_the_checker_sees_nested_and_relative_imports(tmp_path: Path, monkeypatch) -> None:
    """The walker itself, on a sample module: a function-level relative import is found, a TYPE_CHECKING one
    is not."""
    sample = tmp_path / "cnnlab" / "train" / "sample.py"
    sample.parent.mkdir(parents=True)
    sample.write_text("from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from .trainer import Trainer\n\n\n"
                      "def save() -> None:\n    from ..io import atomic_write\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "cnnlab")
    found = dict(imports_of(sample))
    assert "cnnlab.io" in found and "cnnlab.train.trainer" not in found

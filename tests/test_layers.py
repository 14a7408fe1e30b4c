"""Imports point only down: a package may import its own layer's modules and the layers below.

Bottom to top: `city` (what every component knows about the city and its deployment), then
`schemas`, `sinks`, `streams`, the two clients of the pipeline (`simulator`, `dashboards`), the
CLI (`vtops`), and the harnesses (`benchmarks`, `tests`). Packages that share a layer do not
import each other. Every import counts: inside functions and under `if TYPE_CHECKING` too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS: tuple[tuple[str, ...], ...] = (
    ("city",),
    ("schemas",),
    ("sinks",),
    ("streams",),
    ("simulator", "dashboards"),
    ("vtops",),
    ("benchmarks", "tests"),
)
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}


def imported_modules(source: str) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import in `source`, wherever it stands."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def wrong_imports(importer: str, label: str, source: str) -> list[str]:
    """One line per import of `importer`'s module `label` that points up or sideways."""
    found = []
    for line, module in sorted(imported_modules(source)):
        imported = module.partition(".")[0]
        if imported == importer or imported not in RANK:
            continue
        if RANK[imported] >= RANK[importer]:
            way = "up" if RANK[imported] > RANK[importer] else "sideways"
            found.append(f"{label}:{line}: {importer} imports {module} ({way})")
    return found


def test_imports_point_only_down() -> None:
    found: list[str] = []
    for package in RANK:
        files = sorted((ROOT / package).rglob("*.py"))
        if not files:
            found.append(f"{package}/: no Python files (a layer that is not walked)")
        for path in files:
            label = str(path.relative_to(ROOT))
            found += wrong_imports(package, label, path.read_text(encoding="utf-8"))
    assert not found, "imports that do not point down:\n" + "\n".join(found)


def test_upward_imports_are_found_inside_functions_and_type_checking() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import city.clock\n"
        "if TYPE_CHECKING:\n"
        "    from vtops.settings import Settings\n"
        "def build() -> None:\n"
        "    import vtops.cli.main\n"
        "    from dashboards import build\n"
    )
    assert wrong_imports("simulator", "simulator/x.py", source) == [
        "simulator/x.py:4: simulator imports vtops.settings (up)",
        "simulator/x.py:6: simulator imports vtops.cli.main (up)",
        "simulator/x.py:7: simulator imports dashboards (sideways)",
    ]

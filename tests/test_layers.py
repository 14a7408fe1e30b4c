"""Imports point only down: a package may import its own layer's modules and the layers below.

Bottom to top: `city` (what every component knows about the city and its deployment), then
`schemas`, `sinks`, `streams`, the two clients of the pipeline (`simulator`, `dashboards`), the
CLI (`vtops`), and the harnesses (`benchmarks`, `tests`). Packages that share a layer do not
import each other. Every import counts: inside functions and under `if TYPE_CHECKING` too.

The same holds between the rooms inside `streams/` (the engine, below the domain streams, below
the app that wires them) and inside `vtops/` (what an operator asks for, below the thin CLI
commands). A room is a package's sub-package or module; each one is placed in a layer.
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

ROOM_LAYERS: dict[str, tuple[tuple[str, ...], ...]] = {
    "streams": (
        ("settings",),
        ("engine",),
        ("traffic", "payments", "portal", "health"),
        ("app",),
    ),
    "vtops": (
        ("settings", "local_process", "log_format"),
        ("clickhouse", "kafka", "settings_docs"),
        (
            "replay",
            "report",
            "baselines",
            "incidents",
            "indicators",
            "demo_processes",
            "demo_summary",
        ),
        ("cli",),
        ("__main__",),
    ),
}
ROOM_RANK = {
    package: {room: rank for rank, rooms in enumerate(layers) for room in rooms}
    for package, layers in ROOM_LAYERS.items()
}


def imported_modules(source: str) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import in `source`, wherever it stands."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def direction(rank: dict[str, int], importer: str, imported: str) -> str | None:
    """'up' or 'sideways' where `importer` may not import `imported`; None where it may."""
    if rank[imported] > rank[importer]:
        return "up"
    if rank[imported] == rank[importer]:
        return "sideways"
    return None


def wrong_imports(importer: str, label: str, source: str) -> list[str]:
    """One line per import of `importer`'s module `label` that points up or sideways.

    `label` is the module's path from the root (`streams/engine/x.py`): it names the room the
    module stands in, for imports within its own package.
    """
    rooms = ROOM_RANK.get(importer)
    parts = Path(label).with_suffix("").parts
    room = parts[1] if rooms is not None and len(parts) > 1 else None
    found = []
    for line, module in sorted(imported_modules(source)):
        names = module.split(".")
        imported = names[0]
        if imported != importer:
            way = direction(RANK, importer, imported) if imported in RANK else None
            what = importer
        elif rooms is not None and room is not None and len(names) > 1 and names[1] != room:
            way = room_direction(rooms, room, names[1])
            what = f"{importer}.{room}"
        else:
            continue
        if way is not None:
            found.append(f"{label}:{line}: {what} imports {module} ({way})")
    return found


def room_direction(rooms: dict[str, int], importer: str, imported: str) -> str | None:
    if importer == "__init__" or imported == "__init__":
        return None
    if importer not in rooms:
        return f"{importer} is in no layer"
    if imported not in rooms:
        return f"{imported} is in no layer"
    return direction(rooms, importer, imported)


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


def test_rooms_inside_a_package_import_only_down() -> None:
    """The engine knows no domain stream, and replay logic no command: the loop that once ran
    engine -> streams/definition.py -> engine is found whichever way it is placed."""
    engine = "from streams.payments import PAYMENTS\nfrom streams.engine.windows import Window\n"
    assert wrong_imports("streams", "streams/engine/x.py", engine) == [
        "streams/engine/x.py:1: streams.engine imports streams.payments (up)",
    ]
    loop = "from streams.definition import Records\n"
    assert wrong_imports("streams", "streams/engine/x.py", loop) == [
        "streams/engine/x.py:1: streams.engine imports streams.definition"
        " (definition is in no layer)",
    ]
    replay = "from vtops.cli.output import print_table\nfrom vtops.kafka import admin\n"
    assert wrong_imports("vtops", "vtops/replay/x.py", replay) == [
        "vtops/replay/x.py:1: vtops.replay imports vtops.cli.output (up)",
    ]
    payments = "import streams.portal\n"
    assert wrong_imports("streams", "streams/payments.py", payments) == [
        "streams/payments.py:1: streams.payments imports streams.portal (sideways)",
    ]

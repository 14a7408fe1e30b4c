"""What the package imports is what it declares, and the locks pin every declared dependency."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PACKAGES = ("city", "vtops", "streams", "schemas", "sinks", "dashboards", "simulator")
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)")


def _requirements(names: list[str]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, names)}


def _imported_top_modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in (*PACKAGES, "__future__"):
                        yield top, path


def _pins(lock: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / lock).read_text().splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_every_imported_distribution_is_a_declared_dependency() -> None:
    declared = set(_requirements(PROJECT["dependencies"]))
    providers = packages_distributions()
    undeclared = sorted(
        f"{top} ({path.relative_to(ROOT)})"
        for top, path in _imported_top_modules()
        if not {canonicalize_name(d) for d in providers.get(top, [top])} & declared
    )
    assert undeclared == []


def test_the_locks_pin_every_dependency_at_a_version_it_allows() -> None:
    runtime = _requirements(PROJECT["dependencies"])
    dev = {**runtime, **_requirements(PROJECT["optional-dependencies"]["dev"])}
    for lock, wanted in (("requirements.lock", runtime), ("requirements-dev.lock", dev)):
        pins = _pins(lock)
        missing = sorted(name for name in wanted if name not in pins)
        assert missing == [], f"{lock} lacks {missing}: run `make lock`"
        outside = sorted(
            f"{name}=={pins[name]} (wants {req.specifier})"
            for name, req in wanted.items()
            if not req.specifier.contains(pins[name], prereleases=True)
        )
        assert outside == [], f"{lock}: run `make lock`"
    runtime_pins, dev_pins = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert {n: v for n, v in dev_pins.items() if n in runtime_pins} == runtime_pins

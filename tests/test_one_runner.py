"""One way to run the stages: only the runner (streams/engine/runner.py) folds a stage.

The live worker and the offline tools (`vtops reprocess`, `vtops offsets reset`'s rebuild) once
each sliced, routed and folded batches their own way; now they feed the runner. This scan of
`streams/` and `vtops/` finds any other call of a stage's `fold(partition, records)`. A domain
stream's `fold(state, event, window, records)` (streams/engine/definition.py), which the window
stage calls per event, is told apart by its four arguments: the test checks both signatures, so
that the rule follows them if they change.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from pathlib import Path

from streams.engine.checkpoint import Stage
from streams.engine.definition import DomainStream

ROOT = Path(__file__).resolve().parents[1]
RUNNER = "streams/engine/runner.py"
SCANNED = ("streams", "vtops")

STAGE_FOLD_ARGUMENTS = 2  # partition, records
STREAM_FOLD_ARGUMENTS = 4  # state, event, window, records


def stage_folds(label: str, source: str) -> list[str]:
    """One line per call in `source` that folds a stage: `.fold(` with a stage's arguments."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "fold"
            and len(node.args) + len(node.keywords) != STREAM_FOLD_ARGUMENTS
        ):
            found.append(f"{label}:{node.lineno}: {ast.unparse(node.func)}(...)")
    return found


def test_only_the_runner_folds_a_stage() -> None:
    outside: list[str] = []
    in_runner: list[str] = []
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            label = str(path.relative_to(ROOT))
            folds = stage_folds(label, path.read_text(encoding="utf-8"))
            (in_runner if label == RUNNER else outside).extend(folds)
    assert not outside, "stages folded outside the runner:\n" + "\n".join(outside)
    assert len(in_runner) == 2, in_runner  # a batch, and a live poll's slices: the scan sees


def test_the_scan_tells_a_stage_fold_from_a_stream_fold() -> None:
    source = (
        "stage.fold(tp.partition, records)\n"
        "self._stages[topic].fold(partition=0, records=[])\n"
        "stream.fold(state, event, window, records)\n"
    )
    assert stage_folds("x.py", source) == [
        "x.py:1: stage.fold(...)",
        "x.py:2: self._stages[topic].fold(...)",
    ]


def test_the_two_folds_keep_the_arguments_the_scan_counts() -> None:
    def arguments(fold: Callable[..., object]) -> int:
        return len(inspect.signature(fold).parameters) - 1  # but self

    assert arguments(Stage.fold) == STAGE_FOLD_ARGUMENTS
    assert arguments(DomainStream.fold) == STREAM_FOLD_ARGUMENTS

"""How long the fuzzer runs: a few examples in the suite, many with `make fuzz`."""

from __future__ import annotations

import os

# Batches through the worker (tests/fuzz/test_worker.py); the in-process test draws 15 single
# messages per batch. `make fuzz` sets VTOPS_FUZZ_EXAMPLES.
EXAMPLES = int(os.environ.get("VTOPS_FUZZ_EXAMPLES", "12"))

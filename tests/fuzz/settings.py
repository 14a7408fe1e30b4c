"""How long the fuzzer runs: a few examples in the suite, many with `make fuzz`."""

from __future__ import annotations

import os

# Batches through the worker (tests/fuzz/test_worker.py: about 0.6 s each and 6 messages on
# average, so the suite's 75 send some 350 messages in about 50 s); the in-process test draws
# 3 single messages per batch. `make fuzz` sets VTOPS_FUZZ_EXAMPLES.
EXAMPLES = int(os.environ.get("VTOPS_FUZZ_EXAMPLES", "75"))

"""Tail probabilities for the anomaly rules: how surprising a count is under its baseline."""

from __future__ import annotations

import math


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = (
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p
        + (n - i) * log_q
        for i in range(k, n + 1)
    )  # fmt: skip
    return min(sum(math.exp(t) for t in terms), 1.0)


def poisson_tail(k: int, mean: float) -> float:
    """P(X >= k) for X ~ Poisson(mean), summed from k up so that tiny tails stay exact."""
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    total, i = 0.0, k
    term = math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1))
    while term > total * 1e-12 and i < k + 10_000:
        total += term
        i += 1
        term *= mean / i
    return min(total, 1.0)

"""Accuracy with confidence intervals and token-cost statistics."""

from __future__ import annotations

import math
import statistics


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for k successes out of n (well-behaved at 0% and 100%)."""
    if n == 0:
        return 0.0, 0.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    # the interval always contains the estimate (float rounding can put it a hair outside at 0 or n)
    return (0.0 if k == 0 else min(lo, p)), (1.0 if k == n else max(hi, p))


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]); 0.0 for an empty list."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(correct: list[bool], tokens: list[int], truncated: list[float], seconds: float) -> dict:
    """A row's figures; ``truncated`` is per problem, the share of its completions that hit the cap."""
    n = len(correct)
    k = sum(correct)
    lo, hi = wilson_interval(k, n)
    total_tokens = sum(tokens)
    return {
        "n": n,
        "correct": k,
        "accuracy": k / n if n else 0.0,
        "ci_low": lo,
        "ci_high": hi,
        "mean_tokens": total_tokens / n if n else 0.0,
        "median_tokens": statistics.median(tokens) if tokens else 0.0,
        "p95_tokens": percentile([float(t) for t in tokens], 95),
        "truncation_rate": sum(truncated) / n if n else 0.0,
        "seconds_per_problem": seconds / n if n else 0.0,
        "tokens_per_second": total_tokens / seconds if seconds > 0 else 0.0,
    }

"""Accuracy with confidence intervals and token-cost statistics; intervals across seeds (Student's t)."""

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


#: the 0.975 quantile of Student's t with df = 1..30 degrees of freedom (beyond 30: the normal 1.96)
T_975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788, 2.1604,
         2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555,
         2.0518, 2.0484, 2.0452, 2.0423)


def t_quantile_975(df: int) -> float:
    """t_{0.975, df}: the table above for df <= 30, 1.96 beyond (the t interval is then the normal one)."""
    if df < 1:
        raise ValueError(f"a t interval needs at least one degree of freedom (df={df})")
    return T_975[df - 1] if df <= len(T_975) else 1.959964


def t_interval(values: list[float], lo: float = 0.0, hi: float = 1.0) -> tuple[float, float] | None:
    """95% interval of the mean of ``values`` (e.g. one accuracy per seed): mean +- t_{0.975, n-1} * sd / sqrt(n),
    sd the sample standard deviation (n - 1), clipped to [lo, hi]; None for fewer than two values."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    half = t_quantile_975(n - 1) * statistics.stdev(values) / math.sqrt(n)
    return max(lo, mean - half), min(hi, mean + half)


def is_seed_row(row: dict) -> bool:
    """A result row of one training seed (``seed: k``); aggregates (``seed: "all"``) and rows of models
    trained without seeds are not. Shared by evaluate (which writes the aggregates) and report."""
    s = row.get("seed")
    return isinstance(s, int) and not isinstance(s, bool)

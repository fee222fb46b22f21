"""Result statistics: the Wilson interval (sane at 0%, 50%, 100%, and containing its proportion),
percentiles and a row's summary."""

from __future__ import annotations

import math

import pytest

from thinkling.metrics import percentile, summarize, wilson_interval


def test_wilson_interval_sanity():
    z = 1.959964
    for n in (1, 10, 100, 1000):
        lo, hi = wilson_interval(0, n)
        assert lo == pytest.approx(0.0, abs=1e-12) and 0 < hi < 1
        assert hi == pytest.approx(z * z / (n + z * z), rel=1e-9)
        lo, hi = wilson_interval(n, n)
        assert hi == pytest.approx(1.0, abs=1e-12) and 0 < lo < 1
        assert lo == pytest.approx(n / (n + z * z), rel=1e-9)
    for n in (2, 10, 100, 1000):
        lo, hi = wilson_interval(n // 2, n)
        assert lo + hi == pytest.approx(1.0, abs=1e-12)  # symmetric around 50%
        assert lo < 0.5 < hi
    lo, hi = wilson_interval(50, 100)
    assert (lo, hi) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))
    widths = [(lambda a, b: b - a)(*wilson_interval(n // 4, n)) for n in (8, 80, 800)]
    assert widths[0] > widths[1] > widths[2]
    assert wilson_interval(0, 0) == (0.0, 0.0)
    lo, hi = wilson_interval(3, 10)
    assert lo < 0.3 < hi


def test_wilson_interval_contains_the_observed_proportion():
    """BUG: at 0% and 100% the interval misses the point estimate by one float ulp, e.g.
    wilson_interval(10, 10) == (0.72..., 0.9999999999999999), so a row's ci_high < accuracy."""
    bad = [(k, n) for n in range(1, 101) for k in (0, n // 2, n)
           if not wilson_interval(k, n)[0] <= k / n <= wilson_interval(k, n)[1]]
    assert bad == []


def test_percentile_and_summarize():
    assert percentile([], 95) == 0.0
    assert percentile([5.0], 95) == 5.0
    assert percentile([float(x) for x in range(1, 101)], 95) == pytest.approx(95.05)
    assert percentile([1.0, 2.0], 50) == 1.5
    s = summarize([True, False, True, True], [10, 20, 30, 40], [False, False, False, True], seconds=2.0)
    assert s["n"] == 4 and s["correct"] == 3 and s["accuracy"] == 0.75
    assert s["mean_tokens"] == 25 and s["median_tokens"] == 25 and s["truncation_rate"] == 0.25
    assert s["seconds_per_problem"] == 0.5 and s["tokens_per_second"] == 50
    assert (s["ci_low"], s["ci_high"]) == wilson_interval(3, 4)
    empty = summarize([], [], [], 0.0)
    assert empty["n"] == 0 and empty["accuracy"] == 0.0 and not any(math.isnan(v) for v in empty.values())


def test_t_quantiles_match_scipy_and_fall_back_to_the_normal():
    from thinkling.metrics import T_975, t_quantile_975

    stats = pytest.importorskip("scipy.stats")  # only to check the table; thinkling does not depend on scipy
    for df in range(1, len(T_975) + 1):
        assert t_quantile_975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=6e-5)
    assert t_quantile_975(31) == t_quantile_975(500) == pytest.approx(1.96, abs=1e-3)
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_t_interval_by_hand():
    from thinkling.metrics import t_interval

    # three seeds at 50, 60, 70%: mean 0.6, sd 0.1, half-width t_{0.975,2} * 0.1 / sqrt(3) = 4.3027 * 0.057735
    lo, hi = t_interval([0.5, 0.6, 0.7])
    half = 4.3027 * 0.1 / math.sqrt(3)
    assert (lo, hi) == (pytest.approx(0.6 - half), pytest.approx(0.6 + half))
    # clipped to [0, 1]: 0.9, 1.0, 1.0 -> mean 0.9667, sd 0.0577, half 0.1434 -> high 1.11 clipped to 1.0
    lo, hi = t_interval([0.9, 1.0, 1.0])
    assert hi == 1.0 and lo == pytest.approx(29 / 30 - 4.3027 * math.sqrt(1 / 300) / math.sqrt(3))
    assert t_interval([0.5, 0.5]) == (0.5, 0.5)  # no spread, no width
    assert t_interval([0.5]) is None and t_interval([]) is None
    # a difference of accuracies: two seeds at -0.1 and -0.3, sd 0.1414, half 12.7062 * 0.1 = 1.27 -> [-1, 1]
    assert t_interval([-0.1, -0.3], -1.0, 1.0) == (-1.0, 1.0)
    lo, hi = t_interval([-0.1, -0.12, -0.14, -0.1], -1.0, 1.0)
    sd = math.sqrt(sum((x + 0.115) ** 2 for x in (-0.1, -0.12, -0.14, -0.1)) / 3)
    assert (lo, hi) == (pytest.approx(-0.115 - 3.1824 * sd / 2), pytest.approx(-0.115 + 3.1824 * sd / 2))

"""The wire side of the ``openai`` engine: Retry-After (seconds or an HTTP date), full-jitter backoff
under its cap, and the token bucket that takes and gives back."""

from __future__ import annotations

import random
import time
from email.utils import formatdate

import pytest

from thinkling.engines.openai_wire import TokenBucket, backoff_delay, parse_retry_after


def test_retry_after_in_seconds_or_http_date():
    assert parse_retry_after("3") == 3.0 and parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None and parse_retry_after("") is None
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("999999") == 900.0  # clipped: a run never stalls silently for a day
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 7, usegmt=True), now=now) == pytest.approx(7.0)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_backoff_is_full_jitter_under_the_cap():
    rng = random.Random(0)
    for k in range(12):
        d = [backoff_delay(k, 0.5, 8.0, rng) for _ in range(200)]
        hi = min(8.0, 0.5 * 2 ** k)
        assert all(0 <= x <= hi for x in d)
        assert max(d) > 0.7 * hi and min(d) < 0.3 * hi  # spread over the whole range, not a fixed delay


def test_token_bucket_takes_and_gives_back():
    import asyncio

    async def run():
        b = TokenBucket(600)  # 10 per second, starts full
        b.lock = asyncio.Lock()
        await b.take(600)
        assert b.level < 1
        b.correct(-300)  # the reply used 300 tokens fewer than reserved: they are given back
        t0 = time.monotonic()
        await b.take(290)
        assert time.monotonic() - t0 < 0.5
        b.correct(+1000)  # more than reserved: a debt the next requests wait out
        assert b.level < 0

    asyncio.run(run())

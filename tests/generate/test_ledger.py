"""``ledger.json``: one entry per run into a generate dir and totals, with the cost from the prices and
the reported usage."""

from __future__ import annotations

import pytest

from faultproxy import FaultProxy, stub_responder
from helpers.generate import ledger, lines, ocfg
from thinkling.generate.stage import generate


def test_stage_ledger_accumulates_runs_with_cost(tmp_path, captured):
    """The ledger keeps one entry per run and totals; cost follows the prices and the reported usage."""
    out = tmp_path / "g"
    with FaultProxy(responder=stub_responder()) as px:
        prices = {"price_prompt_per_mtok": 2.0, "price_completion_per_mtok": 10.0}
        m1 = generate(ocfg(out, px.base_url, n=3, max_tokens=64, **prices), console=captured.console)
        m2 = generate(ocfg(out, px.base_url, n=5, max_tokens=64, **prices), console=captured.console)
    traces = lines(out / "traces.jsonl")
    assert m1["counts"]["traces"] == 6 and m2["counts"]["traces"] == 10 and m2["counts"]["new_this_run"] == 4
    assert len(traces) == 10 and len({t["key"] for t in traces}) == 10
    assert all(t["answer"] == "42" and t["meta"]["max_tokens"] == 64 and t["meta"]["attempts"] == 1 for t in traces)
    led = ledger(out)
    assert [r["status"] for r in led["runs"]] == ["finished", "finished"]
    assert [r["requests"] for r in led["runs"]] == [6, 4] and led["totals"]["requests"] == 10
    p = sum(t["usage"]["prompt_tokens"] for t in traces)
    c = sum(t["usage"]["completion_tokens"] for t in traces)
    assert led["totals"]["prompt_tokens"] == p and led["totals"]["completion_tokens"] == c > 0
    assert led["totals"]["cost"] == pytest.approx((2 * p + 10 * c) / 1e6)
    assert "tok" in captured.text and "$" in captured.text

"""The call log: each request key is asked once, a re-run reads the log back (also rows older versions
wrote) and asks only what failed."""

from __future__ import annotations

import json

from thinkling.engines import Engine, Reply, Request
from thinkling.engines.log import LoggedEngine
from thinkling.format import format_assistant


class Counting(Engine):
    def __init__(self):
        self.asked: list[str] = []

    def generate(self, requests):
        self.asked += [r.key for r in requests]
        return [Reply(f"re {r.key}", answer=f"re {r.key}", completion_tokens=2) if r.key != "bad" else ValueError("no")
                for r in requests]


def test_logged_engine_asks_each_key_once_and_reads_older_logs(tmp_path):
    log = tmp_path / "calls.jsonl"
    # rows an earlier version wrote: eval's (text, n_tokens, truncated) and curate's (reasoning, answer, ...)
    log.write_text(json.dumps({"key": "e", "text": "<think>\nx</think>\n7", "n_tokens": 4, "truncated": True,
                               "seconds": 0.5}) + "\n"
                   + json.dumps({"key": "c", "reasoning": "r", "answer": "a", "finish_reason": "stop",
                                 "prompt_tokens": 3, "completion_tokens": 2}) + "\n" + '{"key": "to')
    built = []

    def make():
        built.append(Counting())
        return built[-1]

    with LoggedEngine(make, log) as eng:
        e, c = eng.generate([Request(key="e"), Request(key="c")])
        assert not built  # everything was in the log: no engine was built
        assert (e.text, e.completion_tokens, e.truncated, e.answer) == ("<think>\nx</think>\n7", 4, True, "7")
        assert (c.reasoning, c.answer, c.text, c.prompt_tokens) == ("r", "a", format_assistant("r", "a"), 3)
        new, bad, again = eng.generate([Request(key="n"), Request(key="bad"), Request(key="e")])
        assert new.text == "re n" and isinstance(bad, ValueError) and again.text == e.text
    assert built[0].asked == ["n", "bad"]
    with LoggedEngine(make, log) as eng:  # a re-run: the failure is asked again, the rest is read back
        eng.generate([Request(key="n"), Request(key="bad")])
    assert len(built) == 2 and built[1].asked == ["bad"]
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    assert [r["key"] for r in rows] == ["e", "c", "n"]  # the torn line was cut, the failure never logged

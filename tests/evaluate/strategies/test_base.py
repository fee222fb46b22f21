"""What every strategy shares: a model's own reasoning tags are stripped before the answer is extracted."""

from __future__ import annotations




def test_own_reasoning_tags_are_stripped_before_extraction():
    from thinkling.engines import Reply
    from thinkling.evaluate.strategies import Context
    from thinkling.tasks import get_task

    task = get_task("arithmetic")
    text = "<reasoning>the answer is 3, no wait</reasoning>\nThe answer is 5."
    ctx = Context(engine=None, task=task, max_tokens=8, think_tags=("<reasoning>", "</reasoning>"))
    assert ctx.score(Reply(text, completion_tokens=9), "5").correct
    s = ctx.score(Reply("<reasoning>so the answer is 5", completion_tokens=8, finish_reason="length"), "5")
    assert s.predicted is None and not s.correct           # still thinking when cut: no final answer
    plain = Context(engine=None, task=task, max_tokens=8)  # default tags: the whole text is the answer
    assert plain.score(Reply(text, completion_tokens=9), "5").predicted == "5"

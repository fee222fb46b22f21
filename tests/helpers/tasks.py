"""What the task tests share: the oracle styles, levels and option letters of the synthetic families,
a completion around a final answer, the real ``verify`` curation op run on reference traces, and the
question line of an evidence prompt."""

from __future__ import annotations

from pathlib import Path

from thinkling.records import Example

STYLES = ("long", "concise", "none")


LEVELS = (1, 2, 3, 4)
LETTERS = "ABCDE"


def _completion(final: str) -> str:
    return f"<think>\nLet me work it out: 2 + 3 = 5, and 17 more.\n</think>\n{final}"


def run_verify_op(task, examples: list[Example], tmp_path: Path):
    """The real `verify` curation op, as the curate stage calls it."""
    from thinkling.curate.ops import OpContext, get_op

    spec = get_op("verify")
    ctx = OpContext(task=task, problems={}, options=spec.options(), workdir=tmp_path)
    return spec.fn(examples, ctx)


def reference_examples(task, problems) -> list[Example]:
    out = []
    for p in problems:
        tr = task.reference_trace(p)
        assert tr is not None, p.id
        out.append(Example(id=p.id, problem_id=p.id, task=task.name, level=p.level, question=p.question,
                           reasoning=tr.reasoning, answer=tr.answer, gold=p.answer))
    return out


def query_of(question: str) -> str:
    line = next(ln for ln in question.splitlines() if ln.startswith("Question: "))
    return line[len("Question: "):]

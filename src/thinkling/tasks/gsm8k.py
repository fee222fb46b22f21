"""GSM8K from files (folder ``gsm8k`` of the data dir, see :mod:`thinkling.tasks.files`) or the HF hub,
verified with math-verify.

Gold: the text after the last ``####`` with thousands separators removed; unparseable gold is None
(counted, never credited). Prediction (:meth:`GSM8KTask.extract_answer`): the last ``\\boxed{}``, else the
last stated number - ``#### N`` ending its line or ``the answer is N`` / ``Answer: N`` / ``The final
answer is $N$``, so a reply ending ``#### 25\\nThe answer is: 25`` is 25 - else the last number.
Level: the number of solution steps in the reference solution (1: <= 2 steps, 2: 3-4 steps, 3: >= 5
steps), a standard proxy for GSM8K difficulty.
"""

from __future__ import annotations

import re
from pathlib import Path

from thinkling.artifacts import DataError
from thinkling.records import Problem
from thinkling.tasks.base import OracleTrace, register_task
from thinkling.tasks.extract import last_boxed, last_number
from thinkling.tasks.files import FileTask, eval_fields
from thinkling.tasks.mathverify import math_equal

# what may stand between a marker and its number: spaces, markdown, a dollar sign ($ \$), "\(", a colon
_DECO = r"(?:[\s*_:$(]|\\[$(]|\\text(?:bf)?\{)*"
_NUM = r"(-?[\d,]*\.?\d+)"
# "The answer is 25", "The final answer is: $25$", "**Answer:** 1,200", "answer = 25"
_ANSWER_IS = re.compile(r"answer(?:\*\*|__)?\s*(?:is|:|=)" + _DECO + _NUM, re.IGNORECASE)
# "#### 25" ending its line (a markdown heading "#### 2. Compute the total" is no answer)
_HASHED = re.compile(r"####" + _DECO + _NUM + r"[\s*_$.)}]*?(?=\n|$)")
_LIST_ITEM = re.compile(r"[.)][^\S\n]+\S")  # "1. She buys ...": a numbered line, not an answer
_CALC = re.compile(r"<<[^>]*>>")


def _stated(text: str) -> list[re.Match]:
    """The marked numbers of ``text``; a number on a later line that starts a numbered list is none."""
    said = [m for m in _ANSWER_IS.finditer(text)
            if not ("\n" in m.group(0) and _LIST_ITEM.match(text, m.end()))]
    return said + list(_HASHED.finditer(text))


def gold_from_solution(solution: str) -> str | None:
    if "####" not in solution:
        return None
    raw = solution.rsplit("####", 1)[1].strip().replace(",", "")
    return raw if re.fullmatch(r"-?\d+(?:\.\d+)?", raw) else None


def _level(solution: str) -> int:
    steps = len([ln for ln in solution.split("####")[0].splitlines() if ln.strip()])
    return 1 if steps <= 2 else 2 if steps <= 4 else 3


@register_task("gsm8k")
class GSM8KTask(FileTask):
    answer_type = "number"
    levels = (1, 2, 3)
    folder = "gsm8k"
    env_var = "THINKLING_GSM8K_DIR"

    def __init__(self, data_dir: str | Path | None = None, source: str = "files"):
        if source not in ("files", "hub"):
            raise ValueError(f"gsm8k: source must be 'files' or 'hub', got {source!r}")
        self.source = source
        super().__init__(data_dir)

    def _split_records(self, split: str) -> list[dict]:
        """The split's records (``question``, ``answer`` strings), from the file or the hub."""
        if split not in ("train", "test"):
            raise ValueError(f"gsm8k: split must be 'train' or 'test', got {split!r}")
        if self.source == "hub":  # needs network access to the HF hub
            from datasets import load_dataset  # heavy, and only for source=hub

            return list(load_dataset("openai/gsm8k", "main", split=split))
        rows = self.read_rows(self.data_dir / f"{split}.jsonl", "; or source=hub")
        for r, where in rows:
            for field in ("question", "answer"):
                if not isinstance(r.get(field), str):
                    raise DataError(f"{where}: missing or non-string field '{field}'")
        return [r for r, _ in rows]

    def eval_texts(self) -> list[tuple[str, str]]:
        """The test questions, ids ``gsm8k/test/<index>`` (the problem ids)."""
        rows = self.read_rows(self.data_dir / "test.jsonl")
        return [(f"gsm8k/test/{i}", *eval_fields(r, where, "question")) for i, (r, where) in enumerate(rows)]

    def problems(self, split: str, n: int | None = None, levels: list[int] | None = None,
                 seed: int = 0) -> list[Problem]:
        out = []
        for i, r in enumerate(self._split_records(split)):
            lv = _level(r["answer"])
            if levels and lv not in levels:
                continue
            out.append(Problem(
                id=f"gsm8k/{split}/{i}", task=self.name, split=split, level=lv, question=r["question"],
                answer=gold_from_solution(r["answer"]),
                meta={"solution": _CALC.sub("", r["answer"].rsplit("####", 1)[0]).strip()},
            ))
            if n is not None and len(out) >= n:
                break
        return out

    def reference_trace(self, problem: Problem) -> OracleTrace | None:
        sol = problem.meta.get("solution")
        if not sol or problem.answer is None:
            return None
        return OracleTrace(reasoning=sol, answer=f"The answer is \\boxed{{{problem.answer}}}.")

    def extract_answer(self, text: str) -> str | None:
        """The stated answer: the last ``\\boxed{}``; else the last marked number - ``#### N`` ending its
        line (lm-evaluation-harness's "strict" match) or ``the answer is N`` / ``Answer: N`` / ``The final
        answer is $N$`` (markdown, ``$`` and a colon allowed), whichever comes last, so ``#### 25\\nThe
        answer is: 25`` is 25 and "the final answer is 15 gallons * 8 = 120 pints\\n#### 120" is 120;
        else the last number of the text (the harness's "flexible" match), which also reads a final
        ``**N**``. None without a number."""
        boxed = last_boxed(text)
        if boxed:
            return boxed
        marked = _stated(text)
        if marked:
            return max(marked, key=lambda m: m.start()).group(1).replace(",", "")
        return last_number(text)

    def verify(self, predicted: str | None, gold: str | None) -> bool:
        if predicted is None or gold is None:
            return False
        return math_equal(predicted, gold)

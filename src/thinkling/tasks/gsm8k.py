"""GSM8K from files (``../shared/data/gsm8k`` by default) or the HF hub, verified with math-verify.

Gold: the text after the last ``####`` with thousands separators removed; unparseable gold is None
(counted, never credited). Level: the number of solution steps in the reference solution
(1: <= 2 steps, 2: 3-4 steps, 3: >= 5 steps), a standard proxy for GSM8K difficulty.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from thinkling.artifacts import DataError, iter_jsonl
from thinkling.records import Problem
from thinkling.tasks.base import OracleTrace, Task, register_task
from thinkling.tasks.extract import last_boxed, last_number
from thinkling.tasks.mathverify import math_equal

DEFAULT_DATA_DIR = "../shared/data/gsm8k"
_ANSWER_IS = re.compile(r"answer\s*(?:is|:)\s*\$?\s*(-?[\d,]*\.?\d+)", re.IGNORECASE)
_CALC = re.compile(r"<<[^>]*>>")


def gold_from_solution(solution: str) -> str | None:
    if "####" not in solution:
        return None
    raw = solution.rsplit("####", 1)[1].strip().replace(",", "")
    return raw if re.fullmatch(r"-?\d+(?:\.\d+)?", raw) else None


def _level(solution: str) -> int:
    steps = len([ln for ln in solution.split("####")[0].splitlines() if ln.strip()])
    return 1 if steps <= 2 else 2 if steps <= 4 else 3


@register_task("gsm8k")
class GSM8KTask(Task):
    answer_type = "number"
    levels = (1, 2, 3)

    def __init__(self, data_dir: str | None = None, source: str = "files"):
        if source not in ("files", "hub"):
            raise ValueError(f"gsm8k: source must be 'files' or 'hub', got {source!r}")
        self.source = source
        self.data_dir = Path(data_dir or os.environ.get("THINKLING_GSM8K_DIR", DEFAULT_DATA_DIR))

    def _rows(self, split: str) -> list[dict]:
        if split not in ("train", "test"):
            raise ValueError(f"gsm8k: split must be 'train' or 'test', got {split!r}")
        if self.source == "hub":  # needs network access to the HF hub
            from datasets import load_dataset

            return list(load_dataset("openai/gsm8k", "main", split=split))
        path = self.data_dir / f"{split}.jsonl"
        if not path.exists():
            raise DataError(f"gsm8k: {path} not found (set task.options.data_dir, or source=hub)")
        rows = []
        for i, r in enumerate(iter_jsonl(path), 1):
            for field in ("question", "answer"):
                if not isinstance(r.get(field), str):
                    raise DataError(f"{path}:{i}: missing or non-string field '{field}'")
            rows.append(r)
        return rows

    def problems(self, split: str, n: int | None = None, levels: list[int] | None = None,
                 seed: int = 0) -> list[Problem]:
        out = []
        for i, r in enumerate(self._rows(split)):
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
        boxed = last_boxed(text)
        if boxed:
            return boxed
        said = list(_ANSWER_IS.finditer(text))
        hashed = gold_from_solution(text) if "####" in text else None
        if said and hashed is not None and text.rfind("####") > said[-1].start():
            return hashed  # "... the final answer is 15 gallons * 8 = 120 pints\n#### 120": the marker is last
        if said:
            return said[-1].group(1).replace(",", "")
        if "####" in text:
            return hashed
        return last_number(text)

    def verify(self, predicted: str | None, gold: str | None) -> bool:
        if predicted is None or gold is None:
            return False
        return math_equal(predicted, gold)

"""The ``oracle`` engine (the synthetic tasks' built-in teacher): every role, cuts at max_tokens words,
and refuses non-synthetic tasks and unknown styles."""

from __future__ import annotations

import pytest

from helpers.engines import ask
from helpers.generate import gen_cfg
from thinkling.config import build_config
from thinkling.engines import build_engine, engine_options
from thinkling.format import format_assistant
from thinkling.generate.stage import GenerateConfig, generate
from thinkling.tasks import get_task


def test_oracle_answers_every_role_and_cuts_at_max_tokens_words():
    task = get_task("arithmetic")
    p = task.problems("train", n=1, levels=[3])[0]
    eng = build_engine(engine_options({"backend": "oracle", "style": "long"}), task)
    base = {"problem": p, "task": task}
    solve, judge, know, rewrite = eng.generate([
        ask(p.question, 2048, seed=1, **base), ask("rate", 8, role="judge", context={"tiers": 3}, **base),
        ask("knowledge?", 64, role="knowledge", **base),
        ask("rewrite", 2048, role="rewrite", context={"sentences": task.oracle(p, "long").sentences,
                                                       "budget_words": 10}, **base)])
    tr = task.oracle(p, "long", seed=1)
    assert (solve.reasoning, solve.answer) == (tr.reasoning, tr.answer)
    assert solve.text == format_assistant(tr.reasoning, tr.answer) and solve.meta["usage_unit"] == "words"
    assert solve.completion_tokens == len((tr.reasoning + " " + tr.answer).split())
    assert judge.answer == "3" and know.answer == tr.knowledge and rewrite.meta["sentences"]
    kinds = {s[1] for s in rewrite.meta["sentences"]}  # fitted into 10 words: transitions go first, steps stay
    assert len(rewrite.reasoning.split()) <= 10 and "step" in kinds and "transition" not in kinds
    [cut] = eng.generate([ask(p.question, 5, seed=1, **base)])
    assert cut.finish_reason == "length" and cut.answer == "" and cut.completion_tokens == 5
    assert len(cut.reasoning.split()) == 5 and solve.text.startswith(cut.text)
    [bad] = eng.generate([ask("q", 8, problem=p, task=get_task("gsm8k"))])
    assert isinstance(bad, ValueError) and "synthetic" in str(bad)
    with pytest.raises(ValueError, match="only knows synthetic tasks"):
        build_engine(engine_options({"backend": "oracle"}), get_task("gsm8k"))


def test_oracle_refuses_non_synthetic_tasks_and_unknown_styles(tmp_path, gsm8k_dir, captured):
    with pytest.raises(ValueError) as e:
        generate(build_config(GenerateConfig, {"out": str(tmp_path / "g"), "task": {
            "name": "gsm8k", "n": 2, "options": {"data_dir": str(gsm8k_dir)}}}), console=captured.console)
    assert "gsm8k" in str(e.value)
    with pytest.raises(ValueError) as e:
        generate(gen_cfg(tmp_path / "h", n=2, style="verbose"), console=captured.console)
    assert "verbose" in str(e.value)

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


# ----------------------------------------------------------------------------- honest mistakes (error_rate)


def _solve(eng, task, problems, samples=2, style_len=2048):
    reqs = [ask(p.question, style_len, seed=i, problem=p, task=task) for p in problems for i in range(samples)]
    return reqs, eng.generate(reqs)


def test_oracle_error_rate_zero_is_the_oracle_it_always_was():
    task = get_task("arithmetic")
    ps = task.problems("train", n=10)
    plain = engine_options({"backend": "oracle", "style": "long"})
    zero = engine_options({"backend": "oracle", "style": "long", "error_rate": 0.0, "error_seed": 5})
    assert plain.engine_id() == zero.engine_id() == "oracle:long"  # same trace keys as before the option
    # ... and the same resolved config: config hashes, manifests and eval unit keys of earlier runs stay valid
    assert plain.model_dump() == zero.model_dump() == {"backend": "oracle", "name": None, "style": "long"}
    assert build_config(GenerateConfig, {"out": "x", "teacher": {"error_rate": 0}}).model_dump()["teacher"] == plain.model_dump()
    assert engine_options({"backend": "oracle", "error_rate": 0.3}).model_dump()["error_rate"] == 0.3
    _, a = _solve(build_engine(plain, task), task, ps)
    _, b = _solve(build_engine(zero, task), task, ps)
    assert [(r.text, r.meta) for r in a] == [(r.text, r.meta) for r in b]
    assert all("mistake" not in r.meta for r in a)
    assert engine_options({"backend": "oracle", "error_rate": 0.3}).engine_id() == "oracle:long:err0.3"
    assert engine_options({"backend": "oracle", "error_rate": 0.3, "error_seed": 2}).engine_id() == "oracle:long:err0.3:seed2"
    with pytest.raises(Exception, match="error_rate"):
        engine_options({"backend": "oracle", "error_rate": 1.5})


@pytest.mark.parametrize("family", ["arithmetic", "rules", "abduction", "induction", "evidence"])
def test_oracle_flawed_replies_are_wrong_seeded_and_say_their_mistake(family):
    task = get_task(family)
    ps = task.problems("train", n=40)
    eng = build_engine(engine_options({"backend": "oracle", "style": "long", "error_rate": 0.3}), task)
    reqs, reps = _solve(eng, task, ps)
    flawed = set()
    for r, rep in zip(reqs, reps):
        score = task.score(rep.text, r.problem.answer)[1]
        if "mistake" in rep.meta:
            flawed.add((r.problem.id, r.seed))
            assert rep.meta["mistake"]["kind"] and rep.meta["mistake"]["detail"]
            assert score is False, (r.problem.id, rep.text)
        else:  # the others are the oracle's own traces, word for word
            tr = task.oracle(r.problem, "long", seed=r.seed)
            assert (rep.reasoning, rep.answer) == (tr.reasoning, tr.answer)
    assert 0.2 < len(flawed) / len(reqs) < 0.4, len(flawed) / len(reqs)
    # the draw is per (problem, sample index, error seed): not the batch, the order or the style
    one_by_one = {(r.problem.id, r.seed) for r in reversed(reqs) if "mistake" in eng.generate([r])[0].meta}
    concise = build_engine(engine_options({"backend": "oracle", "style": "concise", "error_rate": 0.3}), task)
    _, creps = _solve(concise, task, ps)
    assert one_by_one == flawed == {(r.problem.id, r.seed) for r, c in zip(reqs, creps) if "mistake" in c.meta}
    other = build_engine(engine_options({"backend": "oracle", "style": "long", "error_rate": 0.3, "error_seed": 1}), task)
    assert {(r.problem.id, r.seed) for r, c in zip(reqs, other.generate(reqs)) if "mistake" in c.meta} != flawed


def test_generate_with_error_rate_stores_the_mistake_under_new_keys(tmp_path, captured):
    from thinkling.artifacts import read_jsonl

    cfg = build_config(GenerateConfig, {"out": str(tmp_path / "e"), "task": {"n": 8, "levels": [2, 3]}, "samples": 2,
                                        "teacher": {"backend": "oracle", "style": "long", "error_rate": 0.3}})
    generate(cfg, console=captured.console)
    generate(gen_cfg(tmp_path / "r", n=8, levels=(2, 3), style="long", samples=2), console=captured.console)
    err, right = read_jsonl(tmp_path / "e" / "traces.jsonl"), read_jsonl(tmp_path / "r" / "traces.jsonl")
    assert {t["teacher"] for t in err} == {"oracle:long:err0.3"} and {t["teacher"] for t in right} == {"oracle:long"}
    assert not {t["key"] for t in err} & {t["key"] for t in right}  # a teacher that errs never shares keys
    task = get_task("arithmetic")
    gold = {p.id: p.answer for p in task.problems("train", n=8, levels=[2, 3])}
    flawed = [t for t in err if "mistake" in t["meta"]]
    assert flawed and len(flawed) < len(err) and all(t["meta"]["mistake"]["kind"] == "slip" for t in flawed)
    for t in err:
        correct = task.verify(task.extract_answer(t["answer"]), gold[t["problem_id"]])
        assert correct == ("mistake" not in t["meta"])
    assert all("mistake" not in t["meta"] for t in right)

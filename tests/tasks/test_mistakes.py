"""The oracle's honest mistakes (``SyntheticFamily.flawed``): every flawed trace's answer is one the family's
verifier rejects, over many problems, styles and draws; each family's mistake is the one its docstring
describes and the rest of the trace follows from it; the correct traces are unchanged by the hook.

``DEFAULT_DIGESTS`` pins the correct oracle's output for every family (all styles, two phrasing seeds), computed
with the code before the mistake hooks existed: the refactoring that let one writer produce both the correct and
the flawed trace must not change a byte of the correct one.
"""

from __future__ import annotations

import hashlib
import json
import random
import re

import pytest

from thinkling.tasks import get_task
from thinkling.tasks.synthetic import FlawedTrace

STYLES = ("long", "concise", "none")

# (family, task options)
FAMILIES = [
    ("arithmetic", {}), ("arithmetic", {"ops": "+-*", "max_operand": 9}), ("rules", {}), ("abduction", {}),
    ("induction", {}), ("evidence", {}), ("evidence", {"regime": "concepts"}), ("evidence", {"regime": "related"}),
    ("evidence", {"regime": "instruction"}),
]
FAMILY_IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'default'}" for n, o in FAMILIES]

DEFAULT_DIGESTS = {
    "arithmetic-default": "6f5ae1595e8e90eb18b9b0900a9888b1cde89d6a5bc5ca863e401030b4f7f530",
    "arithmetic-ops=+-*-max_operand=9": "c5b8aee6b52ae5a5809d827e09d652fb62c27f3fde025ec78baf68176319b32a",
    "rules-default": "961e8fa1e70216771dfc022a00295abd8bf68b2b7e0bf82270aef2e22efe864d",
    "abduction-default": "f5427e575841f3a227d4cbb5d1236eaf0fd3a3eb0ced648818f9d63c74b7121d",
    "induction-default": "c21b592790b95059fb9465724a279d391fd41a88740b21dd0e6d3c2ce082a76e",
    "evidence-default": "f7178130241fe95194c0ac0db4899b90f9ba088eb15b5c056dd7f1ff65f608e1",
    "evidence-regime=concepts": "1058e7d902f21925baca2d0a91251f0f41b07c6fb041d0a4ecf764a5b9acb9b4",
    "evidence-regime=related": "7173cf75a68252803931eafb1c4e79e01c575247763d6108fd181eea5aff3298",
    "evidence-regime=instruction": "d73c88b5a5a6b369ae73abedb4c76f085e241b30bf721a1dce2ca5ea5ba5374a",
}

# the mistake each family makes, by regime for evidence (levels 1-2 of concepts/related have no step to slip in)
KINDS = {"arithmetic": {"slip"}, "rules": {"polarity"}, "abduction": {"trap"}, "induction": {"wrong_answer"},
         "evidence": {"twin"}, "evidence-concepts": {"slip", "wrong_answer"},
         "evidence-related": {"slip", "wrong_answer"}, "evidence-instruction": {"guess"}}


@pytest.mark.parametrize("name, options", FAMILIES, ids=FAMILY_IDS)
def test_correct_oracle_traces_are_unchanged(name, options):
    t = get_task(name, **options)
    out = []
    for p in t.problems("train", n=15) + t.problems("test", n=5):
        for style in STYLES:
            for seed in (0, 3):
                tr = t.oracle(p, style, seed)
                out.append([tr.reasoning, tr.answer, [list(s) for s in tr.sentences], tr.knowledge])
    got = hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest()
    assert got == DEFAULT_DIGESTS[FAMILY_IDS[FAMILIES.index((name, options))]]


@pytest.mark.parametrize("name, options", FAMILIES, ids=FAMILY_IDS)
def test_every_flawed_trace_is_wrong_and_says_what_went_wrong(name, options):
    t = get_task(name, **options)
    kind = KINDS[name if name != "evidence" or "regime" not in options else f"evidence-{options['regime']}"]
    n = 0
    for p in t.problems("train", n=60) + t.problems("test", n=10):
        for style in STYLES:
            for draw in range(2):
                fl = t.flawed(p, style, seed=draw, rng=random.Random(f"{p.id}/{style}/{draw}"))
                assert isinstance(fl, FlawedTrace) and fl.mistake in kind and fl.detail, (p.id, fl)
                pred = t.extract_answer(fl.answer)
                assert pred is not None and not t.verify(pred, p.answer), (p.id, style, fl.answer, p.answer)
                # verify (curate) sees the same: the whole completion scores wrong
                assert t.score(f"<think>\n{fl.reasoning}\n</think>\n\n{fl.answer}", p.answer)[1] is False
                if style == "none":
                    assert fl.reasoning == ""
                n += 1
    assert n >= 300


def test_flawed_is_deterministic_in_its_generator():
    t = get_task("arithmetic")
    p = t.problems("train", n=5, levels=[4])[3]
    a = t.flawed(p, "long", 1, random.Random("x"))
    assert a == t.flawed(p, "long", 1, random.Random("x"))
    others = {t.flawed(p, "long", 1, random.Random(f"y{i}")).reasoning for i in range(20)}
    assert len(others) > 3  # the step and the slip vary with the draw


STEP = re.compile(r"^([a-z])=([a-z])([+\-*])(\d)=(\d)([+\-*])(\d)=(\d)\.?$")


@pytest.mark.parametrize("options", [{}, {"ops": "+-*", "max_operand": 9}])
def test_arithmetic_slip_is_one_wrong_step_carried_through(options):
    t = get_task("arithmetic", **options)
    for p in t.problems("train", n=80, levels=[1, 3, 5]):
        for style in ("long", "concise"):
            fl = t.flawed(p, style, 0, random.Random(p.id))
            lines = [m for m in (STEP.match(x) for x in fl.reasoning.splitlines()) if m]
            assert len(lines) == p.level
            env = {p.meta["seed_var"]: int(p.question.splitlines()[1].split("=")[1])}
            wrong = 0
            for m in lines:
                var, prev, op, b, a, res = m[1], m[2], m[3], int(m[4]), int(m[5]), int(m[8])
                assert a == env[prev]  # every step starts from the value the trace wrote before it
                right = {"+": a + b, "-": a - b, "*": a * b}[op] % 10
                wrong += res != right
                env[var] = res
            assert wrong == 1, fl.reasoning  # exactly one slip ...
            assert fl.answer == str(env[p.meta["target"]]) != p.answer  # ... and the answer is the chain's end
            if style == "long":  # the summary says the same answer, and the self-checks repeat what was written
                assert fl.reasoning.splitlines()[-1].endswith(f"{fl.answer}.")
                for check in re.findall(r"(\d)([+\-*])(\d),? (?:mod 10 is|gives|mod 10,? is) (\d)", fl.reasoning):
                    a, op, b, res = check
                    assert any(f"={a}{op}{b}={res}" in x for x in fl.reasoning.splitlines())


def test_rules_mistake_misreads_the_last_rule_and_flips_the_answer():
    t = get_task("rules")
    for p in t.problems("train", n=40):
        right, fl = t.oracle(p, "long", 2), t.flawed(p, "long", 2, random.Random(0))
        assert {fl.answer, p.answer} == {"True", "False"}
        a, b = p.meta["chain"][-2], p.meta["chain"][-1]
        changed = [(x, y) for x, y in zip(right.reasoning.splitlines(), fl.reasoning.splitlines()) if x != y]
        # the last step, its check and the summary change; every line before them is the same
        assert len(right.reasoning.splitlines()) == len(fl.reasoning.splitlines()) and len(changed) == 3
        assert any(f"so {p.meta['entity']} is {'not ' if p.answer == 'True' else ''}a {b}." in y for _, y in changed)
        assert a in changed[0][1]


def test_abduction_mistake_takes_the_trap_and_follows_its_chain_back():
    t = get_task("abduction")
    for p in t.problems("train", n=40):
        fl = t.flawed(p, "long", 0, random.Random(0))
        trap, obs = p.meta["trap"], p.meta["chain"][-1]
        assert f"Every {trap} is a {obs}, so" in fl.reasoning  # the "not" skipped
        assert f"every {trap} is not a {obs}" not in fl.reasoning.lower()  # and the trap never noted
        # the option it lands on is the start of the trap's chain: the rules lead from it to the trap
        hyp = p.meta["options"]["ABCDE".index(fl.answer)]
        assert f"Option {fl.answer} says {p.meta['entity']} is a {hyp}." in fl.reasoning
        assert fl.answer != p.answer and len(fl.reasoning.splitlines()) == len(t.oracle(p, "long", 0).reasoning.splitlines()) - 1


def test_evidence_mistake_cites_a_twin_and_computes_on_from_it():
    t = get_task("evidence")
    for p in t.problems("train", n=30):
        fl = t.flawed(p, "long", 0, random.Random(p.id))
        right = t.oracle(p, "long", 0)
        cited = [x for x in fl.reasoning.splitlines() if " says: " in x]
        twin = [x for x in cited if x not in right.reasoning.splitlines()]
        assert len(twin) == 1 and twin[0].split(" says: ")[1] in " ".join(p.meta["distractor_docs"])
        assert fl.reasoning.splitlines()[-1].endswith(f"{fl.answer}.") and fl.answer != p.answer


def test_the_fallback_keeps_the_reasoning_and_changes_the_answer():
    t = get_task("induction")
    for p in t.problems("train", n=30):
        fl = t.flawed(p, "long", 1, random.Random(p.id))
        right = t.oracle(p, "long", 1)
        assert (fl.reasoning, fl.sentences, fl.knowledge) == (right.reasoning, right.sentences, right.knowledge)
        assert fl.mistake == "wrong_answer" and fl.answer in "ABCDE" and fl.answer != p.answer

"""Tasks own their data and verifiers: answers recomputed independently, splits disjoint, oracle traces
score, and the GSM8K verifier checked against math-verify on the real gold answers."""

from __future__ import annotations

import json
import re
import statistics

import pytest

from thinkling.artifacts import DataError
from thinkling.format import format_assistant, split_thinking
from thinkling.tasks import get_task, task_names
from thinkling.tasks.extract import last_boxed
from thinkling.tasks.gsm8k import gold_from_solution

STYLES = ("long", "concise", "none")


def test_registry_knows_the_three_tasks():
    assert {"arithmetic", "rules", "gsm8k"} <= set(task_names())
    with pytest.raises(KeyError) as e:
        get_task("arithmatic")
    assert "arithmatic" in str(e.value)


def test_the_registry_is_discovered_and_the_task_spec_checks_names():
    """Every task module registers itself (no hand-kept list); a config naming an unknown task is an
    error at load that lists the registered ones."""
    import pkgutil

    from pydantic import ValidationError

    import thinkling.tasks
    from thinkling.tasks.spec import TaskSpec

    modules = {m.name for m in pkgutil.iter_modules(thinkling.tasks.__path__)}
    assert {"arithmetic", "evidence_jsonl", "logic", "math", "user"} <= modules
    assert set(task_names()) == {
        "abduction", "aime24", "aime25", "amc23", "arc_challenge", "arc_easy", "arithmetic", "evidence",
        "evidence_jsonl", "folio", "gsm8k", "induction", "jsonl", "knights_and_knaves", "logical_deduction",
        "math", "math500", "prontoqa", "proofwriter", "rules"}
    assert TaskSpec(name="induction", split="test").build().name == "induction"
    with pytest.raises(ValidationError, match=r"unknown task 'gsm9k'; known: abduction, .*gsm8k, .*rules"):
        TaskSpec(name="gsm9k")


# ----------------------------------------------------------------------------- arithmetic

EQ_SEED = re.compile(r"^([a-z])=(\d)$")
EQ_STEP = re.compile(r"^([a-z])=([a-z])([+\-*])(\d)$")


def solve_arithmetic(question: str) -> tuple[str, int, int]:
    """Independent solver: (target variable, value mod 10, number of steps) from the question text."""
    lines = question.splitlines()
    assert lines[0] == "Compute mod 10."
    m = re.fullmatch(r"What is ([a-z])\?", lines[-1])
    assert m, lines[-1]
    target = m.group(1)
    env: dict[str, int] = {}
    seed = EQ_SEED.match(lines[1])
    assert seed, lines[1]
    env[seed.group(1)] = int(seed.group(2))
    prev = seed.group(1)
    steps = 0
    for line in lines[2:-1]:
        s = EQ_STEP.match(line)
        assert s, line
        var, src, op, d = s.group(1), s.group(2), s.group(3), int(s.group(4))
        assert src == prev and ord(var) == ord(src) + 1, f"not a chain of consecutive letters: {question!r}"
        a = env[src]
        env[var] = {"+": a + d, "-": a - d, "*": a * d}[op] % 10
        prev = var
        steps += 1
    assert target == prev
    return target, env[target], steps


@pytest.fixture(scope="module")
def arith():
    return get_task("arithmetic", max_operand=4)


@pytest.mark.parametrize("random_names", [False, True])
@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_arithmetic_answers_recomputed_from_the_question(level, random_names):
    task = get_task("arithmetic", random_names=random_names, max_operand=4)
    for split in ("train", "test"):
        probs = task.problems(split, n=300, levels=[level])
        # easy levels have few distinct questions per split (level 1 with fixed names: 80 in all):
        # the draw is capped below 300, never padded
        assert len(probs) == 300 if level >= 3 else 5 <= len(probs) <= 300
        assert len({p.question for p in probs}) == len(probs)
        for p in probs:
            target, value, steps = solve_arithmetic(p.question)
            assert p.answer == str(value), p.question
            assert steps == level == p.level
            assert p.meta["target"] == target
        if not random_names:
            assert all(p.question.splitlines()[1].startswith("a=") for p in probs)


@pytest.mark.parametrize("random_names", [False, True])
def test_arithmetic_train_and_test_are_disjoint(random_names):
    task = get_task("arithmetic", random_names=random_names, max_operand=4)
    train = task.problems("train", n=300)
    test = task.problems("test", n=300)
    for probs in (train, test):
        assert len({p.question for p in probs}) == len(probs)  # distinct within a split
        assert sum(p.level >= 3 for p in probs) == 2 * 300
    assert not {p.question for p in train} & {p.question for p in test}


def test_arithmetic_ids_and_problems_are_stable(arith):
    a = arith.problems("train", n=50, levels=[2, 3])
    b = get_task("arithmetic", max_operand=4).problems("train", n=50, levels=[2, 3])
    assert [p.model_dump() for p in a] == [p.model_dump() for p in b]
    assert len({p.id for p in a}) == len(a)
    # a bigger draw extends a smaller one: the first problems (and ids) are the same
    c = arith.problems("train", n=80, levels=[2])
    assert [(p.id, p.question) for p in c[:50]] == [(p.id, p.question) for p in a if p.level == 2]
    # another seed gives other problems
    d = arith.problems("train", n=50, levels=[2], seed=1)
    assert {p.question for p in d} != {p.question for p in a if p.level == 2}


def test_arithmetic_rejects_bad_split_and_level(arith):
    with pytest.raises(ValueError):
        arith.problems("validation", n=3)
    with pytest.raises(ValueError):
        arith.problems("train", n=3, levels=[0])


def test_arithmetic_small_levels_cap_the_draw_instead_of_looping_forever(arith):
    probs = arith.problems("test", n=100_000, levels=[1])
    assert 0 < len(probs) < 1000
    assert len({p.question for p in probs}) == len(probs)


def test_arithmetic_oracle_traces_end_in_the_gold_answer_and_score(arith):
    for p in arith.problems("train", n=40):
        for style in STYLES:
            tr = arith.oracle(p, style)
            assert tr.answer == p.answer
            text = format_assistant(tr.reasoning, tr.answer)
            assert text.endswith(p.answer)
            pred, ok = arith.score(text, p.answer)
            assert ok and pred == p.answer, (style, text)
            if style == "none":
                assert tr.reasoning == ""
            else:
                # the reasoning reaches the answer: its last step computes the target's value
                last_step = [s for s, kind, _ in tr.sentences if kind == "step"][-1]
                assert last_step.rstrip(".").endswith(f"={p.answer}")


def test_arithmetic_oracle_wrong_gold_is_not_credited(arith):
    p = arith.problems("train", n=1, levels=[3])[0]
    tr = arith.oracle(p, "concise")
    wrong = str((int(p.answer) + 1) % 10)
    assert arith.score(format_assistant(tr.reasoning, tr.answer), wrong) == (p.answer, False)
    assert arith.score(format_assistant(tr.reasoning, tr.answer), None)[1] is False


def test_arithmetic_long_traces_are_much_longer_than_concise(arith, tokenizer):
    ratios_tok, ratios_words = [], []
    for p in arith.problems("train", n=30):
        long_, concise = arith.oracle(p, "long"), arith.oracle(p, "concise")
        ratios_tok.append(len(tokenizer.encode(long_.reasoning)) / len(tokenizer.encode(concise.reasoning)))
        ratios_words.append(len(long_.reasoning.split()) / len(concise.reasoning.split()))
    assert min(ratios_tok) > 2.0
    assert statistics.mean(ratios_tok) > 3.0
    assert statistics.mean(ratios_words) > 8.0


def test_arithmetic_sentence_annotations(arith):
    for p in arith.problems("train", n=20):
        long_ = arith.oracle(p, "long")
        concise = arith.oracle(p, "concise")
        # the annotations are exactly the trace's sentences
        assert "\n".join(s for s, _, _ in long_.sentences) == long_.reasoning
        assert "\n".join(s for s, _, _ in concise.sentences) == concise.reasoning
        long_flags = [r for _, _, r in long_.sentences]
        assert any(long_flags) and not all(long_flags), "long traces mix reasoning and filler"
        kinds = {k for _, k, _ in long_.sentences}
        assert {"restate", "step", "check", "summary"} <= kinds
        assert all(r for _, _, r in concise.sentences)
        assert {k for _, k, _ in concise.sentences} == {"step"}
        # one step sentence per level in both styles
        assert sum(k == "step" for _, k, _ in long_.sentences) == p.level
        assert len(concise.sentences) == p.level
        assert arith.oracle(p, "none").sentences == []


def test_arithmetic_oracle_is_deterministic_and_rejects_unknown_style(arith):
    p = arith.problems("train", n=1, levels=[2])[0]
    assert arith.oracle(p, "long").reasoning == arith.oracle(p, "long").reasoning
    with pytest.raises(ValueError):
        arith.oracle(p, "verbose")


@pytest.mark.parametrize("text, expected", [
    ("7", "7"), ("The answer is 3.", "3"), ("x=4, so 9", "9"), ("none", None), ("2.5", None), ("", None),
])
def test_arithmetic_extract_answer(arith, text, expected):
    assert arith.extract_answer(text) == expected


# ----------------------------------------------------------------------------- rules

FACT = re.compile(r"(\w+) is a (\w+)\.")
RULE = re.compile(r"Every (\w+) is (not )?a (\w+)\.")
QUERY = re.compile(r"Question: Is (\w+) a (\w+)\?$")


def solve_rules(question: str) -> str:
    """Independent forward-chaining solver over the question text."""
    facts_part, rest = question.split(" Rules: ")
    rules_part, _ = rest.split(" Question: ")
    assert facts_part.startswith("Facts: ")
    facts = FACT.findall(facts_part[len("Facts: "):])
    rules = RULE.findall(rules_part)
    assert facts and rules
    assert len(rules) == rules_part.count("Every ")
    entity, target = QUERY.search(question).groups()
    known: dict[tuple[str, str], bool] = {(e, c): True for e, c in facts}
    changed = True
    while changed:
        changed = False
        for a, neg, b in rules:
            for (e, c), holds in list(known.items()):
                if c == a and holds:
                    value = not neg
                    if (e, b) in known:
                        assert known[(e, b)] == value, f"contradiction in {question!r}"
                    else:
                        known[(e, b)] = value
                        changed = True
    assert (entity, target) in known, f"query not entailed: {question!r}"
    return "True" if known[(entity, target)] else "False"


@pytest.fixture(scope="module")
def rules():
    return get_task("rules")


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_rules_gold_agrees_with_an_independent_solver(rules, level):
    probs = rules.problems("train", n=200, levels=[level]) + rules.problems("test", n=50, levels=[level])
    for p in probs:
        assert p.answer == solve_rules(p.question), p.question
        assert p.level == level
    answers = [p.answer for p in probs]
    assert 0.3 < answers.count("True") / len(answers) < 0.7, "labels should be balanced"


def test_rules_splits_disjoint_and_stable(rules):
    train = rules.problems("train", n=100)
    test = rules.problems("test", n=100)
    assert not {p.question for p in train} & {p.question for p in test}
    again = get_task("rules").problems("train", n=100)
    assert [(p.id, p.question) for p in train] == [(p.id, p.question) for p in again]


def test_rules_oracle_traces_score(rules):
    for p in rules.problems("train", n=25):
        for style in STYLES:
            tr = rules.oracle(p, style)
            text = format_assistant(tr.reasoning, tr.answer)
            pred, ok = rules.score(text, p.answer)
            assert ok and pred == p.answer, (style, text)
            other = "False" if p.answer == "True" else "True"
            assert rules.score(text, other)[1] is False
        concise = rules.oracle(p, "concise")
        assert len(concise.sentences) == p.level
        long_ = rules.oracle(p, "long")
        assert any(not r for _, _, r in long_.sentences)


@pytest.mark.parametrize("text, expected", [
    ("True", "True"), ("false", "False"), ("Yes, it is.", "True"), ("no", "False"),
    ("It was true at first, but the answer is False", "False"), ("maybe", None),
])
def test_rules_extract_answer(rules, text, expected):
    assert rules.extract_answer(text) == expected


# ----------------------------------------------------------------------------- split_thinking


@pytest.mark.parametrize("text, expected", [
    ("<think>\nstep\n</think>\n42", ("step", "42", True)),
    ("<think></think>42", ("", "42", True)),
    ("just 42", ("", "just 42", True)),
    ("<think>\nstep 1\nstep 2 and then", ("step 1\nstep 2 and then", "", False)),
    ("reasoning without an opening tag</think> 5", ("reasoning without an opening tag", "5", True)),
    ("<think>a</think>b</think>c", ("a</think>b", "c", True)),  # the last close tag ends the thinking
    ("", ("", "", True)),
])
def test_split_thinking(text, expected):
    assert split_thinking(text) == expected


def test_format_assistant_roundtrips_through_split_thinking():
    assert split_thinking(format_assistant("a\nb", "7")) == ("a\nb", "7", True)
    assert split_thinking(format_assistant("", "7")) == ("", "7", True)


# ----------------------------------------------------------------------------- gsm8k (real files)


@pytest.fixture(scope="module")
def gsm(gsm8k_dir):
    return get_task("gsm8k", data_dir=str(gsm8k_dir))


def test_gsm8k_every_train_gold_parses_to_an_integer(gsm, gsm8k_dir):
    probs = gsm.problems("train")
    n_lines = sum(1 for line in (gsm8k_dir / "train.jsonl").read_text().splitlines() if line.strip())
    assert len(probs) == n_lines == 7473
    for p in probs:
        assert p.answer is not None, p.id
        assert str(int(p.answer)) == p.answer
    # the 93 gold answers written with thousands separators are parsed, not dropped
    rows = [json.loads(line) for line in (gsm8k_dir / "train.jsonl").read_text().splitlines()]
    with_commas = [r for r in rows if "," in r["answer"].rsplit("####", 1)[1]]
    assert with_commas
    for r in with_commas:
        assert gold_from_solution(r["answer"]) == r["answer"].rsplit("####", 1)[1].strip().replace(",", "")


def test_gsm8k_levels_and_filters(gsm):
    probs = gsm.problems("train", n=300)
    assert len(probs) == 300
    assert {p.level for p in probs} == {1, 2, 3}
    only3 = gsm.problems("train", n=20, levels=[3])
    assert len(only3) == 20 and all(p.level == 3 for p in only3)
    assert "<<" not in probs[0].meta["solution"]  # calculator annotations stripped


@pytest.mark.parametrize("completion, gold, credited", [
    ("so she has \\boxed{18} apples", "18", True),
    ("The answer is 1,200", "1200", True),
    ("The answer is 1,200.", "1200", True),
    ("\\boxed{1,200}", "1200", True),
    ("\\boxed{\\frac{36}{2}}", "18", True),
    ("The answer is $18.00", "18", True),
    ("#### 72", "72", True),
    ("<think>\nshe sells 48/2 = 24\n</think>\nThe answer is 72", "72", True),
    ("The answer is 19", "18", False),
    ("I do not know", "18", False),
    ("\\boxed{}", "18", False),
    ("\\boxed{18}", None, False),               # unparseable gold is never credited
    ("<think>\n... \\boxed{18}", "18", False),  # truncated: opened, never closed
    ("<think>\nThe answer is 1,200", "1200", False),
])
def test_gsm8k_verifier(gsm, completion, gold, credited):
    assert gsm.score(completion, gold)[1] is credited


def test_gsm8k_verify_none_inputs(gsm):
    assert gsm.verify(None, "18") is False
    assert gsm.verify("18", None) is False
    assert gsm.verify(None, None) is False


def test_gsm8k_verifier_matches_math_verify_on_real_gold(gsm):
    """Reference equivalence: our extraction + math-verify credits every real gold in several formats."""
    probs = gsm.problems("train", n=400)
    for p in probs:
        g = int(p.answer)
        for completion in (f"The answer is {g:,}", f"so \\boxed{{{g}}}", f"<think>\nwork\n</think>\n#### {g}"):
            assert gsm.score(completion, p.answer)[1], (completion, p.answer)
        assert not gsm.score(f"The answer is {g + 1}", p.answer)[1]


def test_gsm8k_missing_file_is_a_clear_error(tmp_path):
    from thinkling.artifacts import DataError

    with pytest.raises(DataError) as e:
        get_task("gsm8k", data_dir=str(tmp_path)).problems("train")
    assert str(tmp_path / "train.jsonl") in str(e.value)


def test_one_data_dir_rule_for_every_file_task(tmp_path, monkeypatch):
    """task.options.data_dir, else the task's env var, else $THINKLING_DATA_DIR/<folder>, else
    ../shared/data/<folder> (thinkling.tasks.files)."""
    from pathlib import Path

    from thinkling.tasks.base import TASKS
    from thinkling.tasks.files import FileTask

    names = [n for n in task_names() if issubclass(TASKS.get(n), FileTask)]
    assert {"gsm8k", "math500", "aime25", "folio", "knights_and_knaves", "arc_easy"} <= set(names)
    for n in names:
        monkeypatch.delenv(TASKS.get(n).env_var, raising=False)
    monkeypatch.delenv("THINKLING_DATA_DIR", raising=False)
    folders = {n: TASKS.get(n).folder for n in names}
    assert folders["arc_challenge"] == folders["arc_easy"] == "arc" and folders["math500"] == "math500"
    assert {n: get_task(n).data_dir for n in names} == {n: Path("../shared/data") / f for n, f in folders.items()}
    monkeypatch.setenv("THINKLING_DATA_DIR", str(tmp_path))
    assert {n: get_task(n).data_dir for n in names} == {n: tmp_path / f for n, f in folders.items()}
    monkeypatch.setenv("THINKLING_GSM8K_DIR", str(tmp_path / "mine"))
    assert get_task("gsm8k").data_dir == tmp_path / "mine"  # the task's own variable wins over the root
    assert get_task("gsm8k", data_dir="x/y").data_dir == Path("x/y")  # and the option over both
    with pytest.raises(DataError, match="THINKLING_GSM8K_DIR"):
        get_task("gsm8k").problems("test")


def test_shared_extractors():
    from thinkling.tasks.extract import (
        boxed_first, extract_letter, integer_answer, label_of, last_choice, last_number, letter_patterns,
        scan_labels,
    )

    assert last_number("it costs 1,250.0 dollars, not 3") == "3" and last_number("1,250.0") == "1250"
    assert integer_answer("so 07") == "7" and integer_answer("0.5") is None and last_number("none") is None
    pats = letter_patterns("ABC")
    assert last_choice("not (A) but the answer is B", pats) == "B" and last_choice("D)", pats) is None
    assert extract_letter("A) looks right, but \\boxed{C}", pats) == "C"
    assert extract_letter("\\boxed{42} so (B)", pats) == "B"  # a box without a choice does not count
    assert boxed_first("\\boxed{x}", lambda t: t.upper()) == "X"
    assert label_of("UNCERTAIN") == "Unknown" and label_of("maybe") is None
    assert scan_labels("True at first, then B)", {"A": "True", "B": "False"}) == "False"
    assert scan_labels("B) no letters shown: unknown", {}) == "Unknown"


def test_gsm8k_gold_helpers():
    assert gold_from_solution("a\n#### 1,234") == "1234"
    assert gold_from_solution("no marker") is None
    assert gold_from_solution("#### about five") is None
    assert last_boxed("x \\boxed{\\frac{1}{2}} and \\boxed{3}") == "3"
    assert last_boxed("\\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{unclosed") is None

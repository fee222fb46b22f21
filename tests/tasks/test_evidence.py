"""Evidence regimes (DeR2-style): each regime's prompt shows exactly its evidence, instances pair across
regimes, the synthetic gold is re-derived by an independent solver from the concepts (and from the full
document set, distractors included), distractors conflict, and oracle traces score and cite what is shown."""

from __future__ import annotations

import re

import pytest

from helpers.tasks import query_of
from thinkling.config import describe_fields
from thinkling.format import format_assistant
from thinkling.tasks import get_task, task_names
from thinkling.tasks.evidence import REGIMES, EvidenceTask
from thinkling.tasks.evidence_jsonl import EvidenceJsonlTask
from thinkling.tasks.spec import TaskSpec

STYLES = ("long", "concise", "none")
LEVELS = (1, 2, 3, 4)


# ----------------------------------------------------------------------------- an independent solver


COUNT = re.compile(r"In (\w+), (?:the bells ring (\d+) times at noon|(\d+) lanterns hang on the bridge"
                   r"|(\d+) boats leave the harbour at dawn)\.")
HELD = re.compile(r"The (\w+) festival is held in (\w+)\.")
HONOURS = re.compile(r"The (\w+) festival honours the poet (\w+)\.")
MOD = re.compile(r"During the (\w+) festival, (.+)\.")
ASKS = {"How many times do the bells ring at noon": "bells", "How many lanterns hang on the bridge": "lanterns",
        "How many boats leave the harbour at dawn": "boats"}


def sentences(doc: str) -> list[str]:
    return [s for s in re.split(r"(?<=\.)\s+", doc.strip()) if s]


def parse_fact(s: str):
    """(kind, key, value) of a fact sentence, or None for prose."""
    if m := COUNT.fullmatch(s):
        measure = "bells" if m.group(2) else "lanterns" if m.group(3) else "boats"
        return "count", m.group(1), (measure, int(m.group(2) or m.group(3) or m.group(4)))
    if m := HELD.fullmatch(s):
        return "held", m.group(1), m.group(2)
    if m := HONOURS.fullmatch(s):
        return "honours", m.group(2), m.group(1)
    if m := MOD.fullmatch(s):
        text = m.group(2)
        measure = next(w for w in ("bells", "lanterns", "boats") if w in text)
        if "twice" in text:
            change = ("*", 2)
        else:
            k = re.search(r"(\d+) (more|fewer)", text)
            change = ("+" if k.group(2) == "more" else "-", int(k.group(1)))
        return "modifier", m.group(1), (measure, change)
    return None


def facts_of(texts: list[str]) -> dict[str, dict]:
    """Fact tables from sentences; two facts with one key and different values is an ambiguity."""
    tables: dict[str, dict] = {"count": {}, "held": {}, "honours": {}, "modifier": {}}
    for t in texts:
        for s in sentences(t):
            f = parse_fact(s)
            if f:
                kind, key, value = f
                assert tables[kind].get(key, value) == value, f"ambiguous {kind} for {key}: {texts}"
                tables[kind][key] = value
    return tables


def solve(query: str, tables: dict[str, dict]) -> int | None:
    """The answer from fact tables, or None when a link is missing."""
    measure = next(v for k, v in ASKS.items() if query.startswith(k))
    rest = query[len(next(k for k in ASKS if query.startswith(k))):]
    fest = town = None
    change = False
    if m := re.fullmatch(r" in (\w+)\?", rest):
        town = m.group(1)
    elif m := re.fullmatch(r" in the town where the (\w+) festival is held\?", rest):
        fest = m.group(1)
    elif m := re.fullmatch(r" during the (\w+) festival, in the town where it is held\?", rest):
        fest, change = m.group(1), True
    elif m := re.fullmatch(r" during the festival that honours the poet (\w+), in the town where it is held\?", rest):
        fest, change = tables["honours"].get(m.group(1)), True
        if fest is None:
            return None
    else:
        raise AssertionError(f"unparsed query {query!r}")
    if town is None:
        town = tables["held"].get(fest)
    if town is None or town not in tables["count"]:
        return None
    m_count, value = tables["count"][town]
    assert m_count == measure, (query, town)
    if change:
        if fest not in tables["modifier"]:
            return None
        m_mod, (op, k) = tables["modifier"][fest]
        assert m_mod == measure
        value = value * k if op == "*" else value + k if op == "+" else value - k
    return value


def shown_docs(p) -> list[str]:
    docs = p.meta["related_docs"] + p.meta["distractor_docs"]
    return [docs[i] for i in p.meta["order"]]


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def by_regime() -> dict[str, list]:
    """The same draw (train and test, every level) rendered in each regime."""
    out = {}
    for regime in REGIMES:
        t = get_task("evidence", regime=regime)
        out[regime] = t.problems("train", n=40) + t.problems("test", n=15)
    return out


@pytest.fixture(scope="module")
def many() -> list:
    """Many full-regime problems over several seeds."""
    t = get_task("evidence")
    return [p for seed in range(8) for p in t.problems("train", n=25, seed=seed)]


# ----------------------------------------------------------------------------- registry and options


def test_registered_with_the_evidence_flag_and_regime_option():
    assert {"evidence", "evidence_jsonl"} <= set(task_names())
    assert REGIMES == ("instruction", "concepts", "related", "full")
    assert EvidenceTask.evidence is True and EvidenceJsonlTask.evidence is True
    assert getattr(get_task("arithmetic"), "evidence", False) is False
    assert get_task("evidence").regime == "full"
    with pytest.raises(ValueError) as e:
        get_task("evidence", regime="documents")
    assert "documents" in str(e.value) and "instruction" in str(e.value)
    with pytest.raises(ValueError, match="regime"):
        get_task("evidence_jsonl", path="x.jsonl", regime="all")
    with pytest.raises(ValueError, match="answer_type"):
        get_task("evidence_jsonl", path="x.jsonl", answer_type="bool")
    with pytest.raises(ValueError, match="path"):
        get_task("evidence_jsonl")
    desc = dict((k, d) for k, _, d in describe_fields(TaskSpec))["name"]  # what --help says of task.name
    assert "evidence" in desc and "evidence_jsonl" in desc


# ----------------------------------------------------------------------------- prompts per regime


def block(question: str, header: str) -> list[str]:
    """The lines between ``header`` and the question line."""
    lines = question.splitlines()
    assert lines[0] == header, question
    end = next(i for i, ln in enumerate(lines) if ln.startswith("Question: "))
    return lines[1:end]


def test_each_regime_shows_exactly_its_evidence(by_regime):
    for regime, probs in by_regime.items():
        for p in probs:
            m = p.meta
            assert m["regime"] == regime
            q = p.question
            rel, dis, order = m["related_docs"], m["distractor_docs"], m["order"]
            rel_order = [i for i in order if i < len(rel)]
            assert query_of(q) == m["query"] and q.endswith("Answer with a number.")
            if regime == "instruction":
                assert q == f"Question: {m['query']}\nAnswer with a number."
                assert not re.search(r"\d", q), "the question alone must not carry a value"
                assert not any(c in q for c in m["concepts"])
            elif regime == "concepts":
                assert block(q, "Concepts:") == [f"- {m['concepts'][i]}" for i in rel_order]
                prose = [s for d in rel + dis for s in sentences(d) if s not in m["concepts"]]
                assert prose and not any(s in q for s in prose)
                assert "Evidence:" not in q and "[1]" not in q
            elif regime == "related":
                assert block(q, "Evidence:") == [f"[{k}] {rel[i]}" for k, i in enumerate(rel_order, 1)]
                assert not any(d in q for d in dis)
                assert not any(s in q for d in dis for s in sentences(d)), "no distractor sentence leaks"
            else:
                assert sorted(order) == list(range(len(rel) + len(dis)))
                assert block(q, "Evidence:") == [f"[{k}] {d}" for k, d in enumerate(shown_docs(p), 1)]
                assert all(d in q for d in rel + dis)


def test_full_order_is_a_seeded_shuffle(by_regime):
    full = by_regime["full"]
    again = get_task("evidence").problems("train", n=40) + get_task("evidence").problems("test", n=15)
    assert [p.meta["order"] for p in full] == [p.meta["order"] for p in again]
    assert [p.question for p in full] == [p.question for p in again]
    # shuffled, not related-first: related docs land in every position, distractors lead sometimes
    first_is_distractor = [p.meta["order"][0] >= len(p.meta["related_docs"]) for p in full]
    assert 0.2 < sum(first_is_distractor) / len(full) < 0.9
    assert len({tuple(p.meta["order"]) for p in full if p.level == 3}) > 10
    other_seed = get_task("evidence").problems("train", n=40, seed=1)
    assert [p.meta["order"] for p in other_seed] != [p.meta["order"] for p in full[:len(other_seed)]]


def test_ids_golds_and_parts_are_the_same_in_every_regime(by_regime):
    base = by_regime["full"]
    assert len({p.id for p in base}) == len(base)
    for regime, probs in by_regime.items():
        assert [p.id for p in probs] == [p.id for p in base]
        assert [(p.answer, p.level, p.split) for p in probs] == [(p.answer, p.level, p.split) for p in base]
        for p, b in zip(probs, base):
            assert regime not in p.id
            assert {k: v for k, v in p.meta.items() if k != "regime"} == \
                   {k: v for k, v in b.meta.items() if k != "regime"}
            if regime != "full":
                assert p.question != b.question
    # the four renderings of one instance differ and nest: fewer words with less evidence
    for ps in zip(*(by_regime[r] for r in REGIMES)):
        words = [len(p.question.split()) for p in ps]
        assert words == sorted(words) and len(set(words)) == 4


def test_train_and_test_are_disjoint_and_stable():
    t = get_task("evidence")
    train, test = t.problems("train", n=150), t.problems("test", n=40)

    def key(p):
        return (p.meta["query"], tuple(p.meta["concepts"]))

    assert not {key(p) for p in train} & {key(p) for p in test}
    assert not {p.question for p in train} & {p.question for p in test}
    assert len({key(p) for p in train}) == len(train)
    # the split is by instance: every regime that shows evidence has disjoint prompts; the bare question
    # of `instruction` names no value, so one sentence can ask about two fictional worlds, one per split
    r = get_task("evidence", regime="concepts")
    assert not {p.question for p in r.problems("train", n=150)} & {p.question for p in r.problems("test", n=40)}
    bare = get_task("evidence", regime="instruction")
    b_train, b_test = bare.problems("train", n=150), bare.problems("test", n=40)
    assert [p.id for p in b_train] == [p.id for p in train] and [p.id for p in b_test] == [p.id for p in test]
    assert [p.question for p in get_task("evidence").problems("train", n=150)] == [p.question for p in train]
    with pytest.raises(ValueError):
        t.problems("dev")


def test_levels():
    t = get_task("evidence")
    probs = t.problems("train", n=20)
    assert {p.level for p in probs} == set(LEVELS)
    for lv in LEVELS:
        assert sum(p.level == lv for p in probs) == 20
    for p in probs:
        assert len(p.meta["concepts"]) == len(p.meta["related_docs"]) == p.level
        assert len(p.meta["distractor_docs"]) == p.level + 1
        for d in p.meta["related_docs"] + p.meta["distractor_docs"]:
            assert 2 <= len(sentences(d)) <= 4, d
    assert {p.level for p in t.problems("train", n=5, levels=[3])} == {3}
    assert get_task("evidence", levels=[2]).levels == (2,)
    with pytest.raises(ValueError, match="level"):
        t.problems("train", n=5, levels=[5])


def test_level_three_full_prompt_stays_compact():
    probs = get_task("evidence").problems("train", n=200, levels=[3])
    assert max(len(p.question.split()) for p in probs) <= 250


# ----------------------------------------------------------------------------- gold and distractors


def test_gold_follows_from_the_concepts_and_every_concept_is_needed(many):
    golds = []
    for p in many:
        q = query_of(p.question)
        assert solve(q, facts_of(p.meta["concepts"])) == int(p.answer), p.question
        # each related document carries its concept
        assert solve(q, facts_of(p.meta["related_docs"])) == int(p.answer)
        # the full set (distractors included) is unambiguous and gives the same answer
        assert solve(q, facts_of(shown_docs(p))) == int(p.answer)
        for i in range(p.level):
            rest = p.meta["concepts"][:i] + p.meta["concepts"][i + 1:]
            assert solve(q, facts_of(rest)) is None, (p.id, i)
        golds.append(int(p.answer))
    assert set(golds) <= set(range(2, 19))
    # the answer is not guessable from the level: many values at every level with a change
    for lv in (3, 4):
        vals = [int(p.answer) for p in many if p.level == lv]
        assert len(set(vals)) >= 10 and max(vals.count(v) for v in set(vals)) / len(vals) < 0.25


def test_distractors_are_topical_and_conflict(many):
    flipped = total = 0
    for p in many:
        q = query_of(p.question)
        gold_tables = facts_of(p.meta["concepts"])
        all_tables = facts_of(shown_docs(p))
        for d in p.meta["distractor_docs"]:
            facts = [f for s in sentences(d) if (f := parse_fact(s))]
            assert len(facts) == 1, d
            kind, _, value = facts[0]
            assert gold_tables[kind], f"distractor relation {kind} is not one of the question's"
            # a solver that takes this distractor's value for the gold entity's
            confused = {k: dict(v) for k, v in all_tables.items()}
            (gold_key,) = gold_tables[kind]
            confused[kind][gold_key] = value
            total += 1
            flipped += solve(q, confused) != int(p.answer)
    # by design every distractor flips the answer (each is a twin of a concept, or another town)
    assert total and flipped == total, (flipped, total)


def test_keyword_matching_is_not_enough(many):
    """The name the question asks about also appears in a distractor that states the same relation."""
    naive_right = 0
    for p in many:
        first = parse_fact(p.meta["concepts"][0])  # (kind, the entity the question names, value)
        head = re.compile(rf"\b{first[1]}\b")     # whole words: the festival Orrin is not in Corrin
        assert head.search(query_of(p.question))
        hits = [d for d in shown_docs(p) if head.search(d) and any(
            (f := parse_fact(s)) and f[0] == first[0] for s in sentences(d))]
        assert len(hits) == 2 and any(d in p.meta["distractor_docs"] for d in hits), p.question
        # a keyword retriever taking the first document that names the entity
        f = next(parse_fact(s) for s in sentences(hits[0]) if parse_fact(s) and parse_fact(s)[0] == first[0])
        naive_right += f == first
    assert 0.2 < naive_right / len(many) < 0.8


# ----------------------------------------------------------------------------- oracle


def test_oracle_traces_are_credited_and_cite_what_is_shown(by_regime):
    for regime in ("concepts", "related", "full"):
        task = get_task("evidence", regime=regime)
        for p in by_regime[regime]:
            for style in STYLES:
                tr = task.oracle(p, style)
                text = format_assistant(tr.reasoning, tr.answer)
                assert task.score(text, p.answer) == (p.answer, True), (regime, style, text)
                assert task.score(text, str(int(p.answer) + 1))[1] is False
                assert "\n".join(s for s, _, _ in tr.sentences) == tr.reasoning
            long_, concise = task.oracle(p, "long"), task.oracle(p, "concise")
            n_steps = p.level + (p.level >= 3)
            assert len(concise.sentences) == n_steps and all(r for _, _, r in concise.sentences)
            assert sum(k == "step" for _, k, _ in long_.sentences) == n_steps
            assert {"restate", "step", "summary"} <= {k for _, k, _ in long_.sentences}
            assert any(not r for _, _, r in long_.sentences)
            # every concept is cited, and every citation is the document shown under that number
            shown = dict(re.findall(r"^\[(\d+)\] (.*)$", p.question, re.M))
            for c in p.meta["concepts"]:
                assert c in concise.reasoning
            for num, said in re.findall(r"^\[(\d+)\] says: (.*)$", long_.reasoning, re.M):
                assert said in shown[num] and said in p.meta["concepts"]
            cites = re.findall(r"^\[(\d+)\] says:", long_.reasoning, re.M)
            assert len(cites) == (0 if regime == "concepts" else p.level)
            if regime == "full":  # the twins set aside are distractors, named by their shown number
                asides = [s for s, k, _ in long_.sentences if k == "check" and s.startswith("[")]
                assert len(asides) == p.level
                for s in asides:
                    assert shown[re.match(r"\[(\d+)\]", s).group(1)] in p.meta["distractor_docs"]
            else:
                assert "set it aside" not in long_.reasoning and "does not apply" not in long_.reasoning


def test_oracle_without_evidence_says_so_and_guesses(by_regime):
    task = get_task("evidence", regime="instruction")
    right = 0
    for p in by_regime["instruction"]:
        for style in ("long", "concise"):
            tr = task.oracle(p, style)
            assert "guess" in tr.reasoning and ("No evidence" in tr.reasoning or "no documents" in tr.reasoning)
            assert not any(c in tr.reasoning for c in p.meta["concepts"])
        tr = task.oracle(p, "long")
        # the guess never looks at the gold
        assert task.oracle(p.model_copy(update={"answer": "99"}), "long").answer == tr.answer
        assert task.oracle(p, "none").answer == tr.answer == task.oracle(p, "concise").answer
        right += task.score(format_assistant(tr.reasoning, tr.answer), p.answer)[1]
    assert right / len(by_regime["instruction"]) < 0.3


def test_oracle_is_deterministic_rewrites_and_rejects_unknown_style(by_regime):
    task = get_task("evidence")
    p = next(p for p in by_regime["full"] if p.level == 4)
    assert task.oracle(p, "long").reasoning == task.oracle(p, "long").reasoning
    assert task.oracle(p, "long", seed=1).answer == p.answer
    with pytest.raises(ValueError):
        task.oracle(p, "verbose")
    long_ = task.oracle(p, "long")
    short = task.rewrite(p, long_.sentences, budget_words=10)
    assert [s for s in short.sentences if s[1] == "step"] == [s for s in long_.sentences if s[1] == "step"]
    assert len(short.reasoning.split()) < len(long_.reasoning.split()) and short.answer == p.answer


@pytest.mark.parametrize("text, expected", [("14", "14"), ("So the answer is 9.", "9"), ("none", None),
                                            ("2.5", None), ("", None)])
def test_synthetic_extract_answer(text, expected):
    assert get_task("evidence").extract_answer(text) == expected

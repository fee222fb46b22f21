"""Document-grounded questions under DeR2-style evidence regimes: the regimes and the synthetic family.

One instance (question, gold, concepts, related documents, distractor documents) is shown to a model
under one of four **regimes** (:data:`REGIMES`, task option ``regime``, default ``full``):

=============== ==========================================================================
``instruction`` the question only (nothing to ground it on: the answer can only be guessed)
``concepts``    the gold concepts, stated plainly (``Concepts:`` then one ``-`` line each)
``related``     the related documents only (``Evidence:`` then ``[1] ...``, ``[2] ...``)
``full``        related + distractor documents, in one seeded order per instance
=============== ==========================================================================

The regimes are nested: ``full`` shows the documents in a seeded permutation (``meta["order"]``,
indices into ``related_docs + distractor_docs``), ``related`` shows the related documents in the
order they have there, and (synthetic family) ``concepts`` lists each concept where its document
would be. A problem's id and gold do not depend on the regime, so the eval stage pairs an instance
across regimes by id (regime gaps: instruction -> concepts is what the evidence is worth,
concepts -> related the cost of reading prose, related -> full the cost of retrieval among
distractors). The regime is in ``meta["regime"]`` and the raw parts in ``meta["concepts"]``,
``meta["related_docs"]`` and ``meta["distractor_docs"]``. Both tasks carry ``evidence = True``.

**Synthetic family** ``evidence``: fictional towns, festivals and poets, with values drawn afresh
for every problem, so the answer is unknowable without evidence. Level = number of concepts::

    L1  In Brenna, the bells ring 7 times at noon.
        How many times do the bells ring at noon in Brenna?
    L2  + The Vorl festival is held in Brenna.
        ... in the town where the Vorl festival is held?
    L3  + During the Vorl festival, the bells ring twice as often.        (x2, +k or -k)
        ... during the Vorl festival, in the town where it is held?          -> 14
    L4  + The Vorl festival honours the poet Ansel.
        ... during the festival that honours the poet Ansel, in the town where it is held?

Three measures (bells at noon, lanterns on the bridge, boats at dawn); a town's value is 2..9, a festival
changes it by x2, +k or -k (k 2..4, results >= 2), so answers are integers 2..18.
Each related document wraps one concept in 2-3 sentences of prose about the same entity. The
``level + 1`` distractor documents are topical: a parallel chain over other entities with the same
relations and different values (each concept has such a "twin", and a solver that takes a twin's
value gets a different answer), one more town with its own value, and the twin of the first
concept also names the queried entity in passing ("Many families in Ostra came from Brenna."), so
matching the question's keywords is not enough. Train and test are disjoint by a hash of the
instance (question sentence + concepts), the same in every regime (so a bare ``instruction`` question,
which names no value, can occur in both splits: it asks about a different fictional world in each).

The oracle cites what the prompt shows (``[4] says: ...`` or ``The concepts say: ...``), notes the
twin distractors it sets aside (``full``) and combines the facts; in ``instruction`` it says there is
no evidence and guesses (a seeded guess that never looks at the gold). Mainly ``full`` is for training.

The user task ``evidence_jsonl`` (:mod:`thinkling.tasks.evidence_jsonl`) shows a user's instances
under the same regimes, rendered by :func:`render`.
"""

from __future__ import annotations

import random
import re
from functools import partial

from thinkling.records import Problem
from thinkling.tasks.base import OracleTrace, register_task
from thinkling.tasks.extract import integer_answer
from thinkling.tasks.synthetic import FlawedTrace, SyntheticFamily, draw_split

REGIMES = ("instruction", "concepts", "related", "full")
NUMBER_INSTRUCTION = "Answer with a number."
TEXT_INSTRUCTION = "Give the final answer on the last line."


def check_regime(task: str, regime: str) -> str:
    """``regime`` when it is one of :data:`REGIMES`, else a ValueError naming ``task``."""
    if regime not in REGIMES:
        raise ValueError(f"{task}: regime must be one of {', '.join(REGIMES)}; got {regime!r}")
    return regime


def related_order(order: list[int], n_related: int) -> list[int]:
    """The related documents' indices in the order ``full`` shows them."""
    return [i for i in order if i < n_related]


def render(query: str, instruction: str, regime: str, concepts: list[str], related: list[str],
           distractors: list[str], order: list[int], concept_order: list[int] | None = None) -> str:
    """The prompt of one instance in one regime.

    ``order`` is the ``full`` permutation of ``related + distractors``; ``concept_order`` the order
    concepts are listed in (default: as given).
    """
    q = f"Question: {query}\n{instruction}"
    if regime == "instruction":
        return q
    if regime == "concepts":
        idx = concept_order if concept_order is not None else range(len(concepts))
        return "Concepts:\n" + "\n".join(f"- {concepts[i]}" for i in idx) + "\n" + q
    docs = related + distractors
    shown = related_order(order, len(related)) if regime == "related" else order
    return "Evidence:\n" + "\n".join(f"[{k}] {docs[i]}" for k, i in enumerate(shown, 1)) + "\n" + q


def doc_labels(order: list[int], n_related: int, regime: str) -> dict[int, int]:
    """Document index (into related + distractors) -> the number it is shown under in ``regime``."""
    shown = related_order(order, n_related) if regime == "related" else order if regime == "full" else []
    return {i: k for k, i in enumerate(shown, 1)}


# ============================================================================ synthetic family

TOWNS = (
    "Brenna", "Ostra", "Calder", "Mirrow", "Dunmere", "Elsk", "Farrow", "Galt", "Hollin", "Keswyn",
    "Lorne", "Pellam", "Rask", "Sallow", "Tirn", "Umber", "Varn", "Wendle", "Yarrow", "Zell",
    "Astby", "Corrin", "Morva", "Nettrin",
)
FESTIVALS = (
    "Vorl", "Tamsk", "Quill", "Ambrel", "Dask", "Fennow", "Gorse", "Hesk", "Jubb", "Krell",
    "Lume", "Nisk", "Orrin", "Plim", "Skarra", "Wisp",
)
POETS = (
    "Ansel", "Berit", "Corwin", "Dagny", "Elric", "Fenna", "Greer", "Halden", "Isolde", "Joran",
    "Kestrel", "Liesl", "Maren", "Odo",
)

# measure -> (fact about a town, the question's opening, modifiers during a festival: op -> text)
MEASURES = {
    "bells": (
        "In {town}, the bells ring {n} times at noon.",
        "How many times do the bells ring at noon",
        {"x2": "During the {fest} festival, the bells ring twice as often.",
         "+": "During the {fest} festival, the bells ring {k} more times.",
         "-": "During the {fest} festival, the bells ring {k} fewer times."},
    ),
    "lanterns": (
        "In {town}, {n} lanterns hang on the bridge.",
        "How many lanterns hang on the bridge",
        {"x2": "During the {fest} festival, twice as many lanterns hang on the bridge.",
         "+": "During the {fest} festival, {k} more lanterns hang on the bridge.",
         "-": "During the {fest} festival, {k} fewer lanterns hang on the bridge."},
    ),
    "boats": (
        "In {town}, {n} boats leave the harbour at dawn.",
        "How many boats leave the harbour at dawn",
        {"x2": "During the {fest} festival, twice as many boats leave the harbour.",
         "+": "During the {fest} festival, {k} more boats leave the harbour.",
         "-": "During the {fest} festival, {k} fewer boats leave the harbour."},
    ),
}
HELD = "The {fest} festival is held in {town}."
HONOURS = "The {fest} festival honours the poet {poet}."
SUFFIX = {
    1: " in {town}?",
    2: " in the town where the {fest} festival is held?",
    3: " during the {fest} festival, in the town where it is held?",
    4: " during the festival that honours the poet {poet}, in the town where it is held?",
}

TOWN_PROSE = (
    "{town} lies on the bank of a slow river.", "Most families in {town} keep goats.",
    "The old bridge in {town} is made of grey stone.", "{town} is known for its blue doors.",
    "Traders come to {town} every spring.", "The streets of {town} are narrow and steep.",
)
FEST_PROSE = (
    "The {fest} festival lasts three days.", "Dancers at the {fest} festival wear green masks.",
    "Children fly paper kites at the {fest} festival.", "The {fest} festival begins with a song.",
    "People bake honey bread for the {fest} festival.",
)
POET_PROSE = ("{poet} wrote songs about the sea.", "{poet} lived in a house near the hills.",
              "Few people today have read {poet}.")
# the twin of the first concept names the queried entity in passing (keyword matching is not enough)
MENTION = {
    "town": ("Many families in {other} came from {name}.", "{other} trades wool with {name}."),
    "fest": ("The {other} festival is older than the {name} festival.",
             "Some say the {other} festival began as a copy of the {name} festival."),
    "poet": ("{other} was a pupil of {name}.", "{other} often quoted {name}."),
}

RESTATE = (
    "The question asks: {query} {source}",
    "Let me restate it. {query} {source}",
)
NEED = {
    "honours": ("First, which festival honours the poet {poet}?", "I need the festival that honours {poet}."),
    "held": ("Where is the {fest} festival held?", "Next I need the town of the {fest} festival."),
    "count": ("Now, the value for {town}.", "Then I look up {town}."),
    "modifier": ("What changes during the {fest} festival?", "Last, the change during the {fest} festival."),
}
ASIDE = ("{label} is about {other}, not {name}, so it does not apply.",
         "{label} mentions {other} instead of {name}; I set it aside.")
CHECK = ("Let me double-check: {calc}. Yes.", "Checking the arithmetic again: {calc}. Good.")
SUMMARY = ("So the answer is {ans}.", "Putting the facts together, the answer is {ans}.")


def _apply(op: str, b: int, k: int) -> int:
    return b * 2 if op == "x2" else b + k if op == "+" else b - k


def _calc(op: str, b: int, k: int) -> str:
    return f"{b}*2={b * 2}" if op == "x2" else f"{b}{op}{k}={_apply(op, b, k)}"


def _documents(rng: random.Random, chain: list[tuple], extra_fact: str, extra_town: str,
               festival_of: dict[str, str]) -> tuple[list[str], list[str]]:
    """The related documents (one per concept of ``chain``) and the distractors (each concept's twin,
    then ``extra_fact`` about ``extra_town``): each wraps its sentence in 1-2 sentences of prose about
    the same entity, no prose sentence twice in one problem when the pool allows. ``festival_of``: the
    festival that honours a poet (a poet's document is about that festival too)."""
    used: set[str] = set()

    def doc(concept: str, etype: str, about: str, extra: str | None = None) -> str:
        if etype == "town":
            pool = [s.format(town=about) for s in TOWN_PROSE]
        elif etype == "fest":
            pool = [s.format(fest=about) for s in FEST_PROSE]
        else:  # a poet's document is about the festival that honours them too
            fest = festival_of[about]
            pool = [s.format(poet=about) for s in POET_PROSE] + [s.format(fest=fest) for s in FEST_PROSE]
        fresh = [x for x in pool if x not in used]  # no sentence twice in one problem if avoidable
        prose = rng.sample(fresh if len(fresh) >= 2 else pool, rng.randint(1, 2))
        used.update(prose)
        if extra:
            prose[0] = extra
        sents = prose[:]
        sents.insert(rng.randint(0, len(sents)), concept)
        return " ".join(sents)

    head_type, head = chain[0][2], chain[0][3]
    related = [doc(c[1], c[2], c[3]) for c in chain]
    mention = rng.choice(MENTION[head_type]).format(other=chain[0][5], name=head)
    distractors = [doc(c[4], c[2], c[5], mention if i == 0 else None) for i, c in enumerate(chain)]
    distractors.append(doc(extra_fact, "town", extra_town))
    return related, distractors


def _instance_key(meta: dict) -> str:
    """The instance, whatever the regime: the question sentence and the concepts."""
    return "\n".join([meta["query"], *meta["concepts"]])


def _draw_modifier(rng: random.Random, b: int) -> tuple[str, int]:
    """A festival's change for base value ``b``: k >= 2 and a result >= 2 ("1 more times" reads badly)."""
    ops = ["x2", "+"] + (["-"] if b >= 4 else [])
    op = rng.choice(ops)
    k = 0 if op == "x2" else rng.randint(2, 4) if op == "+" else rng.randint(2, min(3, b - 2))
    return op, k


@register_task("evidence")
class EvidenceTask(SyntheticFamily):
    max_level = max(SUFFIX)
    """Fictional facts spread over documents; see the module docstring."""

    answer_type = "number"
    levels = (1, 2, 3, 4)
    evidence = True

    def __init__(self, levels: list[int] | None = None, regime: str = "full"):
        if levels:
            self.levels = tuple(levels)
        self.regime = check_regime("evidence", regime)

    # ------------------------------------------------------------------ problems

    def _make(self, rng: random.Random, level: int) -> dict:
        measure = rng.choice(sorted(MEASURES))
        fact_t, ask, mods = MEASURES[measure]
        t, t2, t3 = rng.sample(TOWNS, 3)     # queried town, its twin, one more town
        f, f2 = rng.sample(FESTIVALS, 2)
        p, p2 = rng.sample(POETS, 2)
        b = rng.randint(2, 9)
        b2 = rng.choice([v for v in range(2, 10) if v != b])
        b3 = rng.choice([v for v in range(2, 10) if v not in (b, b2)])
        op, k = _draw_modifier(rng, b)
        gold = _apply(op, b, k) if level >= 3 else b
        while True:  # the twin's change and the twin chain both give another answer
            op2, k2 = _draw_modifier(rng, b2)
            if level < 3 or (_apply(op2, b, k2) != gold and _apply(op2, b2, k2) != gold):
                break

        # (kind, concept text, entity type, about, twin text, twin about) in chain order
        chain = []
        if level >= 4:
            chain.append(("honours", HONOURS.format(fest=f, poet=p), "poet", p,
                          HONOURS.format(fest=f2, poet=p2), p2))
        if level >= 2:
            chain.append(("held", HELD.format(fest=f, town=t), "fest", f, HELD.format(fest=f2, town=t2), f2))
        chain.append(("count", fact_t.format(town=t, n=b), "town", t, fact_t.format(town=t2, n=b2), t2))
        if level >= 3:
            chain.append(("modifier", mods[op].format(fest=f, k=k), "fest", f, mods[op2].format(fest=f2, k=k2), f2))

        concepts = [c[1] for c in chain]
        related, distractors = _documents(rng, chain, fact_t.format(town=t3, n=b3), t3, {p: f, p2: f2})
        order = list(range(len(related) + len(distractors)))
        rng.shuffle(order)
        query = ask + SUFFIX[level].format(town=t, fest=f, poet=p)
        return {
            "query": query, "answer": str(gold), "measure": measure,
            "concepts": concepts, "related_docs": related, "distractor_docs": distractors, "order": order,
            # chain order; twin i is distractor i (the parallel chain over other entities)
            "steps": [{"kind": c[0], "about": c[3], "twin_about": c[5]} for c in chain],
            "town": t, "festival": f, "poet": p, "base": b, "op": op, "k": k,
        }

    def draw_level(self, split: str, level: int, n: int, seed: int) -> list[Problem]:
        """Up to ``n`` distinct instances of a level (level 1 has ~580 in all, so it may give fewer)."""
        space = len(TOWNS) * len(MEASURES) * 8 * (len(FESTIVALS) if level >= 2 else 1)
        want = min(n, int(0.8 * space * (0.1 if split == "test" else 0.9)))
        drawn = draw_split(self.name, split, level, seed, partial(self._make, level=level), want,
                           key=_instance_key, exact=False)
        out = []
        for pid, meta in drawn:
            gold = meta.pop("answer")
            meta["regime"] = self.regime
            out.append(Problem(id=pid, task=self.name, split=split, level=level,
                               question=self.render_prompt(meta), answer=gold, meta=meta))
        return out

    def _concept_order(self, meta: dict) -> list[int]:
        return related_order(meta["order"], len(meta["related_docs"]))  # concept i <-> related doc i

    def render_prompt(self, meta: dict, regime: str | None = None) -> str:
        """The prompt of an instance in ``regime`` (default: the one in its meta)."""
        return render(meta["query"], NUMBER_INSTRUCTION, regime or meta["regime"], meta["concepts"],
                      meta["related_docs"], meta["distractor_docs"], meta["order"], self._concept_order(meta))

    # ------------------------------------------------------------------ answers

    def extract_answer(self, text: str) -> str | None:
        return integer_answer(text)

    # ------------------------------------------------------------------ oracle teacher

    def oracle(self, problem: Problem, style: str, seed: int = 0) -> OracleTrace:
        return self._write(problem, style, seed)

    def flawed(self, problem: Problem, style: str, seed: int, rng: random.Random) -> FlawedTrace:
        """One honest mistake, by regime.

        ``full``: a twin distractor taken for the fact it parallels - the value of the twin town
        (``count``) or, from level 3, the twin festival's change (``modifier``), drawn with ``rng``; the
        trace cites the twin document where the right one was, does not set it aside, and computes on.
        ``concepts`` and ``related`` from level 3: an arithmetic slip in the festival's change, one off.
        ``instruction``: a guess that misses. ``concepts`` and ``related`` below level 3 have no step
        to slip in: the fallback (the reasoning as written, a wrong number).
        """
        m = problem.meta
        if style not in self.styles:
            raise ValueError(f"evidence oracle: unknown style {style!r} (styles: {', '.join(self.styles)})")
        gold = problem.answer or ""
        if m["regime"] == "instruction":
            guess = _guess(problem, seed)
            if guess == gold:
                guess = rng.choice([str(v) for v in range(2, 10) if str(v) != gold])
            tr = self._write(problem, style, seed, guess=guess)
            return _flawed(tr, "guess", f"guessed {guess} without evidence; the answer is {gold}")
        kinds = [st["kind"] for st in m["steps"]]
        b, op, k = m["base"], m["op"], m["k"]
        if m["regime"] == "full":
            pick = rng.choice([x for x in ("count", "modifier") if x in kinds])
            i = kinds.index(pick)
            sentence, value = _twin_fact(m, i)
            if pick == "count":
                b = int(value)
            else:
                op, k = value
            calc = _calc(op, b, k) if problem.level >= 3 else None
            ans = str(_apply(op, b, k) if problem.level >= 3 else b)
            tr = self._write(problem, style, seed, twin=(i, sentence), calc=calc, ans=ans)
            return _flawed(tr, "twin", f"took the twin's fact '{sentence}' for the {pick} of {m['steps'][i]['about']}; "
                                       f"the answer became {ans} instead of {gold}")
        if problem.level < 3:
            return super().flawed(problem, style, seed, rng)
        right = _apply(op, b, k)
        wrong = right + rng.choice((-1, 1))
        calc = _calc(op, b, k).rsplit("=", 1)[0] + f"={wrong}"
        tr = self._write(problem, style, seed, calc=calc, ans=str(wrong))
        return _flawed(tr, "slip", f"computed {calc} instead of {right}; the answer became {wrong} instead of {gold}")

    def _write(self, problem: Problem, style: str, seed: int, *, guess: str | None = None,
               twin: tuple[int, str] | None = None, calc: str | None = None, ans: str | None = None) -> OracleTrace:
        """The oracle's trace; the keywords write a flawed one (:meth:`flawed`): ``guess`` the guess without
        evidence, ``twin`` (step, twin's fact) a twin cited in the place of a step's document, ``calc``
        and ``ans`` the computation and answer written."""
        m = problem.meta
        if style not in self.styles:
            raise ValueError(f"evidence oracle: unknown style {style!r} (styles: {', '.join(self.styles)})")
        regime = m["regime"]
        knowledge = ("Facts about fictional places are known only from the evidence: follow the chain from "
                     "the name in the question to the value, ignore documents about other names, and apply "
                     "the festival's change last.")
        rng = random.Random(f"{problem.id}/{regime}/{seed}")
        if regime == "instruction":
            guess = guess or _guess(problem, seed)  # never looks at the gold
            if style == "none":
                return OracleTrace("", guess, [], knowledge)
            if style == "concise":
                s = f"No evidence is given, so I guess {guess}."
                return OracleTrace(s, guess, [(s, "step", True)], knowledge)
            sents = [
                (rng.choice(RESTATE).format(query=m["query"], source="Nothing else is given."), "restate", False),
                ("These names are not ones I know and no documents or concepts are given, so I cannot look "
                 "up the facts.", "step", True),
                (f"I have to guess: {guess}.", "step", True),
                (f"So my answer is a guess, {guess}.", "summary", False),
            ]
            return OracleTrace("\n".join(s for s, _, _ in sents), guess, sents, knowledge)

        ans = ans if ans is not None else problem.answer or ""
        if style == "none":
            return OracleTrace("", ans, [], knowledge)
        labels = doc_labels(m["order"], len(m["related_docs"]), regime)
        n_rel = len(m["related_docs"])

        def cite(i: int) -> str:
            if twin is not None and twin[0] == i:  # the twin's document, in the place of the right one
                return f"[{labels[n_rel + i]}] says: {twin[1]}"
            text = m["concepts"][i]
            return f"The concepts say: {text}" if regime == "concepts" else f"[{labels[i]}] says: {text}"

        if calc is None and problem.level >= 3:
            calc = _calc(m["op"], m["base"], m["k"])
        if style == "concise":
            lines = [cite(i) for i in range(len(m["steps"]))] + ([calc] if calc else [])
            return OracleTrace("\n".join(lines), ans, [(s, "step", True) for s in lines], knowledge)

        n_shown = len(m["concepts"]) if regime == "concepts" else len(labels)
        source = (f"There are {n_shown} concepts given." if regime == "concepts"
                  else f"There are {n_shown} documents to read.")
        sents: list[tuple[str, str, bool]] = [
            (rng.choice(RESTATE).format(query=m["query"], source=source), "restate", False)]
        names = {"poet": m["poet"], "fest": m["festival"], "town": m["town"]}
        for i, st in enumerate(m["steps"]):
            sents.append((rng.choice(NEED[st["kind"]]).format(**names), "transition", False))
            sents.append((cite(i), "step", True))
            if regime == "full":  # the twin: same relation, another entity, another value
                lab = f"[{labels[n_rel + i]}]"
                aside = rng.choice(ASIDE).format(label=lab, other=st["twin_about"], name=st["about"])
                if twin is None or twin[0] != i:  # a twin taken for the fact is not set aside
                    sents.append((aside, "check", False))
        if calc:
            sents.append((f"So the value changes: {calc}.", "step", True))
            sents.append((rng.choice(CHECK).format(calc=calc), "check", False))
        sents.append((rng.choice(SUMMARY).format(ans=ans), "summary", False))
        return OracleTrace("\n".join(s for s, _, _ in sents), ans, sents, knowledge)


def _guess(problem: Problem, seed: int) -> str:
    """The oracle's guess without evidence: seeded by the problem and sample, never by the gold."""
    return str(random.Random(f"{problem.id}/{seed}/guess").randint(2, 9))


def _flawed(tr: OracleTrace, mistake: str, detail: str) -> FlawedTrace:
    return FlawedTrace(tr.reasoning, tr.answer, tr.sentences, tr.knowledge, mistake=mistake, detail=detail)


def _twin_fact(meta: dict, i: int) -> tuple[str, int | tuple[str, int]]:
    """The twin of step ``i`` (a ``count`` or ``modifier``) read from its distractor document: the
    sentence, and its value (the twin town's count, or the twin festival's (op, k))."""
    fact_t, _, mods = MEASURES[meta["measure"]]
    about = meta["steps"][i]["twin_about"]
    doc = meta["distractor_docs"][i]
    if meta["steps"][i]["kind"] == "count":
        templates = {None: fact_t.format(town=about, n="QQNQQ")}
    else:
        templates = {op: t.format(fest=about, k="QQKQQ") for op, t in mods.items()}
    for op, t in templates.items():
        pat = re.escape(t).replace("QQNQQ", r"(?P<n>\d+)").replace("QQKQQ", r"(?P<k>\d+)")
        hit = re.search(pat, doc)
        if hit is None:
            continue
        if op is None:
            return hit.group(0), int(hit.group("n"))
        return hit.group(0), (op, int(hit.group("k")) if op != "x2" else 0)
    raise ValueError(f"evidence: no twin fact in distractor {i}: {doc!r}")

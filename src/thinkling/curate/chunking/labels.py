"""Sentences of a rationale and their reasoning / non-reasoning labels (see the package docstring)."""

from __future__ import annotations

import re
from dataclasses import dataclass


# -------------------------------------------------------------------------------- sentence split

# sentence-final punctuation (with closing quotes/brackets) followed by whitespace
_SENT_END = re.compile(r"""[.!?]+["')\]]*(?=\s)""")
_ABBREV = {"e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "st", "no", "approx", "cf", "fig", "eq"}
_ACRONYM = re.compile(r"(?<![A-Za-z.])(?:[A-Za-z]\.){2,}$")
_LIST_MARKER = re.compile(r"(?:\(?\d{1,3}|\(?[A-Za-z])[.)]?")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans ``[start, end)`` of the sentences of ``text``, without surrounding whitespace.

    Splits at newlines and after ``.``, ``!`` or ``?`` (plus closing quotes or brackets) followed by
    whitespace. A period inside a token never splits (``3.5``, ``b=a+2=4+2=6``, ``$0.2``), nor one
    after a common abbreviation (``e.g.``, ``Mr.``), a dotted acronym (``P.E.``, ``a.m.``) or a bare
    list marker (``1.``, ``a)``).
    """
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text):
        base, s = line.start(), line.group()
        start = 0
        for m in _SENT_END.finditer(s):
            piece = s[start:m.end()].strip()
            last_word = re.search(r"([A-Za-z.]+)[.!?]*[\"')\]]*$", piece)
            if last_word and m.group()[0] == "." and last_word.group(1).lower().rstrip(".") in _ABBREV:
                continue
            if _LIST_MARKER.fullmatch(piece.rstrip(".)")) or _LIST_MARKER.fullmatch(piece):
                continue
            if _ACRONYM.search(piece):  # "P.E.", "a.m.", "U.S."
                continue
            _add_span(spans, s, base, start, m.end())
            start = m.end()
        _add_span(spans, s, base, start, len(s))
    return spans


def _add_span(spans: list[tuple[int, int]], s: str, base: int, a: int, b: int) -> None:
    while a < b and s[a].isspace():
        a += 1
    while b > a and s[b - 1].isspace():
        b -= 1
    if b > a:
        spans.append((base + a, base + b))


# ------------------------------------------------------------------------------------- labeller

# English function words and discourse words: never subjects of a binding nor entity names.
FUNCTION_WORDS = frozenset("""
a an the this that these those it its it's there here what which who whom whose where when why how
i me my we us our you your he him his she her they them their one ones someone something anything
everything nothing everyone all each every both either neither some any no none not nor and or but
so then thus hence therefore because since if else than as of to in on at by for from with without
into onto about over under between after before during is are was were be been being am do does
did done have has had will would shall should can could may might must let lets let's also just
only very too yes ok okay well now next first last finally again wait hmm oh ah alright right good
true false sure maybe perhaps indeed actually really here's that's what's answer answers result
results question problem step steps goal task idea plan thing things way point case same other
another such
""".split())

_NUM = re.compile(r"(?<![A-Za-z_\d.])(?:(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?|(\.\d+))")
_OPERAND = r"\(?[$£€]?-?(?:(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)(?:[A-Za-z_]\w*)?|[A-Za-z_]\w*)%?\)?"
_OPERATOR = r"\s*(?:[-+*/×÷^]|(?<=\s)x(?=\s))\s*"
_TERM = rf"{_OPERAND}(?:{_OPERATOR}{_OPERAND})*"
_CHAIN = re.compile(rf"(?<![\w.$£€]){_TERM}(?:\s*=\s*{_TERM})+")
_OPERAND_RE = re.compile(_OPERAND)
_TERM_ANY = re.compile(rf"(?<![\w.$£€]){_TERM}")
# formulas written in words: "48 divided by 2 is 24" reads as "48 / 2 = 24"
_WORD_OPS = [(re.compile(rf"(?<=[\w)%])\s+{w}\s+(?=[$£€(]?[\w.])", re.IGNORECASE), f" {op} ")
             for w, op in (("(?:divided by|over)", "/"), ("(?:times|multiplied by)", "*"), ("plus", "+"),
                           ("minus", "-"), ("(?:equals|is equal to)", "="))]
_IS_AFTER_FORMULA = re.compile(rf"((?<![\w.$£€]){_OPERAND}(?:{_OPERATOR}{_OPERAND})+)\s+(?:is|gives|makes)\s+"
                               r"(?=[$£€]?-?\.?\d)")
_TIMES_X = re.compile(r"(?<=\s)x(?=\s)")
_IDENT = re.compile(r"[A-Za-z_]\w*")
# "let S be the cost", "let the cost be S": a new named quantity
_DEFINE = re.compile(r"\blet(?:['’]s| us)?\s+(?:([A-Za-z]\w*)\s+(?:be|denote|represent|stand for)\b"
                     r"|(?:make|call|use)\s+([A-Za-z])\b|[^.;:=]{1,60}?\s+be\s+([A-Za-z])\b)", re.IGNORECASE)
_PERCENT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*%")
_ADVERB = r"(?:also|therefore|thus|then|hence|indeed|definitely|certainly|still|now|really)"
_IS = re.compile(rf"(?<![\w'-])([A-Za-z][A-Za-z']*)\s+(?:{_ADVERB}\s+)?"
                 rf"(?:is|are|was|were|equals|becomes|(?:must|would|should|will|can|could|has to|have to)\s+"
                 rf"(?:{_ADVERB}\s+)?be)\s+(?:{_ADVERB}\s+)?(not\s+)?(?:(?:a|an|the)\s+)?"
                 r"([$£€]?-?\d[\d,]*(?:\.\d+)?|[A-Za-z][\w'-]*)")
_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
_CAP = re.compile(r"(?<![\w'])([A-Z][a-z]+(?:'s)?)")
_CALC = re.compile(r"<<[^>]*>>")
_BOXED = re.compile(r"\\boxed\s*\{([^{}]*)\}")
# "the (final) answer (to the question) is 42": the keyword and a single restated value
_ANSWER_CLAUSE = re.compile(
    r"\b(?:answers?|results?)\b(?:\s+(?:to|of|for)\b[^,;:!?=\n]{0,40}?)?\s*(?:is|=|:|equals|will be|would be|"
    r"should be|must be)?\s*(?:[$£€]?-?(?:\d[\d,]*(?:\.\d+)?|[A-Za-z]\w*)%?(?![\w,]|\.\d|\s*(?:[-+*/×÷^=]|x\s)))?",
    re.IGNORECASE)
_LEADING_MARKER = re.compile(r"^\s*(?:step\s+)?\d{1,3}\s*[.):]\s", re.IGNORECASE)


def _num(m: re.Match) -> str:
    """Normalised number of a ``_NUM`` match: ``1,200`` -> ``1200``, ``2.50`` -> ``2.5``, ``.20`` -> ``0.2``."""
    whole = str(int(m.group(1).replace(",", ""))) if m.group(1) else "0"
    frac = (m.group(2) or m.group(3) or "").rstrip("0")
    return whole + (frac if frac != "." else "")


def _numbers(text: str) -> set[str]:
    return {_num(m) for m in _NUM.finditer(text)}


def _norm_term(term: str) -> str:
    t = _TIMES_X.sub("*", term)
    t = re.sub(r"\s|[$£€]|(?<=\d),(?=\d{3})", "", t).lower().replace("×", "*").replace("÷", "/")
    m = _NUM.fullmatch(t)
    return _num(m) if m else t


def _term_mentions(term: str) -> set[str]:
    t = _TIMES_X.sub("*", term)
    return _numbers(t) | {w.lower() for w in _IDENT.findall(t)}


@dataclass(frozen=True)
class _Fact:
    key: tuple                 # identity of the fact: what "known" compares (kind first)
    uses: frozenset[str]       # mentions by which a later sentence uses the fact
    subject: str = ""          # a referent the fact is about (for later "X is Y" statements)
    inputs: frozenset[str] = frozenset()  # numbers a computation starts from


@dataclass
class _Parsed:
    facts: list[_Fact]
    mentions: set[str]  # lower-case words ('a' and 'i' only inside formulas) and normalised numbers
    implied: set[tuple]  # computations stated together with a value, in any wording: known afterwards


def _clean(text: str) -> str:
    text = _CALC.sub(" ", text)
    text = _BOXED.sub(r" \1 ", text)
    return _LEADING_MARKER.sub(" ", text)


def _parse(sentence: str, entities: set[str], referents: set[str], known_mentions: set[str]) -> _Parsed:
    """Facts and mentions of one sentence. ``referents`` and ``known_mentions`` decide whether an
    ``X is Y`` statement binds (see the module doc)."""
    text = _clean(sentence)
    mentions = _numbers(text) | {w.lower() for w in _WORD.findall(text)} - {"a", "i"}
    # "the answer is 42" restates the conclusion: its value is not a new fact
    stated = _ANSWER_CLAUSE.sub(" ", text)
    facts = [_Fact(("num", n), frozenset([n])) for n in sorted(_numbers(stated))]
    # "b equals 3 - 1, which is 2": the computation 3-1 and the value 2 are both on record now, so
    # a later "3 - 1 = 2" re-derives a known value
    exprs = {_norm_term(m.group()) for m in _TERM_ANY.finditer(text) if _OPERAND_RE.fullmatch(m.group()) is None}
    implied = {("rel", e, n) for e in exprs for n in _numbers(text)}
    formulas = stated
    for pattern, op in _WORD_OPS:
        formulas = pattern.sub(op, formulas)
    formulas = _IS_AFTER_FORMULA.sub(r"\1 = ", formulas)
    for m in _CHAIN.finditer(formulas):
        terms = [t.strip() for t in re.split(r"\s*=\s*", m.group())]
        for t in terms:
            mentions |= _term_mentions(t)
        for i, t in enumerate(terms[:-1]):
            if _OPERAND_RE.fullmatch(t) is None:
                # a computation (operator on the left): each later term is an inference from it
                inputs = _numbers(_TIMES_X.sub("*", t))
                about = _term_mentions(t) - inputs  # the unknowns it constrains ("4 * x = 9400": x)
                for u in terms[i + 1:]:
                    facts.append(_Fact(("rel", _norm_term(t), _norm_term(u)), frozenset(_term_mentions(u) | about),
                                       inputs=frozenset(inputs)))
            elif _IDENT.fullmatch(t) and t.lower() not in FUNCTION_WORDS - {"a", "i"}:
                x = t.lower()  # an identifier on the left: bound to each later term
                for u in terms[i + 1:]:
                    v = _norm_term(u)
                    facts.append(_Fact(("bind", x, v), frozenset({x} | ({v} if _NUM.fullmatch(v) else set())), x))
    for m in _DEFINE.finditer(stated):
        x = (m.group(1) or m.group(2) or m.group(3)).lower()
        if x not in FUNCTION_WORDS:  # not "let me be clear", "let it be a ..."
            facts.append(_Fact(("def", x), frozenset([x]), x))
    for m in _IS.finditer(stated):
        subj, neg, val = m.group(1).lower(), bool(m.group(2)), m.group(3)
        if subj.removesuffix("'s") in FUNCTION_WORDS:
            continue
        vnum = _NUM.fullmatch(val.lstrip("$£€"))
        v = _num(vnum) if vnum else val.lower()
        if not vnum and v in FUNCTION_WORDS:
            continue
        if subj not in referents and v in known_mentions:
            continue  # "the next variable is d": a descriptor, not a referent, pointing at a known thing
        # "d is 2" is the same fact as "d=2"; "x is not a y" binds x to "not y"
        facts.append(_Fact(("bind", subj, f"not {v}" if neg else v), frozenset({subj, v}), subj))
    for m in _CAP.finditer(stated):
        name = m.group(1).lower().removesuffix("'s")
        if name in entities:
            facts.append(_Fact(("ent", name), frozenset([name]), name))
    # a percentage is used later as a fraction: "75%" is used by "60 x .75"
    as_fraction = {_norm_term(m.group(1)): _norm_term(str(float(m.group(1)) / 100)) for m in _PERCENT.finditer(text)}
    if as_fraction:
        facts = [_Fact(f.key, f.uses | {as_fraction[u] for u in f.uses if u in as_fraction}, f.subject, f.inputs)
                 for f in facts]
    return _Parsed(facts, mentions, implied)


def _entity_names(texts: list[str]) -> set[str]:
    """Capitalised words seen capitalised after the start of a sentence or clause, and never in
    lower case (``Rina``, ``April``; not ``Wait``, ``Putting``, ``Every``)."""
    caps, lower = set(), set()
    for text in texts:
        for w in _WORD.findall(text):
            if w[0].islower():
                lower.add(w.lower().removesuffix("'s"))
        for m in _CAP.finditer(text):
            before = text[:m.start()].rstrip()
            if before and before[-1] not in ".!?:;\"'(":
                caps.add(m.group(1).lower().removesuffix("'s"))
    return {c for c in caps - lower if c not in FUNCTION_WORDS}


def label_sentences(question: str, sentences: list[str], answer: str) -> list[bool]:
    """True for each sentence that introduces a fact not known before and used later (module doc)."""
    q_sents = [question[a:b] for a, b in split_sentences(question)] or [question]
    entities = _entity_names(q_sents + list(sentences) + [answer])
    # the question's own capitalised words are known referents even at a sentence start
    entities |= {m.group(1).lower().removesuffix("'s") for s in q_sents for m in _CAP.finditer(s)} - FUNCTION_WORDS
    known_mentions = {w.lower() for s in q_sents for w in _WORD.findall(_clean(s))}
    referents = known_mentions - FUNCTION_WORDS
    known: set[tuple] = set()
    for s in q_sents:
        p = _parse(s, entities, referents, known_mentions)
        known.update(f.key for f in p.facts)
        known |= p.implied
        known_mentions |= p.mentions
        referents.update(f.subject for f in p.facts if f.subject)
    queries = [s for s in q_sents if s.rstrip().endswith("?")] or q_sents[-1:]
    consumers = set().union(*(_parse(s, entities, referents, known_mentions).mentions for s in [*queries, answer]))

    def is_new(f: _Fact) -> bool:
        if f.key in known:
            return False
        # re-deriving a value computed before from quantities all made up on the spot is a self-check
        # ("40 + 20 is 60, 8 + 4 is 12, 60 + 12 = 72" after "48 + 24 = 72")
        return not (f.key[0] == "rel" and f.key[2] in derived and f.inputs and f.inputs.isdisjoint(known_mentions))

    parsed: list[_Parsed] = []
    new_facts: list[list[_Fact]] = []
    derived: set[str] = set()  # values computed earlier in the trace
    for s in sentences:
        p = _parse(s, entities, referents, known_mentions)
        parsed.append(p)
        new_facts.append([f for f in p.facts if is_new(f)])
        derived.update(f.key[2] for f in p.facts if f.key[0] == "rel")
        known.update(f.key for f in p.facts)
        known |= p.implied
        known_mentions |= p.mentions
        referents.update(f.subject for f in p.facts if f.subject)
    labels: list[bool] = []
    later = set(consumers)
    for i in range(len(sentences) - 1, -1, -1):  # walk backwards, accumulating later mentions
        labels.append(any(f.uses & later for f in new_facts[i]))
        later |= parsed[i].mentions
    return labels[::-1]

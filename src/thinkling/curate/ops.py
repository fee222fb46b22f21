"""Curation ops: named functions in a registry, each with its own options and per-reason drop counts.

An op takes the current examples and returns ``(kept, dropped)`` where ``dropped`` maps a reason
(``wrong_answer``, ``truncated``, ``duplicate``, ``contaminated``, ...) to the examples removed for
it. Dropped examples are never deleted: the stage writes them beside the kept ones (incorrect traces
become ``negatives.jsonl``, which later training methods use). An op that rewrites an example
(``compress``) returns a copy; raw traces on disk are never touched.

Each op declares an options model; ``CurateConfig`` gets one section per registered op (``verify.*``,
``compress.*``, ...), so a new op plugs in with ``@register_op("name", MyOptions)`` and its keys
appear in ``thinkling curate --help``. Ops that call a teacher (``difficulty``, ``compress``,
``knowledge``) go through :func:`ask`, which logs every reply under the op's view directory keyed
by the request, so a crashed curation resumes without paying for the same call twice.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from thinkling.artifacts import AppendLog, DataError, iter_jsonl, stable_hash
from thinkling.config import StageConfig
from thinkling.curate.chunking import ChunkOptions
from thinkling.generate.backends import Reply, Request, SamplingParams, TeacherSpec, build_backend
from thinkling.records import Example, Problem
from thinkling.registry import Registry

OpResult = tuple[list[Example], dict[str, list[Example]]]


class OpOptions(StageConfig):
    """Options of an op without any."""


@dataclass
class OpContext:
    task: Any
    problems: dict[str, Problem]
    options: Any
    workdir: Path
    console: Any = None
    source: list[Example] = field(default_factory=list)  # every trace as loaded, before any op dropped some
    report: dict[str, Any] = field(default_factory=dict)  # extra figures the op wants in the manifest


@dataclass
class OpSpec:
    fn: Callable[[list[Example], OpContext], OpResult]
    options: type[StageConfig]
    doc: str


OPS: Registry[OpSpec] = Registry("curation op")
op_names = OPS.names


def register_op(name: str, options: type[StageConfig] = OpOptions):
    def deco(fn):
        doc = (fn.__doc__ or name).strip().split("\n\n")[0].replace("\n", " ")
        OPS.add(name, OpSpec(fn, options, doc))
        return fn

    return deco


def get_op(name: str) -> OpSpec:
    return OPS.get(name)


# ----------------------------------------------------------------------------- teacher calls


def ask(ctx: OpContext, teacher: TeacherSpec, sampling: SamplingParams, requests: list[Request],
        label: str, chunk_size: int = 64) -> dict[str, Reply | Exception]:
    """Send role requests to a teacher; replies are logged in ``<view>/calls.jsonl`` by request key.

    Keys already in the log (from an earlier, interrupted run) are not asked again. Failures are
    returned as exceptions (and not logged, so a re-run retries them).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    log_path = ctx.workdir / "calls.jsonl"
    done: dict[str, Reply | Exception] = {}
    if log_path.exists():
        for r in iter_jsonl(log_path):
            done[r["key"]] = Reply(**{k: v for k, v in r.items() if k != "key"})
    todo = [r for r in requests if r.key not in done]
    if not todo:
        return done
    backend = build_backend(teacher, ctx.task)
    log = AppendLog(log_path)
    try:
        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=ctx.console, transient=True) as bar:
            job = bar.add_task(label, total=len(requests), completed=len(requests) - len(todo))
            for s in range(0, len(todo), chunk_size):
                part = todo[s:s + chunk_size]
                replies = backend.generate(part, sampling)
                good = []
                for req, rep in zip(part, replies):
                    done[req.key] = rep
                    if not isinstance(rep, Exception):
                        good.append({"key": req.key, "reasoning": rep.reasoning, "answer": rep.answer,
                                     "finish_reason": rep.finish_reason, "prompt_tokens": rep.prompt_tokens,
                                     "completion_tokens": rep.completion_tokens})
                log.append(good)
                bar.update(job, advance=len(part))
    finally:
        log.close()
        backend.close()
    return done


def _request(role: str, teacher: TeacherSpec, problem: Problem, prompt: str, index: int = 0,
             **context) -> Request:
    messages = [{"role": "user", "content": prompt}]
    key = stable_hash({"teacher": teacher.teacher_id(), "role": role, "prompt": messages, "index": index,
                       "context": context})
    return Request(key=key, problem=problem, messages=messages, sample_index=index, role=role, context=context)


def _words(text: str) -> int:
    return len(text.split())


# ----------------------------------------------------------------------------- verify


class VerifyOptions(StageConfig):
    keep_best: int | None = Field(
        None, ge=1, description="rejection sampling: keep at most this many correct traces per problem, "
        "shortest reasoning first (the rest are dropped as 'not_best')")


@register_op("verify", VerifyOptions)
def verify(examples: list[Example], ctx: OpContext) -> OpResult:
    """Check each trace's final answer with the task's verifier (math-verify for math, labels for logic).

    Truncated traces and traces whose answer cannot be parsed are dropped with their own reasons;
    wrong answers are dropped as ``wrong_answer`` (and kept on disk as negatives). A gold answer that
    cannot be parsed is ``unparseable_gold``: counted, never credited.
    """
    kept: list[Example] = []
    dropped: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        if ex.meta.get("finish_reason", "stop") == "length":
            ex.correct = False
            dropped["truncated"].append(ex)
            continue
        if ex.gold is None:
            ex.correct = None
            dropped["unparseable_gold"].append(ex)
            continue
        pred = ctx.task.extract_answer(ex.answer)
        if pred is None:
            ex.correct = False
            dropped["no_answer" if not ex.answer.strip() else "unparseable"].append(ex)
            continue
        ex.correct = ctx.task.verify(pred, ex.gold)
        (kept if ex.correct else dropped["wrong_answer"]).append(ex)
    k = ctx.options.keep_best
    if k is not None:
        by_problem: dict[str, list[Example]] = defaultdict(list)
        for ex in kept:
            by_problem[ex.problem_id].append(ex)
        best = {id(e) for xs in by_problem.values() for e in sorted(xs, key=lambda e: _words(e.reasoning))[:k]}
        dropped["not_best"] = [e for e in kept if id(e) not in best]
        kept = [e for e in kept if id(e) in best]
    return kept, {r: xs for r, xs in dropped.items() if xs}


# ----------------------------------------------------------------------------- dedup


class DedupOptions(StageConfig):
    near: bool = Field(
        False, description="also drop near-duplicates (word n-gram Jaccard, see `method`). Off by default: "
        "two problems that differ in one number are near-duplicates by n-grams but teach different things; turn it "
        "on for scraped or multi-source data")
    n: int = Field(5, ge=1, description="word n-gram size for near-duplicate detection")
    threshold: float = Field(0.8, gt=0, le=1, description="Jaccard similarity at or above which two traces are near-duplicates")
    method: Literal["exact-ngrams", "minhash"] = Field(
        "exact-ngrams", description="exact-ngrams: exact Jaccard over pairs sharing a rare n-gram (no misses; "
        "faster on short texts); minhash: MinHash + LSH banding, candidates checked exactly (for long texts)")


@register_op("dedup", DedupOptions)
def dedup(examples: list[Example], ctx: OpContext) -> OpResult:
    """Drop exact duplicates of (question, reasoning, answer), then (``near``) near-duplicates, keeping the first.

    Near-duplicates are compared on question + reasoning + answer, so two different problems with the
    same reasoning template are not merged (their questions differ).
    """
    seen: set[tuple[str, str, str]] = set()
    kept, dups = [], []
    for ex in examples:
        k = (ex.question, ex.reasoning.strip(), ex.answer.strip())
        if k in seen:
            dups.append(ex)
        else:
            seen.add(k)
            kept.append(ex)
    dropped: dict[str, list[Example]] = {"duplicate": dups} if dups else {}
    if ctx.options.near and kept:
        from thinkling.curate.overlap import near_duplicates

        of = near_duplicates([f"{e.question}\n{e.reasoning}\n{e.answer}" for e in kept],
                             n=ctx.options.n, threshold=ctx.options.threshold, method=ctx.options.method)
        near = [e for e, o in zip(kept, of) if o is not None]
        for e, o in zip(kept, of):
            if o is not None:
                e.meta["near_duplicate_of"] = kept[o].id
        kept = [e for e, o in zip(kept, of) if o is None]
        if near:
            dropped["near_duplicate"] = near
    return kept, dropped


# ----------------------------------------------------------------------------- decontaminate


class DecontaminateOptions(StageConfig):
    sets: list[str] | None = Field(
        None, description="evaluation sets to check against (None = every test split found in data_dir)")
    data_dir: str | None = Field(None, description="benchmark data root, holding gsm8k/, math500/, ... (default: each "
                                 "task's own data dir: $THINKLING_<TASK>_DIR, else $THINKLING_DATA_DIR/<folder>, "
                                 "else ../shared/data/<folder>)")
    n: int = Field(6, ge=3, description="anchor word n-gram size: an eval item is a candidate when it shares one")
    min_overlap: float = Field(
        0.75, gt=0, le=1, description="share of the eval item's words that must line up, in order, with the "
        "training question (runs of >= 2 words; a same-length gap of <= 2 words - a changed name or number - "
        "counts); templated logic sets need 90% covered by shared 13-grams")


@register_op("decontaminate", DecontaminateOptions)
def decontaminate(examples: list[Example], ctx: OpContext) -> OpResult:
    """Drop examples whose question overlaps an evaluation set (word n-grams); report the ids removed."""
    from thinkling.curate.overlap import EVAL_SETS, ContaminationIndex

    opts = ctx.options
    data_dir = Path(opts.data_dir) if opts.data_dir else None  # None: each eval task's own data dir
    names = opts.sets if opts.sets is not None else sorted(EVAL_SETS)
    unknown = [s for s in names if s not in EVAL_SETS]
    if unknown:
        raise ValueError(f"decontaminate.sets: unknown evaluation set(s) {unknown}; known: {', '.join(sorted(EVAL_SETS))}")
    sets = []
    for name in names:
        try:
            sets.append(EVAL_SETS[name](data_dir))
        except DataError as e:
            if opts.sets is not None:  # asked for by name: a missing file is an error
                raise
            if ctx.console is not None:
                ctx.console.print(f"[yellow]decontaminate[/]: skipping {name}: {e}")
    index = ContaminationIndex(sets, n=opts.n, min_overlap=opts.min_overlap)
    kept, bad = [], []
    removed: list[dict[str, Any]] = []
    for ex in examples:
        hits = index.match(ex.question)
        if hits:
            ex.meta["contaminated_by"] = [{"set": s, "id": i, "overlap": round(o, 3)} for s, i, o in hits]
            bad.append(ex)
            removed.append({"id": ex.id, "problem_id": ex.problem_id, "matches": ex.meta["contaminated_by"]})
        else:
            kept.append(ex)
    ctx.report["checked_against"] = {s.name: len(s.items) for s in sets}
    ctx.report["removed"] = removed
    return kept, {"contaminated": bad} if bad else {}


# ----------------------------------------------------------------------------- difficulty

JUDGE_PROMPT = (
    "Rate how difficult the following problem is on a scale from 1 to {tiers}, where 1 means it takes "
    "one or two obvious steps and {tiers} means it takes many steps or a non-obvious idea. "
    "Do not solve it. Reply with the number only.\n\nProblem:\n{question}"
)


class DifficultyOptions(StageConfig):
    method: Literal["traces", "sample", "judge", "level"] = Field(
        "traces", description="traces: pass rate over the problem's traces already here (verified); sample: pass "
        "rate over k samples from `teacher` (e.g. a student, backend=hf); judge: the teacher rates the problem "
        "with `prompt`; level: the task's own level mapped onto the tiers")
    tiers: int = Field(3, ge=2, le=10, description="number of difficulty tiers (1 = easiest)")
    pass_thresholds: list[float] = Field(
        [0.75, 0.35], description="pass-rate cut points, descending: pass >= t[0] is tier 1, >= t[1] tier 2, ... "
        "(tiers-1 values)")
    k: int = Field(4, ge=1, description="sample: samples per problem")
    teacher: TeacherSpec = Field(default_factory=TeacherSpec, description="backend for sample/judge")
    sampling: SamplingParams = Field(default_factory=lambda: SamplingParams(temperature=1.0, max_tokens=512))
    prompt: str = Field(JUDGE_PROMPT, description="judge prompt ({question}, {tiers})")


def _tier_from_pass(rate: float, thresholds: list[float]) -> int:
    for i, t in enumerate(thresholds):
        if rate >= t:
            return i + 1
    return len(thresholds) + 1


@register_op("difficulty", DifficultyOptions)
def difficulty(examples: list[Example], ctx: OpContext) -> OpResult:
    """Grade each problem into tiers (pass rate over k samples, or the teacher's judgement); drops nothing.

    The tier is recorded on the problem (``problems.jsonl`` of the curated view, ``meta.difficulty``)
    and copied to each example's ``meta.difficulty`` for later ops (``compress``, ``select``).
    A problem the judge cannot rate gets no tier (counted as ``unrated``); later ops treat it as the
    hardest tier, which compresses least.
    """
    opts: DifficultyOptions = ctx.options
    if len(opts.pass_thresholds) != opts.tiers - 1 or sorted(opts.pass_thresholds, reverse=True) != opts.pass_thresholds:
        raise ValueError(f"difficulty.pass_thresholds must be {opts.tiers - 1} descending values, got {opts.pass_thresholds}")
    pids = list(dict.fromkeys(e.problem_id for e in examples))
    tier: dict[str, int | None] = {}
    rate: dict[str, float] = {}
    if opts.method == "level":
        top = max(ctx.task.levels)
        for pid in pids:
            lv = ctx.problems[pid].level
            tier[pid] = max(1, min(opts.tiers, math.ceil(lv * opts.tiers / top)))
    elif opts.method == "traces":  # over every sample of the problem, also those an earlier op dropped
        by: dict[str, list[bool]] = defaultdict(list)
        for e in ctx.source or examples:
            pred = ctx.task.extract_answer(e.answer)
            by[e.problem_id].append(e.meta.get("finish_reason") != "length" and ctx.task.verify(pred, e.gold))
        for pid in pids:
            rate[pid] = sum(by[pid]) / len(by[pid])
            tier[pid] = _tier_from_pass(rate[pid], opts.pass_thresholds)
    elif opts.method == "sample":
        reqs = {}
        for pid in pids:
            p = ctx.problems[pid]
            msgs = ctx.task.messages(p)
            for i in range(opts.k):
                key = stable_hash({"teacher": opts.teacher.teacher_id(), "prompt": msgs, "index": i,
                                   "sampling": opts.sampling.model_dump()})
                reqs[(pid, i)] = Request(key=key, problem=p, messages=msgs, sample_index=i)
        replies = ask(ctx, opts.teacher, opts.sampling, list(reqs.values()), "difficulty: sampling")
        for pid in pids:
            oks = []
            for i in range(opts.k):
                rep = replies[reqs[(pid, i)].key]
                if isinstance(rep, Exception) or rep.finish_reason == "length":
                    oks.append(False)
                    continue
                oks.append(ctx.task.verify(ctx.task.extract_answer(rep.answer), ctx.problems[pid].answer))
            rate[pid] = sum(oks) / len(oks)
            tier[pid] = _tier_from_pass(rate[pid], opts.pass_thresholds)
    else:  # judge
        reqs = {pid: _request("judge", opts.teacher, ctx.problems[pid],
                              opts.prompt.format(question=ctx.problems[pid].question, tiers=opts.tiers),
                              tiers=opts.tiers) for pid in pids}
        replies = ask(ctx, opts.teacher, opts.sampling, list(reqs.values()), "difficulty: judging")
        for pid in pids:
            rep = replies[reqs[pid].key]
            tier[pid] = None if isinstance(rep, Exception) else _parse_rating(rep.answer or rep.reasoning, opts.tiers)
    # recorded on the problem: the stage writes these into the view's problems.jsonl
    ctx.report["problem_meta"] = {
        pid: {"difficulty": tier[pid], "difficulty_method": opts.method,
              **({"pass_rate": round(rate[pid], 4)} if pid in rate else {})} for pid in pids}
    for e in examples:
        e.meta["difficulty"] = tier[e.problem_id]
    hist: dict[str, int] = defaultdict(int)
    for pid in pids:
        hist[str(tier[pid]) if tier[pid] is not None else "unrated"] += 1
    ctx.report["problems_per_tier"] = dict(sorted(hist.items()))
    return examples, {}


def _parse_rating(text: str, tiers: int) -> int | None:
    import re

    for m in re.findall(r"\d+", text):
        if 1 <= int(m) <= tiers:
            return int(m)
    return None


# ----------------------------------------------------------------------------- compress (DAP)

REWRITE_PROMPT = (
    "Here is a problem and a correct solution. The problem's difficulty is {tier} on a scale of 1 to "
    "{tiers}. Rewrite the reasoning to at most {budget} words. {guidance} Keep every step that is needed "
    "to reach the answer and keep the same final answer; remove restatements of the problem, "
    "transitions, self-checks and summaries first.\n\n"
    "Problem:\n{question}\n\nSolution:\n{reasoning}\n\nFinal answer: {answer}\n\n"
    "Write the rewritten reasoning between <think> and </think>, then the final answer."
)
GUIDANCE = {
    "easy": "It is an easy problem: state only the computation that gives the answer.",
    "medium": "Keep the main steps, one short line each.",
    "hard": "It is a hard problem: keep every intermediate result, briefly.",
}


class CompressOptions(StageConfig):
    mode: Literal["rewrite", "prune"] = Field(
        "rewrite", description="rewrite: a teacher rewrites each trace to its difficulty's budget (DAP); "
        "prune: teacher-free, drop non-reasoning chunks found by the chunk op (run chunk first)")
    teacher: TeacherSpec = Field(default_factory=TeacherSpec, description="rewrite: the rewriting teacher "
                                 "(the oracle plays it for synthetic tasks)")
    sampling: SamplingParams = Field(default_factory=lambda: SamplingParams(temperature=0.0, max_tokens=2048))
    budget_ratio: list[float] = Field(
        [0.25, 0.5, 0.75], description="rewrite: words budget per difficulty tier (tier 1 first) as a share of "
        "the original reasoning's words; tiers past the list use its last value")
    min_words: int = Field(8, ge=1, description="rewrite: never ask for fewer words than this")
    prompt: str = Field(REWRITE_PROMPT, description="rewrite prompt ({question} {reasoning} {answer} {tier} "
                        "{tiers} {budget} {guidance})")
    prune: list[Literal["none", "last", "ends", "all"]] = Field(
        ["none", "last", "ends"], description="prune: which non-reasoning chunks each tier keeps (tier 1 first): "
        "none, last (the conclusion), ends (first and last: restatement and conclusion), all (no pruning)")


def _tier_of(ex: Example, n_tiers: int) -> int:
    t = ex.meta.get("difficulty")
    return n_tiers if t is None else int(t)  # unrated: treated as hardest (compressed least)


@register_op("compress", CompressOptions)
def compress(examples: list[Example], ctx: OpContext) -> OpResult:
    """Difficulty-aware compression (DAP): rewrite each trace to a length budget set by its difficulty.

    ``rewrite``: the teacher gets the problem, trace, tier and budget. A rewrite that no longer
    reaches the verified answer (or fails) is rejected and the original is kept; both are counted.
    ``prune``: drop the non-reasoning chunks found by ``chunk``, more of them for easier tiers.
    Run ``difficulty`` first (without it every trace counts as hardest). The original reasoning is
    kept in ``meta.original_reasoning``; nothing is dropped.
    """
    opts: CompressOptions = ctx.options
    n_tiers = max([int(e.meta["difficulty"]) for e in examples if e.meta.get("difficulty")] + [len(opts.budget_ratio)])
    stats: dict[str, int] = defaultdict(int)
    out: list[Example] = []
    if opts.mode == "prune":
        for ex in examples:
            chunks = ex.meta.get("chunks")
            if chunks is None:
                raise ValueError(f"compress mode=prune needs chunk labels; run the chunk op before compress ({ex.id} has none)")
            policy = opts.prune[min(_tier_of(ex, len(opts.prune)), len(opts.prune)) - 1]
            non = [i for i, c in enumerate(chunks) if not c["reasoning"]]
            keep_non = {"none": set(), "all": set(non), "last": set(non[-1:]),
                        "ends": {i for i in non if i in (0, len(chunks) - 1)}}[policy]
            kept_chunks = [c for i, c in enumerate(chunks) if c["reasoning"] or i in keep_non]
            new = "".join(c["text"] for c in kept_chunks).strip()  # chunks carry their own separators
            stats["pruned_chunks"] += len(chunks) - len(kept_chunks)
            out.append(_rewritten(ex, new, ex.answer, stats))
        ctx.report.update(stats)
        return out, {}
    reqs: dict[str, Request] = {}
    budgets: dict[str, int] = {}
    for ex in examples:
        t = _tier_of(ex, n_tiers)
        ratio = opts.budget_ratio[min(t, len(opts.budget_ratio)) - 1]
        budget = max(opts.min_words, math.ceil(ratio * _words(ex.reasoning)))
        budgets[ex.id] = budget
        name = "easy" if t == 1 else "hard" if t >= n_tiers else "medium"
        prompt = opts.prompt.format(question=ex.question, reasoning=ex.reasoning, answer=ex.answer, tier=t,
                                    tiers=n_tiers, budget=budget, guidance=GUIDANCE[name])
        reqs[ex.id] = _request("rewrite", opts.teacher, ctx.problems[ex.problem_id], prompt,
                               budget_words=budget, sentences=ex.meta.get("sentences", []))
    replies = ask(ctx, opts.teacher, opts.sampling, list(reqs.values()), "compress: rewriting")
    for ex in examples:
        rep = replies[reqs[ex.id].key]
        if isinstance(rep, Exception) or rep.finish_reason == "length" or not rep.answer.strip():
            stats["rewrite_failed"] += 1
            out.append(ex)
            continue
        ok = ctx.task.verify(ctx.task.extract_answer(rep.answer), ex.gold)
        if not ok:
            stats["rewrite_rejected"] += 1
            out.append(ex)
            continue
        if _words(rep.reasoning) > budgets[ex.id]:
            stats["over_budget"] += 1
        new = _rewritten(ex, rep.reasoning, rep.answer, stats)
        if "sentences" in rep.meta:
            new.meta["sentences"] = rep.meta["sentences"]
        out.append(new)
    ctx.report.update(stats)
    return out, {}


def _rewritten(ex: Example, reasoning: str, answer: str, stats: dict[str, int]) -> Example:
    before, after = _words(ex.reasoning), _words(reasoning)
    stats["words_before"] += before
    stats["words_after"] += after
    stats["rewritten"] += 1
    meta = {k: v for k, v in ex.meta.items() if k not in ("chunks", "sentences")}  # they describe the old text
    meta["original_reasoning"] = ex.reasoning
    return ex.model_copy(update={"reasoning": reasoning, "answer": answer, "meta": meta})


# ----------------------------------------------------------------------------- chunk


@register_op("chunk", ChunkOptions)
def chunk(examples: list[Example], ctx: OpContext) -> OpResult:
    """Divide each rationale into coherent chunks labelled reasoning / non-reasoning (for CWT and STT).

    Chunks go to ``meta.chunks`` (text, start, end, reasoning, score) and tile the reasoning exactly.
    When the trace carries the oracle's sentence annotations, the precision and recall of
    non-reasoning detection against them are reported. Drops nothing.
    """
    from thinkling.curate.chunking import chunk_rationale, get_embedder, nonreasoning_counts, precision_recall

    embedder = get_embedder(ctx.options, console=ctx.console)
    totals = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    n_chunks = n_non = words_non = words_all = 0
    annotated = 0
    out: list[Example] = []
    for ex in examples:
        chunks = chunk_rationale(ex.question, ex.reasoning, ex.answer, embedder, ctx.options)
        meta = {**ex.meta, "chunks": [{"text": c.text, "start": c.start, "end": c.end, "reasoning": c.reasoning,
                                       "score": round(c.score, 3)} for c in chunks]}
        n_chunks += len(chunks)
        n_non += sum(not c.reasoning for c in chunks)
        words_all += _words(ex.reasoning)
        words_non += sum(_words(c.text) for c in chunks if not c.reasoning)
        if ex.meta.get("sentences"):
            annotated += 1
            for k, v in nonreasoning_counts(chunks, ex.reasoning, [tuple(s) for s in ex.meta["sentences"]]).items():
                totals[k] += v
        out.append(ex.model_copy(update={"meta": meta}))
    ctx.report.update({"embedder": getattr(embedder, "name", ctx.options.embedder),
                       "chunks_per_trace": round(n_chunks / max(len(examples), 1), 2),
                       "non_reasoning_chunks": n_non,
                       "non_reasoning_word_share": round(words_non / max(words_all, 1), 3)})
    if annotated:
        p, r, f1 = precision_recall(totals)
        ctx.report["vs_oracle_annotations"] = {"traces": annotated, **totals, "precision": round(p, 4),
                                               "recall": round(r, 4), "f1": round(f1, 4)}
    return out, {}


# ----------------------------------------------------------------------------- knowledge

KNOWLEDGE_PROMPT = (
    "List the background knowledge - facts, formulas or rules - that a solution to the following problem "
    "uses. Do not solve the problem and do not mention its numbers or its answer; two or three short "
    "sentences.\n\nProblem:\n{question}"
)


class KnowledgeOptions(StageConfig):
    teacher: TeacherSpec = Field(default_factory=TeacherSpec, description="the teacher that writes the knowledge")
    sampling: SamplingParams = Field(default_factory=lambda: SamplingParams(temperature=0.0, max_tokens=256))
    prompt: str = Field(KNOWLEDGE_PROMPT, description="knowledge prompt ({question})")
    reuse: bool = Field(True, description="use knowledge the trace already carries (the oracle writes it at generation)")
    require: bool = Field(True, description="drop examples left without knowledge (reason 'no_knowledge')")


@register_op("knowledge", KnowledgeOptions)
def knowledge(examples: list[Example], ctx: OpContext) -> OpResult:
    """For LoRID: the knowledge (facts, formulas, rules) a solution uses, stored beside the trace.

    Asked once per problem; stored in ``meta.knowledge`` of every example of that problem.
    """
    opts: KnowledgeOptions = ctx.options
    have: dict[str, str] = {}
    if opts.reuse:
        for e in examples:
            if e.meta.get("knowledge"):
                have.setdefault(e.problem_id, e.meta["knowledge"])
    pids = [pid for pid in dict.fromkeys(e.problem_id for e in examples) if pid not in have]
    reqs = {pid: _request("knowledge", opts.teacher, ctx.problems[pid],
                          opts.prompt.format(question=ctx.problems[pid].question)) for pid in pids}
    replies = ask(ctx, opts.teacher, opts.sampling, list(reqs.values()), "knowledge") if reqs else {}
    for pid, req in reqs.items():
        rep = replies[req.key]
        if not isinstance(rep, Exception) and rep.finish_reason != "length" and (rep.answer or rep.reasoning).strip():
            have[pid] = (rep.answer or rep.reasoning).strip()
    kept, missing = [], []
    for e in examples:
        if e.problem_id in have:
            e.meta["knowledge"] = have[e.problem_id]
            kept.append(e)
        elif opts.require:
            missing.append(e)
        else:
            kept.append(e)
    ctx.report["asked"] = len(reqs)
    return kept, {"no_knowledge": missing} if missing else {}


# ----------------------------------------------------------------------------- select


class SelectOptions(StageConfig):
    max_reasoning_words: int | None = Field(None, ge=1, description="drop traces whose reasoning is longer")
    min_reasoning_words: int | None = Field(None, ge=0, description="drop traces whose reasoning is shorter")
    max_per_problem: int | None = Field(None, ge=1, description="keep at most N traces per problem")
    per_level: int | None = Field(
        None, ge=1, description="exactly this many examples per group (repeat or subsample, seeded)")
    by: Literal["level", "difficulty"] = Field(
        "level", description="per_level groups: the task's level, or the difficulty op's tier")
    seed: int = Field(0, description="seed for subsampling")


@register_op("select", SelectOptions)
def select(examples: list[Example], ctx: OpContext) -> OpResult:
    """Length filters, a cap of ``max_per_problem`` samples per problem, and per-difficulty mixing.

    ``per_level``: that many examples of every level (or difficulty tier) - a group with fewer is
    repeated, one with more is subsampled, both seeded; repeats get ids ``<id>#r<k>``.
    """
    o: SelectOptions = ctx.options
    kept: list[Example] = []
    dropped: dict[str, list[Example]] = defaultdict(list)
    per_problem: dict[str, int] = defaultdict(int)
    for ex in examples:
        n = _words(ex.reasoning)
        if o.max_reasoning_words is not None and n > o.max_reasoning_words:
            dropped["too_long"].append(ex)
            continue
        if o.min_reasoning_words is not None and n < o.min_reasoning_words:
            dropped["too_short"].append(ex)
            continue
        if o.max_per_problem is not None and per_problem[ex.problem_id] >= o.max_per_problem:
            dropped["over_cap"].append(ex)
            continue
        per_problem[ex.problem_id] += 1
        kept.append(ex)
    if o.per_level is None:
        return kept, dict(dropped)

    def group(e: Example) -> int:
        if o.by == "level":
            return e.level
        t = e.meta.get("difficulty")
        if t is None and "difficulty" not in e.meta:
            raise ValueError("select.by=difficulty needs the difficulty op before select")
        return 0 if t is None else int(t)

    rng = random.Random(o.seed)
    mixed: list[Example] = []
    for g in sorted({group(e) for e in kept}):
        xs = [e for e in kept if group(e) == g]
        if len(xs) >= o.per_level:
            chosen = set(rng.sample(range(len(xs)), o.per_level))
            mixed.extend(e for i, e in enumerate(xs) if i in chosen)
            dropped["level_mix"].extend(e for i, e in enumerate(xs) if i not in chosen)
        else:
            mixed.extend(xs)
            for k in range(o.per_level - len(xs)):
                src = xs[k % len(xs)]
                mixed.append(src.model_copy(update={"id": f"{src.id}#r{k // len(xs) + 1}"}))
    return mixed, {k: v for k, v in dropped.items() if v}

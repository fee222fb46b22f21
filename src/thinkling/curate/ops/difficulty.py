"""``difficulty``: grade each problem into tiers (pass rate over traces or fresh samples, a teacher's
judgement, or the task's level); recorded on the problem, drops nothing."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Literal

from pydantic import Field

from thinkling.artifacts import stable_hash
from thinkling.config import StageConfig
from thinkling.curate.ops.base import OpContext, OpResult, ask, register_op, teacher_request
from thinkling.engines import Request, SamplingParams, TeacherSpec
from thinkling.engines.oracle import OracleOptions
from thinkling.records import Example


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
    teacher: TeacherSpec = Field(default_factory=OracleOptions, description="backend for sample/judge")
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
        raise ValueError(f"difficulty.pass_thresholds must be {opts.tiers - 1} descending values, "
                         f"got {opts.pass_thresholds}")
    pids = list(dict.fromkeys(e.problem_id for e in examples))
    rate: dict[str, float] = {}
    if opts.method == "level":
        top = max(ctx.task.levels)
        tier = {pid: max(1, min(opts.tiers, math.ceil(ctx.problems[pid].level * opts.tiers / top))) for pid in pids}
    elif opts.method == "judge":
        tier = _judged(pids, ctx, opts)
    else:
        rate = _pass_rates(pids, examples, ctx, opts)
        tier = {pid: _tier_from_pass(rate[pid], opts.pass_thresholds) for pid in pids}
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


def _pass_rates(pids: list[str], examples: list[Example], ctx: OpContext, opts: DifficultyOptions) -> dict[str, float]:
    """Per problem, the share of correct replies: over its traces here (``traces``: every sample, also those
    an earlier op dropped) or over ``k`` fresh samples from ``teacher`` (``sample``)."""
    ok: dict[str, list[bool]] = defaultdict(list)
    if opts.method == "traces":
        for e in ctx.source or examples:
            pred = ctx.task.extract_answer(e.answer)
            ok[e.problem_id].append(e.meta.get("finish_reason") != "length" and ctx.task.verify(pred, e.gold))
        return {pid: sum(ok[pid]) / len(ok[pid]) for pid in pids}
    reqs = {}
    for pid in pids:
        p = ctx.problems[pid]
        msgs = ctx.task.messages(p)
        for i in range(opts.k):
            key = stable_hash({"teacher": opts.teacher.engine_id(), "prompt": msgs, "index": i,
                               "sampling": opts.sampling.model_dump()})
            reqs[(pid, i)] = Request(msgs, sampling=opts.sampling, seed=i, problem=p, key=key)
    replies = ask(ctx, opts.teacher, list(reqs.values()), "difficulty: sampling")
    for (pid, _), req in reqs.items():
        rep = replies[req.key]
        good = not isinstance(rep, Exception) and rep.finish_reason != "length"
        ok[pid].append(good and ctx.task.verify(ctx.task.extract_answer(rep.answer), ctx.problems[pid].answer))
    return {pid: sum(ok[pid]) / len(ok[pid]) for pid in pids}


def _judged(pids: list[str], ctx: OpContext, opts: DifficultyOptions) -> dict[str, int | None]:
    """The teacher's rating of each problem on the scale of ``tiers`` (None when it gives none)."""
    reqs = {pid: teacher_request("judge", opts.teacher, opts.sampling, ctx.problems[pid],
                                 opts.prompt.format(question=ctx.problems[pid].question, tiers=opts.tiers),
                                 tiers=opts.tiers) for pid in pids}
    replies = ask(ctx, opts.teacher, list(reqs.values()), "difficulty: judging")
    return {pid: None if isinstance(rep := replies[reqs[pid].key], Exception)
            else _parse_rating(rep.answer or rep.reasoning, opts.tiers) for pid in pids}


def _parse_rating(text: str, tiers: int) -> int | None:
    for m in re.findall(r"\d+", text):
        if 1 <= int(m) <= tiers:
            return int(m)
    return None

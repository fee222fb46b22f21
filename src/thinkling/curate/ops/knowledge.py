"""``knowledge``: the facts, formulas or rules a solution uses, stored beside the trace (for LoRID)."""

from __future__ import annotations

from pydantic import Field

from thinkling.config import StageConfig
from thinkling.curate.ops.base import OpContext, OpResult, ask, register_op, teacher_request
from thinkling.engines import SamplingParams, TeacherSpec
from thinkling.engines.oracle import OracleOptions
from thinkling.records import Example


KNOWLEDGE_PROMPT = (
    "List the background knowledge - facts, formulas or rules - that a solution to the following problem "
    "uses. Do not solve the problem and do not mention its numbers or its answer; two or three short "
    "sentences.\n\nProblem:\n{question}"
)


class KnowledgeOptions(StageConfig):
    teacher: TeacherSpec = Field(default_factory=OracleOptions, description="the teacher that writes the knowledge")
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
    reqs = {pid: teacher_request("knowledge", opts.teacher, opts.sampling, ctx.problems[pid],
                          opts.prompt.format(question=ctx.problems[pid].question)) for pid in pids}
    replies = ask(ctx, opts.teacher, list(reqs.values()), "knowledge") if reqs else {}
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

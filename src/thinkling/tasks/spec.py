"""Which task (and which slice of it) a stage works on."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from thinkling.config import StageConfig


class TaskSpec(StageConfig):
    name: str = Field("arithmetic", description="task name (registry): arithmetic, rules, abduction, induction, gsm8k, math500, math, aime24, aime25, amc23, proofwriter, prontoqa, folio, logical_deduction, knights_and_knaves, arc_challenge, arc_easy, evidence, evidence_jsonl (document-grounded; option regime), jsonl (your own JSONL benchmark; options path, answer_type)")
    options: dict[str, Any] = Field(default_factory=dict, description="task constructor options (e.g. data_dir for gsm8k)")
    split: str = Field("train", description="split to draw problems from")
    n: int | None = Field(None, ge=1, description="problems per level (synthetic) or in total (file tasks); None = default/all")
    levels: list[int] | None = Field(None, description="difficulty levels to include (None = all)")
    seed: int = Field(0, description="seed for synthetic problem draws")

    def build(self):
        from thinkling.tasks import get_task

        return get_task(self.name, **self.options)

    def problems(self):
        return self.build().problems(self.split, n=self.n, levels=self.levels, seed=self.seed)

"""Which task (and which slice of it) a stage works on.

``name`` is checked against the task registry when a config is loaded (an unknown name is an error that
lists the registered ones), and ``--help`` lists the names registered when it is asked.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_serializer

from thinkling.config import Described, StageConfig
from thinkling.tasks.base import TASKS, get_task


NAME_HELP = ("task name, one of the registered tasks (thinkling.tasks.task_names(); an unknown name is an "
             "error that lists them; the README's task table describes each)")


class TaskSpec(StageConfig):
    name: Annotated[str, Described(lambda: f"{NAME_HELP}: {', '.join(TASKS.names())}")] = Field(
        "arithmetic", description=NAME_HELP)
    options: dict[str, Any] = Field(default_factory=dict, description="task constructor options (e.g. data_dir for gsm8k)")
    split: str = Field("train", description="split to draw problems from")
    n: int | None = Field(None, ge=1, description="problems per level (synthetic) or in total (file tasks); None = default/all")
    levels: list[int] | None = Field(None, description="difficulty levels to include (None = all)")
    seed: int = Field(0, description="seed for synthetic problem draws")
    label: str | None = Field(None, min_length=1, description="the task's name in results, units and the report "
                              "(default: the task's own label - its name, or a jsonl task's file stem); two tasks "
                              "of one eval need different labels")

    @model_serializer(mode="wrap")
    def _without_unset_label(self, handler):
        # a spec without a label dumps as it did before labels existed, so config hashes and eval unit keys of
        # earlier runs stay valid
        d = handler(self)
        if isinstance(d, dict) and d.get("label") is None:
            d.pop("label", None)
        return d

    def task_label(self, task=None) -> str:
        """What names this task in results: ``label``, else the built task's own label."""
        return self.label or (task if task is not None else self.build()).label

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in TASKS:
            raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS.names())}")
        return name

    def build(self):
        return get_task(self.name, **self.options)

    def problems(self):
        return self.build().problems(self.split, n=self.n, levels=self.levels, seed=self.seed)


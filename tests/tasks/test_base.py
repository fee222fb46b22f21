"""The task registry: discovered from the task modules (no hand-kept list), unknown names are errors that
list the known ones, ``--help`` of task.name lists them, and every task has a known reasoning group."""

from __future__ import annotations

import pytest

from thinkling.config import describe_fields
from thinkling.tasks import get_task, task_names
from thinkling.tasks.base import TASKS
from thinkling.tasks.spec import TaskSpec


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


def test_registered():
    assert {"aime24", "aime25", "amc23", "jsonl"} <= set(task_names())
    help_text = dict((k, d) for k, _, d in describe_fields(TaskSpec))["name"]  # what --help says of task.name
    assert all(n in help_text for n in ("aime24", "aime25", "amc23", "jsonl"))


# ----------------------------------------------------------------------------- groups


@pytest.mark.parametrize("name, group", [
    ("rules", "deductive"), ("proofwriter", "deductive"), ("prontoqa", "deductive"), ("folio", "deductive"),
    ("logical_deduction", "deductive"), ("knights_and_knaves", "deductive"),
    ("abduction", "abductive"), ("induction", "inductive"),
    ("arc_challenge", ""), ("arc_easy", ""), ("arithmetic", ""), ("gsm8k", ""), ("math500", ""), ("math", ""),
])
def test_reasoning_group_of_each_task(name, group):
    assert get_task(name).group == group


def test_every_registered_task_has_a_known_group():
    groups = {name: TASKS.get(name).group for name in task_names()}  # the class: some tasks need options
    assert set(groups.values()) <= {"", "deductive", "abductive", "inductive"}
    # the three LogiGLUE groups are all represented
    assert {"deductive", "abductive", "inductive"} <= set(groups.values())


def test_every_task_has_a_label_its_registry_name_by_default():
    """``task.label`` names a task in results, units and the report; only the user tasks change it."""
    for name in task_names():
        if name in ("jsonl", "evidence_jsonl"):
            continue
        assert get_task(name).label == name
    assert get_task("jsonl", path="d/qa.jsonl", answer_type="number").label == "qa"
    assert get_task("evidence_jsonl", path="d/docs.jsonl", label="mine").label == "mine"

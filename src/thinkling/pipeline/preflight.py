"""A recipe's pre-flight: what can be checked before the first stage runs is checked then.

A recipe that names a model that is not there, data that is not there, or a claim about a model it does
not evaluate would otherwise fail (or silently print MISS) after generate, curate and train have run:

- every model a student starts from or distils from, and every model under evaluation that loads weights,
  is a student of the recipe, an existing local path, or a hub id written ``hub:org/name`` (checked to be
  reachable, or in the local cache with ``HF_HUB_OFFLINE``);
- every task's data (``data_dir``, a user task's ``path``) exists;
- every check is of a known kind with the keys that kind needs, and names a model, a reference, a task, a
  strategy and a level that the eval stage has; ``over`` only in a recipe with ``seeds``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from thinkling.config import ConfigError
from thinkling.engines import options_class
from thinkling.models.loading import HUB, ModelLoadError, check_hub_model
from thinkling.tasks.files import FileTask

if TYPE_CHECKING:
    from thinkling.pipeline.recipe import Plan

#: each check kind and the keys it needs (besides ``kind``; ``level``, ``task``, ``strategy``, ``regime``,
#: ``over`` and ``basis`` are optional)
CHECK_KEYS = {
    "min_accuracy": ("model", "value"), "max_accuracy": ("model", "value"),
    "within": ("model", "ref", "points"), "at_least": ("model", "ref", "points"), "beats": ("model", "ref", "points"),
    "token_ratio": ("model", "ref", "value"), "compute_ratio": ("model", "ref", "value"),
    "accuracy_per_compute": ("model", "ref", "value"),
}
CHECK_KINDS = tuple(CHECK_KEYS)
OPTIONAL_KEYS = ("level", "task", "strategy", "regime", "over", "basis")


def preflight(plan: Plan) -> None:
    """Raise :class:`ConfigError` naming the key of the first problem found (see the module docstring)."""
    students = {c.out for c in plan.trn.values()}
    for name, c in plan.trn.items():
        if c.model != "tiny":
            _model(c.model, students, f"train.{name}.model")
        if c.method == "kd" and c.kd.teacher:
            _model(c.kd.teacher, students, f"train.{name}.kd.teacher")
    for m in plan.ev.models:
        if options_class(m.backend).LOADS_WEIGHTS:
            _model(m.path, students, f"eval.models.{m.name}.path")
    for key, spec in [*((f"generate.{n}.task", c.task) for n, c in plan.gen.items()),
                      *((f"eval.tasks.{s.name}", s) for s in plan.ev.task_specs())]:
        _task_data(spec, key)
    _checks(plan)


def _model(value: str, students: set[str], key: str) -> None:
    if value in students or Path(value).expanduser().exists():
        return
    if not value.startswith(HUB):
        raise ConfigError(f"key '{key}': {value!r} is neither a student of this recipe nor an existing path; a "
                          f"model from the Hugging Face hub is written {HUB}{value}")
    try:
        check_hub_model(value)
    except ModelLoadError as e:
        raise ConfigError(f"key '{key}': {e}") from None


def _task_data(spec, key: str) -> None:
    for opt in ("data_dir", "path"):
        v = spec.options.get(opt)
        if isinstance(v, str) and "{split}" not in v and not Path(v).expanduser().exists():
            raise ConfigError(f"key '{key}.options.{opt}': {v} does not exist")
        if isinstance(v, str) and "{split}" in v and not Path(v.format(split=spec.split)).expanduser().exists():
            raise ConfigError(f"key '{key}.options.{opt}': {v.format(split=spec.split)} does not exist")
    try:
        task = spec.build()
    except ValueError as e:
        raise ConfigError(f"key '{key}': {e}") from None
    if isinstance(task, FileTask) and not Path(task.data_dir).is_dir():
        raise ConfigError(f"key '{key}': the data of task {spec.name} is not at {task.data_dir} (set "
                          f"{key}.options.data_dir, or {task.env_var or 'THINKLING_DATA_DIR'})")


def check_shape(c: dict, where: str) -> None:
    """A check's kind, keys and value types; a ConfigError naming ``where`` (``checks.3``) and the key."""
    kind = c.get("kind")
    if kind not in CHECK_KEYS:
        raise ConfigError(f"key '{where}.kind': {kind!r} is not one of {', '.join(CHECK_KINDS)}")
    for k in CHECK_KEYS[kind]:
        if k not in c:
            what = {"model": "names the model it is about", "ref": "compares with a reference model (ref)",
                    "points": "needs its points of accuracy", "value": "needs its threshold value"}[k]
            raise ConfigError(f"key '{where}.{k}': a {kind} check {what}")
        if k in ("points", "value") and (isinstance(c[k], bool) or not isinstance(c[k], (int, float))):
            raise ConfigError(f"key '{where}.{k}': a number, got {c[k]!r}")
    unknown = sorted(set(c) - {"kind", *CHECK_KEYS[kind], *OPTIONAL_KEYS})
    if unknown:
        raise ConfigError(f"key '{where}.{unknown[0]}': not a key of a {kind} check (its keys: "
                          f"{', '.join((*CHECK_KEYS[kind], *OPTIONAL_KEYS))})")
    if c.get("over", "every") not in ("every", "aggregate"):
        raise ConfigError(f"key '{where}.over': {c['over']!r} is not one of every, aggregate")
    if "basis" in c and (kind not in ("compute_ratio", "accuracy_per_compute") or c["basis"] not in ("flops", "tokens")):
        raise ConfigError(f"key '{where}.basis': {c['basis']!r}: a compute_ratio or accuracy_per_compute check's "
                          "basis is flops (default) or tokens")


def _levels(plan: Plan) -> set[str]:
    """The levels the eval's problems have (as text), and "all"."""
    out = {"all"}
    for spec in plan.ev.task_specs():
        out |= {str(x) for x in spec.levels} if spec.levels else {str(p.level) for p in spec.problems()}
    return out


def _checks(plan: Plan) -> None:
    models = {m.name for m in plan.ev.models}
    tasks = set(plan.ev.task_labels()) | {s.name for s in plan.ev.task_specs()}  # also: no two with one label
    strategies = {s["label"] for s in plan.ev.strategies}
    levels: set[str] | None = None
    for i, c in enumerate(plan.recipe.checks):
        where = f"checks.{i}"
        check_shape(c, where)
        for k, known in (("model", models), ("ref", models), ("task", tasks), ("strategy", strategies)):
            if k in c and c[k] not in known:
                raise ConfigError(f"key '{where}.{k}': {c[k]!r} is not evaluated by this recipe (its {k}s: "
                                  f"{', '.join(sorted(known))})")
        if "over" in c and not plan.recipe.seeds:
            raise ConfigError(f"key '{where}.over': a check is stated over seeds only in a recipe with seeds "
                              "(seeds: [0, 1, 2])")
        if str(c.get("level", "all")) != "all":
            levels = levels if levels is not None else _levels(plan)
            if str(c["level"]) not in levels:
                raise ConfigError(f"key '{where}.level': {c['level']!r} is not a level this recipe evaluates (its "
                                  f"levels: {', '.join(sorted(levels))})")

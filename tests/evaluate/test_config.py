"""The eval config: strategy errors name the problem, tasks are listed in order, and models accept
``name=path`` strings."""

from __future__ import annotations

import pytest

from thinkling.config import ConfigError, build_config, load_config
from thinkling.evaluate.stage import EvalConfig


def test_strategy_config_errors_name_the_problem(tmp_path):
    from thinkling.evaluate.stage import EvalConfig

    base = {"out": str(tmp_path), "models": ["m=/x"]}
    with pytest.raises(ConfigError, match="unknown eval strategy 'beam'.*greedy"):
        build_config(EvalConfig, {**base, "strategies": ["beam"]})
    with pytest.raises(ConfigError, match="thinking_budgt"):
        build_config(EvalConfig, {**base, "strategies": [{"name": "budget", "thinking_budgt": 3}]})
    with pytest.raises(ConfigError, match="share a label"):
        build_config(EvalConfig, {**base, "strategies": ["greedy", {"name": "greedy"}]})
    with pytest.raises(ConfigError, match="validate_with='ref' is not one of the models"):
        build_config(EvalConfig, {**base, "validate_with": "ref"})
    cfg = build_config(EvalConfig, {**base, "task": {"name": "rules"}, "tasks": [{"name": "arithmetic"}]})
    assert [t.name for t in cfg.task_specs()] == ["rules", "arithmetic"]
    cfg = build_config(EvalConfig, {**base, "tasks": [{"name": "arithmetic"}]})
    assert [t.name for t in cfg.task_specs()] == ["arithmetic"]


def test_eval_models_accept_name_equals_path_strings():
    cfg = load_config(EvalConfig, overrides=["out=e", "models=[a=/x/y, /p/q/student]"])
    assert [(m.name, m.path) for m in cfg.models] == [("a", "/x/y"), ("student", "/p/q/student")]

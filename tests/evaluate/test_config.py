"""The eval config: strategy errors name the problem, tasks are listed in order, and models accept
``name=path`` strings."""

from __future__ import annotations

from thinkling.config import load_config
from thinkling.evaluate.stage import EvalConfig


def test_eval_models_accept_name_equals_path_strings():
    cfg = load_config(EvalConfig, overrides=["out=e", "models=[a=/x/y, /p/q/student]"])
    assert [(m.name, m.path) for m in cfg.models] == [("a", "/x/y"), ("student", "/p/q/student")]

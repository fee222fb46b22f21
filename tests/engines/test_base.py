"""The engine registry and its options (each backend's own keys, errors naming the key, old spellings),
``--help`` from the registry, a new backend plugged in as one module, and the parts of a reply."""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Literal

import pytest

from helpers.engines import ask
from thinkling.config import ConfigError, build_config, describe_fields
from thinkling.engines import ENGINES, Engine, EngineOptions, Reply, engine_names, engine_options, register_engine
from thinkling.format import format_assistant
from thinkling.generate.stage import GenerateConfig, generate
from thinkling.records import latest_traces


# ----------------------------------------------------------------------------- registry and options


def test_every_backend_is_registered_with_its_own_options():
    assert set(engine_names()) >= {"oracle", "reference", "hf", "openai", "vllm"}
    for name, spec in ENGINES.items():
        assert spec.options.model_fields["backend"].default == name, name
        assert spec.cls.name == name and issubclass(spec.cls, Engine)
    minimal = {"oracle": {}, "reference": {}, "hf": {"model": "m"}, "vllm": {"model": "m"},
               "openai": {"model": "m", "base_url": "http://x/v1"}}
    for name, extra in minimal.items():
        assert type(engine_options({"backend": name, **extra})) is ENGINES.get(name).options
    assert engine_options({}).backend == "oracle"  # the default teacher
    ids = {n: engine_options({"backend": n, **e}).engine_id() for n, e in minimal.items()}
    # the ids older versions keyed traces by
    assert ids == {"oracle": "oracle:long", "reference": "reference:long", "hf": "hf:m", "vllm": "vllm:m",
                   "openai": "openai:m"}


def test_option_errors_name_the_key_and_old_spellings_keep_working():
    with pytest.raises(ConfigError, match="unknown engine backend 'nope'; known: .*openai"):
        engine_options({"backend": "nope"})
    with pytest.raises(ConfigError, match="unknown key 'teacher.bogus'"):
        engine_options({"backend": "hf", "model": "m", "bogus": 1})
    with pytest.raises(ConfigError, match="key 'models.x.batch_size'"):
        engine_options({"backend": "hf", "model": "m", "batch_size": "many"}, key="models.x")
    with pytest.raises(ConfigError, match="missing required key 'teacher.model'"):
        build_config(GenerateConfig, {"out": "x", "teacher": {"backend": "hf"}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # configs written when every backend had every key: unset ones drop silently
        old = engine_options({"backend": "oracle", "style": "concise", "model": None, "batch_size": 32,
                              "base_url": None, "vllm_max_model_len": None, "extra_body": {}, "api": "chat"})
    assert old.model_dump() == {"backend": "oracle", "name": None, "style": "concise"}
    with pytest.warns(UserWarning, match="'batch_size' belongs to backend hf; ignored for backend oracle"):
        engine_options({"backend": "oracle", "batch_size": 64})
    with pytest.warns(FutureWarning, match="'vllm_max_model_len' is now 'max_model_len'"):
        v = engine_options({"backend": "vllm", "model": "m", "vllm_max_model_len": 512})
    assert v.max_model_len == 512


def test_help_lists_each_backends_keys_from_the_registry():
    rows = {k: d for k, _, d in describe_fields(GenerateConfig)}
    assert "hf, openai, oracle, reference, vllm" in rows["teacher.backend"]
    assert rows["teacher.base_url"].startswith("(openai)") and rows["teacher.style"].startswith("(oracle)")
    assert "teacher.vllm_max_model_len" not in rows and "teacher.max_model_len" in rows


class EchoOptions(EngineOptions):
    backend: Literal["echo"] = "echo"
    shout: bool = False


class EchoEngine(Engine):
    """Answers every request with its own question (a test backend)."""

    def __init__(self, options: EchoOptions):
        self.shout = options.shout

    def generate(self, requests):
        out = []
        for r in requests:
            q = r.messages[-1]["content"]
            out.append(Reply(format_assistant("echo", q.upper() if self.shout else q), reasoning="echo",
                             answer=q.upper() if self.shout else q))
        return out


@pytest.fixture
def echo_backend():
    register_engine("echo", EchoOptions)(EchoEngine)
    yield
    ENGINES.remove("echo")


def test_a_new_backend_is_one_module_and_one_registry_line(echo_backend, tmp_path, captured):
    """Registered after thinkling was imported: configs, --help and the generate stage take it at once."""
    assert "echo" in engine_names()
    assert "(echo)" in {k: d for k, _, d in describe_fields(GenerateConfig)}["teacher.shout"]
    cfg = build_config(GenerateConfig, {"out": str(tmp_path / "g"), "task": {"n": 2, "levels": [1]},
                                        "teacher": {"backend": "echo", "shout": True}})
    m = generate(cfg, console=captured.console)
    traces = list(latest_traces(tmp_path / "g" / "traces.jsonl").values())
    assert m["counts"]["traces"] == len(traces) == 2
    assert all(t.teacher == "echo" and t.answer == t.question.upper() for t in traces)


# ----------------------------------------------------------------------------- replies


def test_replies_keep_their_parts(tmp_path):
    r = Reply.of_text("<short><think>\nplan\n</think>\n42", completion_tokens=5)
    assert (r.reasoning, r.answer, r.truncated) == ("plan", "42", False)
    cut = Reply.of_text("<think>\nstill thinking", finish_reason="length")
    assert cut.truncated and cut.answer == "" and cut.reasoning == "still thinking"
    req = replace(ask("q", 8), prefix="<long>")
    assert req.sampling.max_tokens == 8 and req.prefix == "<long>" and req.seed == 0

"""Typed configs: YAML + dotted overrides, unknown keys and bad values are errors naming the key."""

from __future__ import annotations

import pytest

from thinkling.config import ConfigError, apply_overrides, describe_fields, fields_help, load_config, parse_override
from thinkling.generate.stage import GenerateConfig
from thinkling.pipeline import Recipe
from thinkling.train.config import TrainConfig

TRAIN_REQ = ["data=d.jsonl", "out=o"]


# ----------------------------------------------------------------------------- unknown keys


def test_unknown_top_level_key_is_an_error_naming_it():
    with pytest.raises(ConfigError) as e:
        load_config(TrainConfig, overrides=[*TRAIN_REQ, "lrr=3e-4"])
    assert "unknown key 'lrr'" in str(e.value)


def test_unknown_nested_key_is_an_error_naming_the_dotted_path():
    with pytest.raises(ConfigError) as e:
        load_config(GenerateConfig, overrides=["out=x", "task.nme=arithmetic"])
    assert "unknown key 'task.nme'" in str(e.value)


def test_unknown_key_deep_in_a_yaml_file_names_file_and_key(tmp_path):
    f = tmp_path / "train.yaml"
    f.write_text("data: d.jsonl\nout: o\ntiny:\n  hidden_sise: 64\n")
    with pytest.raises(ConfigError) as e:
        load_config(TrainConfig, f)
    msg = str(e.value)
    assert "unknown key 'tiny.hidden_sise'" in msg
    assert str(f) in msg


def test_every_unknown_key_is_reported_not_just_the_first():
    with pytest.raises(ConfigError) as e:
        load_config(GenerateConfig, overrides=["out=x", "foo=1", "teacher.stlye=long"])
    assert "'foo'" in str(e.value) and "'teacher.stlye'" in str(e.value)


def test_missing_required_key_is_named():
    with pytest.raises(ConfigError) as e:
        load_config(GenerateConfig, overrides=["task.n=3"])
    assert "missing required key 'out'" in str(e.value)


# ----------------------------------------------------------------------------- bad values


@pytest.mark.parametrize("override, key", [
    ("lr=-1", "lr"),
    ("batch_size=abc", "batch_size"),
    ("batch_size=0", "batch_size"),
    ("warmup_fraction=1.5", "warmup_fraction"),
    ("dtype=float8", "dtype"),
    ("method=rl_magic", "method"),
    ("tiny.vocab_size=10", "tiny.vocab_size"),
])
def test_bad_value_names_the_key(override, key):
    with pytest.raises(ConfigError) as e:
        load_config(TrainConfig, overrides=[*TRAIN_REQ, override])
    assert f"key '{key}'" in str(e.value)


def test_bad_value_message_shows_the_offending_input():
    with pytest.raises(ConfigError) as e:
        load_config(TrainConfig, overrides=[*TRAIN_REQ, "batch_size=abc"])
    assert "'abc'" in str(e.value)


def test_ranges_are_checked_at_load_for_nested_sections():
    with pytest.raises(ConfigError) as e:
        load_config(GenerateConfig, overrides=["out=x", "task.n=0"])
    assert "key 'task.n'" in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_config(GenerateConfig, overrides=["out=x", "sampling.top_p=1.5"])
    assert "key 'sampling.top_p'" in str(e.value)


def test_assignment_is_validated_too():
    from pydantic import ValidationError

    cfg = load_config(TrainConfig, overrides=TRAIN_REQ)
    with pytest.raises(ValidationError):
        cfg.lr = -1.0


# ----------------------------------------------------------------------------- overrides


def test_dotted_overrides_set_nested_values_with_yaml_scalars_and_lists():
    cfg = load_config(GenerateConfig, overrides=[
        "out=runs/x", "task.n=50", "task.levels=[1, 3]", "teacher.style=concise",
        "sampling.temperature=0.7", "task.options.data_dir=/some/dir", "samples=2",
    ])
    assert cfg.out == "runs/x"
    assert cfg.task.n == 50 and isinstance(cfg.task.n, int)
    assert cfg.task.levels == [1, 3]
    assert cfg.teacher.style == "concise"
    assert cfg.sampling.temperature == pytest.approx(0.7)
    assert cfg.task.options == {"data_dir": "/some/dir"}
    assert cfg.samples == 2
    # untouched nested defaults survive
    assert cfg.task.name == "arithmetic" and cfg.sampling.top_p == 1.0


def test_override_values_parse_as_yaml():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=3.5") == (["a"], 3.5)
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=null") == (["a"], None)
    assert parse_override("a=[1,2]") == (["a"], [1, 2])
    assert parse_override("a={x: 1}") == (["a"], {"x": 1})
    assert parse_override("a=x=y") == (["a"], "x=y")  # only the first '=' splits
    assert parse_override("a=") == (["a"], "")


def test_scientific_learning_rate_override():
    cfg = load_config(TrainConfig, overrides=[*TRAIN_REQ, "lr=3e-4"])
    assert cfg.lr == pytest.approx(3e-4)


def test_null_override_resets_an_optional_value():
    cfg = load_config(GenerateConfig, overrides=["out=x", "task.n=5", "task.n=null"])
    assert cfg.task.n is None


@pytest.mark.parametrize("bad", ["nokey", "=3", "a..b=1", ".a=1"])
def test_malformed_overrides_are_errors(bad):
    with pytest.raises(ConfigError):
        parse_override(bad)


def test_override_into_a_value_is_an_error():
    with pytest.raises(ConfigError) as e:
        apply_overrides({"task": "arithmetic"}, ["task.n=3"])
    assert "'task' is a value, not a section" in str(e.value)


def test_apply_overrides_does_not_mutate_its_input_and_indexes_lists():
    data = {"a": {"b": 1}, "xs": [1, 2, 3]}
    out = apply_overrides(data, ["a.b=2", "xs.1=20"])
    assert out == {"a": {"b": 2}, "xs": [1, 20, 3]}
    assert data == {"a": {"b": 1}, "xs": [1, 2, 3]}


@pytest.mark.parametrize("data, override", [
    ({"task": {"levels": [1, 2]}}, "task.levels.5=3"),   # BUG: IndexError escapes (traceback in the CLI)
    ({"models": ["a=b"]}, "models.0.path=c"),             # BUG: TypeError escapes (str item assignment)
])
def test_overrides_that_index_past_a_list_or_into_a_string_are_config_errors(data, override):
    """BUG: apply_overrides only handles dict sections; an out-of-range list index or a dotted key into
    a string item raises IndexError/TypeError, which `thinkling` prints as a traceback (exit 1)."""
    with pytest.raises(ConfigError) as e:
        apply_overrides(data, [override])
    assert override.split("=")[0] in str(e.value)


def test_overrides_beat_yaml_and_yaml_is_deep_merged(tmp_path):
    f = tmp_path / "g.yaml"
    f.write_text("out: from_yaml\ntask:\n  n: 10\n  levels: [2]\nteacher:\n  style: concise\n")
    cfg = load_config(GenerateConfig, f, ["task.n=20"])
    assert cfg.task.n == 20
    assert cfg.task.levels == [2]  # sibling key from the file survives the override
    assert cfg.teacher.style == "concise" and cfg.out == "from_yaml"


# ----------------------------------------------------------------------------- files


def test_missing_yaml_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as e:
        load_config(GenerateConfig, missing)
    assert "not found" in str(e.value) and str(missing) in str(e.value)


@pytest.mark.parametrize("text, kind", [("- a\n- b\n", "list"), ("42\n", "int"), ("just a string\n", "str")])
def test_non_mapping_yaml_is_a_clear_error(tmp_path, text, kind):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(GenerateConfig, f)
    assert "must be a mapping" in str(e.value) and kind in str(e.value) and str(f) in str(e.value)


def test_invalid_yaml_is_a_clear_error(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("out: [unclosed\n")
    with pytest.raises(ConfigError) as e:
        load_config(GenerateConfig, f)
    assert "not valid YAML" in str(e.value) and str(f) in str(e.value)


def test_empty_yaml_file_means_defaults(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("")
    cfg = load_config(GenerateConfig, f, ["out=x"])
    assert cfg.task.name == "arithmetic"


# ----------------------------------------------------------------------------- help


def test_fields_help_lists_nested_keys_with_defaults_and_docs():
    text = fields_help(TrainConfig)
    for key in ("lr", "batch_size", "max_steps", "tiny.hidden_size", "tiny.vocab_size", "tiny.num_layers"):
        assert f"\n{key} [" in text, key
    assert "peak learning rate" in text
    assert "data [required]" in text
    gen = fields_help(GenerateConfig)
    for key in ("task.n", "task.levels", "teacher.style", "sampling.temperature", "chunk_size"):
        assert f"\n{key} [" in gen, key


def test_describe_fields_covers_every_leaf_once():
    keys = [k for k, _, _ in describe_fields(GenerateConfig)]
    assert len(keys) == len(set(keys))
    assert {"out", "task.name", "task.split", "teacher.backend", "sampling.max_tokens", "samples"} <= set(keys)
    assert "task" not in keys  # a section is expanded, not listed as a value


def test_recipe_rejects_unknown_keys():
    with pytest.raises(ConfigError) as e:
        load_config(Recipe, overrides=["paralel=2"])
    assert "unknown key 'paralel'" in str(e.value)

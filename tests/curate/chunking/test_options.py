"""The chunk op's options are strict."""

from __future__ import annotations

import pytest

from thinkling.config import ConfigError, build_config
from thinkling.curate.chunking import ChunkOptions


def test_options_are_strict():
    with pytest.raises(ConfigError, match="unknown key 'window'"):
        build_config(ChunkOptions, {"window": 3})
    with pytest.raises(ConfigError, match="target_sentences"):
        build_config(ChunkOptions, {"target_sentences": 9, "max_sentences": 4})
    for field in ChunkOptions.model_fields.values():
        assert field.description

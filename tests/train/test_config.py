"""The train config: ``--help`` lists every method's options, an unknown method is an error."""

from __future__ import annotations

import pytest

from thinkling.config import build_config
from thinkling.train.config import TrainConfig


def test_config_help_lists_method_options():
    from thinkling.config import describe_fields

    keys = {k for k, _, _ in describe_fields(TrainConfig)}
    assert {"kd.teacher", "kd.loss", "kd.beta", "lora.enabled", "lora.r", "redi.alpha", "adaptive.short_max_tier",
            "chunkwise.reasoning_only", "skip_keep_ends"} <= keys
    with pytest.raises(Exception, match="sparkle"):
        build_config(TrainConfig, {"data": "d", "out": "o", "method": "sparkle"})

"""The curate stage: per-op, per-reason drop counts, wrong answers routed to negatives, raw traces never
rewritten, a rerun skipped; the per-op views (cached by config, an interrupted op not asking its teacher
again), the latest record of each key, and config errors (no traces, an unknown op)."""

from __future__ import annotations

import pytest

from thinkling.config import ConfigError, load_config


def test_unknown_curation_op_is_rejected_at_load():
    from thinkling.curate.stage import CurateConfig

    with pytest.raises(ConfigError) as e:
        load_config(CurateConfig, overrides=["traces=t", "out=o", "ops=[verify,sparkle]"])
    assert "sparkle" in str(e.value) and "key 'ops'" in str(e.value)

"""The hf engine on the noisy tiny model, shared by the hf engine's tests and the openai engine's
log-probs check against it."""

from __future__ import annotations

import pytest

from thinkling.engines import build_engine, engine_options


@pytest.fixture(scope="module")
def hf(noisy_model):
    return build_engine(engine_options({"backend": "hf", "model": str(noisy_model), "batch_size": 4}))

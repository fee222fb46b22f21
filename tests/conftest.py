"""Shared fixtures: one tiny model built from scratch, the shared benchmark data, quiet consoles.

Everything runs on one CPU thread and nothing is downloaded: the tiny model is built here with
``thinkling.models.tiny.build_tiny`` from the arithmetic task's own oracle text.

Also the fixtures that tests in more than one folder use: the served noisy model and a test server,
long oracle traces, a curated dataset.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

# Before torch/tokenizers/rich are imported anywhere: one thread, no hub, wide consoles (rich wraps
# at 80 columns when not on a terminal, which would split the paths and keys that tests look for).
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["COLUMNS"] = "300"

import pytest  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402

from helpers import arithmetic_texts, run_cli  # noqa: E402
from helpers.curate import gen  # noqa: E402
from helpers.engines import MODEL  # noqa: E402
from thinkling.config import build_config  # noqa: E402
from thinkling.curate.stage import CurateConfig, curate  # noqa: E402
from thinkling.generate.stage import GenerateConfig, generate  # noqa: E402
from thinkling.models.loading import load_model, load_tokenizer  # noqa: E402
from thinkling.serve.server import serve_in_thread  # noqa: E402

torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

TINY_SPEC = dict(vocab_size=400, hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark files (``shared/`` sits beside the repository, also in CI)."""
    assert SHARED_DATA.is_dir(), f"shared data not found at {SHARED_DATA} (clone shared/ beside the repo)"
    return SHARED_DATA


@pytest.fixture(scope="session")
def gsm8k_dir(shared_data: Path) -> Path:
    d = shared_data / "gsm8k"
    assert (d / "train.jsonl").is_file(), f"missing {d / 'train.jsonl'}"
    return d


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """ONE tiny Llama + BPE tokenizer, built from scratch on arithmetic text (long, concise, none)."""
    from thinkling.models.tiny import TinySpec, build_tiny

    out = tmp_path_factory.mktemp("tiny") / "model"
    build_tiny(out, arithmetic_texts(), TinySpec(**TINY_SPEC), seed=0)
    return out


@pytest.fixture(scope="session")
def tokenizer(tiny_model: Path):
    from thinkling.models.loading import load_tokenizer

    return load_tokenizer(str(tiny_model))


@pytest.fixture(scope="session")
def noisy_model(tiny_model: Path, tmp_path_factory) -> Path:
    """The tiny model with seeded large random weights and a louder end-of-turn embedding.

    A freshly initialised model greedily repeats one token for every prompt, which would make a
    batch-size invariance test vacuous; these weights give prompt-dependent completions of varied
    length (most stop at <|im_end|>, a few hit the token cap).
    """
    from thinkling.models.loading import load_model, load_tokenizer

    tok = load_tokenizer(str(tiny_model))
    model = load_model(str(tiny_model))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
        model.get_input_embeddings().weight[tok.eos_token_id] *= 3.0
        # embeddings are untied in tiny students: make end-of-turn louder in the output too
        if model.get_output_embeddings().weight.data_ptr() != model.get_input_embeddings().weight.data_ptr():
            model.get_output_embeddings().weight[tok.eos_token_id] *= 3.0
    out = tmp_path_factory.mktemp("noisy") / "model"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


class Captured:
    """A rich console writing into a string (wide, no colour), for checking what a stage printed."""

    def __init__(self):
        from rich.console import Console

        self.buf = io.StringIO()
        self.console = Console(file=self.buf, width=300, color_system=None, force_terminal=False)

    @property
    def text(self) -> str:
        return self.buf.getvalue()


@pytest.fixture
def captured() -> Captured:
    return Captured()


@pytest.fixture
def captured_factory():
    """Make more captured consoles in one test (e.g. one per run of a stage)."""
    return Captured


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="module")
def served(noisy_model):
    from thinkling.serve.server import serve_in_thread

    url, stop = serve_in_thread(str(noisy_model), name=MODEL, threads=1)
    yield url
    stop()


@pytest.fixture(scope="module")
def noisy(noisy_model: Path):
    """The noisy tiny model served, plus the same model and tokenizer loaded directly."""
    url, stop = serve_in_thread(str(noisy_model), name="noisy")
    yield url, load_model(str(noisy_model)), load_tokenizer(str(noisy_model))
    stop()


@pytest.fixture(scope="module")
def long_traces(tmp_path_factory) -> Path:
    import io

    from rich.console import Console

    return gen(tmp_path_factory.mktemp("long") / "traces", n=6, console=Console(file=io.StringIO()))


@pytest.fixture(scope="module")
def curated(tmp_path_factory) -> Path:
    """Long oracle traces, levels 1-4, through difficulty -> compress (DAP) -> chunk -> knowledge."""
    root = tmp_path_factory.mktemp("methods")
    console = Console(file=io.StringIO())
    generate(build_config(GenerateConfig, {"out": str(root / "t"), "task": {"n": 5}, "teacher": {"style": "long"}}),
             console=console)
    curate(build_config(CurateConfig, {"traces": str(root / "t"), "out": str(root / "chunked"),
                                       "ops": ["verify", "chunk", "knowledge"], "chunk": {"embedder": "lexical"}}),
           console=console)
    curate(build_config(CurateConfig, {"traces": str(root / "t"), "out": str(root / "dap"),
                                       "ops": ["verify", "difficulty", "compress"],
                                       "difficulty": {"method": "judge"}}), console=console)
    return root

"""Training methods' data sources: which tokens of which rows get loss, per method.

Rows are built with the session's tiny tokenizer from curated examples that went through the real
curation ops (chunk, difficulty, compress, knowledge), so the masks are checked on what training sees.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from thinkling.artifacts import read_jsonl
from thinkling.config import build_config
from thinkling.curate.stage import CurateConfig, curate
from thinkling.generate.stage import GenerateConfig, generate
from thinkling.records import Example
from thinkling.tasks import format_assistant
from thinkling.train.losses import IGNORE
from thinkling.train.methods import (
    LONG_MARK, SHORT_MARK, deep_question, get_method, lorid_sources, method_names, skip_chunks,
)
from thinkling.train.stage import TrainConfig


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


def cfg(data: Path, **kw) -> TrainConfig:
    return build_config(TrainConfig, {"data": str(data), "out": "unused", **kw})


def trained(row: dict) -> list[int]:
    return [t for t in row["labels"] if t != IGNORE]


def test_every_method_is_registered():
    assert {"sft", "chunkwise", "skip", "kd", "redi", "adaptive", "lorid"} <= set(method_names())


def test_chunkwise_rows_split_the_sft_targets_into_chunks(curated, tokenizer):
    data = curated / "chunked"
    examples = read_jsonl(data / "train.jsonl", Example)
    sft = {r["id"]: r for r in get_method("sft").build_rows(examples, tokenizer, cfg(data))}
    rows = get_method("chunkwise").build_rows(examples, tokenizer, cfg(data, method="chunkwise"))
    for ex in examples:
        mine = [r for r in rows if r["id"].startswith(ex.id + "#c")]
        assert len(mine) == len(ex.meta["chunks"])
        full = sft[ex.id]
        # concatenated, the chunk targets are exactly the SFT targets, in order
        assert sum((trained(r) for r in mine), []) == trained(full)
        for r in mine:
            # the context is the full sequence's prefix: earlier chunks teacher-forced, nothing after
            assert r["input_ids"] == full["input_ids"][: len(r["input_ids"])]
            assert r["labels"][-1] != IGNORE  # each row ends with its own chunk
        k = max(range(len(mine)), key=lambda i: len(trained(mine[i])))
        text = tokenizer.decode(trained(mine[k]))
        assert text.strip() in format_assistant(ex.reasoning, ex.answer) or mine[k] is mine[-1]


def test_chunkwise_reasoning_only_trains_the_reasoning_chunks_and_the_answer(curated, tokenizer):
    data = curated / "chunked"
    examples = read_jsonl(data / "train.jsonl", Example)
    c = cfg(data, method="chunkwise", chunkwise={"reasoning_only": True})
    rows = get_method("chunkwise").build_rows(examples, tokenizer, c)
    for ex in examples:
        chunks = ex.meta["chunks"]
        want = [i for i, ch in enumerate(chunks) if ch["reasoning"] or i == len(chunks) - 1]
        assert [int(r["id"].rsplit("#c", 1)[1]) for r in rows if r["id"].startswith(ex.id + "#")] == want


def test_skip_removes_the_non_reasoning_middle_chunks(curated, tokenizer):
    data = curated / "chunked"
    examples = read_jsonl(data / "train.jsonl", Example)
    rows = get_method("skip").build_rows(examples, tokenizer, cfg(data, method="skip"))
    cw = get_method("chunkwise").build_rows(examples, tokenizer, cfg(data, method="chunkwise"))
    assert sum(len(trained(r)) for r in rows) < 0.75 * sum(len(trained(r)) for r in cw)
    for ex in examples:
        chunks = ex.meta["chunks"]
        kept = skip_chunks(chunks)
        middle_filler = [c for i, c in enumerate(chunks) if not c["reasoning"] and 0 < i < len(chunks) - 1]
        assert len(kept) == len(chunks) - len(middle_filler)
        text = tokenizer.decode(sum((trained(r) for r in rows if r["id"].startswith(ex.id + "#")), []))
        for c in middle_filler:
            assert c["text"].strip() not in text
        assert ex.answer in text


def test_chunk_methods_need_chunks(curated, tokenizer):
    examples = read_jsonl(curated / "dap" / "train.jsonl", Example)
    with pytest.raises(ValueError, match="chunk op"):
        get_method("chunkwise").build_rows(examples, tokenizer, cfg(curated / "dap", method="chunkwise"))


def test_adaptive_learns_the_marker_of_its_natural_mode_only(curated, tokenizer):
    data = curated / "dap"
    examples = read_jsonl(data / "train.jsonl", Example)
    rows = get_method("adaptive").build_rows(examples, tokenizer, cfg(data, method="adaptive"))
    assert len(rows) == 2 * len(examples)
    for ex in examples:
        nat = "short" if ex.meta["difficulty"] <= 2 else "long"
        for mode in ("short", "long"):
            r = next(r for r in rows if r["id"] == f"{ex.id}#{mode}")
            text = tokenizer.decode(trained(r))
            mark = SHORT_MARK if mode == "short" else LONG_MARK
            assert text.startswith(mark) == (mode == nat)
            body = ex.reasoning if mode == "short" else ex.meta["original_reasoning"]
            assert body.splitlines()[0] in text
    with pytest.raises(ValueError, match="compress"):
        get_method("adaptive").build_rows(read_jsonl(curated / "chunked" / "train.jsonl", Example), tokenizer,
                                          cfg(data, method="adaptive"))


def test_lorid_sources_and_rows(curated, tokenizer):
    data = curated / "chunked"
    examples = read_jsonl(data / "train.jsonl", Example)
    src = lorid_sources(examples)
    assert {k: len(v) for k, v in src.items()} == {"intuitive": 20, "knowledge": 20, "deep": 20}
    assert all(e.answer == e.meta["knowledge"] and e.reasoning == "" for e in src["knowledge"])
    assert all(e.question == deep_question(o.question, o.meta["knowledge"]) for e, o in zip(src["deep"], examples))
    rows = get_method("lorid").build_rows(examples, tokenizer, cfg(data, method="lorid"))
    assert {r["adapter"] for r in rows} == {"intuitive", "knowledge", "deep"}
    with pytest.raises(ValueError, match="knowledge op"):
        lorid_sources([e.model_copy(update={"meta": {}}) for e in examples])


def test_redi_pairs_positives_with_negatives(tmp_path, tokenizer):
    from thinkling.artifacts import write_jsonl

    pos = [Example(id=f"p{i}", problem_id=f"q{i}", task="arithmetic", level=1, question=f"What is {i}?",
                   reasoning="a=1", answer=str(i)) for i in range(4)]
    neg = [e.model_copy(update={"id": f"n{e.problem_id}", "answer": "9"}) for e in pos[:2]]
    write_jsonl(tmp_path / "train.jsonl", pos)
    write_jsonl(tmp_path / "negatives.jsonl", neg)
    rows = get_method("redi").build_rows(pos, tokenizer, cfg(tmp_path, method="redi"))
    assert sorted((r["id"], r["weight"]) for r in rows) == [("nq0", -0.8), ("nq1", -0.8), ("p0", 1.0), ("p1", 1.0)]
    (tmp_path / "negatives.jsonl").unlink()
    with pytest.raises(Exception, match="negatives"):
        get_method("redi").build_rows(pos, tokenizer, cfg(tmp_path, method="redi"))


def test_config_help_lists_method_options():
    from thinkling.config import describe_fields

    keys = {k for k, _, _ in describe_fields(TrainConfig)}
    assert {"kd.teacher", "kd.loss", "kd.beta", "lora.enabled", "lora.r", "redi.alpha", "adaptive.short_max_tier",
            "chunkwise.reasoning_only", "skip_keep_ends"} <= keys
    with pytest.raises(Exception, match="sparkle"):
        build_config(TrainConfig, {"data": "d", "out": "o", "method": "sparkle"})

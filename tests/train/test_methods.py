"""Training methods' data sources: which tokens of which rows get loss, per method, and (slow) the rows a
method trains on in a real run.

Rows are built with the session's tiny tokenizer from curated examples that went through the real
curation ops (chunk, difficulty, compress, knowledge), so the masks are checked on what training sees.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.train import run_train
from thinkling.artifacts import read_jsonl
from thinkling.config import build_config
from thinkling.format import LONG_MARK, SHORT_MARK, deep_question, format_assistant
from thinkling.records import Example
from thinkling.train.config import TrainConfig
from thinkling.train.losses import IGNORE
from thinkling.train.methods import get_method, lorid_sources, method_names, skip_chunks


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
        # each middle row trains exactly its own chunk's text (the first adds <think>, the last the answer)
        for r, c in list(zip(mine, ex.meta["chunks"]))[1:-1]:
            assert tokenizer.decode(trained(r)).strip() == c["text"].strip()


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


# ----------------------------------------------------------------------------- training end to end (slow)


@pytest.mark.slow
def test_chunkwise_and_skip_train_on_their_rows(curated, tiny_model, tmp_path, captured):
    m = run_train(curated / "chunked", tmp_path / "cw", captured.console, method="chunkwise", model=str(tiny_model))
    n_chunks = sum(len(e.meta["chunks"]) for e in read_jsonl(curated / "chunked" / "train.jsonl", Example))
    assert m["counts"]["rows"] == n_chunks and m["counts"]["steps"] == 3
    s = run_train(curated / "chunked", tmp_path / "skip", captured.console, method="skip", model=str(tiny_model))
    assert s["counts"]["trained_tokens_per_epoch"] < 0.75 * m["counts"]["trained_tokens_per_epoch"]
    assert (tmp_path / "skip" / "model.safetensors").is_file()


@pytest.mark.slow
def test_redi_subtracts_the_negatives_and_widens_the_margin(tmp_path, tiny_model, captured):
    import torch

    from thinkling.artifacts import write_jsonl
    from thinkling.models.loading import load_model, load_tokenizer
    from thinkling.models.render import render
    from thinkling.tasks import get_task

    task = get_task("arithmetic")
    probs = task.problems("train", n=8, levels=[2])
    pos = [Example(id=f"p{i}", problem_id=p.id, task="arithmetic", level=2, question=p.question,
                   reasoning=task.oracle(p, "concise").reasoning, answer=p.answer) for i, p in enumerate(probs)]
    neg = [e.model_copy(update={"id": f"n{i}", "answer": str((int(e.answer) + 3) % 10)}) for i, e in enumerate(pos)]
    write_jsonl(tmp_path / "d" / "train.jsonl", pos)
    write_jsonl(tmp_path / "d" / "negatives.jsonl", neg)
    tok = load_tokenizer(str(tiny_model))

    def nll(path, exs):
        model = load_model(str(path))
        total = 0.0
        for e in exs:
            ids, mask = render(tok, [{"role": "user", "content": e.question}], format_assistant(e.reasoning, e.answer))
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, :-1], -1)
            tgt = torch.tensor(ids[1:])
            m = torch.tensor(mask[1:]).bool()
            total += -logp[torch.arange(len(tgt)), tgt][m].sum().item()
        return total / len(exs)

    m = run_train(tmp_path / "d", tmp_path / "r", captured.console, method="redi", model=str(tiny_model),
                  max_steps=6, lr=3e-3)
    assert m["counts"]["rows"] == 16
    # the same rows and batches with alpha = 0: the negatives' term switched off
    off = run_train(tmp_path / "d", tmp_path / "s", captured.console, method="redi", model=str(tiny_model),
                    max_steps=6, lr=3e-3, redi={"alpha": 0.0})
    assert off["loss_history"][0] == pytest.approx(m["loss_history"][0])  # same first batch ...
    assert min(m["loss_history"]) < 0 <= min(off["loss_history"])  # ... but only REDI subtracts the negatives' NLL

    def margin(path):  # how much likelier the right trace is than the wrong one (they differ in the answer)
        return nll(path, neg) - nll(path, pos)

    # the wrong traces lose likelihood against the right ones (on a random-weight model, six steps do not
    # reliably separate REDI from alpha = 0 on this margin: both lift the right answers)
    assert margin(tmp_path / "r") > margin(tiny_model) + 0.1

"""Training methods' data sources: which tokens of which rows get loss, per method.

Rows are built with the session's tiny tokenizer from curated examples that went through the real
curation ops (chunk, difficulty, compress, knowledge), so the masks are checked on what training sees.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from thinkling.artifacts import read_jsonl
from thinkling.config import build_config
from thinkling.curate.stage import CurateConfig, curate
from thinkling.generate.stage import GenerateConfig, generate
from thinkling.records import Example
from thinkling.format import LONG_MARK, SHORT_MARK, deep_question, format_assistant
from thinkling.train.losses import IGNORE
from thinkling.train.methods import (
    get_method, lorid_sources, method_names, skip_chunks,
)
from thinkling.train.config import TrainConfig


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


def test_config_help_lists_method_options():
    from thinkling.config import describe_fields

    keys = {k for k, _, _ in describe_fields(TrainConfig)}
    assert {"kd.teacher", "kd.loss", "kd.beta", "lora.enabled", "lora.r", "redi.alpha", "adaptive.short_max_tier",
            "chunkwise.reasoning_only", "skip_keep_ends"} <= keys
    with pytest.raises(Exception, match="sparkle"):
        build_config(TrainConfig, {"data": "d", "out": "o", "method": "sparkle"})


# ----------------------------------------------------------------------------- training end to end (slow)


def run_train(data: Path, out: Path, console, **kw) -> dict:
    from thinkling.train.stage import train

    d = {"data": str(data), "out": str(out), "max_steps": 3, "save_steps": 100, "batch_size": 4, "logging_steps": 1,
         "threads": 1, "max_len": 512, "show_mask": False, "lr": 1e-3}
    d.update(kw)
    return train(build_config(TrainConfig, d), console=console)


@pytest.mark.slow
def test_chunkwise_and_skip_train_on_their_rows(curated, tiny_model, tmp_path, captured):
    m = run_train(curated / "chunked", tmp_path / "cw", captured.console, method="chunkwise", model=str(tiny_model))
    n_chunks = sum(len(e.meta["chunks"]) for e in read_jsonl(curated / "chunked" / "train.jsonl", Example))
    assert m["counts"]["rows"] == n_chunks and m["counts"]["steps"] == 3
    s = run_train(curated / "chunked", tmp_path / "skip", captured.console, method="skip", model=str(tiny_model))
    assert s["counts"]["trained_tokens_per_epoch"] < 0.75 * m["counts"]["trained_tokens_per_epoch"]
    assert (tmp_path / "skip" / "model.safetensors").is_file()


def _first_loss(m: dict) -> float:
    return m["loss_history"][0]


@pytest.mark.slow
def test_kd_online_equals_offline_with_all_logprobs_and_taid_moves_t(curated, tiny_model, noisy_model, tmp_path,
                                                                    captured):
    from thinkling.models.loading import load_tokenizer

    vocab = len(load_tokenizer(str(tiny_model)))
    common = dict(method="kd", model=str(tiny_model), group_by_length=False, max_steps=2)
    online = run_train(curated / "chunked", tmp_path / "on", captured.console,
                       kd={"teacher": str(noisy_model), "loss": "kd_fkl"}, **common)
    offline = run_train(curated / "chunked", tmp_path / "off", captured.console,
                        kd={"teacher": str(noisy_model), "loss": "kd_fkl", "offline": True, "top_k": vocab}, **common)
    # same batches, same student: the stored top-V log-probs give the online teacher's loss
    assert _first_loss(offline) == pytest.approx(_first_loss(online), rel=1e-3)
    assert _first_loss(online) > 0.5  # a random-weight teacher is far from the student
    few = run_train(curated / "chunked", tmp_path / "few", captured.console,
                    kd={"teacher": str(noisy_model), "loss": "kd_fkl", "offline": True, "top_k": 4}, **common)
    assert 0 < _first_loss(few) < _first_loss(online) + 1e-6  # k+1 buckets lose detail, never add divergence
    captured.buf.truncate(0)
    run_train(curated / "chunked", tmp_path / "taid", captured.console, max_steps=40, logging_steps=40,
              kd={"teacher": str(noisy_model), "loss": "taid"}, **{k: v for k, v in common.items() if k != "max_steps"})
    ts = [float(x.split("taid t ")[1].split(",")[0]) for x in captured.text.splitlines() if "taid t " in x]
    assert ts and ts[-1] > 0.4  # t starts at 0.4 and only grows


@pytest.mark.slow
def test_kd_refuses_a_teacher_with_another_vocabulary(curated, tiny_model, tmp_path, captured):
    from thinkling.models.tiny import TinySpec, build_tiny

    other = tmp_path / "other"
    build_tiny(other, ["a b c d e f g", "1 2 3 4 5"] * 20, TinySpec(vocab_size=300, hidden_size=32, num_layers=1,
                                                                     num_heads=1, intermediate_size=64), seed=0)
    with pytest.raises(ValueError, match=r"teacher vocabulary \d+ != student vocabulary \d+"):
        run_train(curated / "chunked", tmp_path / "s", captured.console, method="kd", model=str(tiny_model),
                  kd={"teacher": str(other)})


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


@pytest.mark.slow
def test_lora_merged_export_is_a_plain_checkpoint_equal_to_base_plus_adapter(curated, tiny_model, tmp_path, captured):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    m = run_train(curated / "chunked", tmp_path / "l", captured.console, model=str(tiny_model),
                  lora={"enabled": True, "r": 4}, lr=1e-2)
    assert m["counts"]["steps"] == 3
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "l")
    assert not hasattr(merged, "peft_config")
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), tmp_path / "l" / "adapter")
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    ids = torch.tensor([[1, 5, 9, 14, 20, 33]])
    with torch.no_grad():
        a, b, c = merged(input_ids=ids).logits, peft(input_ids=ids).logits, base(input_ids=ids).logits
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c, atol=1e-4)  # the adapter learned something


@pytest.mark.slow
def test_lorid_saves_three_switchable_adapters_on_one_base(curated, tiny_model, tmp_path, captured):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    m = run_train(curated / "chunked", tmp_path / "lorid", captured.console, method="lorid", model=str(tiny_model),
                  max_steps=2, lr=1e-2)
    out = tmp_path / "lorid"
    assert set(m["counts"]["adapters"]) == {"intuitive", "knowledge", "deep"}
    assert json.loads((out / "lorid.json").read_text())["default"] == "intuitive"
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(out / "base"),
                                      out / "adapters" / "intuitive", adapter_name="intuitive")
    for name in ("knowledge", "deep"):
        model.load_adapter(str(out / "adapters" / name), adapter_name=name)
    ids = torch.tensor([[1, 5, 9, 14, 20, 33]])
    logits = {}
    for name in ("intuitive", "knowledge", "deep"):
        model.set_adapter(name)
        with torch.no_grad():
            logits[name] = model(input_ids=ids).logits
    assert not torch.allclose(logits["intuitive"], logits["knowledge"], atol=1e-4)
    assert not torch.allclose(logits["knowledge"], logits["deep"], atol=1e-4)
    merged = AutoModelForCausalLM.from_pretrained(out)  # the Intuitive Reasoner as a plain checkpoint
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, logits["intuitive"], atol=1e-5)


@pytest.mark.slow
def test_adaptive_student_can_be_forced_into_a_mode_at_eval(curated, tiny_model, tmp_path, captured):
    from thinkling.artifacts import read_jsonl as rj
    from thinkling.evaluate.stage import EvalConfig, evaluate

    run_train(curated / "dap", tmp_path / "a", captured.console, method="adaptive", model=str(tiny_model))
    cfg = build_config(EvalConfig, {"out": str(tmp_path / "e"), "task": {"n": 3, "split": "test", "levels": [1, 4]},
                                    "max_new_tokens": 8,
                                    "models": [{"name": "free", "path": str(tmp_path / "a")},
                                               {"name": "long", "path": str(tmp_path / "a"), "reply_prefix": LONG_MARK}]})
    evaluate(cfg, console=captured.console)
    samples = rj(tmp_path / "e" / "samples.jsonl")
    assert all(s["completion"].startswith(LONG_MARK) for s in samples if s["model"] == "long")
    rows = json.loads((tmp_path / "e" / "results.json").read_text())
    forced = [r for r in rows if r["model"] == "long" and r["level"] == "all"][0]
    assert forced["short_mode_share"] == 0.0 and forced["protocol"]["reply_prefix"] == LONG_MARK
    assert all(s["tokens"] <= 8 for s in samples)  # the given prefix is not counted as generated

"""The lorid method's fit: three switchable adapters on one base, the Intuitive Reasoner merged as a plain
checkpoint."""

from __future__ import annotations

import json

import pytest

from helpers.train import run_train


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
def test_lorid_splits_a_tokens_budget_between_its_adapters(curated, tiny_model, tmp_path, captured):
    m = run_train(curated / "chunked", tmp_path / "lorid", captured.console, method="lorid", model=str(tiny_model),
                  max_steps=-1, budget_tokens=3000, lr=1e-2)
    per = {n: a["compute"] for n, a in m["counts"]["adapters"].items()}
    assert all(c["budget"] == {"kind": "tokens", "total": 1000.0} and c["tokens"] >= 1000 for c in per.values())
    assert m["compute"]["tokens"] == sum(c["tokens"] for c in per.values())
    assert m["compute"]["budget"] == {"kind": "tokens", "total": 3000.0}

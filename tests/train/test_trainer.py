"""The trainer: a LoRA run's merged export is a plain checkpoint equal to base + adapter."""

from __future__ import annotations

import pytest

from helpers.train import run_train


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

"""Tiny students built from scratch: a BPE tokenizer trained on the task text and a small Llama.

Everything is saved with ``save_pretrained`` so any HF tool (transformers, vLLM, TRL) loads it.
Design notes (see docs/cpu-facts in the shared docs):

- digits are split one per token (``Digits(individual_digits=True)``): arithmetic needs it;
- byte-level BPE so decoding reproduces any text exactly (newlines included);
- ``<think>``/``</think>`` are added *non-special* tokens (as R1/Qwen3 do), so servers that skip
  special tokens keep them; ``<|im_start|>``/``<|im_end|>`` are special (ChatML);
- untied input/output embeddings (see ``build_tiny``);
- a ``llama`` config, whose tokenizer is loaded from ``tokenizer.json`` as is; head_dim >= 32 so
  vLLM's CPU kernels accept the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from thinkling.format import THINK_TAGS

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|im_start|>", "<|im_end|>"]
THINK_TOKENS = list(THINK_TAGS)


class TinySpec(BaseModel):
    """Shape of a tiny student built from scratch."""

    model_config = ConfigDict(extra="forbid")

    vocab_size: int = Field(512, ge=300, le=65536, description="BPE vocabulary size (byte alphabet is 256)")
    hidden_size: int = Field(128, ge=32, description="model width")
    num_layers: int = Field(4, ge=1, description="transformer layers")
    num_heads: int = Field(4, ge=1, description="attention heads (head_dim = hidden/heads; keep >= 32 for vLLM)")
    intermediate_size: int = Field(512, ge=32, description="MLP width")
    max_position_embeddings: int = Field(1024, ge=64, description="context length")


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512):
    """Train a byte-level BPE with single-digit pre-tokenization and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    role_words = ["user", "assistant", "system"] * 50
    tok.train_from_iterator(list(texts) + role_words, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        additional_special_tokens=["<|im_start|>"],
    )
    fast.add_tokens(THINK_TOKENS, special_tokens=False)
    fast.chat_template = CHATML_TEMPLATE
    fast.padding_side = "left"
    return fast


def build_tiny(out_dir: str | Path, texts: Iterable[str], spec: TinySpec | None = None, seed: int = 0) -> Path:
    """Train a tokenizer on ``texts``, create a randomly initialised Llama and save both."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    spec = spec or TinySpec()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(texts, spec.vocab_size)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        max_position_embeddings=spec.max_position_embeddings,
        rope_theta=10000.0,
        # untied: with tied embeddings, tokens the model cannot yet tell apart in its *outputs*
        # (e.g. '+' vs '-' early in training) get the same gradient, so their *input* embeddings
        # merge too (cosine 0.998 measured) and the model can no longer copy them - a trap that
        # cost a tiny arithmetic student most of its training budget. The extra vocab x hidden
        # parameters are negligible at this size.
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.bos_token_id = None
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out

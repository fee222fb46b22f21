"""The train stage's config: :class:`TrainConfig` and its option models.

Importable without torch or transformers (``thinkling train --help`` reads the field docs from here).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from thinkling.config import StageConfig
from thinkling.models.tiny import TinySpec


class LoraOptions(StageConfig):
    enabled: bool = Field(False, description="train LoRA adapters (peft) instead of all weights")
    r: int = Field(8, ge=1, description="LoRA rank")
    alpha: int = Field(16, ge=1, description="LoRA alpha (scale = alpha / r)")
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | str = Field("all-linear", description="modules to adapt ('all-linear' or names)")
    merge: bool = Field(True, description="merge the adapter into the weights and save a plain HF checkpoint "
                        "(the adapter alone is saved too, under adapter/)")


class ChunkwiseOptions(StageConfig):
    reasoning_only: bool = Field(False, description="chunkwise: train only the reasoning chunks (and the last, "
                                 "which carries the answer)")


class KDOptions(StageConfig):
    teacher: str | None = Field(None, description="kd: the teacher model (path or hub id); same tokenizer as the student")
    loss: Literal["kd_fkl", "kd_rkl", "kd_jsd", "taid"] = Field("kd_fkl", description="kd: divergence (docs/losses.md)")
    beta: float = Field(0.5, ge=0, le=1, description="kd_jsd: interpolation (0 = forward KL, 1 = reverse KL)")
    tau: float = Field(1.0, gt=0, description="kd: softmax temperature for student and teacher")
    ce_weight: float = Field(0.0, ge=0, le=1, description="kd: weight of the plain CE loss mixed in")
    offline: bool = Field(False, description="kd: precompute the teacher's top-k log-probs once, then train "
                          "without the teacher in memory (the tail outside the top-k is one 'rest' bucket)")
    top_k: int = Field(16, ge=1, description="kd offline: log-probs kept per position")
    taid_t_start: float = Field(0.4, ge=0, le=1, description="taid: initial interpolation t")
    taid_t_end: float = Field(1.0, ge=0, le=1, description="taid: final t")
    taid_alpha: float = Field(5e-4, ge=0, description="taid: adaptive step size of t")
    taid_beta: float = Field(0.99, ge=0, lt=1, description="taid: momentum of the adaptive update")


class RediOptions(StageConfig):
    alpha: float = Field(0.8, ge=0, description="redi: weight of the negative traces' term")


class AdaptiveOptions(StageConfig):
    short_max_tier: int = Field(2, ge=0, description="adaptive: difficulty tiers (or levels) up to this learn the "
                                "short mode as their natural one; harder ones the long mode")


class TrainConfig(StageConfig):
    data: str | list[str] = Field(description="curated data: a curate output dir (uses train.jsonl) or a JSONL of "
                                  "examples; a list trains on their union (multi-task)")
    out: str = Field(description="output dir for the student checkpoint")
    method: str = Field("sft", description="training method (registry): sft, chunkwise, skip, kd, redi, adaptive, lorid")
    model: str = Field("tiny", description="'tiny' (built from scratch), an HF hub id, or a local checkpoint path")
    tiny: TinySpec = Field(default_factory=TinySpec)
    tokenizer_from: list[str] = Field(
        default_factory=list,
        description="for model=tiny: JSONL files or stage dirs whose text trains the tokenizer (default: the training data)",
    )
    tokenizer_texts: int = Field(20000, ge=100, description="for model=tiny: at most this many texts (an even spread) train the tokenizer")
    dtype: Literal["float32", "bfloat16"] = Field("float32", description="weights dtype")
    lr: float = Field(1e-3, gt=0, description="peak learning rate (1e-3 suits tiny models from scratch; ~1e-5 for pretrained)")
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="share of the run spent warming the lr up")
    weight_decay: float = Field(0.0, ge=0)
    adam_beta2: float = Field(0.98, gt=0, lt=1, description="AdamW beta2 (0.98 adapts faster on short runs than 0.999)")
    batch_size: int = Field(32, ge=1, description="examples per device per micro-batch")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step")
    epochs: float = Field(1.0, gt=0, description="passes over the data (ignored when max_steps > 0)")
    max_steps: int = Field(-1, description="optimizer steps; -1 = from epochs")
    budget_tokens: int | None = Field(
        None, gt=0,
        description="compute budget in forward tokens processed (prompt included, padding excluded, all ranks): "
                    "the lr schedule (warmup, cosine to 10%) runs on the share spent and training stops when it is "
                    "spent; exact and machine-independent (docs/methods.md#budgets-and-compute)",
    )
    budget_flops: float | None = Field(
        None, gt=0,
        description="compute budget in training FLOPs: 6 x student params per token, + 2 x teacher params for "
                    "online kd, + an offline teacher's precomputation; schedule and stop as for budget_tokens",
    )
    budget_minutes: float | None = Field(
        None, gt=0,
        description="wall-clock budget (depends on how busy the machine is; budget_tokens is exact): the lr "
                    "schedule runs on elapsed time and training stops when it is spent",
    )
    max_len: int = Field(1024, ge=8, description="longest example in tokens; longer ones are dropped (counted)")
    group_by_length: bool = Field(True, description="batch examples of similar length (little padding, no cross-attention)")
    save_steps: int = Field(200, ge=1, description="checkpoint every N steps (resume picks up the latest)")
    seed: int = 0
    threads: int | None = Field(None, ge=1, description="torch threads (1 when anything else runs on the CPU)")
    take_freed_cores: bool | None = Field(
        None, description="take the cores a recipe's other students free (the runner's hand-over): None = only "
        "with budget_minutes or no budget; true = with any budget (another thread count may round differently: "
        "set it only where 1 and 2 threads are known to give the same weights, as on the tiny shapes); false = never")
    bf16_autocast: bool = Field(False, description="bf16 autocast for compute (faster on some CPUs)")
    logging_steps: int = Field(20, ge=1)
    show_mask: bool = Field(True, description="print which tokens of the first example get loss")
    lora: LoraOptions = Field(default_factory=LoraOptions)
    chunkwise: ChunkwiseOptions = Field(default_factory=ChunkwiseOptions)
    skip_keep_ends: bool = Field(True, description="skip: keep the first and last chunk (restatement, conclusion) "
                                 "even when they are not reasoning; only the middle ones are skipped")
    kd: KDOptions = Field(default_factory=KDOptions)
    redi: RediOptions = Field(default_factory=RediOptions)
    adaptive: AdaptiveOptions = Field(default_factory=AdaptiveOptions)

    @model_validator(mode="after")
    def _one_budget(self) -> TrainConfig:
        set_ = [k for k in ("budget_tokens", "budget_flops", "budget_minutes") if getattr(self, k) is not None]
        if len(set_) > 1:
            raise ValueError(f"{' and '.join(set_)} are both set: give one budget")
        return self

    @field_validator("method")
    @classmethod
    def _known_method(cls, v: str) -> str:
        from thinkling.train.methods import method_names  # here: the method modules import this one

        if v not in method_names():
            raise ValueError(f"unknown method {v!r}; known: {', '.join(method_names())}")
        return v

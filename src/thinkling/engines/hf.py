"""The ``hf`` engine: a local transformers model (hub id or checkpoint dir), optionally with LoRA adapters.

Batched generation (left padding, KV cache, length-sorted batches; :mod:`thinkling.models.generation`)
answers requests grouped by (adapter, sampling, seed of a sampled reply): greedy replies do not depend
on how requests are batched. A prompt that does not fit the model's context fails alone, and the token
cap of a group is clipped to what the context leaves. A LoRID output dir (``lorid.json``) with
``lorid: true`` loads its base once with every adapter, and plain requests get its default adapter
(the Intuitive Reasoner, which is what the merged checkpoint in the dir holds).

``thinkling serve`` runs the same engine through :meth:`HFEngine.decoder`: a token-by-token loop in
which every row carries its own request (see :mod:`thinkling.engines.hf_decode`).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from thinkling.engines.base import Engine, EngineOptions, Reply, Request, TokenLogprob, register_engine
from thinkling.engines.hf_decode import StepDecoder
from thinkling.models.generation import generate_ids, token_logprobs
from thinkling.models.loading import ModelLoadError, hub_id, load_model, load_tokenizer, lorid_layout
from thinkling.models.render import prompt_ids


class HFOptions(EngineOptions):
    backend: Literal["hf"] = "hf"
    model: str = Field(description="model path or hub id (a chat model)")
    batch_size: int = Field(32, ge=1, description="prompts per generation batch")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="weights dtype")
    lorid: bool = Field(False, description="a LoRID output dir loads its base and its three adapters "
                        "(plain requests get its default adapter); otherwise the merged checkpoint in it")
    adapter_dirs: dict[str, str] = Field(default_factory=dict, description="more peft LoRA adapters on the one "
                                         "loaded base, {name: adapter dir}; a request's adapter picks one")
    max_model_len: int | None = Field(None, ge=2, description="context length (default: the model "
                                      "config's max_position_embeddings)")

    LOADS_WEIGHTS = True
    OPERATIONAL = frozenset({"batch_size"})

    @field_validator("model")
    @classmethod
    def _unmark(cls, v: str) -> str:
        return hub_id(v)  # "hub:org/name" says it is a hub id; the engine loads "org/name"

    def engine_id(self) -> str:
        return self.name or f"hf:{self.model}"


@register_engine("hf", HFOptions)
class HFEngine(Engine):
    """A local transformers chat model, batched in this process (LoRA adapters by name)."""

    def __init__(self, options: HFOptions):
        base, lorid_adapters, self.default = lorid_layout(options.model) if options.lorid else (options.model, {}, None)
        adapters = {**lorid_adapters, **options.adapter_dirs}
        for name, path in adapters.items():
            if not (Path(path).expanduser() / "adapter_config.json").is_file():
                raise ModelLoadError(f"adapter {name!r}: {path} holds no peft adapter (no adapter_config.json)")
        self.options = options
        self.base = base
        self.tokenizer = load_tokenizer(base)
        self.model = load_model(base, options.dtype)
        self.batch_size = options.batch_size
        if adapters:
            from peft import PeftModel  # heavy (peft loads transformers' trainer pieces): only when asked

            names = list(adapters)
            self.model = PeftModel.from_pretrained(self.model, adapters[names[0]], adapter_name=names[0])
            for name in names[1:]:
                self.model.load_adapter(adapters[name], adapter_name=name)
            self.adapters = tuple(names)
        config = self.base_model.config
        self.context = int(options.max_model_len or getattr(config, "max_position_embeddings", 0) or 0)
        self._decoder = None

    @property
    def base_model(self):
        """The transformers model under the adapters."""
        return self.model.get_base_model() if self.adapters else self.model

    # ---- batched generation --------------------------------------------------------------------

    def generate(self, requests: list[Request]) -> list[Reply | Exception]:
        out: list[Reply | Exception | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        prompts: dict[int, list[int]] = {}
        for i, r in enumerate(requests):
            adapter = r.adapter or self.default
            if adapter is not None and adapter not in self.adapters:
                out[i] = ValueError(f"adapter {adapter!r} is not loaded (have: {', '.join(self.adapters) or 'none'})")
                continue
            try:
                prompts[i] = prompt_ids(self.tokenizer, r.messages, r.prompt, r.prefix)
            except Exception as e:  # noqa: BLE001 - a conversation the template rejects fails alone
                out[i] = e
                continue
            n = len(prompts[i])
            if self.context and n + 1 > self.context:
                out[i] = ValueError(f"prompt of {n} tokens does not fit the model's context of {self.context}")
                continue
            s = r.sampling
            # one generate call per group; greedy ignores the seed, so it batches across samples
            groups.setdefault((adapter, s.temperature, s.top_p, s.max_tokens,
                               r.seed if s.temperature > 0 else 0), []).append(i)
        for (adapter, temperature, top_p, cap, seed), idx in groups.items():
            with self._adapter(adapter):
                self._run_group(requests, idx, prompts, out, temperature, top_p, cap, seed)
        return out  # type: ignore[return-value]

    def _adapter(self, adapter: str | None):
        if not self.adapters:
            return nullcontext()
        if adapter is None:
            return self.model.disable_adapter()
        self.model.set_adapter(adapter)
        return nullcontext()

    def _run_group(self, requests, idx, prompts, out, temperature, top_p, cap, seed) -> None:
        max_new = cap
        if self.context:
            max_new = min(cap, self.context - max(len(prompts[i]) for i in idx))

        def on_batch(batch: list[int], comps) -> None:
            for j, c in zip(batch, comps):
                i = idx[j]
                r = requests[i]
                out[i] = Reply.of_text(r.prefix + c.text, finish_reason="length" if c.truncated else "stop",
                                       prompt_tokens=len(prompts[i]), completion_tokens=c.n_tokens,
                                       seconds=c.seconds, meta={"tokens": list(c.tokens)})
            if self.progress is not None:
                for j in batch:
                    self.progress(requests[idx[j]], out[idx[j]])

        generate_ids(self.model, self.tokenizer, [prompts[i] for i in idx], max_new_tokens=max_new,
                     batch_size=self.batch_size, temperature=temperature, top_p=top_p, seed=seed, on_batch=on_batch)
        want = [i for i in idx if requests[i].logprobs is not None]
        if want:
            self._add_logprobs(requests, want, prompts, out)
        for i in idx:  # the token ids served their purpose (log-probs); replies stay small
            out[i].meta.pop("tokens", None)

    def _add_logprobs(self, requests, want: list[int], prompts, out) -> None:
        k = max(requests[i].logprobs or 0 for i in want)
        seqs = [prompts[i] + out[i].meta["tokens"] for i in want]
        scored = token_logprobs(self.model, seqs, [len(prompts[i]) for i in want], k=k, batch_size=self.batch_size)
        for i, rows in zip(want, scored):
            ki = requests[i].logprobs or 0
            out[i].logprobs = [TokenLogprob(t, lp, top[:ki]) for t, lp, top in rows]

    # ---- serve's token-by-token loop -----------------------------------------------------------

    @property
    def decoder(self):
        """The step-wise decoder ``thinkling serve`` batches its requests on (built on first use)."""
        if self._decoder is None:
            self._decoder = StepDecoder(self.model, self.tokenizer, self.base_model, bool(self.adapters))
        return self._decoder

    def close(self) -> None:
        self.model = None
        self._decoder = None


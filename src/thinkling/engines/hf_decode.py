"""The ``hf`` engine's token-by-token loop: what ``thinkling serve`` batches its requests on.

``model.generate`` (the engine's batched path) cannot serve requests whose rows each carry their own
sampling parameters and seed, stop strings, token cap, top-k log-probs, thinking budget (budget forcing
inserts ``</think>`` when it runs out) and LoRA adapter (peft's per-row ``adapter_names``), nor stream
every token as it comes. :class:`StepDecoder` does: prompts left-padded, positions from the attention
mask (as ``generate`` computes them, so greedy replies equal the batched path's), the KV cache, and
rows dropped from the batch as they finish.

Text bookkeeping is incremental in one direction (text only grows at its end), which is why a streamed
reply, concatenated, equals the same reply not streamed.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from thinkling.engines.base import TokenLogprob
from thinkling.format import THINK_CLOSE as CLOSE
from thinkling.format import THINK_OPEN as OPEN

BASE = "__base__"  # peft's name for "no adapter" in a mixed batch


class Detokenizer:
    """Decode generated ids one at a time (the prefix/read offsets of TGI and vLLM).

    Each call decodes a short window, not the whole reply, so cost stays flat with length; a token
    that ends inside a multi-byte character gives no text until the character is complete, and
    tokenizers that drop a leading space at the start of a decode (SentencePiece) stay right because
    the window always starts a few tokens back.
    """

    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.ids: list[int] = []
        self.prefix = 0
        self.read = 0

    def _decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def add(self, token: int) -> str:
        self.ids.append(token)
        before = self._decode(self.ids[self.prefix:self.read])
        now = self._decode(self.ids[self.prefix:])
        if len(now) > len(before) and not now.endswith("\ufffd"):
            self.prefix, self.read = self.read, len(self.ids)
            return now[len(before):]
        return ""

    def flush(self) -> str:
        """Text still held back at the end (an incomplete character decodes to U+FFFD)."""
        before = self._decode(self.ids[self.prefix:self.read])
        now = self._decode(self.ids[self.prefix:])
        self.prefix = self.read = len(self.ids)
        return now[len(before):] if len(now) > len(before) else ""


def find_stop(text: str, stops: list[str], start: int = 0) -> int:
    """Index of the earliest stop string in ``text[start:]`` (-1 if none)."""
    hits = [i for s in stops if s and (i := text.find(s, start)) >= 0]
    return min(hits) if hits else -1


@dataclass
class DecodeSampling:
    temperature: float = 1.0   # 0: greedy
    top_p: float = 1.0
    top_k: int = 0             # 0: off
    seed: int | None = None    # None: a fresh random seed


@dataclass
class Choice:
    """One sequence to generate, and its state as it grows."""

    index: int
    prompt: list[int]
    max_tokens: int
    sampling: DecodeSampling = field(default_factory=DecodeSampling)
    stop: list[str] = field(default_factory=list)
    logprobs: int | None = None          # None: none; k >= 0: the chosen token's and the top k
    thinking_budget: int | None = None   # most tokens inside <think>...</think>
    opened: bool = False                 # the prompt ends inside <think>
    ignore_eos: bool = False
    # state, written by the decoding thread only
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = None     # "stop" | "length" | "cancelled"
    thinking: bool = False
    think_done: bool = False
    think_start: int = 0                 # where the reasoning starts in text
    think_tokens: int = 0
    forced: list[int] = field(default_factory=list)   # tokens to emit next (the closing tag)
    forcing: bool = False
    entries: list[TokenLogprob] = field(default_factory=list)
    detok: Detokenizer | None = None
    generator: object = None


class StepDecoder:
    """Decodes a batch of :class:`Choice` rows to their ends on one model (see the module docstring)."""

    def __init__(self, model, tokenizer, base_model, with_adapters: bool):
        self.model = model.eval()
        self.tok = tokenizer
        self.with_adapters = with_adapters
        self.config = base_model.config
        gen_eos = getattr(getattr(base_model, "generation_config", None), "eos_token_id", None)
        eos = [tokenizer.eos_token_id, *(gen_eos if isinstance(gen_eos, list) else [gen_eos])]
        self.stop_ids = {int(e) for e in eos if e is not None}
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.close_ids = tokenizer(CLOSE, add_special_tokens=False)["input_ids"]
        self._keep_kw = "logits_to_keep" in inspect.signature(base_model.forward).parameters

    def prepare(self, c: Choice) -> None:
        """Ready a choice for decoding: its detokenizer, thinking state and sampling generator."""
        import torch

        c.detok = Detokenizer(self.tok)
        c.thinking = c.opened
        self._spend_budget(c)
        seed = c.sampling.seed
        if c.sampling.temperature > 0:
            s = random.SystemRandom().getrandbits(63) if seed is None else (seed * 1_000_003 + c.index) % 2**63
            c.generator = torch.Generator().manual_seed(s)

    def decode(self, rows: list[tuple[Choice, str | None]], on_step: Callable[[list[int]], None],
               cancelled: Callable[[int], bool]) -> int:
        """Generate every (choice, adapter) row to its end; ``on_step(live row indices)`` after each step,
        and a row for which ``cancelled(row)`` is true ends with ``finish_reason="cancelled"``. Returns the
        number of tokens generated."""
        import torch

        tokens = 0
        width = max(len(c.prompt) for c, _ in rows)
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        att = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (c, _) in enumerate(rows):
            ids[r, width - len(c.prompt):] = torch.tensor(c.prompt)
            att[r, width - len(c.prompt):] = 1
        pos = (att.cumsum(-1) - 1).masked_fill(att == 0, 0)   # as generate() computes them
        from transformers import DynamicCache  # transformers is heavy: imported when decoding starts

        cache = DynamicCache(config=self.config)
        live = list(range(len(rows)))                         # rows still in the batch, in tensor order
        want_logprobs = any(c.logprobs is not None for c, _ in rows)
        while True:
            kw = {"logits_to_keep": 1} if self._keep_kw else {}
            if self.with_adapters:
                kw["adapter_names"] = [rows[r][1] or BASE for r in live]
            out = self.model(input_ids=ids, attention_mask=att, position_ids=pos, past_key_values=cache,
                             use_cache=True, **kw)
            logits = out.logits[:, -1, :].float()
            logp = torch.log_softmax(logits, dim=-1) if want_logprobs else None
            greedy = logits.argmax(dim=-1).tolist()
            nxt, keep = [], []
            for b, r in enumerate(live):
                c = rows[r][0]
                if cancelled(r):
                    c.finish_reason = "cancelled"
                else:
                    tok = self._pick(c, logits[b], greedy[b])
                    self._append(c, tok, None if logp is None else logp[b])
                nxt.append(c.tokens[-1] if c.tokens else self.pad)
                if c.finish_reason is None:
                    keep.append(b)
            tokens += len(live)
            on_step(live)
            if not keep:
                return tokens
            if len(keep) < len(live):                          # drop finished rows from the batch
                sel = torch.tensor(keep)
                cache.batch_select_indices(sel)
                att, pos = att[sel], pos[sel]
                live, nxt = [live[b] for b in keep], [nxt[b] for b in keep]
            ids = torch.tensor(nxt, dtype=torch.long)[:, None]
            att = torch.cat([att, att.new_ones((len(live), 1))], dim=-1)
            pos = pos[:, -1:] + 1

    def _pick(self, c: Choice, logits, greedy: int) -> int:
        import torch

        if c.forced:
            return c.forced.pop(0)
        s = c.sampling
        if s.temperature <= 0:
            return greedy
        x = logits / s.temperature
        if s.top_k and s.top_k < x.numel():
            kth = torch.topk(x, s.top_k).values[-1]
            x = x.masked_fill(x < kth, float("-inf"))
        if s.top_p < 1.0:
            srt, idx = torch.sort(x, descending=True)
            p = torch.softmax(srt, dim=-1)
            drop = (p.cumsum(-1) - p) > s.top_p               # keep the smallest head with mass >= top_p
            x = torch.full_like(x, float("-inf")).scatter(0, idx, srt.masked_fill(drop, float("-inf")))
        return int(torch.multinomial(torch.softmax(x, dim=-1), 1, generator=c.generator).item())

    def _append(self, c: Choice, tok: int, logp) -> None:
        import torch

        c.tokens.append(tok)
        if c.logprobs is not None:
            top = []
            if c.logprobs > 0:
                v, i = torch.topk(logp, min(c.logprobs, logp.numel()))
                top = list(zip(i.tolist(), v.tolist()))
            c.entries.append(TokenLogprob(tok, float(logp[tok]), top))
        if tok in self.stop_ids and not c.ignore_eos:
            c.text += c.detok.flush()
            c.finish_reason = "stop"
            return
        delta = c.detok.add(tok)
        c.text += delta
        self._track_thinking(c, delta)
        if c.stop:
            start = max(0, len(c.text) - len(delta) - max(map(len, c.stop)) + 1)
            if (i := find_stop(c.text, c.stop, start)) >= 0:
                c.text = c.text[:i]
                c.finish_reason = "stop"
                return
        if len(c.tokens) >= c.max_tokens:
            c.text += c.detok.flush()
            c.finish_reason = "length"

    def _track_thinking(self, c: Choice, delta: str) -> None:
        """Count tokens inside <think>...</think>; when the budget is spent, force the closing tag."""
        if c.think_done:
            return
        if not c.thinking:
            head = c.text.lstrip()
            if head.startswith(OPEN):
                c.thinking = True
                c.think_start = c.text.index(OPEN) + len(OPEN)
                self._spend_budget(c)
            elif not OPEN.startswith(head):
                c.think_done = True                           # this reply does not think
            return
        window = c.text[max(c.think_start, len(c.text) - len(delta) - len(CLOSE)):]
        if CLOSE in window:
            c.thinking, c.think_done, c.forced, c.forcing = False, True, [], False
            return
        if not c.forcing:
            c.think_tokens += 1
            self._spend_budget(c)

    def _spend_budget(self, c: Choice) -> None:
        if c.thinking and c.thinking_budget is not None and c.think_tokens >= c.thinking_budget and not c.forcing:
            c.forced, c.forcing = list(self.close_ids), True

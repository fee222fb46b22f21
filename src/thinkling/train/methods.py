"""Training methods in a registry: a method = a data source + a loss + optional hooks.

The loop (``stage.py``) is the same for every method; what differs is which tokens get loss, how the
loss compares them, and - through the hooks - what is loaded before training and how the fit runs:

    rows = method.build_rows(examples, tokenizer, cfg)          # the data source
    run = Run(cfg, model, tokenizer, rows, out, ...)            # interface.py
    objective = Objective(rows, method.loss_for(cfg))           # a loss in losses.py, over the rows
    objective = method.prepare(run, objective)                  # optional: kd loads its teacher
    fitted = (method.fit or fit_one)(run, objective)            # optional: lorid fits three adapters
    write_manifest(..., fitted.counts, extra=fitted.extra)      # fitted is None on non-main ranks

- **data source** ``build_rows(examples, tokenizer, cfg) -> rows``: curated
  :class:`~thinkling.records.Example` rows -> tokenized rows ``{"input_ids", "labels", "length"}``
  (labels = ids where the loss falls, else :data:`~thinkling.train.interface.IGNORE`), optionally
  with a per-sequence ``weight`` (REDI); ``id`` names the example a row comes from.
- **loss**: a name in the loss registry, or a function of the config that returns one (``kd``: the
  ``kd.loss`` option).
- **prepare** ``(run, objective) -> objective`` (optional): runs once the student is loaded and its
  rows built; returns the objective to fit - the loss's hyper-parameters, a ``teacher`` view of each
  batch, rows carrying precomputed fields, a per-step schedule (see
  :class:`~thinkling.train.interface.Objective`). ``kd``: :func:`~thinkling.train.teacher.prepare_kd`.
- **fit** ``(run, objective) -> Fitted | None`` (optional): trains and saves the weights under
  ``run.out`` and returns the manifest's counts (None on ranks other than the main one). Default
  :func:`~thinkling.train.trainer.fit_one`: one Trainer, resumable, LoRA when asked. ``lorid``:
  :func:`~thinkling.train.lorid.fit_lorid`. A fit builds its Trainers with
  :func:`~thinkling.train.trainer.make_trainer`.
- **inputs** ``(cfg) -> {name: path}`` (optional): local directories the method reads besides the
  data and the student, fingerprinted in the manifest so that a change re-runs training (``kd``: the
  teacher, :func:`~thinkling.train.teacher.teacher_inputs`).

A new method is one module with these functions plus one registry line here:
``register_method("name", loss=..., prepare=module.prepare, fit=module.fit, doc=...)(module.rows)``
(the hooks a method does not need are left out).
On-policy distillation, say: its data source yields prompt rows, ``prepare`` loads the teacher and
starts the student's inference engine, ``fit`` samples completions each round and trains on them
against the teacher with ``make_trainer``. RL: prompt rows, ``prepare`` binds the task's verifier as
the reward, ``fit`` samples, scores and takes policy steps.

| method | rows | loss | hooks |
|---|---|---|---|
| ``sft`` | question -> reasoning + answer | ``ce`` | |
| ``chunkwise`` (CWT) | one row per chunk: question + earlier chunks as context, loss on that chunk | ``ce`` | |
| ``skip`` (STT) | CWT over the trace with its non-reasoning middle chunks removed | ``ce`` | |
| ``kd`` | as ``sft``; the loss compares the student's distribution with a teacher's | ``kd.loss`` | prepare |
| ``redi`` | positive traces (weight +1) and negatives from ``verify`` (weight -alpha) | ``redi`` | |
| ``adaptive`` | a mode marker then a short or long trace; the marker by difficulty | ``ce`` | |
| ``lorid`` | three data sources, one LoRA adapter each (see ``lorid_sources``) | ``ce`` | fit |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from thinkling.artifacts import DataError, read_jsonl
from thinkling.format import LONG_MARK, SHORT_MARK, THINK_OPEN, deep_question, format_assistant
from thinkling.models.render import RenderError, render
from thinkling.records import Example
from thinkling.registry import Registry
from thinkling.train.interface import IGNORE, Fitted, Objective, Run
from thinkling.train.lorid import fit_lorid
from thinkling.train.teacher import prepare_kd, teacher_inputs


@dataclass
class Method:
    name: str
    build_rows: Callable[..., list[dict]]
    loss: str | Callable[..., str]
    doc: str
    prepare: Callable[[Run, Objective], Objective] | None = None
    fit: Callable[[Run, Objective], Fitted | None] | None = None
    inputs: Callable[..., dict[str, str]] | None = None

    def loss_for(self, cfg) -> str:
        """The loss's registry name under ``cfg``."""
        return self.loss(cfg) if callable(self.loss) else self.loss


METHODS: Registry[Method] = Registry("training method")
get_method = METHODS.get
method_names = METHODS.names


def register_method(name: str, loss: str | Callable[..., str], doc: str, prepare=None, fit=None, inputs=None):
    """Decorator registering a data-source function as method ``name`` with its loss and hooks.

    The function is called as ``fn(examples, tokenizer, cfg)`` (``cfg`` = the TrainConfig) and
    returns rows; ``loss`` is a loss name or ``loss(cfg) -> name``; ``prepare``, ``fit`` and
    ``inputs`` are the optional hooks (module docstring).
    """

    def deco(fn):
        METHODS.add(name, Method(name, fn, loss, doc, prepare=prepare, fit=fit, inputs=inputs))
        return fn

    return deco


def to_row(ids: list[int], mask: list[int], max_len: int) -> dict | None:
    if len(ids) > max_len:
        return None
    labels = [t if m else IGNORE for t, m in zip(ids, mask)]
    return {"input_ids": ids, "labels": labels, "length": len(ids)}


def _prompt(ex: Example) -> list[dict[str, str]]:
    return [{"role": "user", "content": ex.question}]


def _sft(examples: list[Example], tokenizer, max_len: int, reply=None) -> list[dict]:
    rows = []
    for ex in examples:
        text = reply(ex) if reply else format_assistant(ex.reasoning, ex.answer)
        ids, mask = render(tokenizer, _prompt(ex), text)
        row = to_row(ids, mask, max_len)
        if row is not None:
            row["id"] = ex.id
            rows.append(row)
    return rows


@register_method("sft", loss="ce", doc="CoT distillation: loss on the assistant reply (reasoning + answer + end of turn).")
def sft_rows(examples: list[Example], tokenizer, cfg) -> list[dict]:
    return _sft(examples, tokenizer, cfg.max_len)


# ----------------------------------------------------------------------------- chunk-wise (CWT) and skip (STT)


def _reply_token_offsets(tokenizer, ids: list[int], mask: list[int], reply: str) -> list[int]:
    """Character offset in ``reply`` of each trained token's first visible character (template tail
    tokens: len(reply)).

    The reply is tokenized alone with offsets; its ids must be the head of the trained span of the
    full rendering (true for templates that embed the content verbatim, e.g. ChatML).
    """
    enc = tokenizer(reply, add_special_tokens=False, return_offsets_mapping=True)
    start = mask.index(1)
    span = ids[start:]
    if span[: len(enc["input_ids"])] != enc["input_ids"]:
        raise RenderError("chunk-wise training: the chat template does not embed the reply verbatim, so chunk "
                          "offsets cannot be mapped to tokens; use a ChatML-like template")
    # a token belongs where its first visible character is: byte-level BPE glues the space before a word
    # to it, and that space ends the previous chunk (" We" opens the next chunk, not the one before)
    offs = []
    for a, b in enc["offset_mapping"]:
        v = a
        while v < b and reply[v].isspace():
            v += 1
        offs.append(v if v < b else a)
    return offs + [len(reply)] * (len(span) - len(offs))


def _chunk_rows(ex: Example, chunks: list[dict], tokenizer, max_len: int) -> list[dict]:
    """One row per chunk: the prefix up to the chunk's end, loss on the chunk's tokens only.

    The reply is ``<think>\\n`` + reasoning + ``\\n</think>\\n`` + answer; the opening tag is learned
    with the first chunk, and the closing tag, the answer and the end of turn with the last one.
    """
    reasoning = "".join(c["text"] for c in chunks)
    reply = format_assistant(reasoning, ex.answer)
    ids, mask = render(tokenizer, _prompt(ex), reply)
    offs = _reply_token_offsets(tokenizer, ids, mask, reply)
    start = mask.index(1)
    base = len(THINK_OPEN) + 1  # reasoning starts after "<think>\n"
    bounds = [base + c["end"] for c in chunks]  # reply offset where each chunk ends
    bounds[-1] = len(reply) + 1  # the last chunk takes everything after it (and the template tail)
    rows = []
    lo = 0
    for k, hi in enumerate(bounds):
        tok_idx = [i for i, o in enumerate(offs) if lo <= o < hi]
        lo = hi
        if not tok_idx:
            continue
        end = start + tok_idx[-1] + 1
        row_mask = [0] * end
        for i in tok_idx:
            row_mask[start + i] = 1
        row = to_row(ids[:end], row_mask, max_len)
        if row is not None:
            row["id"] = f"{ex.id}#c{k}"
            rows.append(row)
    return rows


def _need_chunks(ex: Example) -> list[dict]:
    chunks = ex.meta.get("chunks")
    if not chunks:
        raise ValueError(f"example {ex.id} has no chunks: curate the data with the chunk op "
                         "(ops: [verify, chunk, ...]) before chunk-wise or skip training")
    if "".join(c["text"] for c in chunks) != ex.reasoning:
        raise ValueError(f"example {ex.id}: its chunks do not tile its reasoning (an op after chunk rewrote it); "
                         "run chunk after compress")
    return chunks


@register_method("chunkwise", loss="ce", doc="CWT: one row per chunk (question + earlier chunks as context); loss on that chunk.")
def chunkwise_rows(examples: list[Example], tokenizer, cfg) -> list[dict]:
    """Chunk schedule: every (example, chunk) pair is one row and the Trainer shuffles rows, so an
    epoch visits each chunk of each example once, in random order, with its own earlier chunks as
    teacher-forced context. Because the loss is divided by the global count of trained tokens, a
    short reasoning chunk weighs as much per token as in SFT, but it is no longer averaged together
    with the long filler around it in one sequence. ``chunkwise.reasoning_only`` trains only the
    reasoning chunks (plus the last chunk, which carries the answer)."""
    rows = []
    for ex in examples:
        chunks = _need_chunks(ex)
        keep = [c["reasoning"] or not cfg.chunkwise.reasoning_only or i == len(chunks) - 1
                for i, c in enumerate(chunks)]
        for r in _chunk_rows(ex, chunks, tokenizer, cfg.max_len):
            if keep[int(r["id"].rsplit("#c", 1)[1])]:
                rows.append(r)
    return rows


def skip_chunks(chunks: list[dict], keep_ends: bool = True) -> list[dict]:
    """The chunks left when the non-reasoning *middle* chunks are skipped (re-tiled offsets)."""
    n = len(chunks)
    kept = [c for i, c in enumerate(chunks) if c["reasoning"] or (keep_ends and i in (0, n - 1))]
    out, pos = [], 0
    for j, c in enumerate(kept):
        text = c["text"]
        if j == len(kept) - 1:
            text = text.rstrip()
        elif not text[-1:].isspace():
            text += "\n"
        out.append({**c, "text": text, "start": pos, "end": pos + len(text)})
        pos += len(text)
    return out


@register_method("skip", loss="ce", doc="STT: chunk-wise training on traces whose non-reasoning middle chunks are removed.")
def skip_rows(examples: list[Example], tokenizer, cfg) -> list[dict]:
    rows = []
    for ex in examples:
        chunks = skip_chunks(_need_chunks(ex), keep_ends=cfg.skip_keep_ends)
        short = ex.model_copy(update={"reasoning": "".join(c["text"] for c in chunks)})
        rows.extend(_chunk_rows(short, chunks, tokenizer, cfg.max_len))
    return rows


# ----------------------------------------------------------------------------- kd, redi


def _kd_loss(cfg) -> str:
    return cfg.kd.loss


@register_method("kd", loss=_kd_loss, prepare=prepare_kd, inputs=teacher_inputs,
                 doc="Logit distillation from a white-box teacher (kd.loss: kd_fkl, kd_rkl, kd_jsd, taid).")
def kd_rows(examples: list[Example], tokenizer, cfg) -> list[dict]:
    return _sft(examples, tokenizer, cfg.max_len)


@register_method("redi", loss="redi", doc="REDI: positives (+1) and verify's negatives (-alpha), reference-free; run after SFT.")
def redi_rows(examples: list[Example], tokenizer, cfg) -> list[dict]:
    """Positives come from the data's ``train.jsonl``, negatives from ``negatives.jsonl`` beside it
    (the ``verify`` op writes them); only problems that have both are used, as in REDI's pairs."""
    if not isinstance(cfg.data, str):
        raise DataError("redi takes one data dir (its negatives.jsonl sits beside train.jsonl), not a list")
    neg_file = Path(cfg.data) / "negatives.jsonl" if Path(cfg.data).is_dir() else Path(cfg.data).with_name("negatives.jsonl")
    if not neg_file.exists():
        raise DataError(f"redi needs negatives: {neg_file} not found (curate with the verify op)")
    negatives = read_jsonl(neg_file, Example)
    with_neg = {e.problem_id for e in negatives}
    pos = [e for e in examples if e.problem_id in with_neg]
    with_pos = {e.problem_id for e in pos}
    neg = [e for e in negatives if e.problem_id in with_pos]
    if not pos or not neg:
        raise DataError(f"redi: no problem has both a correct trace ({cfg.data}) and a wrong one ({neg_file})")
    rows = []
    for r in _sft(pos, tokenizer, cfg.max_len):
        rows.append({**r, "weight": 1.0})
    for r in _sft(neg, tokenizer, cfg.max_len):
        rows.append({**r, "weight": -cfg.redi.alpha})
    return rows


# ----------------------------------------------------------------------------- adaptive


def adaptive_reply(ex: Example, mode: str) -> str:
    long = ex.meta.get("original_reasoning", ex.reasoning)
    if mode == "short":
        return SHORT_MARK + format_assistant(ex.reasoning, ex.answer)
    return LONG_MARK + format_assistant(long, ex.answer)


def natural_mode(ex: Example, short_max_tier: int) -> str:
    tier = ex.meta.get("difficulty")
    tier = ex.level if tier is None else int(tier)
    return "short" if tier <= short_max_tier else "long"


@register_method("adaptive", loss="ce", doc="Short and long traces behind a mode marker; the student picks the mode by difficulty.")
def adaptive_rows(examples: list[Example], tokenizer, cfg) -> list[dict]:
    """Needs examples with both a short and a long trace: the ``compress`` op keeps the original as
    ``meta.original_reasoning``. Per example two rows: the *natural* mode (short for difficulty tiers
    <= ``adaptive.short_max_tier``, else long) with the loss on the marker too, so the student learns
    to choose; and the other mode with its marker given (no loss on it), so a user can force a mode by
    starting the reply with ``<short>`` or ``<long>``."""
    if not any("original_reasoning" in e.meta for e in examples):
        raise ValueError("adaptive needs short and long traces: curate with compress (it keeps the original "
                         "reasoning as meta.original_reasoning)")
    mark_ids = {m: tokenizer(m, add_special_tokens=False)["input_ids"] for m in (SHORT_MARK, LONG_MARK)}
    rows = []
    for ex in examples:
        nat = natural_mode(ex, cfg.adaptive.short_max_tier)
        for mode in ("short", "long"):
            ids, mask = render(tokenizer, _prompt(ex), adaptive_reply(ex, mode))
            if mode != nat:  # the forced mode: the marker is context, not a target
                start = mask.index(1)
                k = len(mark_ids[SHORT_MARK if mode == "short" else LONG_MARK])
                mask = mask[:start] + [0] * k + mask[start + k:]
            row = to_row(ids, mask, cfg.max_len)
            if row is not None:
                row["id"] = f"{ex.id}#{mode}"
                rows.append(row)
    return rows


# ----------------------------------------------------------------------------- lorid


def lorid_sources(examples: list[Example]) -> dict[str, list[Example]]:
    """The three LoRID data sources from knowledge-enhanced examples (the ``knowledge`` op):

    - ``intuitive`` (Intuitive Reasoner): question -> reasoning + answer;
    - ``knowledge`` (Knowledge Generator): question -> the knowledge, as the reply (no reasoning);
    - ``deep`` (Deep Reasoner): question + the knowledge -> reasoning + answer.
    """
    missing = [e.id for e in examples if not e.meta.get("knowledge")]
    if missing:
        raise ValueError(f"lorid needs knowledge on every example ({len(missing)} without, e.g. {missing[0]}): "
                         "curate with the knowledge op")
    return {
        "intuitive": examples,
        "knowledge": [e.model_copy(update={"reasoning": "", "answer": e.meta["knowledge"]}) for e in examples],
        "deep": [e.model_copy(update={"question": deep_question(e.question, e.meta["knowledge"])}) for e in examples],
    }


@register_method("lorid", loss="ce", fit=fit_lorid,
                 doc="LoRID: three LoRA adapters (intuitive, knowledge, deep) on one base.")
def lorid_rows(examples: list[Example], tokenizer, cfg) -> list[dict]:
    """Rows of every adapter, tagged ``adapter``; the loop trains one adapter at a time."""
    rows: list[dict] = []
    for name, exs in lorid_sources(examples).items():
        for r in _sft(exs, tokenizer, cfg.max_len):
            rows.append({**r, "adapter": name})
    return rows

"""What passes between the train loop and a method: the row format.

A row is a dict ``{"input_ids", "labels", "length"}`` (``labels`` = the ids where the loss falls,
:data:`IGNORE` elsewhere) plus optional per-row fields the collator knows (``weight``, ``topk_ids``,
``topk_logprobs``) and bookkeeping the Trainer never sees (``id``, ``adapter``). No torch here.
"""

from __future__ import annotations

IGNORE = -100
"""Label of a position that gets no loss (the value transformers and torch use)."""

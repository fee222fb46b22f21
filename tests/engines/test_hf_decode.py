"""The ``hf`` engine's token-by-token loop: the incremental detokenizer equals a whole decode."""

from __future__ import annotations

import torch


def test_detokenizer_equals_a_whole_decode(noisy):
    _, _, tok = noisy
    from thinkling.engines.hf_decode import Detokenizer

    for seed in range(5):
        ids = torch.randint(0, len(tok), (40,), generator=torch.Generator().manual_seed(seed)).tolist()
        d = Detokenizer(tok)
        text = "".join(d.add(i) for i in ids) + d.flush()
        assert text == tok.decode(ids, skip_special_tokens=True)

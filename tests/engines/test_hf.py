"""The ``hf`` engine's requests: raw prompts, started replies, failures alone (context, adapters), seeds
per seed group, and log-probs that are the model's own."""

from __future__ import annotations

import math

from helpers.engines import QS, ask
from thinkling.engines import Request, SamplingParams
from thinkling.models.generation import generate_ids, token_logprobs
from thinkling.models.render import render_prompt


def test_hf_requests_raw_prompts_started_replies_and_failures_alone(hf):
    tok = hf.tokenizer
    raw = [Request(prompt=q, sampling=SamplingParams(max_tokens=12)) for q in QS[:3]]
    want = generate_ids(hf.model, tok, [tok(q)["input_ids"] for q in QS[:3]], max_new_tokens=12)
    assert [r.text for r in hf.generate(raw)] == [c.text for c in want]
    plain = hf.generate([ask(q, 12) for q in QS])
    started = hf.generate([ask(q, 12, prefix="<think>\nSo b") for q in QS])
    start = tok("<think>\nSo b", add_special_tokens=False)["input_ids"]
    prompts = [render_prompt(tok, [{"role": "user", "content": q}]) + start for q in QS]
    cont = generate_ids(hf.model, tok, prompts, max_new_tokens=12)
    assert [s.text for s in started] == ["<think>\nSo b" + c.text for c in cont]  # the prompt, then the started reply
    assert [s.completion_tokens for s in started] == [c.n_tokens for c in cont]
    assert [s.text for s in started] != [r.text for r in plain]
    ctx = hf.context
    reqs = [ask(q, 12) for q in QS[:2]] + [ask("1 + " * ctx, 12), ask(QS[2], 12, adapter="nope")]
    ok1, ok2, too_long, no_adapter = hf.generate(reqs)
    assert [ok1.text, ok2.text] == [plain[0].text, plain[1].text]
    assert isinstance(too_long, ValueError) and "does not fit" in str(too_long)
    assert isinstance(no_adapter, ValueError) and "not loaded" in str(no_adapter)


def test_hf_sampled_replies_are_seeded_per_seed_group(hf):
    """Requests are grouped by seed and each group is one seeded call: the same requests give the same
    samples, another seed other samples (a sample still depends on its group's other requests)."""
    hot = SamplingParams(temperature=1.0, max_tokens=12)
    reqs = [Request([{"role": "user", "content": q}], sampling=hot, seed=s) for q in QS for s in (1, 2)]
    a, b = hf.generate(reqs), hf.generate(reqs)
    assert [r.text for r in a] == [r.text for r in b]
    assert [r.text for r in a[0::2]] != [r.text for r in a[1::2]]


def test_hf_logprobs_are_the_models_own(hf):
    reps = hf.generate([ask(q, 10, logprobs=3) for q in QS])
    for q, r in zip(QS, reps):
        prompt = render_prompt(hf.tokenizer, [{"role": "user", "content": q}])
        toks = [e.token for e in r.logprobs]
        assert len(toks) == r.completion_tokens and hf.tokenizer.decode(toks, skip_special_tokens=True) == r.text
        [ref] = token_logprobs(hf.model, [prompt + toks], [len(prompt)], k=3)
        assert [(t, round(lp, 5)) for t, lp, _ in ref] == [(e.token, round(e.logprob, 5)) for e in r.logprobs]
        for e in r.logprobs:  # greedy: the chosen token is the most likely one, and the top 3 are sorted
            assert len(e.top) == 3 and e.top[0][0] == e.token and e.top[0][1] >= e.top[1][1] >= e.top[2][1]
            assert e.logprob <= 0 and math.isclose(e.top[0][1], e.logprob, abs_tol=1e-6)
    assert hf.generate([ask(QS[0], 10)])[0].logprobs is None

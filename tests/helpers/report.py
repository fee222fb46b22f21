"""Fake eval dirs for the report tests: result rows of several models, tasks, strategies, evidence regimes
and logic groups, example traces (some with text that must be escaped), and an instance validation."""

from __future__ import annotations

import json
import random
from pathlib import Path

from thinkling.metrics import wilson_interval

TRICKY_Q = "Is 3 < 5 && 7 > 2? Answer <b>yes</b> or no & explain."
INJECT_Q = "<img src=x onerror=\"document.title='pwned'\"> What is 2+2?"
INJECT_REASONING = "</pre><script>document.title='pwned2'</script> 2+2=4"


def make_row(model, task, level, strategy, k, n, mean_tokens, *, backend="hf", regime=None, group=None,
             training=None, **extra):
    lo, hi = wilson_interval(k, n)
    row = {"model": model, "model_path": f"runs/x/{model}", "backend": backend, "task": task, "split": "test",
           "level": level, "strategy": strategy, "n": n, "correct": k, "accuracy": k / n, "ci_low": lo, "ci_high": hi,
           "mean_tokens": mean_tokens, "median_tokens": round(mean_tokens * 0.95), "p95_tokens": mean_tokens * 1.8,
           "truncation_rate": 0.02, "no_answer_rate": 0.01, "seconds_per_problem": 0.0123,
           "tokens_per_second": 812.0,
           "protocol": {"template": "chatml", "sampling": {"temperature": 0.0 if strategy == "greedy" else 0.7},
                        "seed": 0, "max_new_tokens": 1024, "strategy": strategy}}
    if regime:
        row["regime"] = regime
    if group:
        row["group"] = group
    if training:
        row["tags"] = {"training": training}
    row.update(extra)
    return row


# (model, backend, training tag)
MODELS = [("teacher", "vllm", None), ("long", "hf", "single-task"), ("concise", "hf", "multi-task")]
LOGIC = {"proofwriter": "deductive", "prontoqa": "deductive", "folio": "abductive", "knights_and_knaves": "inductive"}
EVIDENCE_ACC = {  # model -> accuracy per regime (n = 80)
    "teacher": {"instruction": 0.45, "concepts": 0.8, "related": 0.7, "full": 0.6},
    "concise": {"instruction": 0.3, "concepts": 0.6625, "related": 0.5, "full": 0.4375},
}


def fake_rows() -> list[dict]:
    rng = random.Random(0)
    rows = []
    for m, backend, training in MODELS:
        base_tok = {"teacher": 900.0, "long": 420.0, "concise": 95.0}[m]
        strategies = ["greedy"] if m == "teacher" else ["greedy", "budget"] if m == "long" else ["greedy", "lorid"]
        for strat in strategies:
            extra = {}
            if strat == "lorid":
                extra = {"iterations": {"1": 120, "2": 50, "3": 30}}
            tok = base_tok * (0.6 if strat == "budget" else 1.0)
            ks = []
            for lv in (1, 2, 3):
                bonus = {"lorid": 0.1, "budget": -0.05}.get(strat, 0.0) - (0.2 if m == "concise" else 0.0)
                k = max(0, min(40, round(40 * (0.95 - 0.15 * lv + bonus))))
                ks.append(k)
                rows.append(make_row(m, "arithmetic", lv, strat, k, 40, tok * (0.6 + 0.4 * lv), backend=backend,
                                     training=training))
            rows.append(make_row(m, "arithmetic", "all", strat, sum(ks), 120, tok * 1.4, backend=backend,
                                 training=training, **extra))
        # a sampled strategy with pass@k and maj@k
        if m == "long":
            rows.append(make_row(m, "arithmetic", "all", "sample", 70, 120, 500.0, training=training,
                                 pass_at={"1": 0.55, "4": 0.8}, maj_at={"4": 0.7}))
        for task, group in LOGIC.items():
            n = 50 + 10 * len(task) % 30
            k = rng.randint(n // 3, n - 2)
            rows.append(make_row(m, task, "all", "greedy", k, n, base_tok * 0.8, backend=backend, group=group,
                                 training=training))
        if m in EVIDENCE_ACC:
            for regime, acc in EVIDENCE_ACC[m].items():
                rows.append(make_row(m, "evidence_qa", "all", "greedy", round(acc * 80), 80, base_tok * 1.2,
                                     backend=backend, regime=regime, training=training))
    return rows


def fake_samples(n_concise: int = 70) -> list[dict]:
    out = []
    for i in range(n_concise):  # more than the default cap of 50 -> some are left out
        kind = i % 5
        gold = str(i % 10)
        pred = {0: gold, 1: gold, 2: str((i + 1) % 10), 3: None, 4: None}[kind]
        reasoning = f"Let me compute step {i}.\nx = {i} mod 10 = {i % 10}."
        completion = f"<think>\n{reasoning}\n</think>\n{pred or ''}" if kind != 4 else f"<think>\n{reasoning} and then"
        out.append({"model": "concise", "task": "arithmetic", "strategy": "greedy", "problem_id": f"arith/{i}",
                    "level": 1 + i % 3, "question": f"Compute {i} mod 10.", "gold": gold, "completion": completion,
                    "reasoning": reasoning, "answer_text": pred or "", "predicted": pred, "correct": kind < 2,
                    "tokens": 40 + i, "truncated": kind == 4})
    out.append({"model": "long", "task": "arithmetic", "strategy": "budget", "problem_id": "arith/tricky",
                "level": 2, "question": TRICKY_Q, "gold": "yes", "completion": "<think>\n3 < 5 & 7 > 2\n</think>\nyes",
                "reasoning": "3 < 5 & 7 > 2", "answer_text": "yes", "predicted": "yes", "correct": True,
                "tokens": 12, "truncated": False})
    out.append({"model": "long", "task": "arithmetic", "strategy": "budget", "problem_id": "arith/inject",
                "level": 1, "question": INJECT_Q, "gold": "4", "completion": f"<think>{INJECT_REASONING}</think>5",
                "reasoning": INJECT_REASONING, "answer_text": "5", "predicted": "5", "correct": False,
                "tokens": 15, "truncated": False})
    for j, regime in enumerate(("instruction", "full")):
        out.append({"model": "teacher", "task": "evidence_qa", "strategy": "greedy", "regime": regime,
                    "problem_id": f"ev/{j}", "level": 1, "question": "Which concept explains the result?",
                    "gold": "B", "completion": "<think>the documents say B</think>B",
                    "reasoning": "the documents say B",
                    "answer_text": "B", "predicted": "B", "correct": True, "tokens": 30, "truncated": False})
    # an old-style sample: no task/strategy/reasoning/answer_text fields (filled from the completion)
    out.append({"model": "teacher", "problem_id": "arithmetic/test/L1/old", "level": 1, "question": "Compute 9 mod 10.",
                "gold": "9", "completion": "<think>\nnine\n</think>\n9", "predicted": "9", "correct": True,
                "tokens": 9, "truncated": False})
    return out


VALIDATION = {"evidence_qa": {"reference_model": "teacher", "kept": [f"ev/{i}" for i in range(80)],
                              "dropped": {"answerable_without_evidence": ["ev/x1", "ev/x2"],
                                          "reference_wrong_with_concepts": ["ev/x3"]}}}


def write_eval_dir(d: Path, rows=None, samples=None, validation=True) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "results.json").write_text(json.dumps(fake_rows() if rows is None else rows, indent=1))
    (d / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in (fake_samples() if samples is None
                                                                         else samples)))
    if validation:
        (d / "validation.json").write_text(json.dumps(VALIDATION))
    return d

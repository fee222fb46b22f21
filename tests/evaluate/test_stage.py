"""The eval stage: result rows (and greedy results independent of the batch size), a missing model named,
an OpenAI-compatible endpoint evaluated by the same code (an unreachable one keeps partial results),
an interrupted unit resumed from its logged completions, and evidence regimes validated against a
reference model."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from helpers import sha
from helpers.evaluate import row, run_eval
from thinkling.artifacts import read_jsonl
from thinkling.config import build_config

RESULT_KEYS = {"model", "task", "level", "n", "accuracy", "ci_low", "ci_high", "mean_tokens", "p95_tokens",
               "truncation_rate", "seconds_per_problem"}


def eval_cfg(model: Path, out: Path, batch_size: int, **kw):
    from thinkling.evaluate.stage import EvalConfig

    # rules prompts are long and vary in length: left padding differs a lot between batch sizes
    d = {"out": str(out), "models": [f"noisy={model}"],
         "task": {"name": "rules", "split": "test", "n": 8, "levels": [1, 2, 3]},
         "max_new_tokens": 24, "batch_size": batch_size, "threads": 1}
    d.update(kw)
    return build_config(EvalConfig, d)


@pytest.mark.slow
def test_eval_rows_and_greedy_results_do_not_depend_on_batch_size(noisy_model, tmp_path, captured):
    from thinkling.evaluate.stage import evaluate
    from thinkling.tasks import get_task

    task = get_task("rules")
    samples, results = {}, {}
    for bs in (1, 7, 32):
        out = tmp_path / f"eval_bs{bs}"
        evaluate(eval_cfg(noisy_model, out, bs), console=captured.console)
        results[bs] = json.loads((out / "results.json").read_text())
        samples[bs] = read_jsonl(out / "samples.jsonl")

    rows = results[1]
    assert [r["level"] for r in rows] == [1, 2, 3, "all"]
    for r in rows:
        assert RESULT_KEYS <= set(r), RESULT_KEYS - set(r)
        assert r["model"] == "noisy" and r["task"] == "rules"
        assert r["n"] == (24 if r["level"] == "all" else 8)
        assert 0 <= r["ci_low"] <= r["accuracy"] <= r["ci_high"] <= 1
        assert 0 <= r["truncation_rate"] <= 1 and r["seconds_per_problem"] > 0
        assert r["p95_tokens"] <= 24

    s1 = samples[1]
    assert len(s1) == 24
    # the samples are non-trivial: prompt-dependent text, some stopped, some hit the cap
    assert len({s["completion"] for s in s1}) > 12
    assert any(s["truncated"] for s in s1) and not all(s["truncated"] for s in s1)
    for s in s1:
        pred, ok = task.score(s["completion"], s["gold"])
        assert (s["predicted"], s["correct"]) == (pred, ok)
    # per-level statistics are those of the samples
    for r in rows:
        xs = [s for s in s1 if r["level"] == "all" or s["level"] == r["level"]]
        assert r["mean_tokens"] == pytest.approx(sum(s["tokens"] for s in xs) / len(xs))
        assert r["truncation_rate"] == pytest.approx(sum(s["truncated"] for s in xs) / len(xs))
        assert r["accuracy"] == pytest.approx(sum(s["correct"] for s in xs) / len(xs))

    def key(rows_or_samples, fields):
        return [tuple(x[f] for f in fields) for x in rows_or_samples]

    sample_fields = ("problem_id", "completion", "tokens", "truncated", "predicted", "correct")
    row_fields = ("level", "n", "correct", "accuracy", "mean_tokens", "p95_tokens", "median_tokens", "truncation_rate")
    for bs in (7, 32):
        assert key(samples[bs], sample_fields) == key(s1, sample_fields), f"batch_size={bs} changed completions"
        assert key(results[bs], row_fields) == key(rows, row_fields)

    before = sha(tmp_path / "eval_bs7" / "manifest.json")
    evaluate(eval_cfg(noisy_model, tmp_path / "eval_bs7", 7), console=captured.console)
    assert "complete for this config; skipping" in captured.text
    assert sha(tmp_path / "eval_bs7" / "manifest.json") == before


@pytest.mark.slow
def test_eval_of_a_missing_model_names_the_path(tmp_path, captured):
    from thinkling.evaluate.stage import evaluate
    from thinkling.models.loading import ModelLoadError

    with pytest.raises(ModelLoadError) as e:
        evaluate(eval_cfg(tmp_path / "no_such_student", tmp_path / "e", 4), console=captured.console)
    assert str(tmp_path / "no_such_student") in str(e.value)


# ----------------------------------------------------------------------------- engines, partial results, resume


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.slow
def test_openai_endpoint_is_evaluated_by_the_same_code_and_an_unreachable_one_keeps_partial_results(
        noisy_model, tmp_path, captured):
    from thinkling.evaluate.stage import EvalError
    from thinkling.serve.server import serve_in_thread

    hf = {"name": "local", "path": str(noisy_model)}
    dead = {"name": "remote", "path": "noisy", "backend": "openai", "base_url": f"http://127.0.0.1:{_closed_port()}/v1",
            "backend_options": {"max_retries": 0, "timeout": 5}}
    out = tmp_path / "e"
    with pytest.raises(EvalError) as e:
        run_eval(out, captured.console, models=[hf, dead])
    msg = str(e.value)
    assert "1 eval unit(s) failed" in msg and "remote rules greedy" in msg and "connection" in msg.lower()
    assert "Run the same command again" in msg
    partial = json.loads((out / "results.json").read_text())   # the local model's rows are kept
    assert {r["model"] for r in partial} == {"local"} and row(partial, model="local")["n"] == 8

    url, stop = serve_in_thread(str(noisy_model), name="noisy", threads=1)
    try:
        live = {**dead, "base_url": url}
        captured.console.file.truncate(0)
        rows, samples = run_eval(out, captured.console, models=[hf, live])
        # a started reply (reply_prefix, budget forcing's forced </think>) goes over the API as a final
        # assistant message with continue_final_message, and comes back the same as in-process
        pre = {"reply_prefix": "<think>\n"}
        strategies = ["greedy", {"name": "budget", "thinking_budget": 4, "answer_tokens": 6}]
        rows_p, samples_p = run_eval(tmp_path / "p", captured.console, models=[{**hf, **pre}, {**live, **pre}],
                                     strategies=strategies)
    finally:
        stop()
    assert "local rules greedy: done earlier; read back" in captured.text
    for smp in (samples, samples_p):
        for strategy in {s["strategy"] for s in smp}:
            a = {s["problem_id"]: s for s in smp if s["model"] == "local" and s["strategy"] == strategy}
            b = {s["problem_id"]: s for s in smp if s["model"] == "remote" and s["strategy"] == strategy}
            assert a.keys() == b.keys() and len(a) == 8
            for pid in a:  # through the endpoint == in-process: same text, tokens, verdict
                assert (b[pid]["completion"], b[pid]["tokens"], b[pid]["correct"]) == \
                       (a[pid]["completion"], a[pid]["tokens"], a[pid]["correct"])
    assert row(rows_p, model="remote", strategy="budget")["forced_rate"] > 0
    assert row(rows, model="remote")["backend"] == "openai" and row(rows, model="local")["backend"] == "hf"
    assert row(rows, model="remote")["accuracy"] == row(rows, model="local")["accuracy"]
    assert (out / "manifest.json").exists()


@pytest.mark.slow
def test_an_interrupted_unit_resumes_from_its_logged_completions(noisy_model, tmp_path, captured):
    from thinkling.artifacts import iter_jsonl

    out = tmp_path / "e"
    rows, samples = run_eval(out, captured.console, models=[f"noisy={noisy_model}"])
    unit = next((out / "units").iterdir())
    calls = list(iter_jsonl(unit / "calls.jsonl"))
    assert len(calls) == 8
    # as if killed after half the completions: no done marker, half the log
    (unit / "done.json").unlink()
    (out / "manifest.json").unlink()
    (unit / "calls.jsonl").write_text("".join(json.dumps(c) + "\n" for c in calls[:4]) + '{"key": "trunc')
    rows2, samples2 = run_eval(out, captured.console, models=[f"noisy={noisy_model}"])
    assert [s["completion"] for s in samples2] == [s["completion"] for s in samples]
    assert len(list(iter_jsonl(unit / "calls.jsonl"))) == 8   # 4 kept + 4 asked again; the torn line cut off
    assert rows2 == [r | {"seconds_per_problem": r2["seconds_per_problem"], "tokens_per_second": r2["tokens_per_second"]}
                     for r, r2 in zip(rows, rows2)]


# ----------------------------------------------------------------------------- evidence regimes, logic groups


def test_evidence_regimes_are_validated_against_a_reference_model(tmp_path, captured):
    from thinkling.report import regime_gaps

    models = [{"name": "ref", "path": "long", "backend": "oracle"},
              {"name": "terse", "path": "concise", "backend": "oracle"}]
    tasks = [{"name": "evidence", "split": "test", "n": 12, "levels": [1, 2]},
             {"name": "rules", "split": "test", "n": 3, "levels": [1]}]
    out = tmp_path / "e"
    rows, samples = run_eval(out, captured.console, models=models, task=tasks[0], tasks=tasks[1:],
                             validate_with="ref", max_new_tokens=400)
    ev = [s for s in samples if s["task"] == "evidence"]
    assert {s["regime"] for s in ev} == {"instruction", "concepts", "related", "full"}
    by = {(s["model"], s["regime"], s["problem_id"]): s for s in ev}
    ids = {s["problem_id"] for s in ev}
    assert len(ids) == 24  # the same instances in every regime
    # kept: the reference fails with no evidence and solves it with the gold concepts
    kept = {i for i in ids if not by[("ref", "instruction", i)]["correct"] and by[("ref", "concepts", i)]["correct"]}
    solved_blind = {i for i in ids if by[("ref", "instruction", i)]["correct"]}
    val = json.loads((out / "validation.json").read_text())["evidence"]
    assert set(val["kept"]) == kept and set(val["dropped"]["solved_without_evidence"]) == solved_blind
    assert val["total"] == 24 and 0 < len(solved_blind) < 12   # the oracle's blind guesses hit now and then
    for r in (x for x in rows if x["task"] == "evidence"):
        assert r["validated"] and r["regime"] in ("instruction", "concepts", "related", "full")
        if r["level"] == "all":
            assert r["n"] == len(kept)
    ref = {r["regime"]: r["accuracy"] for r in rows if r["model"] == "ref" and r["level"] == "all" and r.get("regime")}
    assert ref == {"instruction": 0.0, "concepts": 1.0, "related": 1.0, "full": 1.0}
    gaps = {(g["model"]): g for g in regime_gaps(rows)}
    assert gaps["ref"]["gaps"]["concepts - instruction"] == pytest.approx(1.0)
    assert gaps["ref"]["gaps"]["related - full"] == pytest.approx(0.0)
    # a logic task in the same run carries its LogiGLUE group; the evidence rows carry none
    assert row(rows, model="ref", task="rules")["group"] == "deductive"
    assert "group" not in row(rows, model="ref", task="evidence", regime="full")
    assert row(rows, model="ref", task="rules")["accuracy"] == 1.0


def test_two_user_tasks_are_told_apart_by_their_labels(tmp_path, captured, tiny_model):
    """Two jsonl tasks appear under their labels (file stems by default) in results, samples and units;
    two tasks with one label are refused before any unit runs."""
    import json as _json

    from thinkling.config import ConfigError, build_config
    from thinkling.evaluate.config import EvalConfig
    from thinkling.evaluate.stage import evaluate

    for stem, qs in (("capitals", ["Capital of France?", "Capital of Italy?"]), ("colours", ["Colour of snow?"])):
        (tmp_path / f"{stem}.jsonl").write_text("".join(_json.dumps({"question": q, "answer": "x"}) + "\n" for q in qs))
    task = lambda stem, **kw: {"name": "jsonl", "split": "test", "options": {"path": str(tmp_path / f"{stem}.jsonl"),  # noqa: E731
                                                                             "answer_type": "label",
                                                                             "labels": ["x", "y"]}, **kw}
    base = {"out": str(tmp_path / "e"), "models": [f"m={tiny_model}"], "max_new_tokens": 4}
    cfg = build_config(EvalConfig, {**base, "tasks": [task("capitals"), task("colours")]})
    evaluate(cfg, console=captured.console)
    rows = _json.loads((tmp_path / "e" / "results.json").read_text())
    assert {r["task"] for r in rows} == {"capitals", "colours"}
    assert {r["n"] for r in rows if r["level"] == "all"} == {2, 1}
    assert sorted(p.name.split("__")[1] for p in (tmp_path / "e" / "units").iterdir()) == ["capitals", "colours"]
    same = build_config(EvalConfig, {**base, "out": str(tmp_path / "e2"), "tasks": [task("capitals"),
                                                                                     task("colours", label="capitals")]})
    with pytest.raises(ConfigError, match="two tasks are both labelled 'capitals'"):
        evaluate(same, console=captured.console)
    assert not (tmp_path / "e2" / "units").exists()

"""The eval suite: strategies (sample/pass@k/maj@k, budget forcing, LoRID's loop), engines (hf and an
OpenAI-compatible endpoint through the same code), resumable units and partial results."""

from __future__ import annotations

import itertools
import json
import socket
from pathlib import Path

import pytest

from thinkling.artifacts import read_jsonl
from thinkling.config import ConfigError, build_config
from thinkling.engines import Engine, Reply
from thinkling.evaluate.strategies import majority, pass_at_k

RULES = {"name": "rules", "split": "test", "n": 4, "levels": [1, 2]}


def run_eval(out: Path, console, **kw) -> tuple[list[dict], list[dict]]:
    from thinkling.evaluate.stage import EvalConfig, evaluate

    d = {"out": str(out), "task": RULES, "max_new_tokens": 16, "batch_size": 8, "threads": 1, **kw}
    evaluate(build_config(EvalConfig, d), console=console)
    return json.loads((out / "results.json").read_text()), read_jsonl(out / "samples.jsonl")


def row(rows, model=None, strategy=None, level="all", **kw):
    xs = [r for r in rows if r["level"] == level and (model is None or r["model"] == model)
          and (strategy is None or r["strategy"] == strategy) and all(r.get(k) == v for k, v in kw.items())]
    assert len(xs) == 1, xs
    return xs[0]


# ----------------------------------------------------------------------------- pure pieces


def test_pass_at_k_is_the_expectation_over_k_subsets():
    for n in range(1, 7):
        for c in range(n + 1):
            for k in range(1, n + 1):
                pool = [True] * c + [False] * (n - c)
                subsets = list(itertools.combinations(range(n), k))
                want = sum(any(pool[i] for i in s) for s in subsets) / len(subsets)
                assert pass_at_k(n, c, k) == pytest.approx(want)
    with pytest.raises(ValueError, match="at least 5"):
        pass_at_k(4, 1, 5)


def test_majority_vote_ties_none_and_equivalent_spellings():
    from thinkling.tasks import get_task

    assert majority(["3", "4", "4", "3"]) == "3"          # a tie goes to the answer seen first
    assert majority([None, None, "7"]) == "7"              # no answer never votes
    assert majority([None, None]) is None
    math = get_task("math500")
    # 1/2 and 0.5 are one answer to the math verifier: together they outvote 3
    assert majority(["3", "\\frac{1}{2}", "0.5", "3", "0.5"], math.verify) == "\\frac{1}{2}"
    assert majority(["3", "\\frac{1}{2}", "0.5", "3", "0.5"]) == "3"


def test_own_reasoning_tags_are_stripped_before_extraction():
    from thinkling.engines import Reply
    from thinkling.evaluate.strategies import Context
    from thinkling.tasks import get_task

    task = get_task("arithmetic")
    text = "<reasoning>the answer is 3, no wait</reasoning>\nThe answer is 5."
    ctx = Context(engine=None, task=task, max_tokens=8, think_tags=("<reasoning>", "</reasoning>"))
    assert ctx.score(Reply(text, completion_tokens=9), "5").correct
    s = ctx.score(Reply("<reasoning>so the answer is 5", completion_tokens=8, finish_reason="length"), "5")
    assert s.predicted is None and not s.correct           # still thinking when cut: no final answer
    plain = Context(engine=None, task=task, max_tokens=8)  # default tags: the whole text is the answer
    assert plain.score(Reply(text, completion_tokens=9), "5").predicted == "5"


def test_strategy_config_errors_name_the_problem(tmp_path):
    from thinkling.evaluate.stage import EvalConfig

    base = {"out": str(tmp_path), "models": ["m=/x"]}
    with pytest.raises(ConfigError, match="unknown eval strategy 'beam'.*greedy"):
        build_config(EvalConfig, {**base, "strategies": ["beam"]})
    with pytest.raises(ConfigError, match="thinking_budgt"):
        build_config(EvalConfig, {**base, "strategies": [{"name": "budget", "thinking_budgt": 3}]})
    with pytest.raises(ConfigError, match="share a label"):
        build_config(EvalConfig, {**base, "strategies": ["greedy", {"name": "greedy"}]})
    with pytest.raises(ConfigError, match="validate_with='ref' is not one of the models"):
        build_config(EvalConfig, {**base, "validate_with": "ref"})
    cfg = build_config(EvalConfig, {**base, "task": {"name": "rules"}, "tasks": [{"name": "arithmetic"}]})
    assert [t.name for t in cfg.task_specs()] == ["rules", "arithmetic"]
    cfg = build_config(EvalConfig, {**base, "tasks": [{"name": "arithmetic"}]})
    assert [t.name for t in cfg.task_specs()] == ["arithmetic"]


# ----------------------------------------------------------------------------- strategies end to end


@pytest.mark.slow
def test_sample_strategy_reports_pass_at_k_and_majority_from_its_samples(noisy_model, tmp_path, captured):
    from thinkling.tasks import get_task

    strat = {"name": "sample", "n": 4, "temperature": 1.0, "top_p": 1.0, "k": [1, 2, 4]}
    rows, samples = run_eval(tmp_path / "e", captured.console, models=[f"noisy={noisy_model}"], strategies=[strat])
    again, samples2 = run_eval(tmp_path / "e2", captured.console, models=[f"noisy={noisy_model}"], strategies=[strat])
    assert [s["completion"] for s in samples] == [s["completion"] for s in samples2]  # seeded
    task = get_task("rules")
    assert len(samples) == 8 * 4 and {s["sample"] for s in samples} == {0, 1, 2, 3}
    by: dict[str, list[dict]] = {}
    for s in samples:
        by.setdefault(s["problem_id"], []).append(s)
    assert len({s["completion"] for s in samples}) > 8      # sampling, not four copies of greedy
    r = row(rows, strategy="sample")
    # pass@1 is the mean per-sample accuracy; pass@4 with n=4 is "any sample right"
    assert r["pass_at"]["1"] == pytest.approx(sum(s["correct"] for s in samples) / len(samples))
    assert r["pass_at"]["4"] == pytest.approx(sum(any(s["correct"] for s in v) for v in by.values()) / len(by))
    assert r["pass_at"]["1"] <= r["pass_at"]["2"] <= r["pass_at"]["4"]
    # the row's accuracy is the majority vote over all n samples (= maj@n)
    votes = [majority([s["predicted"] for s in sorted(v, key=lambda s: s["sample"])], task.verify) for v in by.values()]
    golds = [v[0]["gold"] for v in by.values()]
    assert r["accuracy"] == pytest.approx(sum(task.verify(p, g) for p, g in zip(votes, golds)) / len(by))
    assert r["maj_at"]["4"] == pytest.approx(r["accuracy"])
    # cost counts every sample; no final answer is counted and never credited
    assert r["mean_tokens"] == pytest.approx(sum(s["tokens"] for s in samples) / len(by))
    assert r["no_answer_rate"] == pytest.approx(sum(p is None for p in votes) / len(by))
    assert r["protocol"]["strategy_options"]["n"] == 4 and r["protocol"]["seed"] == 0


@pytest.mark.slow
def test_budget_forcing_cuts_the_thinking_and_forces_an_answer(noisy_model, tmp_path, captured):
    # every reply starts inside <think>, so each one that does not close it in 4 tokens is forced
    model = {"name": "noisy", "path": str(noisy_model), "reply_prefix": "<think>\n"}
    rows, samples = run_eval(tmp_path / "e", captured.console, models=[model],
                             strategies=["greedy", {"name": "budget", "thinking_budget": 4, "answer_tokens": 6}])
    greedy = {s["problem_id"]: s for s in samples if s["strategy"] == "greedy"}
    forced = [s for s in samples if s["strategy"] == "budget"]
    r = row(rows, strategy="budget")
    n_forced = sum("</think>" in s["completion"] and s["tokens"] > 4 for s in forced)
    assert r["forced_rate"] == pytest.approx(n_forced / len(forced)) and n_forced > 0
    for s in forced:
        assert s["tokens"] <= 4 + 6
        g = greedy[s["problem_id"]]
        if s["tokens"] > 4:  # forced: the first 4 thinking tokens are greedy's, then </think> was inserted
            head = s["completion"].split("\n</think>\n")[0]
            assert g["completion"].startswith(head) and len(head) > len("<think>\n")
    assert row(rows, strategy="budget")["mean_tokens"] < row(rows, strategy="greedy")["mean_tokens"]


@pytest.fixture(scope="module")
def lorid_dir(noisy_model, tmp_path_factory) -> Path:
    """A LoRID output dir (base/ + adapters/{intuitive,knowledge,deep}/ + lorid.json) with random LoRA
    weights on the noisy model: the three adapters answer differently, which is what the loop needs."""
    import torch
    from peft import LoraConfig, get_peft_model

    from thinkling.models.loading import load_model, load_tokenizer

    out = tmp_path_factory.mktemp("lorid") / "student"
    base = load_model(str(noisy_model))
    tok = load_tokenizer(str(noisy_model))
    base.save_pretrained(out / "base")
    tok.save_pretrained(out / "base")
    for i, name in enumerate(("intuitive", "knowledge", "deep")):
        torch.manual_seed(i)
        m = get_peft_model(load_model(str(noisy_model)), LoraConfig(r=4, lora_alpha=64, target_modules="all-linear",
                                                                     init_lora_weights=False))
        m.save_pretrained(out / "adapters" / name)  # peft writes the default adapter at the dir's top level
    (out / "lorid.json").write_text(json.dumps({"base": "base", "adapters": {
        n: f"adapters/{n}" for n in ("intuitive", "knowledge", "deep")}, "default": "intuitive"}))
    return out


@pytest.mark.slow
def test_lorid_consistency_loop_iterates_until_agreement_then_falls_back(lorid_dir, noisy_model, tmp_path, captured):
    from thinkling.tasks import get_task

    # arithmetic: the tiny tokenizer speaks it, so even random adapters write digits that can agree
    task_spec = {"name": "arithmetic", "split": "test", "n": 8, "levels": [1, 2]}
    strat = {"name": "lorid", "max_iterations": 3, "temperature": 1.0, "knowledge_tokens": 8}
    rows, samples = run_eval(tmp_path / "e", captured.console, task=task_spec,
                             models=[{"name": "lorid", "path": str(lorid_dir)}], strategies=["greedy", strat])
    greedy = {s["problem_id"]: s["completion"] for s in samples if s["strategy"] == "greedy"}
    samples = [s for s in samples if s["strategy"] == "lorid"]
    # plain greedy on a LoRID dir is its Intuitive Reasoner: round 1 of the loop asks it the same
    assert greedy == {s["problem_id"]: s["completion"] for s in samples if s["iteration"] == 1
                      and s["role"] == "intuitive"}
    task = get_task("arithmetic")
    r = row(rows, strategy="lorid")
    by: dict[str, list[dict]] = {}
    for s in samples:
        by.setdefault(s["problem_id"], []).append(s)
    hist: dict[str, int] = {}
    agreed = 0
    for pid, ss in by.items():
        rounds = sorted({s["iteration"] for s in ss})
        assert rounds == list(range(1, len(rounds) + 1)) and len(rounds) <= 3
        assert all(sorted(s["role"] for s in ss if s["iteration"] == i) == ["deep", "intuitive", "knowledge"]
                   for i in rounds)
        pick = {(s["iteration"], s["role"]): s for s in ss}

        def agree(i):
            a, d = pick[(i, "intuitive")]["predicted"], pick[(i, "deep")]["predicted"]
            return a is not None and task.verify(a, d)

        # the loop stops at the first round where IR and DR agree; else it runs all 3 rounds
        assert all(not agree(i) for i in rounds[:-1])
        if agree(rounds[-1]):
            agreed += 1
        else:
            assert len(rounds) == 3
        hist[str(len(rounds))] = hist.get(str(len(rounds)), 0) + 1
    assert r["iterations"] == dict(sorted(hist.items())) and r["agreement_rate"] == pytest.approx(agreed / len(by))
    assert r["mean_iterations"] == pytest.approx(sum(int(k) * v for k, v in hist.items()) / len(by))
    assert sum(hist.values()) == len(by) and hist.get("3", 0) > 0   # random adapters rarely agree: fallback
    from thinkling.artifacts import iter_jsonl

    unit = next(d for d in (tmp_path / "e" / "units").iterdir() if "__lorid-" in d.name)
    final = {r["problem_id"]: r for r in iter_jsonl(unit / "problems.jsonl")}
    for pid, ss in by.items():  # a problem that never agreed takes the Deep Reasoner's last answer
        if not final[pid]["extra"]["agreed"]:
            last_deep = next(s for s in ss if s["iteration"] == 3 and s["role"] == "deep")
            assert final[pid]["predicted"] == last_deep["predicted"] and final[pid]["extra"]["iterations"] == 3
    first = {s["role"]: s["completion"] for s in by[next(iter(by))] if s["iteration"] == 1}
    assert len(set(first.values())) == 3   # three different adapters answered
    assert r["mean_tokens"] == pytest.approx(sum(s["tokens"] for s in samples) / len(by))  # every call is cost

    # a model without the three adapters is refused with what it needs
    with pytest.raises(ValueError, match="adapters intuitive, knowledge, deep"):
        run_eval(tmp_path / "e2", captured.console, models=[f"plain={noisy_model}"], strategies=[strat])


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


class ScriptedEngine(Engine):
    """A deterministic stand-in for a LoRID student, to pin the loop's control flow: for each (adapter,
    round) it answers from a script. (A real tiny model cannot be made to agree on cue; the real-model
    test above covers the adapters, prompts and the fallback.)"""

    name = "scripted"
    adapters = ("intuitive", "knowledge", "deep")

    def __init__(self, script: dict[str, dict[str, list[str]]]):
        self.script = script
        self.deep_prompts: list[str] = []

    def generate(self, requests):
        out = []
        for a in requests:
            answers = self.script[a.problem.id][a.adapter]
            text = answers[min(a.seed, len(answers) - 1)]
            if a.adapter == "deep":
                self.deep_prompts.append(a.messages[-1]["content"])
            out.append(Reply(text, completion_tokens=len(text.split()), seconds=0.01))
        return out


@pytest.mark.parametrize("fallback", ["deep", "intuitive"])
def test_lorid_loop_control_flow(fallback):
    from thinkling.evaluate.strategies import Context, LoridOptions, lorid
    from thinkling.tasks import get_task

    task = get_task("arithmetic")
    probs = task.problems("test", n=3, levels=[1])
    a, b, c = (p.id for p in probs)
    ans = lambda x: f"<think>\nwork\n</think>\nThe answer is {x}."  # noqa: E731
    know = "<think>\n</think>\nfacts"
    script = {
        a: {"intuitive": [ans(1)], "knowledge": [know], "deep": [ans(1)]},                   # agree at once
        b: {"intuitive": [ans(1), ans(2)], "knowledge": [know], "deep": [ans(3), ans(2)]},   # agree in round 2
        c: {"intuitive": [ans(4), ans(5), ans(6)], "knowledge": [know], "deep": [ans(7), ans(8), ans(9)]},  # never
    }
    eng = ScriptedEngine(script)
    outs = lorid(Context(eng, task, 32), probs, LoridOptions(max_iterations=3, fallback=fallback))
    got = {o.problem.id: (o.predicted, o.extra["iterations"], o.extra["agreed"]) for o in outs}
    assert got[a] == ("1", 1, True)
    assert got[b] == ("2", 2, True)
    assert got[c] == ("9" if fallback == "deep" else "6", 3, False)
    assert [len(o.samples) for o in outs] == [3, 6, 9]   # IR, KG, DR per round
    assert all(p.startswith("Knowledge: facts\n\n") for p in eng.deep_prompts)  # DR is asked with KG's knowledge


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


def test_adaptive_strategy_records_and_forces_the_mode(noisy_model, tmp_path, captured):
    rows, samples = run_eval(tmp_path / "e", captured.console, models=[f"noisy={noisy_model}"],
                             strategies=["adaptive", {"name": "adaptive", "label": "forced-short", "force": "short"}])
    forced = [s for s in samples if s["strategy"] == "forced-short"]
    assert forced and all(s["completion"].startswith("<short>") for s in forced)
    assert row(rows, strategy="forced-short")["short_mode_share"] == 1.0
    free = row(rows, strategy="adaptive")  # an untrained model opens with neither marker
    assert free.get("short_mode_share", 0.0) == 0.0 and free["protocol"]["strategy_options"] == {"force": None}

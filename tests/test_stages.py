"""End-to-end stage tests on the oracle teacher and tiny models the tests build themselves.

generate (keyed, append-only, kill -9 resumable) -> curate (per-reason drops, negatives) ->
train (checkpoint + manifest, skip, resume) -> eval (result rows, batch-size invariance).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from thinkling.artifacts import read_jsonl, read_manifest
from thinkling.config import build_config
from thinkling.curate.stage import CurateConfig, curate
from thinkling.metrics import percentile, summarize, wilson_interval
from thinkling.engines import SamplingParams
from thinkling.generate.stage import GenerateConfig, generate, request_key
from thinkling.records import Example, Problem, Trace

RESULT_KEYS = {"model", "task", "level", "n", "accuracy", "ci_low", "ci_high", "mean_tokens", "p95_tokens",
               "truncation_rate", "seconds_per_problem"}
SMALL_TINY = {"vocab_size": 300, "hidden_size": 32, "num_layers": 1, "num_heads": 1, "intermediate_size": 64,
              "max_position_embeddings": 128}


def gen_cfg(out: Path, n: int = 10, levels=(1, 2), style: str = "concise", **kw) -> GenerateConfig:
    return build_config(GenerateConfig, {"out": str(out), "task": {"n": n, "levels": list(levels)},
                                         "teacher": {"style": style}, **kw})


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- generate


def test_generate_with_the_oracle_end_to_end(tmp_path, captured):
    out = tmp_path / "traces"
    cfg = gen_cfg(out, n=15, style="long", samples=2)
    m = generate(cfg, console=captured.console)
    assert m["counts"]["problems"] == 30
    assert m["counts"]["requested"] == m["counts"]["traces"] == m["counts"]["new_this_run"] == 60
    assert m["counts"]["failed"] == 0
    problems = read_jsonl(out / "problems.jsonl", Problem)
    assert len(problems) == 30 and len({p.id for p in problems}) == 30
    assert {p.level for p in problems} == {1, 2} and all(p.split == "train" for p in problems)
    traces = read_jsonl(out / "traces.jsonl", Trace)
    assert len(traces) == 60 and len({t.key for t in traces}) == 60
    gold = {p.id: p.answer for p in problems}
    by_problem: dict[str, set[int]] = {}
    for t in traces:
        # keyed by (teacher, rendered prompt, sampling, sample index)
        assert t.key == request_key("oracle:long", t.prompt, cfg.sampling, t.sample_index)
        assert t.prompt == [{"role": "user", "content": t.question}]
        assert t.answer == gold[t.problem_id] and t.reasoning and t.finish_reason == "stop"
        assert t.usage.completion_tokens > 0 and t.meta["sentences"]
        by_problem.setdefault(t.problem_id, set()).add(t.sample_index)
    assert by_problem == {p.id: {0, 1} for p in problems}
    assert read_jsonl(out / "failed.jsonl") == []
    assert json.loads((out / "config.json").read_text())["teacher"]["style"] == "long"

    # the same config again: skipped by the manifest, nothing rewritten
    before = {f: sha(out / f) for f in ("manifest.json", "traces.jsonl", "problems.jsonl")}
    again = generate(cfg, console=captured.console)
    assert "skipping" in captured.text
    assert again == m and before == {f: sha(out / f) for f in before}

    # more problems into the same dir: finished keys are reused, only the new ones are generated
    bigger = gen_cfg(out, n=20, style="long", samples=2)
    m2 = generate(bigger, console=captured.console)
    assert m2["counts"]["requested"] == m2["counts"]["traces"] == 80
    assert m2["counts"]["new_this_run"] == 20
    keys = [t.key for t in read_jsonl(out / "traces.jsonl", Trace)]
    assert len(keys) == len(set(keys)) == 80


def test_request_keys_depend_on_every_part():
    msgs = [{"role": "user", "content": "q"}]
    s = SamplingParams()
    k = request_key("oracle:long", msgs, s, 0)
    assert k == request_key("oracle:long", [{"content": "q", "role": "user"}], SamplingParams(), 0)
    assert len({k, request_key("oracle:concise", msgs, s, 0), request_key("oracle:long", msgs, s, 1),
                request_key("oracle:long", [{"role": "user", "content": "q2"}], s, 0),
                request_key("oracle:long", msgs, SamplingParams(temperature=0.7), 0)}) == 5


def test_generating_with_another_teacher_style_into_the_same_dir_is_refused(tmp_path, captured):
    out = tmp_path / "traces"
    generate(gen_cfg(out, n=5, style="long"), console=captured.console)
    before = sha(out / "traces.jsonl")
    with pytest.raises(ValueError) as e:
        generate(gen_cfg(out, n=5, style="concise"), console=captured.console)
    assert "teacher" in str(e.value) and str(out) in str(e.value)
    with pytest.raises(ValueError):
        generate(gen_cfg(out, n=5, style="long", sampling={"temperature": 0.5}), console=captured.console)
    assert sha(out / "traces.jsonl") == before
    assert read_manifest(out)["config"]["teacher"]["style"] == "long"  # the finished run is left intact


def test_oracle_refuses_non_synthetic_tasks_and_unknown_styles(tmp_path, gsm8k_dir, captured):
    with pytest.raises(ValueError) as e:
        generate(build_config(GenerateConfig, {"out": str(tmp_path / "g"), "task": {
            "name": "gsm8k", "n": 2, "options": {"data_dir": str(gsm8k_dir)}}}), console=captured.console)
    assert "gsm8k" in str(e.value)
    with pytest.raises(ValueError) as e:
        generate(gen_cfg(tmp_path / "h", n=2, style="verbose"), console=captured.console)
    assert "verbose" in str(e.value)


@pytest.mark.slow
def test_generate_survives_kill_9_and_resumes_without_loss_or_duplicates(tmp_path):
    out = tmp_path / "traces"
    n, levels = 20000, [3, 4]  # with operands up to 9, level 3 holds ~4.2k distinct train problems
    args = [sys.executable, "-m", "thinkling.cli", "generate", f"out={out}", f"task.n={n}", "task.options.max_operand=9",
            f"task.levels=[{','.join(map(str, levels))}]", "teacher.style=concise", "chunk_size=64"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    traces = out / "traces.jsonl"
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if traces.exists() and traces.stat().st_size > 20_000:  # some chunks are on disk
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (
        f"the generate process was not killed mid-run (exit {proc.returncode}); raise task.n\n"
        + (tmp_path / "first.log").read_text()[-2000:])
    assert not (out / "manifest.json").exists()
    requested = (out / "problems.jsonl").read_bytes().count(b"\n")
    assert requested > n  # level 4 alone gives n
    lines_at_kill = traces.read_bytes().count(b"\n")
    assert 0 < lines_at_kill < requested

    second = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "already done" in second.stderr

    keys = []
    with open(traces, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            assert line.endswith("\n"), f"line {i} is partial"
            keys.append(json.loads(line)["key"])  # every line parses
    assert len(keys) == len(set(keys)), "duplicate keys after resume"
    assert len(keys) == requested
    problems = read_jsonl(out / "problems.jsonl")
    wanted = {request_key("oracle:concise", [{"role": "user", "content": p["question"]}], SamplingParams(), 0)
              for p in problems}
    assert set(keys) == wanted
    m = read_manifest(out)
    assert m["counts"]["traces"] == m["counts"]["requested"] == requested
    assert 0 < m["counts"]["new_this_run"] <= requested - lines_at_kill + 1  # the first run's work was kept


# ----------------------------------------------------------------------------- curate


def _plant(traces: Path, problems: list[Problem]) -> dict[str, list[str]]:
    """Append traces that curation must drop, each for a known reason; returns their keys by reason."""
    rows = read_jsonl(traces, Trace)
    base = {t.problem_id: t for t in rows}
    planted: dict[str, list[str]] = {"wrong_answer": [], "truncated": [], "unparseable": [], "duplicate": []}
    extra = []

    def clone(p: Problem, key: str, idx: int, **kw) -> Trace:
        t = base[p.id].model_copy(update={"key": key, "sample_index": idx, **kw})
        extra.append(t)
        return t

    for j, p in enumerate(problems[:3]):
        clone(p, f"planted-wrong-{j}", 7, answer=str((int(p.answer) + 1) % 10))
        planted["wrong_answer"].append(f"planted-wrong-{j}")
    clone(problems[3], "planted-truncated", 7, finish_reason="length")
    planted["truncated"].append("planted-truncated")
    clone(problems[4], "planted-unparseable", 7, answer="I am not sure")
    planted["unparseable"].append("planted-unparseable")
    clone(problems[5], "planted-duplicate", 8)  # same question, reasoning and answer as sample 0
    planted["duplicate"].append("planted-duplicate")
    with open(traces, "a") as f:
        for t in extra:
            f.write(json.dumps(t.model_dump(mode="json")) + "\n")
    return planted


def test_curate_routes_wrong_answers_to_negatives_with_per_reason_counts(tmp_path, captured):
    traces_dir = tmp_path / "traces"
    generate(gen_cfg(traces_dir, n=10, style="concise"), console=captured.console)
    problems = read_jsonl(traces_dir / "problems.jsonl", Problem)
    planted = _plant(traces_dir / "traces.jsonl", problems)
    raw_before = sha(traces_dir / "traces.jsonl")
    out = tmp_path / "data"
    cfg = build_config(CurateConfig, {"traces": str(traces_dir), "out": str(out)})
    m = curate(cfg, console=captured.console)

    ops = {o["op"]: o for o in m["counts"]["ops"]}
    assert [o["op"] for o in m["counts"]["ops"]] == ["verify", "dedup", "select"]
    assert ops["verify"]["in"] == 26
    assert ops["verify"]["dropped"] == {"wrong_answer": 3, "truncated": 1, "unparseable": 1}
    assert ops["verify"]["kept"] == 21
    assert ops["dedup"]["dropped"] == {"duplicate": 1}
    assert ops["select"]["dropped"] == {}
    assert m["counts"]["kept"] == 20 and m["counts"]["negatives"] == 3
    assert m["counts"]["per_level"] == {"1": 10, "2": 10}

    negatives = read_jsonl(out / "negatives.jsonl", Example)
    assert sorted(e.source_key for e in negatives) == sorted(planted["wrong_answer"])
    assert all(e.correct is False for e in negatives)
    kept = read_jsonl(out / "train.jsonl", Example)
    assert len(kept) == 20 and all(e.correct is True for e in kept)
    assert not {e.source_key for e in kept} & {k for ks in planted.values() for k in ks}
    assert all(e.answer == e.gold for e in kept)
    dropped = read_jsonl(out / "dropped.jsonl")
    reasons = {(d["op"], d["reason"], d["id"]) for d in dropped}
    assert ("verify", "truncated", "planted-truncated") in reasons
    assert ("verify", "unparseable", "planted-unparseable") in reasons
    assert ("dedup", "duplicate", "planted-duplicate") in reasons
    assert len(dropped) == 6
    assert sha(traces_dir / "traces.jsonl") == raw_before  # raw traces are never rewritten

    # re-run: skipped; another filter config: re-derived with its own counts
    curate(cfg, console=captured.console)
    assert "skipping" in captured.text
    capped = build_config(CurateConfig, {"traces": str(traces_dir), "out": str(tmp_path / "short"),
                                         "select": {"max_reasoning_words": 1}, "ops": ["verify", "select"]})
    m2 = curate(capped, console=captured.console)
    select = m2["counts"]["ops"][1]
    # concise level-1 reasoning is one "word" (k=j+7=0+7=7), level 2 has two lines; without dedup the
    # planted level-1 duplicate survives: 11 level-1 traces kept, the 10 level-2 ones too long
    assert select["in"] == 21
    assert select["dropped"] == {"too_long": 10} and select["kept"] == 11


def test_curate_without_traces_is_a_clear_error(tmp_path, captured):
    from thinkling.artifacts import DataError

    with pytest.raises(DataError) as e:
        curate(build_config(CurateConfig, {"traces": str(tmp_path / "nope"), "out": str(tmp_path / "o")}),
               console=captured.console)
    assert str(tmp_path / "nope") in str(e.value)


# ----------------------------------------------------------------------------- train


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A small curated dataset: concise arithmetic traces, 12 problems at each of levels 1 and 2."""
    import io

    from rich.console import Console

    root = tmp_path_factory.mktemp("curated")
    console = Console(file=io.StringIO(), width=300)
    generate(gen_cfg(root / "traces", n=12, style="concise"), console=console)
    curate(build_config(CurateConfig, {"traces": str(root / "traces"), "out": str(root / "data")}), console=console)
    return root / "data"


def train_cfg(data: Path, out: Path, **kw):
    from thinkling.train.config import TrainConfig

    d = {"data": str(data), "out": str(out), "tiny": SMALL_TINY, "max_steps": 4, "save_steps": 2, "batch_size": 4,
         "logging_steps": 1, "threads": 1, "max_len": 256}
    d.update(kw)
    return build_config(TrainConfig, d)


@pytest.mark.slow
def test_train_writes_a_loadable_checkpoint_and_skips_a_rerun(data_dir, tmp_path, captured):
    import torch

    from thinkling.models.loading import load_model, load_tokenizer
    from thinkling.models.render import render
    from thinkling.train.stage import train

    out = tmp_path / "student"
    cfg = train_cfg(data_dir, out)
    m = train(cfg, console=captured.console)
    c = m["counts"]
    assert c["steps"] == 4 and c["examples"] == 24 and c["dropped_over_max_len"] == 0
    assert c["examples_seen"] == 16
    hist = m["loss_history"]
    assert len(hist) == 4 and all(math.isfinite(x) for x in hist)
    assert c["first_loss"] == round(hist[0], 4) and c["final_loss"] == round(hist[-1], 4)
    for f in ("model.safetensors", "config.json", "tokenizer.json", "manifest.json"):
        assert (out / f).is_file(), f
    assert "model.safetensors" in m["outputs"]
    # the mask of the first example is shown before training: prompt untrained, reply + <|im_end|> trained
    assert "tokens that get loss" in captured.text
    assert "[[<think>" in captured.text and "<|im_end|>]]" in captured.text

    tok = load_tokenizer(str(out))
    model = load_model(str(out))
    assert hist[0] == pytest.approx(math.log(len(tok)), rel=0.1)  # near-uniform predictions at init
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 1
    ex = read_jsonl(data_dir / "train.jsonl", Example)[0]
    ids, _ = render(tok, [{"role": "user", "content": ex.question}], ex.reasoning)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), len(tok)) and torch.isfinite(logits).all()

    before = sha(out / "manifest.json")
    again = train(cfg, console=captured.console)
    assert "complete for this config; skipping" in captured.text
    assert sha(out / "manifest.json") == before and again["counts"] == c


@pytest.mark.slow
def test_train_resumes_from_the_latest_checkpoint(data_dir, tmp_path, captured, captured_factory):
    from thinkling.models.loading import load_model
    from thinkling.train.stage import train

    out = tmp_path / "student"
    cfg = train_cfg(data_dir, out, max_steps=4, save_steps=2)
    first = train(cfg, console=captured.console)
    ckpts = sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*"))
    assert ckpts == ["checkpoint-4"]
    # a crash after the last checkpoint but before the final save and the manifest
    (out / "manifest.json").unlink()
    (out / "model.safetensors").unlink()
    rerun = captured_factory()
    m = train(cfg, console=rerun.console)
    assert f"resuming from {out / 'checkpoints' / 'checkpoint-4'}" in rerun.text
    assert "resuming" not in captured.text  # the first run started from scratch
    assert (out / "model.safetensors").is_file() and read_manifest(out) is not None
    load_model(str(out))
    # the loss history is continued from the checkpoint, not restarted
    assert m["loss_history"][:4] == first["loss_history"]


@pytest.mark.slow
def test_train_resume_does_not_train_past_max_steps(data_dir, tmp_path, captured):
    """BUG: resuming from a checkpoint already at max_steps trains one extra optimizer step
    (the Trainer takes a step before checking global_step >= max_steps), so the re-run's model and
    manifest (steps=5 for max_steps=4) differ from an uninterrupted run."""
    from thinkling.train.stage import train

    out = tmp_path / "student"
    cfg = train_cfg(data_dir, out, max_steps=4, save_steps=2)
    train(cfg, console=captured.console)
    (out / "manifest.json").unlink()
    (out / "model.safetensors").unlink()
    m = train(cfg, console=captured.console)
    assert m["counts"]["steps"] == 4


@pytest.mark.slow
def test_train_into_a_dir_of_another_config_does_not_reuse_its_model(data_dir, tmp_path, captured):
    """BUG: a changed config re-runs the stage, but the old ``init/`` (built for the old tiny spec and
    tokenizer) and the old checkpoints are reused, so the saved model does not match its manifest."""
    from thinkling.models.loading import load_model
    from thinkling.train.stage import train

    out = tmp_path / "student"
    train(train_cfg(data_dir, out, max_steps=2, save_steps=2), console=captured.console)
    wider = {**SMALL_TINY, "hidden_size": 48}
    m = train(train_cfg(data_dir, out, max_steps=2, save_steps=2, tiny=wider), console=captured.console)
    assert m["config"]["tiny"]["hidden_size"] == 48
    assert load_model(str(out)).config.hidden_size == 48


def test_train_rejects_missing_and_empty_data(tmp_path, captured):
    from thinkling.artifacts import DataError
    from thinkling.train.stage import train

    with pytest.raises(DataError) as e:
        train(train_cfg(tmp_path / "nope", tmp_path / "s"), console=captured.console)
    assert str(tmp_path / "nope") in str(e.value)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError) as e:
        train(train_cfg(empty, tmp_path / "s"), console=captured.console)
    assert "no training examples" in str(e.value)


# ----------------------------------------------------------------------------- eval


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


# ----------------------------------------------------------------------------- metrics


def test_wilson_interval_sanity():
    z = 1.959964
    for n in (1, 10, 100, 1000):
        lo, hi = wilson_interval(0, n)
        assert lo == pytest.approx(0.0, abs=1e-12) and 0 < hi < 1
        assert hi == pytest.approx(z * z / (n + z * z), rel=1e-9)
        lo, hi = wilson_interval(n, n)
        assert hi == pytest.approx(1.0, abs=1e-12) and 0 < lo < 1
        assert lo == pytest.approx(n / (n + z * z), rel=1e-9)
    for n in (2, 10, 100, 1000):
        lo, hi = wilson_interval(n // 2, n)
        assert lo + hi == pytest.approx(1.0, abs=1e-12)  # symmetric around 50%
        assert lo < 0.5 < hi
    lo, hi = wilson_interval(50, 100)
    assert (lo, hi) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))
    widths = [(lambda a, b: b - a)(*wilson_interval(n // 4, n)) for n in (8, 80, 800)]
    assert widths[0] > widths[1] > widths[2]
    assert wilson_interval(0, 0) == (0.0, 0.0)
    lo, hi = wilson_interval(3, 10)
    assert lo < 0.3 < hi


def test_wilson_interval_contains_the_observed_proportion():
    """BUG: at 0% and 100% the interval misses the point estimate by one float ulp, e.g.
    wilson_interval(10, 10) == (0.72..., 0.9999999999999999), so a row's ci_high < accuracy."""
    bad = [(k, n) for n in range(1, 101) for k in (0, n // 2, n)
           if not wilson_interval(k, n)[0] <= k / n <= wilson_interval(k, n)[1]]
    assert bad == []


def test_report_for_perfect_and_zero_accuracy(tmp_path):
    """BUG: a model at 100% (e.g. 10/10) or 0% (e.g. 0/69) accuracy makes the frontier plot raise
    "'yerr' must not contain negative values" (ci_high - accuracy is -1e-16), so `thinkling run`
    fails at the report after every stage has finished."""
    from thinkling.report import write_report

    rows = []
    for name, k, n in (("perfect", 10, 10), ("zero", 0, 69), ("half", 5, 10)):
        rows.append({"model": name, "task": "arithmetic", "level": "all",
                     **summarize([True] * k + [False] * (n - k), [5] * n, [False] * n, 1.0)})
    path = write_report(rows, tmp_path, "t")
    assert path.is_file() and (tmp_path / "frontier.png").stat().st_size > 0


def test_percentile_and_summarize():
    assert percentile([], 95) == 0.0
    assert percentile([5.0], 95) == 5.0
    assert percentile([float(x) for x in range(1, 101)], 95) == pytest.approx(95.05)
    assert percentile([1.0, 2.0], 50) == 1.5
    s = summarize([True, False, True, True], [10, 20, 30, 40], [False, False, False, True], seconds=2.0)
    assert s["n"] == 4 and s["correct"] == 3 and s["accuracy"] == 0.75
    assert s["mean_tokens"] == 25 and s["median_tokens"] == 25 and s["truncation_rate"] == 0.25
    assert s["seconds_per_problem"] == 0.5 and s["tokens_per_second"] == 50
    assert (s["ci_low"], s["ci_high"]) == wilson_interval(3, 4)
    empty = summarize([], [], [], 0.0)
    assert empty["n"] == 0 and empty["accuracy"] == 0.0 and not any(math.isnan(v) for v in empty.values())

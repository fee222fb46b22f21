"""The report: pure analyses (Pareto front, regime gaps, pooled logic groups), report.md and the
self-contained report.html, checked in a real headless Chromium (dump-dom after the page's JS ran,
and a screenshot), and the ``thinkling report`` command.

The browser tests skip when no Chromium is installed, unless THINKLING_REQUIRE_CHROMIUM=1 (CI).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from thinkling.metrics import wilson_interval
from thinkling.report import (
    build_report,
    load_inputs,
    merge_rows,
    pareto_front,
    pooled_groups,
    regime_gaps,
    sample_verdict,
    select_samples,
    strategy_of,
    write_report,
)

# ----------------------------------------------------------------------------- fake eval dirs

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


# ----------------------------------------------------------------------------- pure analyses


def _pt(model, acc, tok, strategy="greedy"):
    return {"model": model, "strategy": strategy, "accuracy": acc, "mean_tokens": tok}


def test_pareto_front_keeps_exactly_the_undominated_points():
    pts = [_pt("a", 0.9, 500), _pt("b", 0.8, 100), _pt("c", 0.7, 200),  # c: b is better and cheaper
           _pt("d", 0.9, 600),  # d: a has the same accuracy with fewer tokens
           _pt("e", 0.5, 50), _pt("f", 0.8, 100),  # f ties b exactly: both stay
           _pt("g", 0.95, 5000)]
    front = pareto_front(pts)
    assert [p["model"] for p in front] == ["e", "b", "f", "a", "g"]
    assert pareto_front([]) == []
    assert pareto_front([_pt("only", 0.0, 10)])[0]["model"] == "only"


def test_regime_gaps_are_differences_of_accuracy_with_a_ci_around_them():
    rows = [r for r in fake_rows() if r.get("regime")]
    rows.append(make_row("half", "evidence_qa", "all", "greedy", 10, 40, 50.0, regime="concepts"))  # others missing
    rows.append(make_row("concise", "evidence_qa", 1, "greedy", 1, 40, 50.0, regime="full"))  # a level row: ignored
    gaps = {g["model"]: g for g in regime_gaps(rows)}
    assert set(gaps) == {"teacher", "concise", "half"}
    t = gaps["teacher"]
    assert t["acc"] == {"instruction": 36 / 80, "concepts": 64 / 80, "related": 56 / 80, "full": 48 / 80}
    assert t["gaps"]["concepts - instruction"] == pytest.approx(0.35)
    assert t["gaps"]["concepts - related"] == pytest.approx(0.1)
    assert t["gaps"]["related - full"] == pytest.approx(0.1)
    for k, d in t["gaps"].items():
        lo, hi = t["gap_ci"][k]
        assert lo < d < hi and hi - lo < 0.4
    c = gaps["concise"]
    assert c["gaps"]["concepts - instruction"] == pytest.approx(53 / 80 - 24 / 80)
    assert c["training"] == "multi-task" and c["n"]["full"] == 80
    assert gaps["half"]["gaps"] == {"concepts - instruction": None, "concepts - related": None, "related - full": None}
    assert regime_gaps([r for r in fake_rows() if not r.get("regime")]) == []


def test_pooled_groups_sum_correct_and_n_over_the_tasks_of_a_group():
    rows = fake_rows()
    rows.append(make_row("long", "proofwriter", 2, "greedy", 1, 10, 5.0, group="deductive"))  # level row: ignored
    pooled = {(p["group"], p["model"]): p for p in pooled_groups(rows)}
    assert {g for g, _ in pooled} == {"deductive", "abductive", "inductive"}
    ded = [r for r in rows if r.get("group") == "deductive" and r["model"] == "long" and r["level"] == "all"]
    k, n = sum(r["correct"] for r in ded), sum(r["n"] for r in ded)
    p = pooled[("deductive", "long")]
    assert (p["correct"], p["n"], p["tasks"]) == (k, n, ["prontoqa", "proofwriter"])
    assert p["accuracy"] == k / n and (p["ci_low"], p["ci_high"]) == wilson_interval(k, n)
    assert p["training"] == "single-task" and pooled[("deductive", "concise")]["training"] == "multi-task"
    # old rows without `correct`: recovered from accuracy * n
    old = [{"model": "m", "task": t, "level": "all", "group": "deductive", "n": 20, "accuracy": 0.25} for t in "ab"]
    (q,) = pooled_groups(old)
    assert (q["correct"], q["n"], q["strategy"]) == (10, 40, "greedy")


def test_training_regimes_pool_the_single_task_students_into_one_figure_per_group():
    rows = [make_row("single-a", "rules", "all", "greedy", 6, 10, 5.0, group="deductive", training="single-task"),
            make_row("single-b", "abduction", "all", "greedy", 2, 10, 5.0, group="abductive", training="single-task"),
            make_row("multi", "rules", "all", "greedy", 7, 10, 5.0, group="deductive", training="multi-task"),
            make_row("multi", "abduction", "all", "greedy", 3, 10, 5.0, group="abductive", training="multi-task"),
            make_row("untagged", "rules", "all", "greedy", 9, 10, 5.0, group="deductive")]
    got = {(p["group"], p["model"]): (p["correct"], p["n"]) for p in pooled_groups(rows, by="training")}
    assert got == {("deductive", "single-task"): (6, 10), ("abductive", "single-task"): (2, 10),
                   ("deductive", "multi-task"): (7, 10), ("abductive", "multi-task"): (3, 10)}


def test_merge_deduplicates_by_model_task_level_strategy_regime_and_defaults_to_greedy():
    old = {"model": "m", "task": "t", "level": "all", "n": 10, "accuracy": 0.5}
    assert strategy_of(old) == "greedy"
    newer = {**old, "strategy": "greedy", "accuracy": 0.6}
    other = {**old, "strategy": "budget"}
    regime = {**old, "regime": "full"}
    rows, replaced = merge_rows([[old, other], [newer, regime]])
    assert replaced == 1 and len(rows) == 3
    assert rows[0]["accuracy"] == 0.6  # the later input wins, in the earlier row's place


def test_sample_verdicts_and_the_cap_keeps_every_outcome_represented():
    assert sample_verdict({"correct": True, "truncated": True, "predicted": "1"}) == "correct"
    assert sample_verdict({"correct": False, "truncated": True, "predicted": None}) == "truncated"
    assert sample_verdict({"correct": False, "truncated": False, "predicted": None}) == "no answer"
    assert sample_verdict({"correct": False, "truncated": False, "predicted": " "}) == "no answer"
    assert sample_verdict({"correct": False, "truncated": False, "predicted": "7"}) == "wrong"
    samples = fake_samples()
    picked = {key: (kept, left) for key, kept, left in select_samples(samples, 8)}
    kept, left = picked[("concise", "arithmetic", "greedy")]
    assert len(kept) == 8 and left == 62
    assert {sample_verdict(s) for s in kept} == {"correct", "wrong", "no answer", "truncated"}
    ids = [int(s["problem_id"].split("/")[1]) for s in kept]
    assert ids == sorted(ids)  # file order kept
    assert picked[("long", "arithmetic", "budget")][1] == 0


# ----------------------------------------------------------------------------- files (no browser)


def test_write_report_writes_markdown_plots_and_a_self_contained_page(tmp_path):
    rows, samples = fake_rows(), fake_samples()
    md_path = write_report(rows, tmp_path / "rep", "fake report", notes=["A note with `code`."],
                           extra_sections=["## Claims checked", "", "| claim | result |", "|---|---|",
                                           "| concise <= 100 tok | PASS |", ""],
                           samples=samples, validation=VALIDATION, max_samples=50)
    out = md_path.parent
    for f in ("report.md", "report.html", "frontier.png", "level_tokens.png", "regime_gaps.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
        if f.endswith(".png"):
            assert (out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = md_path.read_text()
    for needle in ("# fake report", "![frontier](frontier.png)", "![tokens per level](level_tokens.png)",
                   "![regime gaps](regime_gaps.png)", "## Results", "## Evidence regimes", "## Logic groups",
                   "### Instance validation", "## Claims checked", "## Protocols", "| concise |",
                   "pass@1 55.0 · pass@4 80.0 · maj@4 70.0", "iter 1.55 (1:120, 2:50, 3:30)",
                   "+35.0 [", "(training: multi-task)", "answerable_without_evidence"):
        assert needle in md, needle
    page = (out / "report.html").read_text()
    assert not re.search(r"https?://", page), re.search(r".{60}https?://.{60}", page).group(0)
    srcs = re.findall(r"""\bsrc=['"]([^'"]*)""", page)
    assert len(srcs) == 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<link" not in page and "@import" not in page
    assert "Is 3 &lt; 5 &amp;&amp; 7 &gt; 2? Answer &lt;b&gt;yes&lt;/b&gt;" in page and TRICKY_Q not in page
    assert "<script>document.title" not in page
    assert page.count("<script>") == 1


def test_markdown_notes_render_escaped_with_headings_below_the_title_and_no_images():
    from thinkling.report import markdown_to_html

    out = markdown_to_html(["# Top", "## Claims", "", "| claim | result |", "|---|---|", "| a \\| b | **PASS** |", "",
                            "<script>alert(1)</script> and `x<y`", "", "![plot](https://example.com/p.png)"])
    assert "<h2>Top</h2>" in out and "<h3>Claims</h3>" in out and "<h1>" not in out
    assert "<div class='scroll'><table>" in out and "<td>a | b</td>" in out and "<strong>PASS</strong>" in out
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out and "<code>x&lt;y</code>" in out
    assert "<img" not in out


def test_pipeline_style_rows_still_report(tmp_path):
    """Rows as `thinkling run` writes them today (no strategy/backend/no_answer_rate/correct)."""
    from thinkling.metrics import summarize

    rows = []
    for name, k, n in (("perfect", 10, 10), ("zero", 0, 69), ("half", 5, 10)):
        for lv in (1, "all"):
            rows.append({"model": name, "task": "arithmetic", "split": "test", "level": lv,
                         "protocol": {"strategy": "greedy", "seed": 0},
                         **{k2: v for k2, v in summarize([True] * k + [False] * (n - k), [5] * n, [False] * n,
                                                        1.0).items() if k2 != "correct"}})
    path = write_report(rows, tmp_path, "t", notes=["n"], extra_sections=["## Students", ""])
    md = path.read_text()
    assert "![frontier](frontier.png)" in md and "| perfect |" in md and "## Students" in md
    assert "## Logic groups" not in md and "## Evidence regimes" not in md
    assert (tmp_path / "report.html").is_file() and (tmp_path / "level_tokens.png").is_file()


# ----------------------------------------------------------------------------- CLI


def test_cli_report_merges_inputs_and_names_missing_or_broken_files(tmp_path):
    from thinkling.cli import app

    a = write_eval_dir(tmp_path / "a")
    extra = [make_row("tiny", "arithmetic", "all", "greedy", 3, 10, 20.0),
             make_row("concise", "arithmetic", "all", "greedy", 1, 120, 1.0, training="multi-task")]  # replaces a's
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text(json.dumps(extra))
    runner = CliRunner()
    out = tmp_path / "rep"
    r = runner.invoke(app, ["report", str(a), str(tmp_path / "b" / "results.json"), "--out", str(out),
                            "--title", "merged", "--max-samples", "5"])
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    assert md.startswith("# merged") and "| tiny |" in md and "1 result row(s) appeared in more than one input" in md
    assert "| 0.8 [" in md  # the replacing row (1/120) is shown, not a's
    page = (out / "report.html").read_text()
    assert "at most 5 per model, task and strategy" in page and "65 more left out" in page
    data = load_inputs([a, tmp_path / "b" / "results.json"])
    assert len(data.rows) == len(fake_rows()) + 1 and data.replaced == 1
    # an old sample: task from its problem id, strategy from the rows, reasoning/answer from the completion
    old = [s for s in data.samples if s["problem_id"] == "arithmetic/test/L1/old"][0]
    assert (old["task"], old["strategy"], old["reasoning"], old["answer_text"]) == ("arithmetic", "greedy", "nine", "9")

    missing = tmp_path / "nope"
    r = runner.invoke(app, ["report", str(a), str(missing), "--out", str(out)])
    assert r.exit_code == 2 and str(missing) in r.output and "not found" in r.output
    (tmp_path / "empty").mkdir()
    r = runner.invoke(app, ["report", str(tmp_path / "empty"), "--out", str(out)])
    assert r.exit_code == 2 and f"{tmp_path / 'empty' / 'results.json'}: not found" in r.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text('[{"model": "m",')
    r = runner.invoke(app, ["report", str(bad), "--out", str(out)])
    assert r.exit_code == 2 and f"{bad / 'results.json'}: not valid JSON" in r.output
    (bad / "results.json").write_text('[{"model": "m"}]')
    r = runner.invoke(app, ["report", str(bad / "results.json"), "--out", str(out)])
    assert r.exit_code == 2 and "row 0: missing field(s) task, level, n, accuracy" in r.output
    (bad / "results.json").write_text(json.dumps(extra))
    (bad / "samples.jsonl").write_text('{"model": "m"}\n{oops\n')
    r = runner.invoke(app, ["report", str(bad), "--out", str(out)])
    assert r.exit_code == 2 and f"{bad / 'samples.jsonl'}:2: malformed JSON" in r.output


# ----------------------------------------------------------------------------- the page in Chromium


@pytest.fixture(scope="session")
def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    msg = "no chromium on PATH (apt-get install chromium)"
    if os.environ.get("THINKLING_REQUIRE_CHROMIUM") == "1":
        pytest.fail(msg + " and THINKLING_REQUIRE_CHROMIUM=1")
    pytest.skip(msg)


def browse(chromium: str, tmp_path: Path, url: str, *args: str) -> str:
    """Run headless Chromium on ``url``; returns stdout (the DOM with --dump-dom)."""
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'chrome-profile'}", *args, url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


class Dom(HTMLParser):
    """Tables (rows of (attrs, cell texts)), trace articles (attrs + text of their parts), the title."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tables: list[dict] = []
        self.articles: list[dict] = []
        self.selects: dict[str, list[str]] = {}
        self.title = ""
        self.ids: dict[str, str] = {}
        self._stack: list[str] = []
        self._cell: list[str] | None = None
        self._field: tuple[dict, str] | None = None
        self._text_target: list[str] | None = None
        self._id_target: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables.append({"attrs": a, "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append((a, []))
        elif tag in ("td", "th") and self.tables:
            self._cell = []
        elif tag == "article":
            self.articles.append({"attrs": a})
        elif tag == "pre" and self.articles and a.get("class") in ("question", "reasoning", "answer"):
            self._field = (self.articles[-1], a["class"])
            self._text_target = []
        elif tag == "select":
            self.selects[a.get("id", "")] = []
        elif tag == "option" and self.selects:
            list(self.selects.values())[-1].append(a.get("value", ""))
        elif tag == "title":
            self._text_target = []
        if "id" in a and tag == "span":
            self._id_target = a["id"]
            self.ids[a["id"]] = ""
        self._stack.append(tag)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1]["rows"]:
            self.tables[-1]["rows"][-1][1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "pre" and self._field is not None:
            art, name = self._field
            art[name] = "".join(self._text_target)
            self._field, self._text_target = None, None
        elif tag == "title" and self._text_target is not None:
            self.title = "".join(self._text_target)
            self._text_target = None
        elif tag == "span":
            self._id_target = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._text_target is not None:
            self._text_target.append(data)
        if self._id_target:
            self.ids[self._id_target] += data

    def table(self, cls_or_id: str) -> dict:
        return next(t for t in self.tables if cls_or_id in (t["attrs"].get("id"), t["attrs"].get("class")))


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    src = write_eval_dir(tmp_path_factory.mktemp("eval"))
    out = tmp_path_factory.mktemp("report")
    build_report([src], out, title="browser check")
    return out


def test_page_in_chromium_shows_tables_gaps_groups_and_escaped_traces(chromium, report_dir, tmp_path):
    dom = Dom(browse(chromium, tmp_path, (report_dir / "report.html").as_uri(), "--dump-dom"))
    assert dom.title == "browser check"  # the injected onerror/script in sample text never ran
    rows = fake_rows()

    res = dom.table("results-table")
    head = res["rows"][0][1]
    body = res["rows"][1:]
    assert len(body) == len(rows) and head[-1] == "protocol"
    row = next(c for a, c in body if (a["data-model"], a["data-task"], a["data-level"], a["data-strategy"])
               == ("concise", "arithmetic", "all", "lorid"))
    want = next(r for r in rows if r["model"] == "concise" and r["level"] == "all" and r["strategy"] == "lorid")
    cell = dict(zip(head, row))
    assert cell["accuracy % [95% CI]"] == (f"{100 * want['accuracy']:.1f} [{100 * want['ci_low']:.1f}, "
                                           f"{100 * want['ci_high']:.1f}]")
    assert cell["mean tok"] == f"{want['mean_tokens']:.1f}" and cell["n"] == "120" and cell["backend"] == "hf"
    assert cell["training"] == "multi-task" and cell["extras"].startswith("iter 1.55")
    assert '"max_new_tokens": 1024' in cell["protocol"]

    gaps = dom.table("gaps")
    ghead = gaps["rows"][0][1]
    for model, acc in EVIDENCE_ACC.items():
        k = {r: round(a * 80) for r, a in acc.items()}
        g = dict(zip(ghead, next(c for _, c in gaps["rows"][1:] if c[0].split(" ")[0] == model)))
        for (a, b), col in zip((("concepts", "instruction"), ("concepts", "related"), ("related", "full")),
                               [h for h in ghead if " - " in h]):
            assert col.startswith(f"{a} - {b}")
            assert g[col].startswith(f"{100 * (k[a] - k[b]) / 80:+.1f} ["), (model, col, g[col])
    assert [c for _, c in dom.table("validation")["rows"]][1] == ["evidence_qa", "teacher", "83", "80", "2", "1"]

    groups = dom.table("groups")
    ghead = groups["rows"][0][1]
    assert any("concise" in h and "training: multi-task" in h for h in ghead)
    ded = dict(zip(ghead, next(c for _, c in groups["rows"][1:] if c[0] == "deductive")))
    src = [r for r in rows if r.get("group") == "deductive" and r["model"] == "teacher"]
    k, n = sum(r["correct"] for r in src), sum(r["n"] for r in src)
    col = next(h for h in ghead if h.startswith("teacher"))
    assert ded[col].startswith(f"{100 * k / n:.1f} [") and ded[col].endswith(f"({k}/{n})")

    # traces: filters, escaping, counts
    assert dom.selects["filter-verdict"] == ["", "correct", "wrong", "no answer", "truncated"]
    assert {"filter-model", "filter-task", "filter-strategy", "filter-regime"} <= set(dom.selects)
    n_embedded = len(dom.articles)
    assert n_embedded == 50 + 2 + 2 + 1 and dom.ids["trace-count"] == f"showing {n_embedded} of {n_embedded}"
    tricky = next(a for a in dom.articles if a["attrs"]["data-strategy"] == "budget" and "3 <" in a["question"])
    assert tricky["question"] == TRICKY_Q and tricky["reasoning"] == "3 < 5 & 7 > 2"
    inject = next(a for a in dom.articles if "onerror" in a["question"])
    assert inject["question"] == INJECT_Q and inject["reasoning"] == INJECT_REASONING
    assert inject["attrs"]["data-verdict"] == "wrong"


def test_url_parameters_preset_the_filters_and_the_sort(chromium, report_dir, tmp_path):
    url = (report_dir / "report.html").as_uri() + "?verdict=wrong&model=concise&sort=mean_tokens&desc=1"
    dom = Dom(browse(chromium, tmp_path, url, "--dump-dom"))
    shown = [a for a in dom.articles if "hidden" not in a["attrs"]]
    want = [s for s in select_samples(fake_samples(), 50) if s[0][0] == "concise"][0][1]
    n_wrong = sum(sample_verdict(s) == "wrong" for s in want)
    assert n_wrong > 0 and len(shown) == n_wrong
    assert all(a["attrs"]["data-verdict"] == "wrong" and a["attrs"]["data-model"] == "concise" for a in shown)
    assert dom.ids["trace-count"] == f"showing {n_wrong} of {len(dom.articles)}"
    body = dom.table("results-table")["rows"][1:]
    head = dom.table("results-table")["rows"][0][1]
    toks = [float(c[head.index("mean tok")]) for _, c in body]
    assert toks == sorted(toks, reverse=True) and toks != [float(f"{r['mean_tokens']:.1f}") for r in fake_rows()]


def test_screenshot_is_not_blank(chromium, report_dir, tmp_path):
    import numpy as np
    from matplotlib import image

    shot = tmp_path / "shot.png"
    browse(chromium, tmp_path, (report_dir / "report.html").as_uri(), f"--screenshot={shot}",
           "--window-size=1280,1600")
    px = image.imread(shot)
    assert px.shape[0] == 1600 and px.shape[1] == 1280
    gray = px[..., :3].mean(axis=2)
    assert gray.std() > 0.05 and (gray < 0.5).mean() > 0.005  # text and plots, not an empty white page
    assert len(np.unique((gray * 255).astype(int))) > 50

"""report.html: markdown notes rendered escaped, and the page checked in a real headless Chromium (dump-dom
after the page's JS ran, URL parameters, a screenshot). The browser tests skip when no Chromium is
installed, unless THINKLING_REQUIRE_CHROMIUM=1 (CI)."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers.report import EVIDENCE_ACC, INJECT_Q, INJECT_REASONING, TRICKY_Q, fake_rows, fake_samples, write_eval_dir
from thinkling.report import build_report, sample_verdict, select_samples


def test_markdown_notes_render_escaped_with_headings_below_the_title_and_no_images():
    from thinkling.report import markdown_to_html

    out = markdown_to_html(["# Top", "## Claims", "", "| claim | result |", "|---|---|", "| a \\| b | **PASS** |", "",
                            "<script>alert(1)</script> and `x<y`", "", "![plot](https://example.com/p.png)"])
    assert "<h2>Top</h2>" in out and "<h3>Claims</h3>" in out and "<h1>" not in out
    assert "<div class='scroll'><table>" in out and "<td>a | b</td>" in out and "<strong>PASS</strong>" in out
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out and "<code>x&lt;y</code>" in out
    assert "<img" not in out


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

"""report.html: one self-contained page - inline CSS and JS, plots as base64 PNG data URIs.

The CSS and JS are the package files ``static/report.css`` and ``static/report.js``, inlined.

Every piece of model or dataset text is HTML-escaped. The results table sorts on a click (or
``?sort=KEY&desc=1``); the traces filter by model, task, strategy, regime and verdict (or URL
parameters of those names).
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from thinkling.artifacts import atomic_write_text
from thinkling.report import tables
from thinkling.report.analysis import (
    VERDICTS,
    frontier_panels,
    pareto_front,
    pooled_groups,
    sample_group,
    sample_verdict,
    select_samples,
)
from thinkling.report.data import ReportData
from thinkling.report.rows import multi_strategy, point_label, strategy_of


def _e(s: Any) -> str:
    return html.escape("" if s is None else str(s), quote=True)


def _table_open(self, tokens, idx, options, env) -> str:
    return "<div class='scroll'><table>\n"  # wide tables scroll, as the page's own tables do


def _table_close(self, tokens, idx, options, env) -> str:
    return "</table></div>\n"


# CommonMark plus pipe tables. Raw HTML in the text is escaped, not passed through, and images are
# off, so no note can make the self-contained page load a URL.
_MD = MarkdownIt("commonmark", {"html": False}).enable("table").disable("image")
_MD.add_render_rule("table_open", _table_open)
_MD.add_render_rule("table_close", _table_close)


def markdown_to_html(lines: Sequence[str]) -> str:
    """Notes and extra sections (markdown lines) as HTML. Headings go one level down: the page's title
    is its only h1."""
    tokens = _MD.parse("\n".join(str(x) for x in lines))
    for t in tokens:
        if t.type in ("heading_open", "heading_close"):
            t.tag = f"h{min(int(t.tag[1:]) + 1, 6)}"
    return _MD.renderer.render(tokens, _MD.options, {})


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img class="plot" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _html_table(head: Sequence[str], body: Sequence[Sequence[str]], cls: str = "") -> str:
    return (f"<div class='scroll'><table class='{cls}'><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>"
                                               for r in body) + "</tbody></table></div>")


def _results_html(rows: list[dict], table_id: str = "results-table") -> str:
    cols = tables.result_columns(rows)
    head = "".join(f"<th data-key='{_e(c.key)}' title='click to sort'>{_e(c.head)}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = (c.sort or c.text)(r)
            v = "" if v is None else v
            cells.append(f"<td data-v='{_e(v)}'>{_e(c.text(r))}</td>")
        proto = json.dumps(r.get("protocol") or {}, indent=1, sort_keys=True, ensure_ascii=False, default=str)
        cells.append(f"<td class='proto'><details><summary>protocol</summary><pre>{_e(proto)}</pre></details></td>")
        attrs = " ".join(f"data-{k}='{_e(x)}'" for k, x in (("model", r["model"]), ("task", r["task"]),
                                                            ("level", r["level"]), ("strategy", strategy_of(r)),
                                                            ("regime", r.get("regime") or ""),
                                                            *((("seed", r["seed"]),) if "seed" in r else ())))
        body.append(f"<tr {attrs}>{''.join(cells)}</tr>")
    return (f"<div class='scroll'><table id='{table_id}' class='sortable'><thead><tr>{head}<th>protocol</th></tr>"
            f"</thead><tbody>{''.join(body)}</tbody></table></div>")


def _clip(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    head, tail = (2 * max_chars) // 3, max_chars // 3
    return f"{text[:head]}\n\n[... {len(text) - head - tail} characters left out ...]\n\n{text[-tail:]}"


def _trace_html(s: dict, max_chars: int) -> str:
    v = sample_verdict(s)
    model, task, strategy = sample_group(s)
    attrs = " ".join(f"data-{k}='{_e(x)}'" for k, x in (("model", model), ("task", task), ("strategy", strategy),
                                                        ("regime", s.get("regime") or ""), ("verdict", v)))
    meta = [f"<b>{_e(s.get('problem_id', '?'))}</b>", f"level {_e(s.get('level', '—'))}"]
    if s.get("regime"):
        meta.append(f"regime {_e(s['regime'])}")
    if s.get("seed") is not None:
        meta.append(f"seed {_e(s['seed'])}")
    if s.get("sample") is not None:
        meta.append(f"sample {_e(s['sample'])}")
    meta.append(f"{_e(s.get('tokens', '—'))} tokens")
    if s.get("iterations") is not None:
        meta.append(f"{_e(s['iterations'])} iterations")
    meta.append(f"<span class='lbl'>predicted</span> <code class='predicted'>{_e(s.get('predicted'))}</code>")
    meta.append(f"<span class='lbl'>gold</span> <code class='gold'>{_e(s.get('gold'))}</code>")
    reasoning = str(s.get("reasoning") or "")
    answer = str(s.get("answer_text") or "")
    return (
        f"<article class='trace' {attrs}>"
        f"<header><span class='verdict v-{v.replace(' ', '-')}'>{_e(v)}</span> {' · '.join(meta)}</header>"
        f"<div class='row'><span class='lbl'>question</span>"
        f"<pre class='question'>{_e(_clip(str(s.get('question') or ''), max_chars))}</pre></div>"
        f"<div class='row'><span class='lbl'>reasoning</span><details><summary>{len(reasoning)} characters"
        f"</summary><pre class='reasoning'>{_e(_clip(reasoning, max_chars))}</pre></details></div>"
        f"<div class='row'><span class='lbl'>final answer</span>"
        f"<pre class='answer'>{_e(_clip(answer, max_chars))}</pre></div>"
        "</article>"
    )


def _traces_html(samples: list[dict], max_samples: int, max_chars: int) -> str:
    picked = select_samples(samples, max_samples)
    kept = [s for _, ks, _ in picked for s in ks]

    def select(key: str, label: str, values: Iterable[str]) -> str:
        opts = "".join(f"<option value='{_e(x)}'>{_e(x)}</option>" for x in values)
        return (f"<label>{_e(label)} <select id='filter-{key}' data-key='{key}' class='filter'>"
                f"<option value=''>all</option>{opts}</select></label>")

    vals = lambda k: sorted({str(t.get(k)) for t in kept if t.get(k)})  # noqa: E731
    controls = [select("model", "model", vals("model")), select("task", "task", vals("task")),
                select("strategy", "strategy", vals("strategy"))]
    if vals("regime"):
        controls.append(select("regime", "regime", vals("regime")))
    controls.append(select("verdict", "verdict", [v for v in VERDICTS if any(sample_verdict(t) == v for t in kept)]))
    left = sum(n for _, _, n in picked)
    parts = [f"<p>{len(kept)} of {len(samples)} samples embedded (at most {max_samples} per model, task and "
             f"strategy, chosen round-robin over outcomes; {left} left out). Long texts are cut to "
             f"{max_chars} characters. Filters can be preset with URL parameters, e.g. "
             f"<code>report.html?verdict=wrong&amp;model=NAME</code>.</p>",
             f"<div class='filters'>{''.join(controls)} <span id='trace-count'></span></div>"]
    for (model, task, strategy), ks, n_left in picked:
        note = f"{len(ks)} samples"
        if n_left:
            note += f", {n_left} more left out (raise --max-samples to embed them)"
        parts.append(f"<div class='tgroup' data-model='{_e(model)}' data-task='{_e(task)}' "
                     f"data-strategy='{_e(strategy)}'><h3>{_e(model)} · {_e(task)} · {_e(strategy)} "
                     f"<small>{_e(note)}</small></h3>" + "".join(_trace_html(s, max_chars) for s in ks) + "</div>")
    return "\n".join(parts)


def static_text(name: str) -> str:
    """A file of ``thinkling/report/static`` (the page's CSS and JS), shipped as package data."""
    return resources.files("thinkling.report").joinpath("static", name).read_text(encoding="utf-8")


def _frontier_section(a: ReportData) -> str:
    multi = multi_strategy(a.rows)
    front = [f"<p class='help'>{_e(tables.PARETO_HELP)}</p>", _img(a.plots["frontier"], "accuracy vs mean tokens"),
             "<ul>"]
    for name, pts in frontier_panels(a.rows).items():
        f = pareto_front(pts)
        items = ", ".join(f"<span class='front' data-label='{_e(point_label(p, multi))}'>{_e(point_label(p, multi))}"
                          f" ({tables.pct(p['accuracy'])}%, {p['mean_tokens']:.1f} tok)</span>" for p in f)
        off = len(pts) - len(f)
        front.append(f"<li data-panel='{_e(name)}'><b>{_e(name)}</b>: on the front: {items}"
                     + (f" <span class='muted'>({off} point(s) dominated)</span>" if off else "") + "</li>")
    front.append("</ul>")
    return "\n".join(front)


def _results_section(a: ReportData) -> str:
    pids = tables.protocol_ids(a.rows)
    main = a.main or a.rows
    text = (f"<p class='help'>{len(main)} rows; click a column header to sort "
            f"(or preset with <code>?sort=accuracy&amp;desc=1</code>). Accuracy and rates in %; "
            f"{len(pids)} distinct protocol(s).</p>")
    if not a.per_seed:
        return text + _results_html(main)
    return (f"<p class='help'>{_e(tables.SEEDS_HELP)}</p>" + text + _results_html(main)
            + f"<details class='per-seed'><summary>Results per seed ({len(a.per_seed)} rows)</summary>"
            + _results_html(a.per_seed, "results-per-seed") + "</details>")


def _compute_section(a: ReportData) -> str:
    return (f"<p class='help'>{_e(tables.COMPUTE_HELP)}</p>" + _img(a.plots["compute"], "accuracy vs training compute")
            + _html_table(*tables.compute_table_data(a.compute), cls="compute"))


def _evidence_sections(a: ReportData) -> list[tuple[str, str, str]]:
    """The regime gaps with the instance validation under them, or the validation alone."""
    validation = _html_table(*tables.validation_table_data(a.validation), "validation") if a.validation else ""
    if a.gaps:
        body = [f"<p class='help'>{_e(tables.GAP_HELP)}</p>",
                _html_table(*tables.regime_table_data(a.gaps), cls="gaps"), _img(a.plots["regime_gaps"], "regime gaps")]
        if a.validation:
            body += ["<h3>Instance validation</h3>", validation]
        return [("regimes", "Evidence regimes", "\n".join(body))]
    if a.validation:
        return [("validation", "Instance validation", validation)]
    return []


def _groups_section(a: ReportData) -> str:
    regimes = pooled_groups(a.rows, by="training")
    return (f"<p class='help'>{_e(tables.GROUP_HELP)}</p>"
            + _html_table(*tables.groups_table_data(a.pooled), cls="groups")
            + (f"<h3>Training regimes per group</h3><p class='help'>{_e(tables.REGIME_POOL_HELP)}</p>"
               + _html_table(*tables.groups_table_data(regimes), cls="groups") if regimes else ""))


def write_html_report(a: ReportData, path: str | Path, title: str, notes: list[str], extra: list[str],
                      samples: list[dict], max_samples: int = 50, max_chars: int = 12000) -> Path:
    """The self-contained page: inline CSS/JS, plots as data: URIs, all text escaped."""
    sections: list[tuple[str, str, str]] = [("frontier", "Accuracy vs tokens", _frontier_section(a))]  # id, h2, body
    if "compute" in a.plots:
        sections.append(("compute", "Accuracy vs training compute", _compute_section(a)))
    if "level_tokens" in a.plots:
        sections.append(("levels", "Tokens per level", _img(a.plots["level_tokens"], "mean tokens per level")))
    sections.append(("results", "Results", _results_section(a)))
    sections += _evidence_sections(a)
    if a.pooled:
        sections.append(("groups", "Logic groups", _groups_section(a)))
    if extra:
        sections.append(("more", "More", markdown_to_html(extra)))
    if samples:
        sections.append(("traces", "Example traces", _traces_html(samples, max_samples, max_chars)))
    nav = "".join(f"<a href='#{sid}'>{_e(h)}</a>" for sid, h, _ in sections)
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>\n{static_text('report.css')}</style></head><body>"
        f"<h1>{_e(title)}</h1>{markdown_to_html(notes)}<nav>{nav}</nav>"
        + "".join(f"<section id='{sid}'><h2>{_e(h)}</h2>{body}</section>" for sid, h, body in sections)
        + f"<script>\n{static_text('report.js')}</script></body></html>\n"
    )
    p = Path(path)
    atomic_write_text(p, page)
    return p

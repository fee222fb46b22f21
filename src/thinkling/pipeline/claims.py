"""A recipe's claims (``checks``), measured on the eval rows and written into the report."""

from __future__ import annotations

from typing import Any

from thinkling.config import ConfigError


def check_claims(rows: list[dict], checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evaluate recipe claims on result rows. Kinds:

    - ``{kind: min_accuracy, model, level, value}``: accuracy >= value
    - ``{kind: max_accuracy, model, level, value}``: accuracy <= value
    - ``{kind: within, model, ref, level, points}``: |acc(model) - acc(ref)| <= points/100
    - ``{kind: at_least, model, ref, level, points}``: acc(model) >= acc(ref) - points/100 (no worse)
    - ``{kind: token_ratio, model, ref, level, value}``: mean_tokens(ref) / mean_tokens(model) >= value

    A check may also name ``task``, ``strategy`` and ``regime`` (default: the first row that matches).
    """
    def row(model: str, level: Any, c: dict) -> dict | None:
        for r in rows:
            if r["model"] == model and str(r["level"]) == str(level) and all(
                    r.get(k, "greedy" if k == "strategy" else None) == c[k] for k in ("task", "strategy", "regime")
                    if k in c):
                return r
        return None

    out = []
    for c in checks:
        level = c.get("level", "all")
        r = row(c["model"], level, c)
        ref = row(c["ref"], level, c) if "ref" in c else None
        res: dict[str, Any] = {**c, "passed": False}
        if r is None or ("ref" in c and ref is None):
            res["measured"] = "missing row"
        elif c["kind"] == "min_accuracy":
            res["measured"] = r["accuracy"]
            res["passed"] = r["accuracy"] >= c["value"]
        elif c["kind"] == "max_accuracy":
            res["measured"] = r["accuracy"]
            res["passed"] = r["accuracy"] <= c["value"]
        elif c["kind"] == "within":
            d = round(abs(r["accuracy"] - ref["accuracy"]) * 100, 6)  # 12.5 - 10.5 is 2.0000000000000018
            res["measured"] = round(d, 2)
            res["passed"] = d <= c["points"]
        elif c["kind"] == "at_least":
            d = round((r["accuracy"] - ref["accuracy"]) * 100, 6)
            res["measured"] = round(d, 2)
            res["passed"] = d >= -c["points"]
        elif c["kind"] == "token_ratio":
            ratio = ref["mean_tokens"] / max(r["mean_tokens"], 1e-9)
            res["measured"] = round(ratio, 2)
            res["passed"] = ratio >= c["value"]
        else:
            raise ConfigError(f"checks: unknown kind {c['kind']!r}")
        out.append(res)
    return out


def describe_check(c: dict) -> str:
    lv = c.get("level", "all")
    k = c["kind"]
    if k == "min_accuracy":
        claim = f"{c['model']} accuracy >= {100 * c['value']:.0f}% at level {lv}"
        meas = f"{100 * c['measured']:.1f}%" if isinstance(c["measured"], float) else c["measured"]
    elif k == "max_accuracy":
        claim = f"{c['model']} accuracy <= {100 * c['value']:.0f}% at level {lv}"
        meas = f"{100 * c['measured']:.1f}%" if isinstance(c["measured"], float) else c["measured"]
    elif k == "within":
        claim = f"{c['model']} within {c['points']} points of {c['ref']} at level {lv}"
        meas = f"{c['measured']} points"
    elif k == "at_least":
        claim = f"{c['model']} no more than {c['points']} points below {c['ref']} at level {lv}"
        meas = f"{c['measured']:+} points" if isinstance(c["measured"], (int, float)) else c["measured"]
    else:
        claim = f"{c['model']} uses >= {c['value']}x fewer tokens than {c['ref']} at level {lv}"
        meas = f"{c['measured']}x"
    return f"| {claim} | {meas} | {'PASS' if c['passed'] else 'MISS'} |"

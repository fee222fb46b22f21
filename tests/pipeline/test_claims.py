"""A recipe's claims (``checks``): every kind, measured on eval rows, safe against float rounding."""

from __future__ import annotations




def test_check_claims_kinds_and_float_safety():
    from thinkling.pipeline import check_claims

    def row(model, acc, tokens):
        return {"model": model, "level": 4, "accuracy": acc, "mean_tokens": tokens}

    rows = [row("long", 0.105, 200.0), row("concise", 0.125, 50.0), row("none", 0.9, 6.0)]
    checks = [
        {"kind": "within", "model": "concise", "ref": "long", "level": 4, "points": 2},      # 2.0000000000000018
        {"kind": "at_least", "model": "long", "ref": "concise", "level": 4, "points": 1},    # 2 points below
        {"kind": "at_least", "model": "concise", "ref": "long", "level": 4, "points": 0},    # above: passes
        {"kind": "token_ratio", "model": "concise", "ref": "long", "level": 4, "value": 4},
        {"kind": "max_accuracy", "model": "none", "level": 4, "value": 0.5},
        {"kind": "min_accuracy", "model": "missing", "level": 4, "value": 0.1},
    ]
    got = [c["passed"] for c in check_claims(rows, checks)]
    assert got == [True, False, True, True, False, False]

"""A recipe's claims (``checks``): every kind, measured on eval rows, safe against float rounding; with
seeds in every seed or on the aggregate (with the paired interval of a difference); the compute claims."""

from __future__ import annotations

import math

import pytest


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


# ----------------------------------------------------------------------------- seeds and compute


def seeded_rows() -> list[dict]:
    """concise and none at seeds 0-2 (level 4, of 40), their aggregates, and a teacher evaluated once.

    concise: 36, 38, 30 of 40 (90%, 95%, 75%); none: 4, 6, 2 of 40 (10%, 15%, 5%); teacher 40 of 40."""
    from helpers.compute import compute, seed_row
    from thinkling.evaluate.seeds import aggregate_seeds

    rows = []
    for s, kc, kn in ((0, 36, 4), (1, 38, 6), (2, 30, 2)):
        rows.append(seed_row("concise", s, kc, 40, 50.0 + s, level=4,
                             train_compute=compute(1000 * (s + 1), flops_per_token=1e6)))
        rows.append(seed_row("none", s, kn, 40, 5.0, level=4, train_compute=compute(500, flops_per_token=1e6)))
    rows.append(seed_row("teacher", None, 40, 40, 200.0, level=4))
    return rows + aggregate_seeds(rows)


def test_claims_in_every_seed_and_on_the_aggregate():
    from thinkling.pipeline import check_claims, describe_check

    rows = seeded_rows()
    every, agg, beats, beats_agg, teacher = check_claims(rows, [
        {"kind": "min_accuracy", "model": "concise", "level": 4, "value": 0.8},                     # 75% in seed 2
        {"kind": "min_accuracy", "model": "concise", "level": 4, "value": 0.8, "over": "aggregate"},  # mean 86.7%
        {"kind": "beats", "model": "concise", "ref": "none", "level": 4, "points": 70},
        {"kind": "beats", "model": "concise", "ref": "none", "level": 4, "points": 70, "over": "aggregate"},
        {"kind": "within", "model": "concise", "ref": "teacher", "level": 4, "points": 20},
    ])
    assert every["over"] == "every" and every["seeds"] == [0, 1, 2]
    assert every["measured"] == [0.9, 0.95, 0.75] and every["passed_per_seed"] == [True, True, False]
    assert not every["passed"]  # one seed failing fails the claim
    assert agg["passed"] and agg["measured"] == pytest.approx(0.8667, abs=1e-4)
    assert agg["seed_ci"][0] < 0.8 < agg["seed_ci"][1]
    # beats by 70 points: 80, 80, 70 in the seeds (all hold), 76.67 on the aggregate
    assert beats["measured"] == [80.0, 80.0, 70.0] and beats["passed"]
    assert beats_agg["measured"] == pytest.approx(76.67) and beats_agg["passed"]
    # the paired differences 0.8, 0.8, 0.7: mean 0.7667, sd 0.0577, t_{0.975,2} 4.3027 -> +- 14.34 points
    half = 100 * 4.3027 * math.sqrt(1 / 300) / math.sqrt(3)
    assert beats_agg["diff_ci"] == [pytest.approx(76.67 - half, abs=0.01), pytest.approx(76.67 + half, abs=0.01)]
    # a teacher evaluated once is compared with each seed as it is
    assert teacher["measured"] == [10.0, 5.0, 25.0] and teacher["passed_per_seed"] == [True, True, False]
    text = describe_check(every)
    assert "in every seed (0, 1, 2): 90.0% / 95.0% / 75.0%" in text and text.endswith("| MISS |")
    text = describe_check(beats_agg)
    assert "aggregate over 3 seeds: +76.67 points [paired 95% CI +62.32, +91.01 points]" in text
    assert "beats none by >= 70 points at level 4" in text and text.endswith("| PASS |")
    assert "[95% CI across seeds" in describe_check(agg)


def test_compute_claims_and_missing_compute():
    from thinkling.pipeline import check_claims, describe_check

    rows = seeded_rows()
    ratio, tokens, per, per_agg, missing, zero = check_claims(rows, [
        # concise used 1000, 2000, 3000 tokens (x 1e6 FLOPs each) against none's 500: 2x, 4x, 6x
        {"kind": "compute_ratio", "model": "concise", "ref": "none", "level": 4, "value": 4},
        {"kind": "compute_ratio", "model": "none", "ref": "concise", "level": 4, "value": 0.5, "basis": "tokens",
         "over": "aggregate"},
        # accuracy per FLOP: (0.9 / 1e9) / (0.1 / 5e8) = 4.5; (0.95 / 2e9) / (0.15 / 5e8) = 1.583; 0.75/3e9 / ...
        {"kind": "accuracy_per_compute", "model": "concise", "ref": "none", "level": 4, "value": 1.5},
        {"kind": "accuracy_per_compute", "model": "concise", "ref": "none", "level": 4, "value": 1.5,
         "over": "aggregate"},
        {"kind": "accuracy_per_compute", "model": "concise", "ref": "teacher", "level": 4, "value": 0.1},
        {"kind": "accuracy_per_compute", "model": "none", "ref": "concise", "level": 4, "value": 1.0},
    ])
    assert ratio["measured"] == [2.0, 4.0, 6.0] and ratio["passed_per_seed"] == [True, True, False]
    assert tokens["measured"] == 0.25 and tokens["passed"]  # 500 / 2000 (the seeds' mean)
    assert per["measured"] == [4.5, pytest.approx(1.5833, abs=1e-4), 2.5] and per["passed"]
    # the aggregate: (0.8667 / 2e9) / (0.1 / 5e8) = 2.1667
    assert per_agg["measured"] == pytest.approx(2.1667, abs=1e-4) and per_agg["passed"]
    # the teacher has no training compute: MISS, saying why
    assert not missing["passed"] and missing["measured"] == ["missing train compute (teacher)"] * 3
    assert "missing train compute (teacher)" in describe_check(missing)
    assert not zero["passed"]
    # without seeds, and with a reference at 0% accuracy
    from helpers.compute import compute, seed_row

    flat = [seed_row("a", None, 3, 4, 9.0, train_compute=compute(10)), seed_row("b", None, 0, 4, 9.0,
                                                                                 train_compute=compute(20)),
            seed_row("c", None, 3, 4, 9.0)]
    up, nothing, none_compute, beat = check_claims(flat, [
        {"kind": "accuracy_per_compute", "model": "a", "ref": "b", "value": 2},
        {"kind": "accuracy_per_compute", "model": "b", "ref": "b", "value": 2},
        {"kind": "compute_ratio", "model": "c", "ref": "a", "value": 2},
        {"kind": "beats", "model": "a", "ref": "b", "points": 75},
    ])
    assert up["passed"] and up["measured"] == "unbounded (b 0% accurate)" and "over" not in up
    assert not nothing["passed"] and nothing["measured"] == "undefined (both 0% accurate)"
    assert not none_compute["passed"] and none_compute["measured"] == "missing train compute (c)"
    assert beat["passed"] and beat["measured"] == 75.0
    assert "c uses <= 2x the training FLOPs of a" in describe_check(none_compute)

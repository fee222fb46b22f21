"""Seeds and training compute in eval rows: the aggregate row over seeds checked against numbers worked by
hand, the compute read from a train manifest, and a real eval of a model per seed beside one without seeds
whose rows and unit names stay what they were."""

from __future__ import annotations

import math

import pytest

from helpers.compute import compute, seed_row, student_dir
from helpers.evaluate import row, run_eval
from thinkling.config import ConfigError, build_config
from thinkling.evaluate.config import EvalConfig
from thinkling.evaluate.seeds import aggregate_seeds, train_compute

Z = 1.959964


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return centre - half, centre + half


def test_the_aggregate_row_by_hand():
    # three seeds of "concise" at 30, 36, 42 of 60 (50%, 60%, 70%), two levels; a teacher without seeds
    rows = []
    for lv in (1, "all"):
        for s, k, tok, tokens in ((0, 30, 10.0, 1000), (1, 36, 12.0, 2000), (2, 42, 14.0, 3000)):
            tc = compute(tokens, steps=10 * (s + 1), budget={"kind": "tokens", "total": 1000})
            rows.append(seed_row("concise", s, k, 60, tok, level=lv, train_compute=tc))
        rows.append(seed_row("teacher", None, 50, 60, 40.0, level=lv))
    agg = aggregate_seeds(rows)
    assert [(r["model"], r["level"], r["seed"]) for r in agg] == [("concise", 1, "all"), ("concise", "all", "all")]
    a = agg[1]
    assert a["seeds"] == [0, 1, 2] and a["per_seed_accuracy"] == [0.5, 0.6, 0.7]
    assert a["accuracy"] == pytest.approx(0.6)
    # t interval: sd of 0.5, 0.6, 0.7 is 0.1; t_{0.975, 2} = 4.3027
    half = 4.3027 * 0.1 / math.sqrt(3)
    assert (a["seed_ci_low"], a["seed_ci_high"]) == (pytest.approx(0.6 - half, abs=1e-4),
                                                     pytest.approx(0.6 + half, abs=1e-4))
    # pooled Wilson: 108 of 180
    assert (a["correct"], a["n"]) == (108, 180)
    lo, hi = wilson_by_hand(108, 180)
    assert (a["ci_low"], a["ci_high"]) == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9))
    assert 0.6 - half < a["ci_low"] < 0.6 < a["ci_high"] < 0.6 + half  # three seeds spread more than one eval
    # other figures are means over the seeds; training compute too, its budget as they share it
    assert a["mean_tokens"] == pytest.approx(12.0) and a["p95_tokens"] == pytest.approx(24.0)
    tc = a["train_compute"]
    assert tc["tokens"] == pytest.approx(2000) and tc["flops"] == pytest.approx(6e5 * 2000)
    assert tc["steps"] == pytest.approx(20) and tc["budget"] == {"kind": "tokens", "total": 1000}
    # a budget the seeds do not share is left out (a mean of budgets means nothing)
    apart = [seed_row("z", s, 1, 2, 5.0, train_compute=compute(10 * (s + 1))) for s in (0, 1)]
    assert "budget" not in aggregate_seeds(apart)[0]["train_compute"]
    assert a["task"] == "arithmetic" and a["split"] == "test" and a["strategy"] == "greedy"
    assert a["protocol"] == rows[0]["protocol"] and "model_path" not in a
    # one seed: no interval across seeds, the Wilson one as it is
    one = aggregate_seeds([seed_row("x", 4, 3, 4, 5.0)])[0]
    assert one["seed_ci_low"] is None and one["seed_ci_high"] is None and one["seeds"] == [4]
    assert (one["ci_low"], one["ci_high"]) == pytest.approx(wilson_by_hand(3, 4))
    # compute only where every seed has it; nothing for rows without seeds
    mixed = [seed_row("y", 0, 1, 2, 5.0, train_compute=compute(10)), seed_row("y", 1, 1, 2, 5.0)]
    assert "train_compute" not in aggregate_seeds(mixed)[0]
    assert aggregate_seeds([seed_row("t", None, 1, 2, 5.0)]) == []


def test_train_compute_is_read_from_a_train_manifest(tmp_path):
    c = compute(1234, steps=7)
    assert train_compute(student_dir(tmp_path / "a", compute=c)) == c
    assert train_compute(student_dir(tmp_path / "b")) is None  # a manifest from before compute was recorded
    assert train_compute(tmp_path / "missing") is None
    assert train_compute(tmp_path) is None  # a dir without a manifest


def test_eval_config_of_models_per_seed(tmp_path):
    def cfg(*models, **kw):
        return build_config(EvalConfig, {"out": str(tmp_path / "e"), "models": list(models), **kw})

    two = cfg({"name": "s", "path": "x", "seed": 0}, {"name": "s", "path": "y", "seed": 1})
    assert [m.key for m in two.models] == ["s@seed-0", "s@seed-1"]
    with pytest.raises(ConfigError, match="share a name"):
        cfg({"name": "s", "path": "x", "seed": 0}, {"name": "s", "path": "y", "seed": 0})
    with pytest.raises(ConfigError, match="some of its entries have a seed and some not"):
        cfg({"name": "s", "path": "x", "seed": 0}, {"name": "s", "path": "y"})
    with pytest.raises(ConfigError, match="validate_with='s' names a model evaluated once per seed"):
        cfg({"name": "s", "path": "x", "seed": 0}, {"name": "s", "path": "y", "seed": 1}, validate_with="s")
    # a model without a seed dumps as before seeds existed: config hashes and unit keys stay valid
    plain = cfg({"name": "p", "path": "x"})
    assert "seed" not in plain.models[0].model_dump() and "seed" not in plain.model_dump(mode="json")["models"][0]
    assert "seed" not in plain.models[0].identity() and two.models[1].identity()["seed"] == 1


TIMING = ("seconds_per_problem", "tokens_per_second")


@pytest.mark.slow
def test_eval_of_a_model_per_seed_beside_one_without(tiny_model, tmp_path, captured):
    s0 = student_dir(tmp_path / "train" / "s" / "seed-0", tiny_model, compute(1000), seed=0)
    s1 = student_dir(tmp_path / "train" / "s" / "seed-1", tiny_model, compute(3000), seed=1)
    alone, _ = run_eval(tmp_path / "alone", captured.console, models=[{"name": "plain", "path": str(tiny_model)}])
    rows, samples = run_eval(tmp_path / "e", captured.console,
                             models=[{"name": "plain", "path": str(tiny_model)},
                                     {"name": "s", "path": str(s0), "seed": 0},
                                     {"name": "s", "path": str(s1), "seed": 1}])
    # the model without seeds: the same rows (timings aside) and unit names as evaluated alone, no new key
    mine = [r for r in rows if r["model"] == "plain"]
    assert [{k: v for k, v in r.items() if k not in TIMING} for r in mine] == [
        {k: v for k, v in r.items() if k not in TIMING} for r in alone]
    assert all("seed" not in r and "train_compute" not in r for r in mine)
    units = sorted(p.name for p in (tmp_path / "e" / "units").iterdir())
    plain_units = [u for u in units if u.startswith("plain__")]
    assert plain_units == sorted(p.name for p in (tmp_path / "alone" / "units").iterdir())
    assert len([u for u in units if u.startswith("s__seed-0__")]) == 1
    assert len([u for u in units if u.startswith("s__seed-1__")]) == 1
    # per-seed rows carry their seed and their training compute; the aggregate is the mean of the two
    r0, r1 = row(rows, "s", seed=0), row(rows, "s", seed=1)
    assert r0["train_compute"]["tokens"] == 1000 and r1["train_compute"]["tokens"] == 3000
    agg = row(rows, "s", seed="all")
    assert agg["seeds"] == [0, 1] and agg["n"] == r0["n"] + r1["n"]
    assert agg["accuracy"] == pytest.approx((r0["accuracy"] + r1["accuracy"]) / 2)
    assert agg["train_compute"]["tokens"] == pytest.approx(2000)
    assert {lv for r in rows if r["model"] == "s" and r["seed"] == "all" for lv in [r["level"]]} == {1, 2, "all"}
    assert {s.get("seed") for s in samples if s["model"] == "s"} == {0, 1}
    assert all("seed" not in s for s in samples if s["model"] == "plain")

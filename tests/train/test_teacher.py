"""The kd method's teacher in real runs: online logits and offline top-V log-probs give the same loss,
fewer log-probs lose detail, TAID moves its t, and a teacher with another vocabulary is refused."""

from __future__ import annotations

import pytest

from helpers.train import run_train


def _first_loss(m: dict) -> float:
    return m["loss_history"][0]


@pytest.mark.slow
def test_kd_online_equals_offline_with_all_logprobs_and_taid_moves_t(curated, tiny_model, noisy_model, tmp_path,
                                                                    captured):
    from thinkling.models.loading import load_tokenizer

    vocab = len(load_tokenizer(str(tiny_model)))
    common = dict(method="kd", model=str(tiny_model), group_by_length=False, max_steps=2)
    online = run_train(curated / "chunked", tmp_path / "on", captured.console,
                       kd={"teacher": str(noisy_model), "loss": "kd_fkl"}, **common)
    offline = run_train(curated / "chunked", tmp_path / "off", captured.console,
                        kd={"teacher": str(noisy_model), "loss": "kd_fkl", "offline": True, "top_k": vocab}, **common)
    # same batches, same student: the stored top-V log-probs give the online teacher's loss
    assert _first_loss(offline) == pytest.approx(_first_loss(online), rel=1e-3)
    assert _first_loss(online) > 0.5  # a random-weight teacher is far from the student
    few = run_train(curated / "chunked", tmp_path / "few", captured.console,
                    kd={"teacher": str(noisy_model), "loss": "kd_fkl", "offline": True, "top_k": 4}, **common)
    assert 0 < _first_loss(few) < _first_loss(online) + 1e-6  # k+1 buckets lose detail, never add divergence
    # compute: the online teacher's forward costs 2 N_t per token; offline, its one pass is counted up front
    from thinkling.models.loading import load_model

    n_s, n_t = online["counts"]["params"], load_model(str(noisy_model)).num_parameters()
    on, off = online["compute"], offline["compute"]
    assert on["flops_per_token"] == 6 * n_s + 2 * n_t and on["teacher_flops"] == 0
    assert off["flops_per_token"] == 6 * n_s and off["teacher_flops"] > 0 and off["teacher_flops"] % (2 * n_t) == 0
    assert off["flops"] == off["tokens"] * 6 * n_s + off["teacher_flops"]
    captured.buf.truncate(0)
    run_train(curated / "chunked", tmp_path / "taid", captured.console, max_steps=40, logging_steps=40,
              kd={"teacher": str(noisy_model), "loss": "taid"}, **{k: v for k, v in common.items() if k != "max_steps"})
    ts = [float(x.split("taid t ")[1].split(",")[0]) for x in captured.text.splitlines() if "taid t " in x]
    assert ts and ts[-1] > 0.4  # t starts at 0.4 and only grows


@pytest.mark.slow
def test_kd_refuses_a_teacher_with_another_vocabulary(curated, tiny_model, tmp_path, captured):
    from thinkling.models.tiny import TinySpec, build_tiny

    other = tmp_path / "other"
    build_tiny(other, ["a b c d e f g", "1 2 3 4 5"] * 20, TinySpec(vocab_size=300, hidden_size=32, num_layers=1,
                                                                     num_heads=1, intermediate_size=64), seed=0)
    with pytest.raises(ValueError, match=r"teacher vocabulary \d+ != student vocabulary \d+"):
        run_train(curated / "chunked", tmp_path / "s", captured.console, method="kd", model=str(tiny_model),
                  kd={"teacher": str(other)})

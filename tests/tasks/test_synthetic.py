"""The synthetic families draw exactly the problems they drew before the draw loop was shared.

Recorded runs, traces and tests depend on every synthetic draw (ids, questions, gold, meta), so each
case below pins the SHA-256 of the serialized problems (``[p.model_dump(mode="json") ...]``, JSON with
sorted keys) for one (family, task options, split, levels, n, seed). The digests were computed with the
code before :mod:`thinkling.tasks.synthetic` existed (each family had its own loop) and must never
change: a change of draws is a new family or a new option, not an edit of these numbers.

``python tests/tasks/test_synthetic.py`` prints the digests the current code gives (to compare by eye).
"""

from __future__ import annotations

import hashlib
import json
import random

import pytest


# (case id, task, task options, split, levels, n, seed)
CASES = [
    ("arith-default-train-s0", "arithmetic", {}, "train", None, 30, 0),
    ("arith-default-test-s0", "arithmetic", {}, "test", None, 30, 0),  # level 1 test: capped at 3
    ("arith-default-train-s7", "arithmetic", {}, "train", None, 30, 7),
    ("arith-default-test-s7", "arithmetic", {}, "test", [2, 4], 30, 7),
    ("arith-hard-train", "arithmetic", {"random_names": True, "ops": "+-*", "max_operand": 9}, "train", [1, 3], 50, 3),
    ("arith-hard-test", "arithmetic", {"random_names": True, "ops": "+-*", "max_operand": 9}, "test", [1, 3], 50, 3),
    ("arith-names-train", "arithmetic", {"random_names": True}, "train", [2], 40, 1),
    ("arith-bucket3-train", "arithmetic", {"test_fraction_bucket": 3, "levels": [2]}, "train", None, 20, 0),
    ("arith-bucket3-test", "arithmetic", {"test_fraction_bucket": 3, "levels": [2]}, "test", None, 20, 0),
    # spaces smaller than asked: ten questions per level (want is capped at 7); a test split that holds
    # fewer questions than its capped want (3), so the attempt limit ends the draw (2, silently)
    ("arith-tiny-train", "arithmetic", {"ops": "*", "max_operand": 1}, "train", [1, 4], 100, 0),
    ("arith-limit-test", "arithmetic", {"ops": "*", "max_operand": 2}, "test", [2], 100, 0),
    ("arith-default-n", "arithmetic", {"ops": "-"}, "train", [3], None, 2),
    ("rules-train-s0", "rules", {}, "train", None, 25, 0),
    ("rules-test-s0", "rules", {}, "test", None, 25, 0),
    ("rules-train-s2", "rules", {"levels": [1, 8]}, "train", None, 10, 2),
    ("rules-test-s2", "rules", {}, "test", [8], 10, 2),
    ("abduction-train-s0", "abduction", {}, "train", None, 25, 0),
    ("abduction-test-s0", "abduction", {}, "test", None, 25, 0),
    ("abduction-test-s5", "abduction", {"levels": [2]}, "test", None, 15, 5),
    ("induction-train-s0", "induction", {}, "train", None, 25, 0),
    ("induction-test-s0", "induction", {}, "test", None, 25, 0),
    ("induction-train-s5", "induction", {}, "train", [1, 4], 15, 5),
    ("evidence-full-train", "evidence", {}, "train", None, 20, 0),
    ("evidence-full-test", "evidence", {}, "test", None, 20, 0),
    ("evidence-instruction-train", "evidence", {"regime": "instruction"}, "train", None, 20, 0),
    ("evidence-concepts-test", "evidence", {"regime": "concepts"}, "test", None, 20, 0),
    ("evidence-related-train", "evidence", {"regime": "related"}, "train", [2, 4], 20, 4),
    ("evidence-full-test-s4", "evidence", {"levels": [3]}, "test", None, 20, 4),
    # level 1 has about 580 instances: the test split is capped at 46
    ("evidence-L1-test-capped", "evidence", {"regime": "concepts"}, "test", [1], 600, 1),
]

DIGESTS = {
    "arith-default-train-s0": "55aa29251f6b7464f684f65d74495559d067415bc968d81a5009bdb43cf73daa",
    "arith-default-test-s0": "f5efe7ae2c8ee59439b17ebb5b9b345d67c649aa820d56e3e5a2f8a7ff43ad3a",
    "arith-default-train-s7": "4e03779a0bca3fd4097a58a7e76aa902a86e67042dbeb8ef6d86a50940c54ac3",
    "arith-default-test-s7": "2810829429f52a4d6dbb5bf01f12169f9e9f1418a5cf49dcb61719967a986d5c",
    "arith-hard-train": "ff16864973a553fbdbf3945dd143eb6bdfcf6edb5437954f8c2488d1008dc456",
    "arith-hard-test": "a18db61a0522f57fdc54e58aa919f08d6228ad668aa3fe0b27afbd088a0dd76f",
    "arith-names-train": "fa12e22619e455f5011bb8430e8300aee1aa22b04f0b34560060fa8ad31f7e0b",
    "arith-bucket3-train": "de8d4bbf45cda19a7b94738c109851c22c0dc0a92a07ee652a933716d07e8574",
    "arith-bucket3-test": "245f9137c23ef75e21fcd407a149ef44859366e58597744bef2c85183c838c1e",
    "arith-tiny-train": "44d7bd9502e5ee0603e2428f44108510dcd3560be4e6c5c8b1c6578b33c5a8f6",
    "arith-limit-test": "629f6b9e39902228367e4239a843a9049c50be2745f311c13c51b624f014070c",
    "arith-default-n": "c43d2aa42be9cd4e4d85c528b79270d8234da2cc36a3785ade34004a8c9e0d8c",
    "rules-train-s0": "c15b56a711676021a28fb918d4927f67236301413e1399788465aab05c994c31",
    "rules-test-s0": "b4132c0826094197c52d226d78257100858b1aab8c5377919aff7ec1cac36bb3",
    "rules-train-s2": "851bf306171ba72d9f25ac15a692f954daf7a92e44a6eae713129ef24094efd6",
    "rules-test-s2": "6dcb682b872ec094e18cdc092e52be6dd34d1e5e0e95faf147480589ff4a0bf8",
    "abduction-train-s0": "28173543010f0b41686f79566274bc231babaa546c3d88efdb13112eed2d992a",
    "abduction-test-s0": "e141d3a91c36078ace063c60cbeedfd0213b97038badc4b55eb2f1ab9b7f8e2a",
    "abduction-test-s5": "6024bb3fde80e29e2c5bbadcc1b824b6987134fe1a858dd9cceeab4384880cae",
    "induction-train-s0": "8417d63ba2e2516d21db9d5a2800e3b1b296dc0c63863e18819c44b9c5196896",
    "induction-test-s0": "8518b5e1b97022cd59a068abd6642adbcf924abed32eea051187d3d4a219682b",
    "induction-train-s5": "64128aef256c542526a78f9bbf386c14b1948ecfd9cd051f0250ebfe3e8d2296",
    "evidence-full-train": "e37ee0c9773b04cb4ea240b8ad151e98795b8dda36f4949725c0c0f1c3a2c13c",
    "evidence-full-test": "19558594b1199dc69b7350464a7df43325113a63c6d2fa2b5c9cbd1242909adb",
    "evidence-instruction-train": "7cd8b2477f949563421d8967bff32683eb44024da7e51276a5cfe7165d1a413d",
    "evidence-concepts-test": "a9eeec4a23ee43732182e596e8f847e39537b71b9479922e568a2f30a06fbfb3",
    "evidence-related-train": "3f25ef04691d48a13fb5461bdfcbf29dfa5ae9d7bf3f93244ee4e4d67c32a38e",
    "evidence-full-test-s4": "ebaa943fcca7b176f1b8288dedd66855a514bcf0ab5108905bb80e7c7bd12eb8",
    "evidence-L1-test-capped": "965b8fe93f64e4245698546d16ed2a901e3787aab34c452ce103a914a52f9a87",
}

# the text the tests' tiny tokenizer is trained on (arithmetic_texts in tests/helpers)
ORACLE_TEXTS_DIGEST = "82258f1c1bd81471109b999e4b35d3289a976ac4bf93c77a36e60b8b409797f2"


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def draw(task: str, options: dict, split: str, levels, n, seed) -> list:
    from thinkling.tasks import get_task

    return get_task(task, **options).problems(split, n=n, levels=levels, seed=seed)


def oracle_texts_digest() -> str:
    from thinkling.tasks.synthetic import oracle_texts

    return digest(oracle_texts("arithmetic", n=40, styles=("long", "concise", "none")))


@pytest.mark.parametrize("case, task, options, split, levels, n, seed", CASES, ids=[c[0] for c in CASES])
def test_draws_are_unchanged(case, task, options, split, levels, n, seed):
    problems = draw(task, options, split, levels, n, seed)
    assert problems, case
    assert digest([p.model_dump(mode="json") for p in problems]) == DIGESTS[case]


def test_oracle_texts_are_unchanged():
    assert oracle_texts_digest() == ORACLE_TEXTS_DIGEST


def test_draw_split_exact_raises_and_capped_gives_fewer():
    """The shared loop itself: ``exact`` families raise when a split cannot hold ``want`` distinct
    questions, the others give what they found; ids are ``name/split/Llevel/seed-i`` in draw order."""
    from thinkling.tasks.synthetic import bucket, draw_split

    def one_of_three(rng: random.Random) -> tuple[str, str]:
        q = f"q{rng.randrange(3)}"
        return q, q.upper()

    train = [q for q in ("q0", "q1", "q2") if bucket(q) != 0]
    got = draw_split("fam", "train", 2, 5, one_of_three, want=10, exact=False)
    assert sorted(q for _, (q, _upper) in got) == sorted(train)
    assert [pid for pid, _ in got] == [f"fam/train/L2/5-{i}" for i in range(len(got))]
    with pytest.raises(ValueError, match="fam: cannot draw 10 distinct train problems at level 2"):
        draw_split("fam", "train", 2, 5, one_of_three, want=10)
    assert draw_split("fam", "test", 2, 5, one_of_three, want=0) == []
    # the same name, split, level and seed give the same draws
    assert draw_split("fam", "train", 2, 5, one_of_three, want=1) == got[:1]


def test_bucket_is_sha256_mod_10():
    from thinkling.tasks.synthetic import bucket

    assert bucket("Compute mod 10.") == int(hashlib.sha256(b"Compute mod 10.").hexdigest(), 16) % 10
    assert {bucket(str(i)) for i in range(200)} == set(range(10))


if __name__ == "__main__":
    out = {c[0]: digest([p.model_dump(mode="json") for p in draw(*c[1:])]) for c in CASES}
    print(json.dumps({"digests": out, "oracle_texts": oracle_texts_digest()}, indent=1))

"""Decontamination and dedup on the real benchmark files; prints markdown tables.

    python bench/decontam.py                      # data from $THINKLING_DATA_DIR or ../shared/data
    python bench/decontam.py --scale 100000       # also time near_duplicates on 100k texts

1. Builds the :class:`ContaminationIndex` over every eval set in ``EVAL_SETS`` (build time).
2. Scans the 7,473 GSM8K train questions plus planted GSM8K test questions (verbatim, one number
   changed, one name changed, whitespace and punctuation changed, all three at once) and reports
   items/s, flags per eval set, the planted recall per perturbation (a planted question counts when
   it is matched to its own test item) and the train questions flagged (false positives, unless
   they are genuine near duplicates: they are listed for inspection).
3. The same with the GPT-3 / lm-eval rule (any shared 13-gram) for comparison.
4. Cross-split checks of the other train files in the data folder against their eval splits.
5. ``near_duplicates`` throughput on the GSM8K train questions (both methods), optionally on a
   synthetic set of ``--scale`` texts (questions from GSM8K and MATH, half of them with one word
   edited), with the MinHash recall against the exact join.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

from thinkling.curate.overlap import (
    EVAL_SETS,
    ContaminationIndex,
    default_data_dir,
    load_eval_sets,
    near_duplicates,
    ngrams,
    normalize,
)

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_NOT_NAMES = set("""a an the if how what when where which who why he she they it its in on at each every
there this that these those one two three four five six seven eight nine ten after before for from to of
and or but so then mr mrs ms dr""".split())


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def change_number(q: str, k: int) -> str:
    m = list(_NUMBER.finditer(q))[k]
    v = m.group().replace(",", "")
    new = v + "5" if "." in v else str(int(v) + 7)
    return q[:m.start()] + new + q[m.end():]


def first_name(q: str) -> str | None:
    lower = set(re.findall(r"\b[a-z]+\b", q))
    for w in re.findall(r"\b[A-Z][a-z]+\b", q):
        if w.lower() not in _NOT_NAMES and w.lower() not in lower:
            return w
    return None


def rename(q: str) -> str:
    name = first_name(q)
    return re.sub(rf"\b{name}\b", "Zorblax", q) if name else q


def reformat(q: str) -> str:
    q = "  " + q.replace(" ", "   ").replace(". ", ".\n\n") + " \n"
    return '"' + q.replace(",", "").replace("?", "!").replace(".\n", ";\n").replace("$", "") + '"'


def middle_number(q: str) -> str:
    k = len(_NUMBER.findall(q))
    return change_number(q, k // 2) if k else q


PERTURB = {
    "verbatim": lambda q: q,
    "one number": middle_number,
    "one name (all mentions)": rename,
    "whitespace+punctuation": reformat,
    "number+name+format": lambda q: rename(middle_number(reformat(q))),
}


class NgramRule:
    """Baseline: GPT-3 / lm-eval style, an item is matched when it shares any n-gram with the text
    (items shorter than n: the whole item must occur)."""

    def __init__(self, sets, n: int = 13):
        self.n = n
        self.index: dict[int, list[tuple[str, str]]] = {}
        for es in sets:
            for item_id, text in es.items:
                for g in ngrams(normalize(text), n):
                    self.index.setdefault(g, []).append((es.name, item_id))
        self.short = {len(normalize(t)) for es in sets for _, t in es.items if 0 < len(normalize(t)) < n}

    def match(self, text: str) -> list[tuple[str, str, float]]:
        toks = normalize(text)
        grams = ngrams(toks, self.n) if len(toks) >= self.n else set()
        for length in self.short:  # an item shorter than n is indexed as its whole sequence
            if len(toks) >= length:
                grams |= ngrams(toks, length)
        out = {}
        for g in grams:
            for key in self.index.get(g, ()):
                out[key] = 1.0
        return [(s, i, v) for (s, i), v in out.items()]


def scan(rule, train: list[str], test: list[str]) -> dict:
    planted = [(kind, i, fn(q)) for kind, fn in PERTURB.items() for i, q in enumerate(test)]
    texts = [("train", j, q) for j, q in enumerate(train)] + planted
    t0 = time.perf_counter()
    results = [rule.match(text) for _, _, text in texts]
    dt = time.perf_counter() - t0
    per_set_train: Counter[str] = Counter()
    flagged_train = []
    recall: Counter[str] = Counter()
    min_score: dict[str, float] = {}
    also: Counter[str] = Counter()  # planted texts that also match some other eval item
    for (kind, i, _), hits in zip(texts, results):
        if kind == "train":
            per_set_train.update({s for s, _, _ in hits})
            if hits:
                flagged_train.append((i, hits))
            continue
        own = [sc for s, item, sc in hits if s == "gsm8k" and item == f"gsm8k/test/{i}"]
        if len(hits) > len(own):
            also[kind] += 1
        if own:
            recall[kind] += 1
            min_score[kind] = min(min_score.get(kind, 1.0), own[0])
    return dict(seconds=dt, n=len(texts), per_set_train=per_set_train, flagged_train=flagged_train,
                recall=recall, min_score=min_score, also=also, n_test=len(test))


def cross_split(index: ContaminationIndex, data: Path) -> list[tuple[str, str, int, int, float]]:
    def texts(rel: str, fn) -> list[str]:
        path = data / rel
        return [fn(r) for r in jsonl(path)] if path.is_file() else []

    cq = lambda r: f"{r['context']}\n{r['question']}\n" + "\n".join(r.get("options", []))  # noqa: E731
    splits = [
        ("proofwriter/train.jsonl", "proofwriter", texts("proofwriter/train.jsonl", cq)),
        ("proofwriter/dev.jsonl", "proofwriter", texts("proofwriter/dev.jsonl", cq)),
        ("logical_deduction/train.jsonl", "logical_deduction", texts("logical_deduction/train.jsonl", cq)),
        ("folio/folio-train.jsonl", "folio",
         texts("folio/folio-train.jsonl", lambda r: " ".join([*r["premises"], r["conclusion"]]))),
        ("knights_and_knaves/*ppl_train.jsonl", "knights_and_knaves",
         [t for k in range(3, 8) for t in texts(f"knights_and_knaves/{k}ppl_train.jsonl", lambda r: r["quiz"])]),
    ]
    rows = []
    for rel, target, ts in splits:
        if not ts:
            continue
        t0 = time.perf_counter()
        hits = [index.match(t) for t in ts]
        dt = time.perf_counter() - t0
        sets = Counter(s for h in hits for s in {x[0] for x in h})
        rows.append((rel, target, len(ts), sum(bool(h) for h in hits), len(ts) / dt,
                     ", ".join(f"{k} {v}" for k, v in sorted(sets.items())) or "-"))
    return rows


def synthetic(n: int, pool: list[str], seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        words = rng.choice(pool).split()
        if rng.random() < 0.5 and len(words) > 3:
            k = rng.randrange(len(words))
            words[k] = f"{words[k]}x{rng.randrange(1000)}"
        out.append(" ".join(words))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=None, help="shared data folder (default: $THINKLING_DATA_DIR "
                                                                "or ../shared/data)")
    ap.add_argument("--n", type=int, default=6, help="anchor n-gram size for ordinary eval sets")
    ap.add_argument("--min-overlap", type=float, default=0.75, help="aligned coverage needed for a match")
    ap.add_argument("--threshold", type=float, default=0.8, help="near_duplicates Jaccard threshold")
    ap.add_argument("--dedup-n", type=int, default=5, help="near_duplicates n-gram size")
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--scale", type=int, default=0, help="also time near_duplicates on this many synthetic texts")
    ap.add_argument("--show", type=int, default=10, help="flagged GSM8K train questions to print")
    args = ap.parse_args()
    data = args.data_dir or default_data_dir()

    t0 = time.perf_counter()
    sets = load_eval_sets(data_dir=data)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = ContaminationIndex(sets, n=args.n, min_overlap=args.min_overlap)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    baseline = NgramRule(sets, 13)
    t_base = time.perf_counter() - t0

    train = [r["question"] for r in jsonl(data / "gsm8k" / "train.jsonl")]
    test = [r["question"] for r in jsonl(data / "gsm8k" / "test.jsonl")]
    ours = scan(index, train, test)
    base = scan(baseline, train, test)

    print(f"command: {' '.join(['python', *sys.argv])}")
    print(f"\n## Index over {len(EVAL_SETS)} eval sets ({sum(len(s) for s in sets):,} items)\n")
    print("| set | items | templated | boilerplate grams (no anchors) |\n|---|---:|---|---:|")
    for s in sets:
        print(f"| {s.name} | {len(s):,} | {'yes' if s.templated else 'no'} | {index.boilerplate.get(s.name, 0):,} |")
    print(f"\nload {t_load:.2f} s; index build {t_build:.2f} s ({len(index):,} items, "
          f"{sum(len(p) for p in index.postings.values()):,} anchor grams, {len(index.short)} items shorter than n); "
          f"13-gram baseline build {t_base:.2f} s")

    print(f"\n## Scan: {len(train):,} GSM8K train questions + {len(PERTURB)} x {len(test):,} planted test questions\n")
    print("| rule | items/s | planted recall: " + " | ".join(PERTURB) + " | train flagged (any set) | "
          "train flags per eval set |")
    print("|---|---:|" + "---:|" * len(PERTURB) + "---:|---|")
    for name, r in ((f"ours (n={args.n}, aligned coverage >= {args.min_overlap})", ours),
                    ("any shared 13-gram (GPT-3 / lm-eval)", base)):
        rec = " | ".join(f"{r['recall'][k]}/{r['n_test']}" for k in PERTURB)
        per = ", ".join(f"{k} {v}" for k, v in sorted(r["per_set_train"].items())) or "-"
        print(f"| {name} | {r['n'] / r['seconds']:,.0f} | {rec} | {len(r['flagged_train'])} | {per} |")
    print("\nlowest score of a planted question against its own item (ours): " +
          ", ".join(f"{k} {v:.2f}" for k, v in ours["min_score"].items()))
    print("planted questions that also match another eval item (ours): " +
          ", ".join(f"{k} {ours['also'][k]}" for k in PERTURB))

    print("\n### GSM8K train questions flagged (ours)\n")
    print("| train | eval item | score | train question | eval question |\n|---|---|---:|---|---|")
    items = {(s.name, i): t for s in sets for i, t in s.items}
    short = lambda t: (t[:90] + "...") if len(t) > 90 else t  # noqa: E731
    for j, hits in ours["flagged_train"][:args.show]:
        s, item, sc = hits[0]
        print(f"| {j} | {s} {item} | {sc:.2f} | {short(train[j])} | {short(items[(s, item)])} |")

    print("\n## Other train splits against the eval sets (ours)\n")
    print("| file | its eval split | texts | flagged | texts/s | flags per eval set |\n|---|---|---:|---:|---:|---|")
    for rel, target, n, flagged, rate, per in cross_split(index, data):
        print(f"| {rel} | {target} | {n:,} | {flagged:,} | {rate:,.0f} | {per} |")

    print(f"\n## near_duplicates (n={args.dedup_n}, threshold={args.threshold}, num_perm={args.num_perm})\n")
    print("| texts | method | seconds | texts/s | flagged | MinHash misses vs exact |\n|---|---|---:|---:|---:|---:|")
    corpora = [("GSM8K train questions", train)]
    if args.scale:
        pool = train + test + [r["problem"] for r in jsonl(data / "math" / "test.jsonl")]
        corpora.append((f"{args.scale:,} synthetic (GSM8K + MATH, half with one word edited)",
                        synthetic(args.scale, pool)))
    for label, texts in corpora:
        got = {}
        for method in ("minhash", "exact-ngrams"):
            t0 = time.perf_counter()
            got[method] = near_duplicates(texts, n=args.dedup_n, threshold=args.threshold, method=method,
                                          num_perm=args.num_perm)
            dt = time.perf_counter() - t0
            flagged = sum(x is not None for x in got[method])
            miss = "" if method == "minhash" else str(
                sum(a is None and b is not None for a, b in zip(got["minhash"], got[method])))
            print(f"| {label} ({len(texts):,}) | {method} | {dt:.2f} | {len(texts) / dt:,.0f} | {flagged:,} | {miss} |")


if __name__ == "__main__":
    main()

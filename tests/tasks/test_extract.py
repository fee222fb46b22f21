"""The answer extractors the tasks share."""

from __future__ import annotations




def test_shared_extractors():
    from thinkling.tasks.extract import (
        boxed_first, extract_letter, integer_answer, label_of, last_choice, last_number, letter_patterns,
        scan_labels,
    )

    assert last_number("it costs 1,250.0 dollars, not 3") == "3" and last_number("1,250.0") == "1250"
    assert integer_answer("so 07") == "7" and integer_answer("0.5") is None and last_number("none") is None
    pats = letter_patterns("ABC")
    assert last_choice("not (A) but the answer is B", pats) == "B" and last_choice("D)", pats) is None
    assert extract_letter("A) looks right, but \\boxed{C}", pats) == "C"
    assert extract_letter("\\boxed{42} so (B)", pats) == "B"  # a box without a choice does not count
    assert boxed_first("\\boxed{x}", lambda t: t.upper()) == "X"
    assert label_of("UNCERTAIN") == "Unknown" and label_of("maybe") is None
    assert scan_labels("True at first, then B)", {"A": "True", "B": "False"}) == "False"
    assert scan_labels("B) no letters shown: unknown", {}) == "Unknown"

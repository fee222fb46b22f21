"""The answer extractors the tasks share, and the final-choice rule of every label and choice task
(:class:`thinkling.tasks.extract.Options`): a reply naming several options without a final choice is no
answer; a box, a marked answer or a final line of one option is the choice."""

from __future__ import annotations

import pytest

from thinkling.tasks import get_task
from thinkling.tasks.extract import LABEL_WORDS, Options, integer_answer, label_of, last_boxed, last_number


def test_numbers_and_boxes():
    assert last_number("it costs 1,250.0 dollars, not 3") == "3" and last_number("1,250.0") == "1250"
    assert integer_answer("so 07") == "7" and integer_answer("0.5") is None and last_number("none") is None
    assert last_boxed("\\boxed{\\frac{1}{2}} then \\boxed{3}") == "3" and last_boxed("\\boxed{open") is None
    assert label_of("UNCERTAIN") == "Unknown" and label_of("maybe") is None


YES_NO = Options(words={"yes": "Yes", "no": "No"})
LETTERS = Options(letters="ABCDE")
TFU = Options(words=LABEL_WORDS, letters={"A": "True", "B": "False", "C": "Unknown"})  # ProofWriter's


@pytest.mark.parametrize("options,text,want", [
    # the option list parroted: no final choice
    (YES_NO, "No, Yes.", None),
    (YES_NO, "Answer with one of: No, Yes.", None),
    (YES_NO, "Answer: No, Yes", None),                    # a marker before a list marks nothing
    (YES_NO, "the answer is yes or no", None),
    (LETTERS, "A) True B) False", None),
    (LETTERS, "A) Paris\nB) Rome\nC) Oslo", None),        # the last line is an option restated, not a choice
    (TFU, "A) True B) False", None),
    (TFU, "A) True\nB) False\nC) Unknown", None),
    (TFU, "At first it looks true, but it is false.", None),
    (TFU, "At first it looks true, but the statement is false.", "False"),   # a conclusion drawn
    (TFU, "\\boxed{True or False}", None),                 # a box naming two options
    # a marked final answer
    (YES_NO, "No, Yes. The answer is no.", "No"),
    (YES_NO, "Answer with one of: No, Yes.\nAnswer: Yes", "Yes"),
    (LETTERS, "The answer is (B)", "B"),
    (LETTERS, "A) 3\nB) 4\nC) 5\nD) 6\nAnswer: C", "C"),
    (LETTERS, "Not A. The correct option is E) the yellow book.", "E"),
    (LETTERS, "The answer is B, no wait, the answer is E.", "E"),   # the last marked answer
    (LETTERS, "**Answer:** D", "D"),
    (LETTERS, "The final answer: **C**", "C"),
    (LETTERS, "The answer is option (A), since B and C fail.", "A"),
    (TFU, "A) True\nB) False\nC) Unknown\nThe answer is: **False**", "False"),
    (TFU, "The answer is (C).", "Unknown"),
    (TFU, "Answer: A) True", "True"),
    (TFU, "True or false? The answer is \"uncertain\".", "Unknown"),
    (TFU, "It cannot be determined to be true or false, so it is Unknown.", "Unknown"),   # a conclusion drawn
    (TFU, "Based on the premises, the conclusion is true, not false.", "True"),
    (TFU, "Based on the premises, is the conclusion true, false, or unknown?", None),  # the question parroted
    (TFU, "The conclusion is true, false or unknown.", None),
    (TFU, "It's not false, it's true.", None),
    (LETTERS, "So (A) is wrong and (B) is right.", None),
    # a box
    (LETTERS, "A) looks right, but \\boxed{C}", "C"),
    (LETTERS, "\\boxed{\\text{D}}", "D"),
    (LETTERS, "\\boxed{42} so (B)", "B"),                  # a box naming no option does not count
    (YES_NO, "\\boxed{no} (yes would be wrong)", "No"),
    # the final line is exactly one option
    (LETTERS, "A) 3\nB) 4\nC) 5\nB", "B"),
    (LETTERS, "(A) or (C)?\n\n**C**", "C"),
    (TFU, "true at first, then false\nFalse.", "False"),
    (TFU, "True or false? True.", "True"),                  # the final line's last sentence
    (LETTERS, "A) 3. B) 4. C) 5.", None),                   # a restated option is not a choice
    (LETTERS, "G", None),                                   # not a letter of these options
    # one option named, however often
    (TFU, "It is true. True.", "True"),
    (TFU, "A) True", "True"),                                # the letter and its label are one option
    (TFU, "It is unknown.", "Unknown"),
    (LETTERS, "Option B says Wren is a zumpus.", "B"),
    (LETTERS, "I pick **D** here.", "D"),
    (YES_NO, "I know it is cold, so YES.", "Yes"),          # "no" inside "know" is no mention
    # nothing named
    (LETTERS, "I am not sure.", None),
    (LETTERS, "A farmer has 3 cows.", None),                # a capital in prose is no choice
    (YES_NO, "Nobody knows.", None),
    (TFU, "", None),
])
def test_final_choice_rule(options, text, want):
    assert options.read(text) == want


def test_numbered_options_arc():
    arc = Options(letters="ABCDE", numbered=True)
    assert arc.read("answer3") == "C" and arc.read("The answer is answer2.") == "B"
    assert arc.read("answer1 or answer4") is None and arc.read("answer9") is None


# The same replies through every label and choice task that uses the rule: the shipped logic benchmarks,
# the synthetic choice families and the rules family, the user task's label and choice types.

def _user(tmp_path, answer_type):
    import json

    f = tmp_path / f"{answer_type}.jsonl"
    if answer_type == "label":
        rows = [{"question": "q", "answer": "Yes"}, {"question": "q", "answer": "No"}]
        options = {}
    else:
        rows = [{"question": "q", "choices": ["x", "y", "z"], "answer": "B"}]
        options = {"choices_field": "choices"}
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return get_task("jsonl", path=str(f), answer_type=answer_type, **options)


CHOICE_TASKS = ["logical_deduction", "arc_easy", "arc_challenge", "abduction", "induction"]
LABEL_TASKS = ["proofwriter", "prontoqa", "folio"]


@pytest.mark.parametrize("name", CHOICE_TASKS + ["user_choice"])
def test_every_choice_task_uses_the_rule(name, tmp_path):
    task = _user(tmp_path, "choice") if name == "user_choice" else get_task(name)
    assert task.extract_answer("A) True B) False") is None
    assert task.extract_answer("A) x\nB) y\nC) z") is None
    assert task.extract_answer("A) x\nB) y\nC) z\nThe answer is (B)") == "B"
    assert task.extract_answer("A) x\nB) y\nC) z\nAnswer: C") == "C"
    assert task.extract_answer("(A) or (C)?\nB") == "B"
    assert task.extract_answer("\\boxed{B}") == "B"
    assert task.score("<think>\nA) or B)\n</think>\nA) x\nB) y", "A") == (None, False)


@pytest.mark.parametrize("name", LABEL_TASKS + ["rules", "user_label"])
def test_every_label_task_uses_the_rule(name, tmp_path):
    task = _user(tmp_path, "label") if name == "user_label" else get_task(name)
    yes, no = ("Yes", "No") if name == "user_label" else ("True", "False")
    assert task.extract_answer(f"{no}, {yes}.") is None
    assert task.extract_answer(f"{yes} at first, but on reflection: {no.lower()}.") is None
    assert task.extract_answer(f"{no}, {yes}. The answer is {no.lower()}.") == no
    assert task.extract_answer(f"{yes}, {no}\n{no}") == no
    assert task.extract_answer(f"\\boxed{{{yes}}}") == yes
    assert task.extract_answer(f"It is {yes.lower()}.") == yes
    assert task.score(f"<think>\n{yes}\n</think>\n{yes} or {no}", yes) == (None, False)


@pytest.mark.parametrize("name", ["abduction", "induction", "rules"])
def test_synthetic_prompt_parroted_is_no_answer_and_the_oracle_is_credited(name):
    """The question with its option list, as the reply, chooses nothing (the last-mention rule credited it
    on 155 and 170 of 800 abduction and induction test problems); every oracle answer still scores."""
    from thinkling.format import format_assistant

    task = get_task(name)
    for p in task.problems("test", n=50):
        assert task.score(f"<think>\n</think>\n{p.question}", p.answer) == (None, False), p.id
        for style in ("long", "concise", "none"):
            tr = task.oracle(p, style)
            assert task.score(format_assistant(tr.reasoning, tr.answer), p.answer) == (p.answer, True)

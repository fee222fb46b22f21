"""Sentences of a rationale and their labels: sentence splitting (decimals, equations, abbreviations,
offsets) and the reasoning / non-reasoning labeller."""

from __future__ import annotations

from helpers.curate import APPLES_Q
from thinkling.curate.chunking import label_sentences, split_sentences


def sents(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


# ----------------------------------------------------------------------------- splitting


def test_split_keeps_decimals_equations_and_abbreviations():
    assert sents("The price is $3.50 each. So b=a+2=4+2=6. Next!") == [
        "The price is $3.50 each.", "So b=a+2=4+2=6.", "Next!"]
    assert sents("Rate is 0.5 and 1,200.75 in total? Yes.") == ["Rate is 0.5 and 1,200.75 in total?", "Yes."]
    assert sents("Mr. Smith paid, e.g. 2.5 dollars. Done") == ["Mr. Smith paid, e.g. 2.5 dollars.", "Done"]
    assert sents('He said "stop." Then left.') == ['He said "stop."', "Then left."]
    assert sents("1. First step here. 2. Second step.") == ["1. First step here.", "2. Second step."]
    assert sents("At 7 a.m. the P.E. class met. Then 3+2=5.") == ["At 7 a.m. the P.E. class met.", "Then 3+2=5."]


def test_split_on_newlines_and_offsets():
    text = "  x = 3\n\ny = x + 1 = 4.  \nWait, is that right?Yes"
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == ["x = 3", "y = x + 1 = 4.", "Wait, is that right?Yes"]
    assert all(text[a:b] == text[a:b].strip() for a, b in spans)
    assert split_sentences("") == [] and split_sentences(" \n\t\n") == []


# ----------------------------------------------------------------------------- labeller


def test_labeller_on_a_handwritten_trace():
    trace = [
        ("Okay, so Tom starts with 3 apples and buys 4 more.", False),     # restatement
        ("Hmm, let me think about this carefully.", False),                 # self-talk
        ("First, 3 + 4 = 7 apples.", True),                                 # new value, used below
        ("Let me double-check: 3 + 4 = 7, yes.", False),                    # check re-deriving a known value
        ("Then he gives 2 away, so 7 - 2 = 5.", True),                      # new value, the answer
        ("Check: 5 + 2 = 7, which matches.", False),                        # check: nothing later uses it
        ("So the answer is 5.", False),                                     # summary
    ]
    for answer in ("5", "The answer is \\boxed{5}."):
        assert label_sentences(APPLES_Q, [s for s, _ in trace], answer) == [r for _, r in trace]


def test_labeller_on_deductive_statements():
    q = "Facts: Max is a dog. All dogs are mammals. All mammals are animals. Question: Is Max an animal?"
    trace = [
        ("Max is a dog.", False),                                           # restates a fact
        ("Because all dogs are mammals, Max is a mammal.", True),           # new inference, used next
        ("Now let's see where that leads.", False),                         # transition
        ("Max is a mammal and all mammals are animals, so Max is an animal.", True),  # settles the query
        ("Wait, is that right? Yes, Max is an animal.", False),             # self-check
        ("Therefore the answer is yes.", False),                            # summary
    ]
    assert label_sentences(q, [s for s, _ in trace], "Yes") == [r for _, r in trace]


def test_labeller_descriptors_definitions_and_unused_values():
    q = "Compute mod 10.\na=4\nb=a+2\nc=b+1\nWhat is c?"
    trace = ["Moving on, the next variable is b.", "b=a+2=4+2=6.", "Also 9+9=18, just for fun.",
             "c=b+1=6+1=7.", "That completes the chain, so c=7."]
    # a descriptor pointing at a known name binds nothing; a new value nothing uses is not reasoning
    assert label_sentences(q, trace, "7") == [False, True, False, True, False]
    q2 = "A shirt and shoes cost $50. The shirt costs $20. How much are the shoes?"
    trace2 = ["Let S be the price of the shoes.", "Then S + 20 = 50, so S = 50 - 20 = 30."]
    assert label_sentences(q2, trace2, "30") == [True, True]


def test_labeller_on_free_form_self_talk():
    """R1-style prose, in none of the oracle's wordings: checks by other routes are not reasoning."""
    q = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
         "How many clips did Natalia sell altogether in April and May?")
    trace = [
        ("Okay, let's see.", False),
        ("Natalia sold clips to 48 friends in April.", False),
        ("Then in May she sold half as many.", False),
        ("So I need to find the total for both months.", False),
        ("May is half of that, so 48 divided by 2 is 24.", True),
        ("Wait, let me make sure I read that right.", False),
        ("Half as many clips in May, yes, so 24 in May.", False),
        ("Now add them: 48 + 24 = 72.", True),
        ("Let me double-check: 40 + 20 is 60, 8 + 4 is 12, 60 + 12 = 72.", False),  # same value, made-up parts
        ("Alternatively, 72 - 24 = 48, which matches April.", False),              # inverse check, unused
        ("So Natalia sold 72 clips altogether.", False),
    ]
    assert label_sentences(q, [s for s, _ in trace], "72") == [r for _, r in trace]


def test_labeller_final_step_is_used_by_the_question():
    """A concise trace ends with the step that settles the query: the question 'uses' it."""
    q = "Facts: Wren is a zumpus. Rules: Every zumpus is a lempus. Question: Is Wren a lempus?"
    assert label_sentences(q, ["Wren is a zumpus, so Wren is a lempus."], "True") == [True]

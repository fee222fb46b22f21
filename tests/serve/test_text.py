"""What a client may see of a reply as it grows: streamed text only grows (stop strings held back, the
<think> split)."""

from __future__ import annotations




def test_streamed_text_only_grows():
    """``visible`` of every prefix of a reply is a prefix of the final parts (what streaming relies on)."""
    import random

    from thinkling.serve.text import holdback, split_reasoning, visible

    assert holdback("abc</thi", ["</think>"]) == 5 and holdback("abc", ["</think>"]) == 0
    assert split_reasoning("  <think> hm \n</think>\n\nAnswer: 4", False) == ("hm", "Answer: 4")
    assert split_reasoning("hm</think> 4", True) == ("hm", "4")
    assert split_reasoning("4", False) == (None, "4")
    assert split_reasoning("<think>still going", False) == ("still going", "")
    rng = random.Random(0)
    pieces = ["<think>", "</think>", "<", "</", "think", ">", " ", "\n", "a", "b", "STOP", "ST", "x1"]
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        for split in (False, True):
            for opened in (False, True):
                r_end, c_end = visible(text, True, split, opened, ["STOP"])
                for i in range(len(text) + 1):
                    r, c = visible(text[:i], False, split, opened, ["STOP"])
                    assert c_end.startswith(c), (text, i, split, opened)
                    assert r is None or (r_end or "").startswith(r), (text, i, split, opened)

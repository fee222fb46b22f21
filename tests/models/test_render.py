"""Loss masks come from rendering: the mask covers exactly the reply and the end of turn, nothing after
it, only the last reply of a multi-turn prompt; think tags are single non-special tokens, role markers
special; ``show_mask`` brackets the trained text."""

from __future__ import annotations

from helpers import conversations
from thinkling.format import format_assistant
from thinkling.models.render import render, render_prompt, show_mask

IM_END = "<|im_end|>"


def test_mask_covers_exactly_the_reply_and_the_end_of_turn(tokenizer):
    convs = conversations()
    assert len(convs) == 2 * 6 * 3
    for prompt, reply in convs:
        ids, mask = render(tokenizer, prompt, reply)
        assert len(ids) == len(mask)
        head = render_prompt(tokenizer, prompt)
        assert ids[: len(head)] == head and mask[: len(head)] == [0] * len(head)
        # one contiguous block of ones, running to the very last token
        first = mask.index(1)
        assert first == len(head)
        assert all(mask[first:]), "nothing after the reply may be masked out, nothing inside it either"
        trained = [t for t, m in zip(ids, mask) if m]
        assert tokenizer.decode(trained) == reply + IM_END
        assert ids[-1] == tokenizer.eos_token_id
        assert trained.count(tokenizer.eos_token_id) == 1


def test_nothing_after_the_end_of_turn_is_kept(tokenizer):
    prompt, reply = conversations()[0]
    ids, _ = render(tokenizer, prompt, reply)
    full = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": reply}], tokenize=True,
                                         add_generation_prompt=False, return_dict=False)
    full = list(full)
    # the template writes a newline after <|im_end|>; it is cut, not learned
    assert full[: len(ids)] == ids
    assert tokenizer.decode(full[len(ids):]) == "\n"


def test_multi_turn_prompt_masks_only_the_last_reply(tokenizer):
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Compute mod 10.\na=3\nWhat is a?"},
              {"role": "assistant", "content": "<think>\n</think>\n3"}, {"role": "user", "content": "And a+1?"}]
    reply = format_assistant("a+1=3+1=4", "4")
    ids, mask = render(tokenizer, prompt, reply)
    assert tokenizer.decode([t for t, m in zip(ids, mask) if m]) == reply + IM_END


def test_think_tags_are_single_non_special_tokens(tokenizer):
    special = set(tokenizer.all_special_ids)
    for tag in ("<think>", "</think>"):
        ids = tokenizer.encode(tag, add_special_tokens=False)
        assert len(ids) == 1, (tag, ids)
        assert ids[0] not in special
        assert tokenizer.decode(ids, skip_special_tokens=True) == tag
    prompt, reply = conversations()[1]
    ids, mask = render(tokenizer, prompt, reply)
    reply_ids = [t for t, m in zip(ids, mask) if m]
    # servers decode with skip_special_tokens=True: the think block must survive, the end of turn must not
    assert tokenizer.decode(reply_ids, skip_special_tokens=True) == reply
    think = tokenizer.convert_tokens_to_ids("<think>")
    close = tokenizer.convert_tokens_to_ids("</think>")
    assert reply_ids.count(think) == 1 and reply_ids.count(close) == 1


def test_role_markers_are_special_and_stripped(tokenizer):
    assert tokenizer.eos_token == IM_END
    ids = render_prompt(tokenizer, [{"role": "user", "content": "hi"}])
    assert tokenizer.decode(ids, skip_special_tokens=True) == "user\nhi\nassistant\n"


def test_show_mask_brackets_the_trained_text(tokenizer):
    prompt, reply = conversations()[1]
    ids, mask = render(tokenizer, prompt, reply)
    view = show_mask(tokenizer, ids, mask)
    assert view.endswith("[[" + reply + IM_END + "]]")
    assert view.count("[[") == 1

"""Conversations in real text with an LLM user: the output parser's rule, the loop's
bookkeeping with scripted speakers, and the plumbing on a tiny random checkpoint."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from emojax import hf
from emojax.hf import dialogue, toy
from emojax.rl import lora, policy

def test_parse_reads_the_format_and_applies_the_rule_to_the_rest():
    change, reply, flags = dialogue.parse("Reasoning: it helped.\nChange: +5\nReply: thanks, that helps", 10)
    assert (change, reply) == (5, "thanks, that helps") and not any(flags.values())
    change, reply, flags = dialogue.parse("Reasoning: no.\nChange: -25\nReply: whatever", 10)
    assert change == -10 and flags["clipped_change"] and not flags["unparsed_change"]
    change, reply, flags = dialogue.parse("Change: lots\nReply: ok", 10)
    assert change == 0 and flags["unparsed_change"] and reply == "ok"
    change, reply, flags = dialogue.parse("Reasoning: hm\nChange: 3\ni guess so", 10)
    assert change == 3 and flags["unparsed_reply"] and reply == "i guess so"
    assert dialogue.parse("", 10)[1] == "..."


def _scripted_user(deltas):
    """A user whose change for conversation ``k`` (its topic is str(k)) is ``deltas[k]``."""
    seen = []

    def generate(chats, max_new_tokens, key):
        seen.append(chats)
        out = []
        for c in chats:
            k = int(c[0]["content"].split("about ")[1].split(".")[0])
            last = c[-1]["content"]  # the assistant's reply, as the user reads it
            out.append(f"Reasoning: read {last}\nChange: {deltas[k]:+d}\nReply: answer to {last}")
        return out

    return generate, seen


def _assistant(chats, max_new_tokens, key):
    return [f"reply to [{c[-1]['content']}]" for c in chats]


def test_the_loop_routes_each_reply_to_its_own_user_and_stops_ended_conversations():
    profiles = [dialogue.Profile("negative", "be_heard", "0"), dialogue.Profile("passive", "solution", "1")]
    user, seen = _scripted_user({0: 10, 1: -5})
    cfg = dialogue.DialogueConfig(start_e=80.0, max_turns=4)
    out = dialogue.converse(_assistant, user, profiles, ["hello 0", "hello 1"], cfg, jax.random.key(0))
    assert out["final_e"] == [100.0, 60.0]  # 80 + 10 + 10 ends at 100; 80 - 4 * 5
    assert out["turns"] == [2, 4]
    assert [len(chats) for chats in seen] == [2, 2, 1, 1]  # the ended conversation stops generating
    for k, t in enumerate(out["transcripts"]):
        assert t["messages"][0]["content"] == f"hello {k}"
        for m in t["messages"][1:]:
            assert f"hello {k}" in m["content"] or m["role"] == "user"  # every reply answers its own user
        assert t["e"][0] == 80.0 and len(t["e"]) == out["turns"][k] + 1
    assert out["user_turns"] == 6 and out["unparsed_change"] == 0
    # The user reads its own lines as the assistant's and sees its mood in the system prompt.
    view = seen[1][1]
    assert view[0]["role"] == "system" and "75 out of 100" in view[0]["content"]
    assert view[1] == {"role": "assistant", "content": "hello 1"}


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    """A tiny random Qwen2-family checkpoint with the bundled ChatML tokenizer (394 ids,
    :mod:`emojax.hf.toy`)."""
    return toy.write_random(str(tmp_path_factory.mktemp("speaker") / "ckpt"), policy.PRESETS["smoke"],
                            jax.random.key(0))  # fmt: skip


def test_two_checkpoints_converse_and_gibberish_is_counted_not_fatal(checkpoint_dir):
    assistant = dialogue.Speaker.load(checkpoint_dir)
    user = dialogue.Speaker.load(checkpoint_dir, temperature=1.0)
    profiles = [dialogue.Profile("avoidant", "reassurance", "work"), dialogue.Profile("negative", "information", "a bill")]
    cfg = dialogue.DialogueConfig(max_turns=2, assistant_tokens=8, user_tokens=8)
    out = dialogue.converse(assistant.generate, user.generate, profiles, ["i failed again", "they charged me twice"],
                            cfg, jax.random.key(1))  # fmt: skip
    assert out["user_turns"] == 4 and out["turns"] == [2, 2]
    assert out["unparsed_change"] == 4 and out["final_e"] == [40.0, 40.0]  # a random model never writes the format
    for t in out["transcripts"]:
        assert [m["role"] for m in t["messages"]] == ["user", "assistant", "user", "assistant", "user"]
        assert all(isinstance(m["content"], str) and m["content"] for m in t["messages"])


def test_to_batch_lays_out_prompt_and_completion_with_the_templates_assistant_mask(checkpoint_dir):
    from emojax.hf import text_grpo
    from emojax.rl.config import GRPOConfig

    tok = hf.load_tokenizer(checkpoint_dir)
    chats = [[{"role": "system", "content": "be kind"}, {"role": "user", "content": "i lost my keys"},
              {"role": "assistant", "content": "that is annoying"}, {"role": "user", "content": "yes"},
              {"role": "assistant", "content": "try the car"}],
             [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there, friend"}]]  # fmt: skip
    pairs = GRPOConfig(num_prompts=1, group_size=2)
    batch = text_grpo.to_batch(tok, chats, np.array([0.5, 0.9]), pairs, prompt_len=48, completion_len=60)
    for i, chat in enumerate(chats):
        enc = tok.encode_chat(chat)
        ids, ours = np.array(enc["input_ids"]), np.array(enc["assistant_masks"], bool)
        first = int(np.argmax(ours))
        row, m = np.asarray(batch.tokens[i]), np.asarray(batch.mask[i])
        np.testing.assert_array_equal(row[m], ids)  # every token, in order, prompt right-aligned
        assert m[48 - first:48].all() and not m[: 48 - first].any()
        np.testing.assert_array_equal(np.asarray(batch.completion_mask[i])[: len(ids) - first], ours[first:])
        assert np.asarray(batch.completion_mask[i]).sum() == ours.sum()  # the user's turns are not trained
    np.testing.assert_allclose(np.asarray(batch.advantages), [-0.7071, 0.7071], atol=1e-3)
    short = text_grpo.to_batch(tok, chats, np.array([0.5, 0.9]), pairs, prompt_len=48, completion_len=10)
    assert np.asarray(short.truncated).tolist() == [True, True]
    with pytest.raises(ValueError, match="prompt_len=4"):
        text_grpo.to_batch(tok, chats, np.array([0.5, 0.9]), pairs, prompt_len=4, completion_len=40)
    # Two groups of two, group-major: advantages within each group, in row order; Dr. GRPO's
    # unscaled advantages when the run asks for them.
    four = text_grpo.to_batch(tok, chats * 2, np.array([0.1, 0.3, 0.8, 0.4]), GRPOConfig(num_prompts=2, group_size=2),
                              prompt_len=48, completion_len=60)  # fmt: skip
    adv = np.asarray(four.advantages)
    assert adv[0] < 0 < adv[1] and adv[2] > 0 > adv[3]
    raw = text_grpo.to_batch(tok, chats * 2, np.array([0.1, 0.3, 0.8, 0.4]),
                             GRPOConfig(num_prompts=2, group_size=2, advantage_scale="none"), 48, 60)  # fmt: skip
    np.testing.assert_allclose(np.asarray(raw.advantages), [-0.1, 0.1, 0.2, -0.2], atol=1e-6)
    # A template without {% generation %} blocks (most released ones): the same mask, by prefixes.
    bare = dataclasses.replace(tok, template=tok.template.replace("{% generation %}", "").replace(
        "{% endgeneration %}", ""))  # fmt: skip
    same = text_grpo.to_batch(bare, chats, np.array([0.5, 0.9]), pairs, prompt_len=48, completion_len=60)
    np.testing.assert_array_equal(np.asarray(same.completion_mask), np.asarray(batch.completion_mask))
    np.testing.assert_array_equal(np.asarray(same.tokens), np.asarray(batch.tokens))


@pytest.mark.parametrize("lora_rank", [0, 4])
def test_grpo_on_text_conversations_updates_the_policy(checkpoint_dir, lora_rank):
    from emojax.hf import text_grpo
    from emojax.rl.config import GRPOConfig

    speaker = dialogue.Speaker.load(checkpoint_dir)
    before = [np.asarray(x) for x in jax.tree.leaves(speaker.model.state)]

    def user(chats, max_new_tokens, key):  # likes long replies: a signal the policy can follow
        return [f"Change: {'+5' if len(c[-1]['content']) > 12 else '-5'}\nReply: go on" for c in chats]

    profiles = [dialogue.Profile("negative", "be_heard", "work"), dialogue.Profile("passive", "solution", "a bill")]
    cfg = text_grpo.TextGRPOConfig(grpo=GRPOConfig(num_prompts=2, group_size=2, mu=1, learning_rate=1e-2, beta=0.04),
                                   dialogue=dialogue.DialogueConfig(max_turns=2, assistant_tokens=8, user_tokens=8),
                                   prompt_len=96, completion_len=64, lora_rank=lora_rank)  # fmt: skip
    trainer = text_grpo.TextTrainer(cfg, speaker, user, profiles, ["i am tired", "they charged me twice"],
                                    jax.random.key(0))  # fmt: skip
    metrics = [trainer.step(jax.random.key(s)) for s in range(2)]
    assert all(np.isfinite(m["loss"]) and m["skipped"] == 0 and m["user_turns"] == 8 for m in metrics)
    assert metrics[0]["kl"] == pytest.approx(0.0, abs=1e-6) and metrics[1]["kl"] > 1e-7  # the reference stays put
    assert trainer.assistant.temperature == cfg.grpo.temperature  # sampled as the loss scores it
    after = [np.asarray(x) for x in jax.tree.leaves(lora.merge(trainer.pcfg, trainer.policy_state)[1])]
    assert any(not np.allclose(a, b) for a, b in zip(after, before, strict=True))
    assert trainer.assistant.model.state is not speaker.model.state  # the speaker samples the trained policy

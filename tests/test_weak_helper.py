"""The weak helper (BOLT's low-quality therapist in the policy's tokens) and its
conversations, laid out as the engine's transcripts."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from emojax.world import acts, dialogue, vocab, weak_helper
from emojax.world import conversation as conv

N = 6
CFG = dataclasses.replace(conv.TRAIN, max_turns=3)


@pytest.fixture(scope="module")
def played():
    profiles = conv.profiles(jax.random.key(4), 48)
    return jax.device_get(weak_helper.conversations(jax.random.key(5), profiles, CFG, weak_helper.HelperConfig(), N))


def test_replies_are_acts_in_the_budget_ended():
    chat, _ = conv.reset(conv.profiles(jax.random.key(1), 64), CFG)
    only_solutions = weak_helper.HelperConfig(act_rates=(0, 0, 0, 1, 0, 0, 0, 0))
    r = np.asarray(weak_helper.replies(jax.random.key(2), chat, only_solutions, N))
    assert r.shape == (64, N) and np.all(r[:, 0] == dialogue.FRAME_ID["<solve>"]) and np.all(r[:, 2] == vocab.EOS_ID)
    words = dialogue.expand(jax.numpy.asarray(r))
    done = np.asarray(jax.vmap(acts.parse)(words).counts > 0)
    assert done[:, acts.ACT_INDEX["solution"]].all() and done.sum(axis=1).max() == 1
    r = np.asarray(weak_helper.replies(jax.random.key(3), chat, weak_helper.HelperConfig(), N))
    ends = np.argmax(r == vocab.EOS_ID, axis=1)
    assert np.all((r == vocab.EOS_ID).sum(axis=1) == 1) and np.all(ends >= 2)  # an act at least, then the end
    assert np.all(r[np.arange(N)[None, :] > ends[:, None]] == vocab.PAD_ID)


def test_conversations_have_the_engines_transcript_layout(played):
    u = CFG.turn_len
    assert played["tokens"].shape == (48, u + CFG.max_turns * (N + u))
    body = played["tokens"][:, u:].reshape(48, CFG.max_turns, N + u)
    pm = played["policy_mask"][:, u:].reshape(48, CFG.max_turns, N + u)
    assert not played["policy_mask"][:, :u].any() and not pm[:, :, N:].any()  # never a user token
    np.testing.assert_array_equal(pm[:, :, :N], body[:, :, :N] != vocab.PAD_ID)
    wrote = pm[:, :, :N].any(axis=2)
    np.testing.assert_array_equal(wrote.sum(axis=1), played["turns"])  # a reply per turn the user was there
    np.testing.assert_array_equal(played["mask"], played["tokens"] != vocab.PAD_ID)


def test_the_default_helper_leaves_users_worse_than_random_tokens():
    """The default helper is weak on purpose (RLVER's base model: 76% failures): its users
    end lower than under a policy that performs no act at all."""
    profiles = conv.profiles(jax.random.key(8), 128)
    helper = jax.device_get(weak_helper.conversations(jax.random.key(9), profiles, conv.EVALUATION,
                                                      weak_helper.HelperConfig(), N))  # fmt: skip
    silent = weak_helper.HelperConfig(act_rates=(0, 1, 0, 0, 0, 0, 0, 0))  # only "that is totally valid ."
    kind = jax.device_get(weak_helper.conversations(jax.random.key(9), profiles, conv.EVALUATION, silent, N))
    assert helper["score"].mean() < 25 and helper["failure"].mean() > 0.4
    assert kind["score"].mean() > helper["score"].mean() + 10


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="HelperConfig.act_rates"):
        weak_helper.HelperConfig(act_rates=(0.5,) * 3)
    with pytest.raises(ValueError, match="n_tokens"):
        chat, _ = conv.reset(conv.profiles(jax.random.key(1), 2), CFG)
        weak_helper.replies(jax.random.key(0), chat, weak_helper.HelperConfig(), 1)

"""Conversations in the compiled engine: one KV cache across turns, log-probs a teacher-forced
pass reproduces, ended conversations masked, and every reply reaching its own partner."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emojax.rl import environments, multiturn, policy, sampler
from emojax.world import conversation

VOCAB = 40
CFG = dataclasses.replace(policy.PRESETS["smoke"], vocab_size=VOCAB)
B, P, U, N, T = 6, 5, 4, 3, 4
END, PAD = 1, 0
SAMPLING = sampler.SamplerConfig(max_new_tokens=N, end_token=END, pad_token=PAD)
LASTS = np.array([4, 1, 3, 2, 4, 1])  # conversation i lasts LASTS[i] turns


@functools.cache
def _model():
    model = nnx.eval_shape(lambda: policy.Policy(CFG, rngs=nnx.Rngs(0)))
    rng = np.random.default_rng(0)
    for path, var in nnx.to_flat_state(nnx.state(model)):
        var.set_value(jnp.asarray(rng.normal(1.0 if path[-1] == "scale" else 0.0, 0.3, var.shape), jnp.float32))
    return nnx.split(model)


def _partner() -> environments.Environment:
    """A partner that keeps every reply it gets, answers with its own id (token 10 + id) and
    the turn, and leaves after ``LASTS[id]`` turns."""

    def reset(profile_keys):
        n = profile_keys.shape[0]
        ids = jnp.arange(n)
        opening = jnp.stack([jnp.full((n,), 2), 10 + ids, jnp.full((n,), 3), jnp.full((n,), PAD), 20 + ids], 1)
        return {"id": ids, "got": jnp.full((n, T, N), -1), "turn": jnp.zeros(n, jnp.int32),
                "done": jnp.zeros(n, bool)}, opening.astype(jnp.int32)  # fmt: skip

    def step(key, s, reply):
        del key
        live = ~s["done"]
        rows = jnp.arange(reply.shape[0])
        got = s["got"].at[rows, s["turn"]].set(jnp.where(live[:, None], reply, s["got"][rows, s["turn"]]))
        turn = s["turn"] + live
        done = s["done"] | (turn >= jnp.asarray(LASTS)[s["id"]])
        said = jnp.stack([10 + s["id"], 30 + turn, jnp.full_like(turn, PAD), jnp.full_like(turn, 4)], 1)
        said = jnp.where(live[:, None], said, PAD).astype(jnp.int32)
        return {"id": s["id"], "got": got, "turn": turn, "done": done}, said, done

    return environments.Environment("partner", VOCAB, END, PAD, U, T, lambda key, n: jax.random.split(key, n), reset,
                                    step, lambda s: {}, lambda s: {}, lambda s: {})  # fmt: skip


@functools.cache
def _run(seed: int = 1):
    env = _partner()
    graphdef, state = _model()
    env_state, opening = env.reset(jnp.zeros((B,)))
    fn = jax.jit(lambda key: multiturn.converse(graphdef, state, key, env, env_state, opening, SAMPLING))
    return fn(jax.random.key(seed))


def _replies(tr: multiturn.Transcript) -> np.ndarray:
    """[B, T, N] the reply slots of the transcript."""
    return np.asarray(tr.tokens[:, P:]).reshape(B, T, N + U)[:, :, :N]


def test_each_reply_reaches_its_own_partner_when_others_have_ended():
    tr, final = _run()
    got, replies = np.asarray(final["got"]), _replies(tr)
    for i in range(B):
        np.testing.assert_array_equal(got[i, : LASTS[i]], replies[i, : LASTS[i]])
        assert np.all(got[i, LASTS[i]:] == -1)  # nothing after the end
    np.testing.assert_array_equal(np.asarray(tr.turns), LASTS)
    # After a conversation ends: no policy token, no answer, nothing real.
    slots = np.asarray(tr.mask[:, P:]).reshape(B, T, N + U)
    for i in range(B):
        assert not slots[i, LASTS[i]:].any()
        answers = np.asarray(tr.tokens[i, P:]).reshape(T, N + U)[: LASTS[i], N]
        np.testing.assert_array_equal(answers, 10 + i)  # each answer from its own partner


def test_logprobs_equal_a_teacher_forced_pass_over_the_transcript():
    tr, _ = _run()
    graphdef, state = _model()
    length = tr.tokens.shape[1]
    recomputed = sampler.token_logprobs(graphdef, state, tr.tokens, tr.mask, num_completion=length - P)
    pm = np.asarray(tr.policy_mask[:, P:])
    assert pm.sum() > B  # several turns' tokens
    np.testing.assert_allclose(np.asarray(recomputed)[pm], np.asarray(tr.logprobs[:, P:])[pm], atol=2e-5)
    assert np.all(np.asarray(tr.logprobs)[~np.asarray(tr.policy_mask)] == 0)
    assert not np.any(np.asarray(tr.policy_mask) & ~np.asarray(tr.mask))


def test_the_first_turn_is_what_the_single_turn_sampler_draws():
    """A single-turn task is a one-turn conversation: the same prefill and decode."""
    tr, _ = _run()
    env = _partner()
    _, opening = env.reset(jnp.zeros((B,)))
    key_policy, _ = jax.random.split(jax.random.fold_in(jax.random.key(1), 0))
    graphdef, state = _model()
    single = sampler.sample(graphdef, state, key_policy, opening, opening != PAD, SAMPLING)
    np.testing.assert_array_equal(_replies(tr)[:, 0], np.asarray(single.tokens[:, P:]))


def test_think_mode_keeps_the_scratchpad_from_the_partner_and_scores_it_as_drawn():
    """With a scratchpad of K tokens before each reply: the partner receives the reply slots
    and never the scratchpad's; the scratchpad is the policy's (trained on); and a teacher-
    forced pass reproduces every drawn log-prob, also where a scratchpad ended early with
    the end token (the reply then starts from the logits after that end token)."""
    k = 4
    env, (graphdef, state) = _partner(), _model()
    env_state, opening = env.reset(jnp.zeros((B,)))
    thinking = dataclasses.replace(SAMPLING, think_tokens=k)
    fn = jax.jit(lambda key: multiturn.converse(graphdef, state, key, env, env_state, opening, thinking))
    early = 0
    for seed in range(4):
        tr, final = fn(jax.random.key(seed))
        assert tr.tokens.shape == (B, multiturn.transcript_len(P, env, k + N))
        turns = np.asarray(tr.tokens[:, P:]).reshape(B, T, k + N + U)
        pm = np.asarray(tr.policy_mask[:, P:]).reshape(B, T, k + N + U)
        got = np.asarray(final["got"])
        for i in range(B):
            np.testing.assert_array_equal(got[i, : LASTS[i]], turns[i, : LASTS[i], k : k + N])  # the replies only
            assert pm[i, : LASTS[i], 0].all() and not pm[i, :, k + N :].any()  # a scratchpad, never the answers
        np.testing.assert_array_equal(multiturn.user_turns(tr, P, k + N, U), turns[:, :, k + N :])
        ended = (turns[:, :, : k - 1] == END) & pm[:, :, : k - 1]
        early += int(ended.any(axis=2).sum())
        recomputed = sampler.token_logprobs(graphdef, state, tr.tokens, tr.mask, num_completion=tr.tokens.shape[1] - P)
        real = np.asarray(tr.policy_mask[:, P:])
        np.testing.assert_allclose(np.asarray(recomputed)[real], np.asarray(tr.logprobs[:, P:])[real], atol=2e-5)
    assert early > 0  # some scratchpad ended before its budget


def test_seeds_vmap_in_one_program():
    env = _partner()
    graphdef, state = _model()
    env_state, opening = env.reset(jnp.zeros((B,)))
    states = jax.tree.map(lambda x: jnp.stack([x, 1.5 * x]), state)
    fn = jax.jit(jax.vmap(lambda s, key: multiturn.converse(graphdef, s, key, env, env_state, opening, SAMPLING)[0]))
    both = fn(states, jax.random.split(jax.random.key(3), 2))
    alone = multiturn.converse(graphdef, state, jax.random.split(jax.random.key(3), 2)[0], env, env_state, opening,
                               SAMPLING)[0]  # fmt: skip
    np.testing.assert_array_equal(np.asarray(both.tokens[0]), np.asarray(alone.tokens))
    assert not np.array_equal(np.asarray(both.tokens[0]), np.asarray(both.tokens[1]))


def test_empathy_conversations_run_in_the_engine():
    env = environments.make_environment("empathy", dataclasses.replace(conversation.TRAIN, max_turns=2))
    cfg = dataclasses.replace(policy.PRESETS["smoke"], vocab_size=env.vocab_size)
    graphdef, state = policy.init(cfg, jax.random.key(0))
    keys = env.profiles(jax.random.key(1), 4)
    chat, opening = env.reset(jnp.repeat(keys[:2], 2, axis=0))  # two groups of two clones
    sampling = sampler.SamplerConfig(max_new_tokens=4, end_token=env.end_token, pad_token=env.pad_token)
    tr, chat = jax.jit(lambda key: multiturn.converse(graphdef, state, key, env, chat, opening, sampling))(
        jax.random.key(2))
    assert tr.tokens.shape == (4, opening.shape[1] + 2 * (4 + env.turn_len))
    assert np.all(np.asarray(chat.turn) == np.asarray(tr.turns)) and np.all(np.asarray(tr.turns) >= 1)
    small = dataclasses.replace(cfg, vocab_size=env.vocab_size - 1)
    with pytest.raises(ValueError, match="vocabulary"):
        multiturn.converse(*policy.init(small, jax.random.key(0)), jax.random.key(2), env, chat, opening, sampling)


def test_environments_are_chosen_by_name(tmp_path, monkeypatch):
    assert "empathy" in environments.registered_environments()
    assert environments.make_environment("empathy").max_turns == conversation.TRAIN.max_turns
    with pytest.raises(KeyError, match="unknown environment"):
        environments.make_environment("nope")
    (tmp_path / "outside_envs_pkg").mkdir()
    (tmp_path / "outside_envs_pkg" / "__init__.py").write_text("")
    (tmp_path / "outside_envs_pkg" / "envs.py").write_text(
        "from emojax.rl import environments\n\n\ndef chatty(cfg):\n"
        "    return environments.empathy(cfg)._replace(name='chatty')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    env = environments.make_environment("outside_envs_pkg.envs:chatty", conversation.EVALUATION)
    assert (env.name, env.max_turns) == ("chatty", 10)
    with pytest.raises(ValueError, match="no attribute"):
        environments.make_environment("outside_envs_pkg.envs:nope")

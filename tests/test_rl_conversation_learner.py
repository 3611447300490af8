"""GRPO on whole conversations: the learner takes an environment, trains only the policy's
tokens with one advantage per conversation, and rewards read what the user said."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emojax.rl import conversation_rewards, environments, learner, losses, multiturn, rewards, tasks
from emojax.rl import policy as policy_lib
from emojax.rl.config import PRESETS
from emojax.world import conversation, vocab

TURNS, N, GROUP, PROMPTS = 2, 4, 4, 2
ENV = environments.make_environment("empathy", dataclasses.replace(conversation.TRAIN, max_turns=TURNS))
CFG = PRESETS["smoke"].replace(num_prompts=PROMPTS, group_size=GROUP, max_new_tokens=N, loss_type="dr_grpo",
                               advantage_eps=1e-6, steps=2, checkpoint_every=1, seeds=(0,))  # fmt: skip
FAST = {"xla_backend_optimization_level": 0}


@functools.cache
def _learner(loss_type: str = "dr_grpo"):
    profiles = ENV.profiles(jax.random.key(0), 8)
    return learner.make_train(CFG.replace(loss_type=loss_type), ENV, profiles=profiles, compiler_options=FAST)


@functools.cache
def _rollout():
    run = _learner()
    state = run.init(jax.random.key(0))
    return state, jax.jit(run.rollout)(state.params, jax.random.key(3))


def test_only_the_policys_tokens_enter_the_loss_with_one_advantage_per_conversation():
    state, (batch, metrics, samples) = _rollout()
    p = ENV.turn_len
    b = PROMPTS * GROUP
    assert batch.tokens.shape == (b, p + TURNS * (N + ENV.turn_len))
    slots = np.asarray(batch.completion_mask).reshape(b, TURNS, N + ENV.turn_len)
    assert slots[:, :, :N].any() and not slots[:, :, N:].any()  # never a user token
    adv = np.asarray(batch.advantages).reshape(PROMPTS, GROUP)
    np.testing.assert_allclose(adv.sum(axis=1), 0.0, atol=1e-4)  # group-relative
    for name in ("conversation/score", "conversation/turns", "rewards/user_emotion/mean"):
        assert np.isfinite(float(metrics[name])), name
    assert 1 <= float(metrics["conversation/turns"]) <= TURNS
    # The reward is RLVER's: the user's own final e / 100.
    np.testing.assert_allclose(float(metrics["reward"]), float(metrics["conversation/score"]) / 100, atol=1e-5)
    assert samples.completion_tokens.shape[1] == TURNS * (N + ENV.turn_len)


def test_dr_grpo_divides_by_every_reply_budget():
    """The loss's constant is T * N, the policy's tokens in a conversation, not the
    transcript's width: with mu = 1 the loss's value is -sum(adv * tokens) / (B * T * N)."""
    state, (batch, _, _) = _rollout()
    run = _learner()
    _, _, metrics, skipped, _ = jax.jit(run.update)(state.params, state.opt_state, None, batch, None)
    tokens = np.asarray(batch.completion_mask).sum(axis=1)
    expected = -np.sum(np.asarray(batch.advantages) * tokens) / (PROMPTS * GROUP * TURNS * N)
    assert int(skipped) == 0
    np.testing.assert_allclose(float(metrics["policy_loss"]), expected, rtol=1e-4, atol=1e-6)
    norm = losses.loss_normalizer(batch.completion_mask, loss_type="dr_grpo", max_completion_length=TURNS * N)
    assert float(norm.policy) == PROMPTS * GROUP * TURNS * N


def test_ppo_scores_every_policy_token_of_a_conversation_with_its_reward():
    """PPO on the same conversations: with gamma = lam = 1 and the value head at zero, every
    policy token's return is its conversation's reward, across the user's turns between."""
    state, (batch, _, _) = _rollout()
    run = learner.make_train(CFG.replace(algorithm="ppo"), ENV, profiles=ENV.profiles(jax.random.key(0), 8),
                             compiler_options=FAST)  # fmt: skip
    critic = run.init(jax.random.key(0)).critic
    opt_state = run.init(jax.random.key(0)).opt_state
    _, _, metrics, skipped, after = jax.jit(run.update)(state.params, opt_state, None, batch, critic)
    tokens = np.asarray(batch.completion_mask).sum(axis=1)
    assert int(skipped) == 0 and np.isfinite(float(metrics["value_loss"]))
    expected = np.sum(np.asarray(batch.rewards) * tokens) / tokens.sum()
    np.testing.assert_allclose(float(metrics["returns/mean"]), expected, rtol=1e-5)
    assert float(metrics["value/mean"]) == 0 and np.asarray(after["bias"]) != 0  # the head moved


def test_think_mode_trains_the_scratchpad_and_is_for_conversations_only():
    k = 2
    run = learner.make_train(CFG.replace(think_tokens=k), ENV, profiles=ENV.profiles(jax.random.key(0), 8),
                             compiler_options=FAST)  # fmt: skip
    state = run.init(jax.random.key(0))
    batch, _, samples = jax.jit(run.rollout)(state.params, jax.random.key(3))
    u, b = ENV.turn_len, PROMPTS * GROUP
    assert batch.tokens.shape == (b, u + TURNS * (k + N + u))
    slots = np.asarray(batch.completion_mask).reshape(b, TURNS, k + N + u)
    assert slots[:, 0, :k].all() and slots[:, :, k:].any() and not slots[:, :, k + N :].any()
    with pytest.raises(ValueError, match="think_tokens=2: think mode is for conversations"):
        learner.make_train(PRESETS["smoke"].replace(think_tokens=2), tasks.make_task("reverse"))


def test_a_chunk_trains_on_conversations():
    run = _learner()
    state = run.init(jax.random.key(0))
    before = jax.tree.map(np.asarray, state.params)
    state, metrics = run.run_chunk(state)
    assert int(state.step) == 1 and int(state.skipped_updates) == 0
    changed = jax.tree.map(lambda a, b: not np.allclose(a, np.asarray(b)), before, state.params)
    assert any(jax.tree.leaves(changed))
    assert metrics["conversation/score"].shape == (1,)


def _fake_estimator(vocab_size=vocab.VOCAB_SIZE, max_len=64):
    """Reads a turn as joy (category of positive valence) at the intensity of its first token / 10."""
    from emojax import taxonomy

    pleasant = int(np.argmax(taxonomy.valence_arousal()[:, 0]))

    def predict(tokens, mask):
        del mask
        return jnp.zeros((tokens.shape[0], 40)).at[:, pleasant].set(tokens[:, 0] / 10.0)

    predict.vocab_size, predict.max_len, predict.workdir, predict.data = vocab_size, max_len, "fake", "small"
    return predict


def _obs(turn_tokens, turns):
    said = jnp.asarray(turn_tokens, jnp.int32)[:, :, None] * jnp.ones((1, 1, 5), jnp.int32)
    b = said.shape[0]
    z = jnp.zeros((b, 3), jnp.int32)
    return rewards.Observation(z, z > 0, z, z > 0, jnp.zeros(b, bool),
                               extras={"user_turns": said, "turns": jnp.asarray(turns, jnp.int32)})  # fmt: skip


def test_estimator_reward_reads_the_last_turn_spoken_or_the_whole_path():
    obs = _obs([[10, 20, 30], [40, 50, 60]], [2, 3])  # the first conversation ended after two replies
    final = conversation_rewards.estimator_reward(_fake_estimator(), "final")(obs)
    path = conversation_rewards.estimator_reward(_fake_estimator(), "trajectory")(obs)
    from emojax.world import affect

    unit = float(affect.valence_readout(_fake_estimator()(jnp.ones((1, 1), jnp.int32) * 10, None))[0]) / 7.0
    np.testing.assert_allclose(np.asarray(final), np.array([2.0, 6.0]) * unit, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(path), np.array([1.5, 5.0]) * unit, rtol=1e-5)


def test_estimator_reward_errors_name_the_problem():
    with pytest.raises(ValueError, match="vocabulary of 999 tokens"):
        conversation_rewards.estimator_reward(_fake_estimator(vocab_size=999))
    with pytest.raises(ValueError, match="read must be one of"):
        conversation_rewards.estimator_reward(_fake_estimator(), "middle")
    import emojax.studies.estimator_reward  # noqa: F401  (registers the named factory)

    with pytest.raises(ValueError, match="needs an estimator"):
        rewards.make_reward(rewards.RewardConfig(weights="estimator_emotion"))
    with pytest.raises(ValueError, match="at most 3"):
        conversation_rewards.estimator_reward(_fake_estimator(max_len=3))(_obs([[1, 2]], [2]))
    single = rewards.Observation(*(jnp.zeros((2, 3), jnp.int32),) * 4, jnp.zeros(2, bool))
    with pytest.raises(ValueError, match="user_turns"):
        conversation_rewards.estimator_reward(_fake_estimator())(single)


def test_the_estimator_reward_never_sees_the_users_own_score():
    """It is not privileged: through a RewardConfig it gets observations without ``e``."""
    seen = {}

    def spy(settings, task=None):
        def reward(obs):
            seen["privileged"] = dict(obs.privileged)
            return jnp.zeros(obs.prompt_tokens.shape[0])

        return reward

    rewards.register_reward_factory("spy_for_privileged_test")(spy)
    obs = _obs([[1, 2]], [2]).replace(privileged={"e": jnp.ones(1)})
    rewards.make_reward(rewards.RewardConfig(weights="spy_for_privileged_test(x=1)"))(obs)
    assert seen["privileged"] == {}
    assert rewards.make_reward(rewards.RewardConfig(weights="user_emotion"))(obs)[0][0] == pytest.approx(0.01)


def test_observe_gives_each_conversation_its_own_user_turns():
    state, _ = _rollout()
    run = _learner()
    keys = ENV.profiles(jax.random.key(5), 3)
    env_state, opening = ENV.reset(keys)
    tr, env_state = multiturn.converse(run.graphdef, state.params, jax.random.key(1), ENV, env_state, opening,
                                       run.sampler_config)  # fmt: skip
    obs = multiturn.observe(ENV, tr, env_state, opening.shape[1], N)
    said = np.asarray(obs.extras["user_turns"])
    assert said.shape == (3, TURNS, ENV.turn_len)
    last = np.asarray(env_state.said)
    for i, t in enumerate(np.asarray(tr.turns)):
        np.testing.assert_array_equal(said[i, t - 1], last[i])  # the last thing each user said
    np.testing.assert_allclose(np.asarray(obs.privileged["e"]), np.asarray(env_state.user.e))
    assert policy_lib.PRESETS["smoke"].vocab_size < ENV.vocab_size  # the learner took the environment's


def test_rater_emotion_rates_the_users_final_state_and_only_it():
    """Privileged like user_emotion: it reads the 40-dim state the environment reports; a
    happier state rates higher; a single-turn observation is refused."""
    from emojax import taxonomy

    valence = taxonomy.valence_arousal()[:, 0]
    happy = jnp.zeros((2, 40)).at[:, int(np.argmax(valence))].set(6.0)
    sad = jnp.zeros((2, 40)).at[:, int(np.argmin(valence))].set(6.0)
    obs = _obs([[1, 2]] * 4, [2] * 4).replace(privileged={"e": jnp.ones(4), "state": jnp.concatenate([happy, sad])})
    fn = rewards.make_reward(rewards.RewardConfig(weights="rater_emotion"))
    total, _ = jax.jit(fn)(obs)
    assert np.all(np.asarray(total[:2]) > np.asarray(total[2:]))
    np.testing.assert_array_equal(np.asarray(jax.jit(fn)(obs)[0]), np.asarray(total))  # same conversations, same ratings
    with pytest.raises(ValueError, match="privileged\\['state'\\]"):
        fn(obs.replace(privileged={"e": jnp.ones(4)}))
    rated = CFG.replace(reward=rewards.RewardConfig(weights="rater_emotion"))
    run = learner.make_train(rated, ENV, profiles=ENV.profiles(jax.random.key(0), 8), compiler_options=FAST)
    _, metrics, _ = jax.jit(run.rollout)(run.init(jax.random.key(0)).params, jax.random.key(3))
    assert np.isfinite(float(metrics["rewards/rater_emotion/mean"]))  # the environment reported the state

"""Loss types, advantage estimators and rewards are chosen by name through registries: a new
one is added in one place and the engine (loss, normaliser, config validation) uses it; a
reward with settings, or from outside the package, is named from the command line."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from emojax import config
from emojax.rl import advantages, losses, rewards
from emojax.rl.config import GRPOConfig
from emojax.rl.observation import Observation


def _sum_over_max_length(m, max_completion_length):
    return jnp.asarray(m.shape[0] * 100.0, m.dtype)


def test_a_registered_loss_type_is_used_by_the_loss_and_the_normaliser():
    losses.register_loss_type("test_per_100", reduce=losses._sum_tokens, normalizer=_sum_over_max_length)
    assert "test_per_100" in losses.loss_types() and "test_per_100" not in losses.LOSS_TYPES
    logp = jnp.array([[-1.0, -2.0, -0.5], [-0.3, -0.7, -1.1]])
    mask = jnp.array([[1, 1, 0], [1, 1, 1]])
    adv = jnp.array([1.0, -2.0])
    norm = losses.loss_normalizer(mask, loss_type="test_per_100")
    assert float(norm.policy) == 200.0 and float(norm.tokens) == 5.0
    loss, _ = losses.policy_loss(logp, None, None, adv, mask, loss_type="test_per_100")
    # ratio 1 on every token: the per-token loss is -advantage, summed over tokens / 200.
    np.testing.assert_allclose(float(loss), -(2 * 1.0 + 3 * -2.0) / 200.0, rtol=1e-6)
    dapo, _ = losses.policy_loss(logp, None, None, adv, mask, loss_type="dapo")
    np.testing.assert_allclose(float(dapo), float(loss) * 200.0 / 5.0, rtol=1e-6)
    assert GRPOConfig(loss_type="test_per_100").loss_type == "test_per_100"
    with pytest.raises(ValueError, match="already registered"):
        losses.register_loss_type("test_per_100", reduce=losses._sum_sequence_means, normalizer=_sum_over_max_length)
    with pytest.raises(ValueError, match="loss_type"):
        GRPOConfig(loss_type="no_such_loss")


def test_a_registered_advantage_estimator_is_used():
    @advantages.register_estimator("test_doubled")
    def doubled(centred, count):
        return 2.0 * centred

    rewards = jnp.array([[1.0, 2.0, 4.0, 5.0], [0.0, 1.0, 0.0, 1.0]])
    base = advantages.group_advantages(rewards, estimator="grpo", scale="none").advantages
    twice = advantages.group_advantages(rewards, estimator="test_doubled", scale="none").advantages
    np.testing.assert_allclose(np.asarray(twice), 2.0 * np.asarray(base))
    assert GRPOConfig(advantage_estimator="test_doubled").advantage_estimator == "test_doubled"
    assert advantages.ESTIMATORS == ("grpo", "rloo")
    with pytest.raises(ValueError, match="already registered"):
        advantages.register_estimator("test_doubled")(lambda c, n: c)
    with pytest.raises(ValueError, match="estimator"):
        advantages.group_advantages(rewards, estimator="no_such_estimator")


# --- rewards with settings, and rewards from outside the package ---------------------------

OUTSIDE = '''
import jax.numpy as jnp
from emojax.rl import rewards

def short(obs):
    return -obs.completion_length.astype(jnp.float32)

@rewards.register_reward_factory("test_outside_capped")
def capped(settings, task):
    limit = rewards.required(settings, "limit", "capped")
    return lambda obs: jnp.minimum(obs.completion_length, limit).astype(jnp.float32) + (0 if task is None else 100)
'''


def _obs(lengths):
    lengths = np.asarray(lengths)
    n = 6
    mask = np.arange(n)[None, :] < lengths[:, None]
    batch = len(lengths)
    return Observation(prompt_tokens=jnp.ones((batch, 3), jnp.int32), prompt_mask=jnp.ones((batch, 3), bool),
                       completion_tokens=jnp.asarray(np.where(mask, 3, 0), jnp.int32),
                       completion_mask=jnp.asarray(mask), truncated=jnp.zeros(batch, bool), extras={})


def test_a_reward_with_settings_is_named_from_the_command_line():
    cfg = config.override(GRPOConfig(), {"reward.weights": "length_target(target=4):2,ended:0.5"})
    assert rewards.parse_weights(cfg.reward.weights) == (("length_target(target=4)", 2.0), ("ended", 0.5))
    total, parts = rewards.make_reward(cfg.reward)(_obs([4, 2, 6]))
    np.testing.assert_allclose(parts["length_target(target=4)"], [0.0, -0.5, -0.5])
    np.testing.assert_allclose(total, 2 * np.array([0.0, -0.5, -0.5]) + 0.5)
    with pytest.raises(ValueError, match="needs the setting 'target'"):
        rewards.make_reward(rewards.RewardConfig(weights="length_target"))
    with pytest.raises(ValueError, match="unknown settings"):
        rewards.make_reward(rewards.RewardConfig(weights="length_target(target=4,scale=2)"))
    with pytest.raises(KeyError, match="unknown reward factory"):
        rewards.make_reward(rewards.RewardConfig(weights="ended(x=1)"))
    for bad in ("length_target(target=4", "length_target(4)", "length_target(target=4):heavy"):
        with pytest.raises(ValueError, match="length_target"):
            rewards.RewardConfig(weights=bad)


def test_a_reward_from_an_outside_module_is_named_module_colon_function(tmp_path, monkeypatch):
    (tmp_path / "outside_rewards_pkg").mkdir()
    (tmp_path / "outside_rewards_pkg" / "__init__.py").write_text("")
    (tmp_path / "outside_rewards_pkg" / "rl.py").write_text(OUTSIDE)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = "outside_rewards_pkg.rl:short:0.5,outside_rewards_pkg.rl:capped(limit=3)"
    cfg = config.override(GRPOConfig(), {"reward.weights": spec})
    obs = _obs([1, 5])
    total, parts = rewards.make_reward(cfg.reward)(obs)
    np.testing.assert_allclose(parts["outside_rewards_pkg.rl:short"], [-1.0, -5.0])
    np.testing.assert_allclose(parts["outside_rewards_pkg.rl:capped(limit=3)"], [1.0, 3.0])
    np.testing.assert_allclose(total, [0.5, 0.5])
    # A factory sees the task it is built for.
    _, parts = rewards.make_reward(cfg.reward, task="a task")(obs)
    np.testing.assert_allclose(parts["outside_rewards_pkg.rl:capped(limit=3)"], [101.0, 103.0])
    with pytest.raises(ValueError, match="takes no settings"):
        rewards.make_reward(rewards.RewardConfig(weights="outside_rewards_pkg.rl:short(x=1)"))
    with pytest.raises(ValueError, match="cannot import"):
        rewards.make_reward(rewards.RewardConfig(weights="no_such_pkg_xyz.mod:fn"))
    with pytest.raises(ValueError, match="no attribute"):
        rewards.make_reward(rewards.RewardConfig(weights="outside_rewards_pkg.rl:nope"))

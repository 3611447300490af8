"""PPO's pieces: GAE over the policy's tokens, the terminal reward, whitening, the registry."""

import numpy as np
import pytest

from emojax.rl import algorithms, ppo
from emojax.rl.config import GRPOConfig


def _gae_loop(rewards, values, mask, gamma, lam):
    """GAE by hand: walk each row backwards over its policy tokens only."""
    adv = np.zeros_like(rewards)
    for b in range(rewards.shape[0]):
        next_v = next_a = 0.0
        for t in reversed(range(rewards.shape[1])):
            if not mask[b, t]:
                continue
            delta = rewards[b, t] + gamma * next_v - values[b, t]
            adv[b, t] = delta + gamma * lam * next_a
            next_v, next_a = values[b, t], adv[b, t]
    return adv


@pytest.mark.parametrize("gamma, lam", [(1.0, 1.0), (0.9, 0.95), (1.0, 0.0)])
def test_gae_equals_a_loop_over_the_policy_tokens(gamma, lam):
    rng = np.random.default_rng(0)
    mask = rng.random((5, 12)) < 0.6  # gaps: a user's turns between the policy's
    mask[4] = False  # a filler row
    rewards = rng.normal(size=(5, 12)).astype(np.float32)
    values = rng.normal(size=(5, 12)).astype(np.float32)
    adv, returns = ppo.gae(rewards, values, mask, gamma, lam)
    want = _gae_loop(rewards, values, mask, gamma, lam)
    np.testing.assert_allclose(adv, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(returns, np.where(mask, want + values, 0), rtol=1e-5, atol=1e-5)
    assert not np.asarray(adv)[4].any()


def test_with_gamma_and_lambda_one_the_advantage_is_the_reward_minus_the_value():
    mask = np.array([[1, 1, 0, 0, 1, 1, 0], [0, 1, 1, 1, 0, 0, 0]], bool)
    rewards = ppo.terminal_rewards(np.array([0.7, -0.2], np.float32), mask)
    np.testing.assert_array_equal(np.asarray(rewards) != 0, [[0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 1, 0, 0, 0]])
    values = np.linspace(-1, 1, 14, dtype=np.float32).reshape(2, 7)
    adv, _ = ppo.gae(rewards, values, mask, 1.0, 1.0)
    np.testing.assert_allclose(adv, np.where(mask, np.array([[0.7], [-0.2]]) - values, 0), atol=1e-6)
    assert not np.asarray(ppo.terminal_rewards(np.ones(1, np.float32), np.zeros((1, 4), bool))).any()


def test_whiten_over_the_mask_only():
    x = np.array([[1.0, 2.0, 100.0], [3.0, 4.0, -50.0]], np.float32)
    mask = np.array([[1, 1, 0], [1, 1, 0]], bool)
    w = np.asarray(ppo.whiten(x, mask))
    real = w[mask]
    assert abs(real.mean()) < 1e-6 and abs(real.std(ddof=1) - 1) < 1e-4 and not w[~mask].any()


CUSTOM = algorithms.Algorithm(init=ppo.init, make_update=ppo.make_update)  # one from outside the package


def test_algorithms_by_name_and_bad_names():
    assert {"grpo", "ppo"} <= set(algorithms.registered_algorithms())
    assert algorithms.make_algorithm(f"{__name__}:CUSTOM") is CUSTOM
    found = algorithms.make_algorithm("ppo")
    assert found.make_update is ppo.make_update
    with pytest.raises(KeyError, match="registered"):
        algorithms.make_algorithm("a2c")
    with pytest.raises(ValueError, match="not an emojax.rl.algorithms.Algorithm"):
        algorithms.make_algorithm("emojax.rl.ppo:gae")
    with pytest.raises(ValueError, match="already registered"):
        algorithms.register_algorithm("ppo", algorithms.Algorithm(init=ppo.init, make_update=ppo.gae))
    for change, field in (({"gamma": 1.5}, "gamma"), ({"vf_coef": -1.0}, "vf_coef"), ({"algorithm": ""}, "algorithm")):
        with pytest.raises(ValueError, match=f"GRPOConfig.{field}"):
            GRPOConfig(**change)

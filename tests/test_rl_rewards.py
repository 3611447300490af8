"""Rewards: the gold guard, the registry, combinators on hand-computed values, shaping."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emojax import config
from emojax.rl import rewards, shaping
from emojax.rl.advantages import group_advantages
from emojax.rl.observation import Observation
from emojax.world import gold as gold_lib
from emojax.world import user as user_lib

NAN = float("nan")


@rewards.register_reward("test_a")
def _a(obs):
    return obs.extras["a"]


@rewards.register_reward("test_b")
def _b(obs):
    return obs.extras["b"]


def make_obs(a=(0.0,), b=None, lengths=None, n=4, truncated=None, extras=None):
    a = jnp.asarray(a, jnp.float32)
    batch = a.shape[0]
    lengths = np.full(batch, n) if lengths is None else np.asarray(lengths)
    mask = np.arange(n)[None, :] < lengths[:, None]
    tokens = np.where(mask, np.arange(n)[None, :] + 3, 0)
    more = {"a": a, "b": jnp.asarray(a if b is None else b, jnp.float32)}
    more.update(extras or {})
    return Observation(
        prompt_tokens=jnp.ones((batch, 3), jnp.int32), prompt_mask=jnp.ones((batch, 3), bool),
        completion_tokens=jnp.asarray(tokens, jnp.int32), completion_mask=jnp.asarray(mask),
        truncated=jnp.asarray(np.zeros(batch, bool) if truncated is None else truncated), extras=more)


# --- the gold guard -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["gold", "need_met", "user_grounding", "Accuracy", "world_truth", "felt", "hidden_need"])
def test_gold_named_extras_are_rejected(name):
    with pytest.raises(ValueError, match="gold"):
        make_obs(extras={name: jnp.zeros(1)})


def test_gold_hidden_in_containers_is_rejected():
    with pytest.raises(ValueError, match="visible.need_met"):
        make_obs(extras={"visible": {"need_met": jnp.zeros(1)}})
    g = gold_lib.Gold(jnp.zeros(1), jnp.zeros(1), jnp.zeros(1))
    with pytest.raises(ValueError, match="need_met"):
        make_obs(extras={"scores": g})
    u = user_lib.User(*[jnp.zeros(1)] * len(user_lib.User._fields))
    with pytest.raises(ValueError, match="felt"):  # a whole user carries what gold reads
        make_obs(extras={"user": u})
    with pytest.raises(TypeError, match="gold"):

        class Leaky(Observation):  # noqa: F841
            gold_need: jax.Array


def test_visible_signals_are_allowed_and_survive_jit_and_vmap():
    obs = make_obs(a=[1.0, 2.0], extras={"emotion": jnp.zeros((2, 40)), "rater_emotion": jnp.ones(2),
                                          "target_tokens": jnp.zeros((2, 3)), "preference_label": jnp.ones(2)})
    out = jax.jit(lambda o: o.extras["a"] * 2)(obs)
    np.testing.assert_allclose(out, [2.0, 4.0])
    stacked = jax.tree.map(lambda x: jnp.stack([x, x]), obs)
    np.testing.assert_allclose(jax.vmap(lambda o: o.completion_length)(stacked), [[4, 4], [4, 4]])


_SEEN = {}


@rewards.register_reward("test_peek")
def _peek(obs):
    _SEEN["privileged"] = dict(obs.privileged)
    return obs.extras["a"]


def test_the_users_own_emotion_reaches_only_privileged_rewards():
    for hidden in ("e", "State", "user_e"):
        with pytest.raises(ValueError, match="hidden emotion"):
            make_obs(a=[1.0, 2.0], extras={hidden: jnp.ones(2)})
    obs = make_obs(a=[1.0, 2.0]).replace(privileged={"e": jnp.array([120.0, -30.0])})
    total, parts = rewards.make_reward(rewards.RewardConfig(weights="user_emotion:1"))(obs)
    np.testing.assert_allclose(parts["user_emotion"], [1.2, 0.0])  # max(e / 100, 0), as RLVER
    rewards.make_reward(rewards.RewardConfig(weights="test_peek:1"))(obs)  # not privileged: sees none of it
    assert _SEEN["privileged"] == {}
    with pytest.raises(ValueError, match="only a conversation environment"):
        rewards.make_reward(rewards.RewardConfig(weights="user_emotion:1"))(make_obs(a=[1.0, 2.0]))


# --- registry and combinators -------------------------------------------------------------


def test_registry():
    assert rewards.get_reward("test_a") is _a
    import emojax.rl.tasks  # noqa: F401  (importing the tasks registers theirs)

    rewards.get_reward("need_act")
    assert {"ended", "length", "reverse_correct", "reverse_exact", "need_act", "need_progress"} <= set(
        rewards.registered_rewards())
    with pytest.raises(KeyError, match="unknown reward"):
        rewards.get_reward("no_such_reward")
    with pytest.raises(ValueError, match="already registered"):
        rewards.register_reward("test_a")(lambda obs: obs.extras["b"])


def test_weighted_sum_hand_computed_and_nan():
    obs = make_obs(a=[1.0, 0.0, 0.5, NAN], b=[2.0, 2.0, NAN, NAN])
    total, parts = jax.jit(rewards.weighted_sum({"test_a": 1.0, "test_b": 0.5}))(obs)
    np.testing.assert_allclose(total, [2.0, 1.0, 0.5, NAN])  # NaN skipped; all-NaN -> NaN
    np.testing.assert_allclose(parts["test_b"], [2.0, 2.0, NAN, NAN])  # components raw
    m = jax.jit(rewards.component_metrics)(parts)
    np.testing.assert_allclose(m["rewards/test_a/mean"], 0.5)
    np.testing.assert_allclose(m["rewards/test_a/std"], 0.5)  # N-1 std of 1, 0, 0.5
    np.testing.assert_allclose(m["rewards/test_b/std"], 0.0)


def test_combine_scale_clip():
    obs = make_obs(a=[1.0, -3.0, NAN], lengths=[1, 2, 4], truncated=[False, True, False])
    fn = rewards.combine(rewards.term("test_a"), rewards.format_penalty(0.5))
    total, parts = jax.jit(fn)(obs)
    np.testing.assert_allclose(total, [1.0, -3.5, 0.0])
    np.testing.assert_allclose(parts["format_penalty"], [0.0, -1.0, 0.0])
    total, _ = jax.jit(rewards.clip(rewards.scale(rewards.term("test_a"), 2.0), -1.0, 1.5))(obs)
    np.testing.assert_allclose(total, [1.5, -1.0, NAN])
    with pytest.raises(ValueError, match="used twice"):
        rewards.combine(rewards.term("test_a"), rewards.term("test_a"))(obs)


def test_length_penalty_is_dapo_soft_overlong():
    obs = make_obs(a=np.zeros(5), lengths=[2, 4, 5, 6, 8], n=8)
    total, parts = jax.jit(rewards.length_penalty(max_length=8, cache=4, coef=0.5))(obs)
    np.testing.assert_allclose(parts["length_penalty"], [0.0, 0.0, -0.25, -0.5, -1.0])
    np.testing.assert_allclose(total, [0.0, 0.0, -0.125, -0.25, -0.5])
    _, parts = jax.jit(rewards.length_penalty(max_length=8))(obs)  # linear
    np.testing.assert_allclose(parts["length_penalty"], -np.array([2, 4, 5, 6, 8]) / 8)


def test_normalize_then_sum_equals_trl_formula():
    a = np.array([1.0, 0.0, 0.0, 3.0, 1.0, 2.0])
    b = np.array([5.0, 5.0, 5.0, 1.0, NAN, 0.0])  # group 0 constant; a NaN in group 1
    w = {"test_a": 1.0, "test_b": 0.5}
    total, _ = jax.jit(rewards.normalize_then_sum(w, group_size=3))(make_obs(a=a, b=b))

    def norm(r):  # TRL: nanmean, N-1 nanstd over each group, + 1e-4; NaN adds nothing
        g = r.reshape(2, 3)
        mean = np.nanmean(g, axis=1, keepdims=True)
        std = np.nanstd(g, axis=1, ddof=1, keepdims=True)
        return ((g - mean) / (std + 1e-4)).reshape(-1)

    expected = np.nansum(np.stack([1.0 * norm(a), 0.5 * norm(b)]), axis=0)
    np.testing.assert_allclose(total, expected, rtol=1e-5, atol=1e-6)
    # TRL then standardises over the batch; group_advantages(scale="batch") gives that.
    clean = make_obs(a=a, b=np.array([5.0, 4.0, 5.0, 1.0, 2.0, 0.0]))
    total, _ = jax.jit(rewards.normalize_then_sum(w, group_size=3))(clean)
    adv = group_advantages(total.reshape(2, 3), scale="batch").advantages.reshape(-1)
    t = np.asarray(total, np.float64)
    np.testing.assert_allclose(adv, (t - t.mean()) / (t.std(ddof=1) + 1e-4), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of group_size"):
        rewards.normalize_then_sum(w, group_size=4)(clean)


def test_make_reward_from_config_jit_and_vmap():
    cfg = rewards.RewardConfig(weights="test_a:2, ended", format_penalty=1.0, length_penalty=1.0, clip=(-2.0, 3.0))
    fn = rewards.make_reward(cfg, max_length=4)
    obs = make_obs(a=[1.0, 0.5, -1.0], lengths=[4, 2, 4], truncated=[False, False, True])
    total, parts = jax.jit(fn)(obs)
    # 2a + ended - 1[truncated] - length / 4, clipped to [-2, 3]
    np.testing.assert_allclose(total, [2.0, 1.5, -2.0])
    assert set(parts) == {"test_a", "ended", "format_penalty", "length_penalty"}
    seeds = jax.tree.map(lambda x: jnp.stack([x, x]), obs)
    vtotal, _ = jax.jit(jax.vmap(fn))(seeds)
    np.testing.assert_allclose(vtotal, np.stack([total, total]))
    default = rewards.make_reward(rewards.RewardConfig(), default=(("test_b", 3.0),))
    np.testing.assert_allclose(jax.jit(default)(obs)[0], 3 * np.asarray(obs.extras["b"]))
    with pytest.raises(ValueError, match="not a number"):
        rewards.RewardConfig(weights="test_a:heavy")
    with pytest.raises(ValueError, match="distinct"):
        rewards.RewardConfig(weights="test_a:1,test_a:2")
    with pytest.raises(ValueError, match="group_size"):
        rewards.make_reward(rewards.RewardConfig(weights="test_a", aggregation="normalize_then_sum"))
    with pytest.raises(KeyError, match="unknown reward"):
        rewards.make_reward(rewards.RewardConfig(weights="typo_reward:1"))
    # One --set changes the choice, as every launcher's CLI does.
    cli = config.override(rewards.RewardConfig(), {"weights": "test_a:0.5,ended:1", "clip": "-1,1"})
    assert cli.weights == "test_a:0.5,ended:1" and cli.clip == (-1.0, 1.0)


# --- potential-based shaping --------------------------------------------------------------


def _phi(obs):
    """A potential: 0.3 per completion token equal to 4 or 5 so far, plus a prompt term."""
    hits = (obs.completion_tokens >= 4) & (obs.completion_tokens <= 5) & obs.completion_mask
    return 0.3 * jnp.sum(hits, axis=-1) + 0.1 * obs.extras["a"]


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_potential_shaping_telescopes(gamma):
    obs = make_obs(a=[1.0, 2.0, 3.0], lengths=[4, 2, 0], truncated=[True, False, False])

    @jax.jit
    def everything(obs):
        return (shaping.per_token(_phi, obs, gamma, terminal_zero=False),
                shaping.potential_based(_phi, gamma, terminal_zero=False)(obs)[0],
                shaping.per_token(_phi, obs, gamma, terminal_zero=True),
                shaping.potential_based(_phi, gamma)(obs)[0])

    f, total, f0, total0 = map(np.asarray, everything(obs))
    length = np.array([4, 2, 0])
    discount = gamma ** np.arange(4)
    phi_end = 0.3 * np.array([2, 1, 0]) + 0.1 * np.array([1.0, 2.0, 3.0])  # tokens 3 4 5 6: two hits
    phi_start = 0.1 * np.array([1.0, 2.0, 3.0])
    expected = gamma**length * phi_end - phi_start
    np.testing.assert_allclose(np.sum(f * discount, axis=-1), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(total, expected, rtol=1e-6, atol=1e-6)
    # By hand, first completion: phi(s_0) = phi(s_1) = 0.1 (token 3), phi(s_2) = 0.4 (token 4).
    np.testing.assert_allclose(f[0, :2], [(gamma - 1) * 0.1, gamma * 0.4 - 0.1], rtol=1e-6, atol=1e-6)
    # Terminal potential 0: the terms sum to -phi(s_0), as the closed form (0 with no step).
    np.testing.assert_allclose(np.sum(f0 * discount, axis=-1), -phi_start * (length > 0), atol=1e-6)
    np.testing.assert_allclose(total0, -phi_start * (length > 0), atol=1e-6)


def test_invariant_shaping_leaves_grpo_advantages_unchanged():
    a = np.repeat([0.0, 1.0], 3)  # the prompt term differs between the two groups
    obs = make_obs(a=a, lengths=[1, 2, 3, 4, 2, 1], n=4)
    base = rewards.weighted_sum({"length": 1.0})
    shaped = rewards.combine(base, shaping.potential_based(_phi, 0.9))
    r0, r1 = jax.jit(lambda o: (base(o)[0].reshape(2, 3), shaped(o)[0].reshape(2, 3)))(obs)
    assert not np.allclose(r0, r1)
    np.testing.assert_allclose(group_advantages(r1).advantages, group_advantages(r0).advantages, atol=1e-5)
    assert math.isclose(float(jnp.max(jnp.abs(r1 - r0 + 0.1 * jnp.asarray(a).reshape(2, 3)))), 0.0, abs_tol=1e-6)

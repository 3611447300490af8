"""Group advantages and DAPO group selection: hand-computed cases, properties, TRL.

The TRL reference values come from ``experiments/reference/trl_grpo_fixtures.py``,
which runs TRL 1.16's own advantage code; the fixture needs neither torch nor TRL.
"""

import json
import math
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emojax.rl.advantages import group_advantages, select_groups

FIXTURE = Path(__file__).parent / "fixtures" / "trl_grpo_losses.json"


@pytest.fixture(scope="module")
def trl():
    return json.loads(FIXTURE.read_text())


def test_hand_computed_two_groups_of_three():
    # Group 0: rewards 1, 0, 0 -> mean 1/3, N-1 variance ((2/3)^2 + 2 (1/3)^2) / 2 = 1/3.
    # Group 1: rewards 3, 1, 2 -> mean 2, N-1 variance (1 + 1 + 0) / 2 = 1.
    r = jnp.array([[1.0, 0.0, 0.0], [3.0, 1.0, 2.0]])
    s0, s1 = math.sqrt(1 / 3), 1.0
    expected = np.array([
        [(2 / 3) / (s0 + 1e-4), (-1 / 3) / (s0 + 1e-4), (-1 / 3) / (s0 + 1e-4)],
        [1 / (s1 + 1e-4), -1 / (s1 + 1e-4), 0.0],
    ])
    out = group_advantages(r)
    np.testing.assert_allclose(out.advantages, expected, rtol=1e-6)
    np.testing.assert_allclose(out.mean, [1 / 3, 2.0], rtol=1e-6)
    np.testing.assert_allclose(out.std, [s0, s1], rtol=1e-6)
    assert out.zero_std.tolist() == [False, False]
    assert int(out.num_invalid) == 0

    # Dr. GRPO: no division.
    np.testing.assert_allclose(
        group_advantages(r, scale="none").advantages,
        [[2 / 3, -1 / 3, -1 / 3], [1.0, -1.0, 0.0]], rtol=1e-6, atol=1e-7)
    # Batch scale: group means, but the N-1 std of all six rewards (mean 7/6).
    pooled = np.array([1, 0, 0, 3, 1, 2], float)
    sb = pooled.std(ddof=1)
    np.testing.assert_allclose(
        group_advantages(r, scale="batch").advantages,
        np.array([[2 / 3, -1 / 3, -1 / 3], [1.0, -1.0, 0.0]]) / (sb + 1e-4), rtol=1e-6, atol=1e-7)
    # RLOO: r_i minus the mean of the two others.
    np.testing.assert_allclose(
        group_advantages(r, scale="none", estimator="rloo").advantages,
        [[1.0, -0.5, -0.5], [1.5, -1.5, 0.0]], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize("estimator", ["grpo", "rloo"])
def test_properties_on_random_rewards(scale, estimator):
    r = np.asarray(jax.random.normal(jax.random.key(1), (6, 5)), np.float64)
    out = group_advantages(jnp.asarray(r, jnp.float32), scale=scale, estimator=estimator)
    a = np.asarray(out.advantages, np.float64)
    np.testing.assert_allclose(a.mean(axis=1), 0.0, atol=1e-6)  # zero mean per group
    n = r.shape[1]
    if estimator == "grpo":
        raw = r - r.mean(axis=1, keepdims=True)
    else:
        others = (r.sum(axis=1, keepdims=True) - r) / (n - 1)
        raw = r - others
    if scale == "group":
        raw = raw / (r.std(axis=1, ddof=1, keepdims=True) + 1e-4)
    elif scale == "batch":
        raw = raw / (r.std(ddof=1) + 1e-4)
    np.testing.assert_allclose(a, raw, rtol=1e-5, atol=1e-6)
    # RLOO is GRPO's centred reward times n / (n - 1).
    if estimator == "rloo":
        g = group_advantages(jnp.asarray(r, jnp.float32), scale=scale).advantages
        np.testing.assert_allclose(a, np.asarray(g) * n / (n - 1), rtol=1e-5, atol=1e-6)


def test_ddof_zero():
    r = jnp.array([[1.0, 0.0]])
    out = group_advantages(r, std_ddof=0, eps=0.0)
    np.testing.assert_allclose(out.std, [0.5])
    np.testing.assert_allclose(out.advantages, [[1.0, -1.0]])


def test_zero_variance_is_noise_tolerant():
    noisy = np.float32(0.7)
    up = np.nextafter(noisy, np.float32(1))
    big = np.float32(100.0)
    r = jnp.array([
        [0.5, 0.5, 0.5, 0.5],  # exactly equal
        [noisy, up, noisy, up],  # float noise, std ~ 3e-8
        [big, np.nextafter(big, np.float32(200)), big, big],  # noise at magnitude 100
        [0.0, 1e-3, 0.0, 0.0],  # a small but real spread
    ], dtype=jnp.float32)
    for scale in ("group", "batch", "none"):
        out = group_advantages(r, scale=scale)
        assert out.zero_std.tolist() == [True, True, True, False]
        assert np.all(np.asarray(out.advantages[:3]) == 0.0)
        assert np.all(np.isfinite(out.advantages))
    assert group_advantages(r).advantages[3, 1] > 1.0
    # What TRL's formula would give the noisy group: noise amplified by 1 / 1e-4.
    assert float(out.std[2]) > 0
    trl_like = (r[2] - out.mean[2]) / (out.std[2] + 1e-4)
    assert float(jnp.max(jnp.abs(trl_like))) > 1e-2


def test_nan_and_inf_rewards_leave_no_nan():
    nan, inf = float("nan"), float("inf")
    r = jnp.array([
        [1.0, nan, 0.0, 2.0],
        [nan, nan, nan, nan],
        [inf, 1.0, 1.0, 3.0],
        [nan, 5.0, nan, nan],
    ])
    for scale in ("group", "batch", "none"):
        for estimator in ("grpo", "rloo"):
            out = group_advantages(r, scale=scale, estimator=estimator)
            for field in out:
                assert np.all(np.isfinite(field)), (scale, estimator, field)
            assert int(out.num_invalid) == 1 + 4 + 1 + 3
            a = np.asarray(out.advantages)
            assert a[0, 1] == 0 and a[2, 0] == 0 and np.all(a[1] == 0) and np.all(a[3] == 0)
            assert out.zero_std.tolist() == [False, True, False, True]
    # Invalid rewards are left out of the statistics: row 0 is the group (1, 0, 2).
    out = group_advantages(r)
    clean = group_advantages(jnp.array([[1.0, 0.0, 2.0]]))
    np.testing.assert_allclose(out.advantages[0, jnp.array([0, 2, 3])], clean.advantages[0])
    np.testing.assert_allclose(out.mean[0], 1.0)
    assert float(out.mean[1]) == 0.0 and float(out.std[1]) == 0.0


def test_all_equal_batch():
    out = group_advantages(jnp.full((3, 4), 2.5), scale="batch")
    assert np.all(np.asarray(out.advantages) == 0) and bool(jnp.all(out.zero_std))


def test_jit_vmap_and_one_trace():
    r = jax.random.normal(jax.random.key(2), (3, 4, 5))  # [seeds, prompts, group]
    r = r.at[0, 1].set(1.0).at[2, 0, 3].set(jnp.nan)
    @jax.jit
    @chex.assert_max_traces(n=1)
    def fn(rewards):
        return group_advantages(rewards, scale="group", estimator="rloo")

    batched = jax.vmap(fn)(r)
    for s in range(3):
        one = group_advantages(r[s], scale="group", estimator="rloo")
        for got, want in zip(batched, one):
            np.testing.assert_allclose(got[s], want, rtol=1e-6, atol=1e-7)
    fn(r[0])
    fn(r[1])  # same shapes: no second trace


def test_bad_arguments():
    with pytest.raises(ValueError, match="scale"):
        group_advantages(jnp.ones((2, 2)), scale="global")
    with pytest.raises(ValueError, match="estimator"):
        group_advantages(jnp.ones((2, 2)), estimator="ppo")
    with pytest.raises(ValueError, match="prompts, group"):
        group_advantages(jnp.ones(4))


def test_matches_trl(trl):
    assert trl["versions"]["trl"] == "1.16.0"
    rewards = jnp.asarray(np.array(trl["rewards"], dtype=float), jnp.float32)
    for case in trl["advantage_cases"]:
        out = group_advantages(rewards, scale=case["scale"], estimator=case["estimator"])
        np.testing.assert_allclose(out.advantages, case["advantages"], rtol=1e-5, atol=1e-6,
                                   err_msg=str((case["estimator"], case["scale"])))
        if case["scale"] != "batch":  # TRL's batch flag is about the batch std
            # Group 3 has one scorable reward: TRL's std is NaN, so isclose(std, 0) is
            # False there; here it has no spread and is flagged. Elsewhere they agree.
            want = list(case["is_std_zero"])
            assert want[3] is False
            want[3] = True
            assert out.zero_std.tolist() == want


def test_select_groups_hand_case():
    zero = jnp.array([True, False, True, False, False, True])
    s = select_groups(zero, 2)
    assert s.index.tolist() == [1, 3]
    assert s.valid.tolist() == [True, True]
    assert s.keep.tolist() == [False, True, False, True, False, False]
    assert int(s.num_dropped) == 3 and int(s.num_short) == 0
    # Too few informative groups: filler slots are zero-variance groups, marked invalid.
    s = select_groups(zero, 5)
    assert s.index.tolist() == [1, 3, 4, 0, 2]
    assert s.valid.tolist() == [True, True, True, False, False]
    assert s.keep.tolist() == [False, True, False, True, True, False]
    assert int(s.num_short) == 2


def test_select_groups_jit_with_advantages():
    r = jnp.array([[1.0, 1.0], [0.0, 1.0], [2.0, 2.0], [3.0, 0.0]])

    @jax.jit
    def step(r):
        adv = group_advantages(r)
        sel = select_groups(adv.zero_std, 2)
        return adv.advantages[sel.index] * sel.valid[:, None], sel

    kept, sel = step(r)
    assert kept.shape == (2, 2) and sel.index.tolist() == [1, 3]
    assert int(sel.num_dropped) == 2
    with pytest.raises(ValueError, match="num_keep"):
        select_groups(jnp.zeros(3, bool), 4)
    with pytest.raises(ValueError, match="groups"):
        select_groups(jnp.zeros((3, 2), bool), 1)

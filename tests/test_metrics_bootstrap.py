"""Percentile bootstrap: containment, width, determinism, shapes and coverage."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from emojax import metrics


def _normal(key, n, mean=1.0):
    return mean + jax.random.normal(key, (n,))


def test_ci_contains_estimate_and_is_deterministic(key):
    data = _normal(key, 100)
    key = jax.random.fold_in(key, 1)
    ci = metrics.bootstrap_ci(jnp.mean, data, key, n_resamples=500)
    assert ci.low < ci.estimate < ci.high
    np.testing.assert_allclose(float(ci.estimate), float(jnp.mean(data)), rtol=1e-6)
    again = metrics.bootstrap_ci(jnp.mean, data, key, n_resamples=500)
    assert float(again.low) == float(ci.low) and float(again.high) == float(ci.high)
    other = metrics.bootstrap_ci(jnp.mean, data, jax.random.fold_in(key, 2), n_resamples=500)
    assert float(other.low) != float(ci.low)


def test_ci_narrower_with_more_data(key):
    key = jax.random.fold_in(key, 3)
    small = metrics.bootstrap_ci(jnp.mean, _normal(key, 40), key, n_resamples=400)
    large = metrics.bootstrap_ci(jnp.mean, _normal(key, 2000), key, n_resamples=400)
    assert (large.high - large.low) < 0.5 * (small.high - small.low)


def test_per_category_statistic_on_paired_data(key):
    kx, kn, kb = jax.random.split(key, 3)
    y_true = jax.random.normal(kx, (200, 40))
    y_pred = y_true + jax.random.normal(kn, (200, 40))
    ci = metrics.bootstrap_ci(
        metrics.pearson, (y_true, y_pred), kb, n_resamples=300, axis=0
    )
    assert ci.estimate.shape == ci.low.shape == ci.high.shape == (40,)
    assert bool(jnp.all(ci.low < ci.estimate)) and bool(jnp.all(ci.estimate < ci.high))
    # Chunked evaluation draws the same resamples, so it gives the same interval.
    chunked = metrics.bootstrap_ci(
        metrics.pearson, (y_true, y_pred), kb, n_resamples=300, axis=0, batch_size=64
    )
    np.testing.assert_allclose(np.asarray(chunked.low), np.asarray(ci.low), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(chunked.high), np.asarray(ci.high), rtol=1e-5)


def test_loop_fallback_matches_vectorized_with_same_key(key):
    kx, kn, kb = jax.random.split(key, 3)
    x = jax.random.normal(kx, (60,))
    y = x + jax.random.normal(kn, (60,))

    def scipy_r(a, b):
        return scipy.stats.pearsonr(a, b).statistic

    looped = metrics.bootstrap_ci(scipy_r, (x, y), kb, n_resamples=100, vectorized=False)
    vectorized = metrics.bootstrap_ci(metrics.pearson, (x, y), kb, n_resamples=100)
    np.testing.assert_allclose(float(looped.estimate), float(vectorized.estimate), rtol=1e-5)
    np.testing.assert_allclose(float(looped.low), float(vectorized.low), rtol=1e-4)
    np.testing.assert_allclose(float(looped.high), float(vectorized.high), rtol=1e-4)


def test_nan_resamples_are_ignored(key):
    # y is constant except two items, so many resamples give a NaN correlation.
    x = jax.random.normal(key, (10,))
    y = jnp.zeros(10).at[jnp.array([2, 7])].set(jnp.array([1.0, 2.0]))
    ci = metrics.bootstrap_ci(metrics.pearson, (x, y), key, n_resamples=200)
    assert np.isfinite(float(ci.low)) and np.isfinite(float(ci.high))
    assert float(ci.low) <= float(ci.high)


def test_coverage_of_mean_is_roughly_nominal(key):
    repeats, n, true_mean = 200, 30, 1.0
    kd, kb = jax.random.split(key)
    datasets = true_mean + jax.random.normal(kd, (repeats, n))
    keys = jax.random.split(kb, repeats)

    def interval(d, key):
        return metrics.bootstrap_ci(jnp.mean, d, key, n_resamples=200, level=0.95)

    cis = jax.jit(jax.vmap(interval))(datasets, keys)
    covered = float(jnp.mean((cis.low <= true_mean) & (true_mean <= cis.high)))
    assert 0.85 <= covered <= 0.99


def test_bad_arguments_name_the_problem(key):
    with pytest.raises(ValueError, match="level"):
        metrics.bootstrap_ci(jnp.mean, jnp.ones(5), key, level=95)
    with pytest.raises(ValueError, match="data arrays must share"):
        metrics.bootstrap_ci(metrics.pearson, (jnp.ones(5), jnp.ones(6)), key)
    with pytest.raises(ValueError, match="n_resamples"):
        metrics.bootstrap_ci(jnp.mean, jnp.ones(5), key, n_resamples=0)

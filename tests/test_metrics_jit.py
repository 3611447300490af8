"""The jittable metrics give the eager values under jax.jit and jax.vmap.

Runs at JAX's default float32; jit may fuse and reorder float ops, so comparisons
allow float32 rounding (rtol 1e-5). vmapped calls are also jitted: one compile is
much cheaper on CPU than op-by-op eager dispatch of the batched primitives.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emojax import metrics

RTOL, ATOL = 1e-5, 1e-6


def _scores(key, n=64, categories=40):
    kx, ky = jax.random.split(key)
    x = jax.random.randint(kx, (n, categories), 0, 8).astype(jnp.float32)
    y = jnp.clip(x + jax.random.randint(ky, (n, categories), -2, 3), 0, 7)
    return x, y


def _ratings(key, batch=6, raters=4, items=30):
    kv, km = jax.random.split(key)
    r = jax.random.randint(kv, (batch, raters, items), 0, 8).astype(jnp.float32)
    return jnp.where(jax.random.uniform(km, r.shape) < 0.2, jnp.nan, r)


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("fn", [metrics.pearson, metrics.spearman, metrics.mae, metrics.rmse])
def test_correlations_jit_and_vmap_match_eager(fn, key):
    x, y = _scores(key)
    eager = fn(x, y)
    assert eager.shape == (40,)
    _close(jax.jit(fn)(x, y), eager)
    # vmap over categories of the 1-D metric gives the per-category result.
    _close(jax.jit(jax.vmap(fn, in_axes=(1, 1)))(x, y), eager)
    # vmap over a batch of [n, 40] tables.
    xb, yb = jnp.stack([x, y[::-1]]), jnp.stack([y, x])
    _close(jax.jit(jax.vmap(fn))(xb, yb)[1], fn(y[::-1], x))


def test_constant_column_nan_under_jit():
    x = jnp.stack([jnp.arange(6.0), jnp.full(6, 3.0)], axis=1)
    r = jax.jit(metrics.spearman)(x, x[::-1])
    assert np.isfinite(r[0]) and np.isnan(r[1])


def test_qwk_jit_and_vmap_match_eager(key):
    x, y = _scores(key)
    a, b = x.astype(jnp.int32), y.astype(jnp.int32)
    eager = [float(metrics.quadratic_weighted_kappa(a[:, c], b[:, c])) for c in range(40)]
    _close(jax.jit(jax.vmap(metrics.quadratic_weighted_kappa, in_axes=(1, 1)))(a, b), eager)
    _close(jax.jit(metrics.per_category, static_argnums=0)(
        metrics.quadratic_weighted_kappa, a, b), eager)
    _close(jax.jit(metrics.quadratic_weighted_kappa)(a[:, 0], b[:, 0]), eager[0])


def test_to_levels_then_qwk_under_jit(key):
    x, _ = _scores(key, categories=1)
    preds = x[:, 0] + 0.4 * jax.random.normal(key, x[:, 0].shape)

    def score(p, t):
        return metrics.quadratic_weighted_kappa(metrics.to_levels(p), t.astype(jnp.int32))

    _close(jax.jit(score)(preds, x[:, 0]), score(preds, x[:, 0]))


def test_interval_alpha_jit_and_vmap_over_rater_matrices(key):
    ratings = _ratings(key, batch=3)
    eager = [float(metrics.krippendorff_alpha(r)) for r in ratings]
    _close(jax.jit(jax.vmap(metrics.krippendorff_alpha))(ratings), eager)
    _close(jax.jit(metrics.krippendorff_alpha)(ratings[0]), eager[0])


@pytest.mark.parametrize("level", ["nominal", "ordinal", "ratio", "interval"])
def test_domain_alpha_jit_with_explicit_values(level, key):
    ratings = _ratings(key, batch=2)
    values = jnp.arange(8.0)

    def alpha(r):
        return metrics.krippendorff_alpha(r, level=level, values=values)

    eager = [float(metrics.krippendorff_alpha(r, level=level)) for r in ratings]
    _close(jax.jit(jax.vmap(alpha))(ratings), eager)


def test_domain_alpha_without_values_under_jit_explains():
    with pytest.raises(ValueError, match="values"):
        jax.jit(lambda r: metrics.krippendorff_alpha(r, level="ordinal"))(jnp.ones((2, 3)))


def test_icc_cronbach_kendall_jit(key):
    x, y = _scores(key, n=30, categories=5)
    kinds = ("1,1", "2,1", "3,1", "1,k", "2,k", "3,k")

    def all_iccs(t):
        return jnp.stack([metrics.icc(t, kind) for kind in kinds])

    _close(jax.jit(all_iccs)(x), all_iccs(x))
    _close(jax.jit(metrics.cronbach_alpha)(x), metrics.cronbach_alpha(x))
    _close(jax.jit(metrics.kendall_tau)(x[:, 0], y[:, 0]), metrics.kendall_tau(x[:, 0], y[:, 0]))


def test_fleiss_jit_matches_eager(key):
    labels = jax.random.randint(key, (5, 20), 0, 4)
    counts = metrics.labels_to_counts(labels, 4)
    _close(jax.jit(metrics.fleiss_kappa)(counts), metrics.fleiss_kappa(counts))


def test_jitted_metrics_trace_once_per_shape(key):
    x, y = _scores(key)

    def spearman_metric(a, b):
        return metrics.spearman(a, b)

    def alpha_metric(r):
        return metrics.krippendorff_alpha(r)

    jitted = jax.jit(chex.assert_max_traces(spearman_metric, n=1))
    for shift in range(3):
        jitted(x + shift, y)  # new values, same shape: no retrace
    jitted_alpha = jax.jit(chex.assert_max_traces(alpha_metric, n=1))
    ratings = _ratings(key)
    for r in ratings:
        jitted_alpha(r)
    # The counter is live: a new shape forces a second trace, which it rejects.
    with pytest.raises(AssertionError):
        jitted(x[:10], y[:10])

"""Evaluation on real data: against held-out items' raters, with missing raters and categories.

Real data have no latent truth. The reference for an item is the mean of its human raters
(test split only: items never trained on), and items have different numbers of raters, so
ratings arrive as ``[items, max_raters, categories]`` padded with -1 (missing). Only the
categories a dataset covers are scored (GoEmotions covers 20 of the 40); ``<stat>_mean`` is
the mean over them, with a percentile bootstrap CI over items.

* ``spearman``, ``pearson``, ``mae``, ``rmse``: the model's raters'-scale prediction
  (what a rater would say, :mod:`emojax.models.link`) against the raters' mean; the
  reference is a mean of ratings, so the raters' scale is the like-for-like one.
  ``spearman_latent`` is the same correlation for the latent scale (absent as 0). A
  correlation is undefined (NaN, left out of the mean) where the raters' mean is constant
  over the items, and 0 where the model's prediction is (as in :mod:`.evaluate`).
* ``kappa_qw_model``: quadratic-weighted kappa of the model's rounded levels against the
  raters, from one confusion matrix over every (item, present rater) pair. EmoNet averages
  kappas over named annotators; pooling pairs weighs every rating once and needs no rater
  to have rated many items (GoEmotions' raters each saw a different subset).
* ``kappa_qw_human``: the same pooled over every pair of raters of an item, in both orders
  (a symmetric confusion matrix: "a rater against another rater of the same item").
* ``alpha_human``: Krippendorff's interval alpha, missing raters as NaN (alpha is defined
  for any number of raters per item; items with one rater are not pairable and drop out).

GoEmotions' raters answer 0/1, stored as 0 or 7. Between two such raters quadratic weights
on 0..7 give every disagreement the full weight 1 and every agreement 0, so
``kappa_qw_human`` is exactly Cohen's kappa of the binary marks (pooled over pairs), and
``alpha_human`` (interval, two values) equals nominal alpha. For the model, its level
0..7 is compared with 0 or 7: a 5 against a rater's 7 costs (2/7)^2 of a full
disagreement, so kappa rewards graded predictions that sit near the raters' side.

The bootstrap. A resample of items is the data with item multiplicities ``w`` (how often
each item was drawn), and every statistic here is written as a function of ``w``: weighted
sums for errors, correlations, kappa's confusion matrices and alpha's unit sums; for the
ranks of Spearman, each item's average rank among the drawn items from weight sums over one
sort of the full data (ties averaged as in ``scipy.stats.rankdata``). Sorting never happens
per resample, so 1,000 resamples of GoEmotions' 11,600-item test split are a few batched
matrix products, and the point estimate is the same function at ``w = 1`` (tested equal to
evaluating the resampled rows, and to scipy / scikit-learn / krippendorff).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from emojax import metrics, taxonomy

LEVELS = taxonomy.NUM_LEVELS
STATISTICS = (
    "spearman", "pearson", "mae", "rmse", "kappa_qw_model", "kappa_qw_human", "alpha_human", "spearman_latent",
)  # fmt: skip
CHUNK_BUDGET = 1 << 22  # item x category entries per resample chunk (x a few floats each)


def reference(ratings: jax.Array) -> jax.Array:
    """[N, C] mean of the present ratings (-1 = missing) of [N, K, C]."""
    present = ratings >= 0
    total = jnp.sum(jnp.where(present, ratings, 0).astype(jnp.float32), axis=1)
    return total / jnp.maximum(jnp.sum(present, axis=1), 1).astype(jnp.float32)


def level_counts(ratings: jax.Array) -> jax.Array:
    """[N, C, 8] how many present raters of each item gave each level (-1 counts nowhere)."""
    return jnp.sum(jax.nn.one_hot(ratings, LEVELS), axis=1)


def _wsum(w: jax.Array, x: jax.Array) -> jax.Array:
    """Sum over items (axis 0) weighted by multiplicities w [N]."""
    return jnp.tensordot(w, x, axes=1)


def _ranks_1d(v: jax.Array, w: jax.Array) -> jax.Array:
    """Average 1-based rank of each item among the drawn ones (item i drawn w_i times)."""
    n = v.shape[0]
    order = jnp.argsort(v)  # independent of w: computed once under vmap over w
    s = v[order]
    pos = jnp.arange(n)
    differs = s[1:] != s[:-1]
    first = jax.lax.cummax(jnp.where(jnp.concatenate([jnp.array([True]), differs]), pos, 0), axis=0)
    last = jax.lax.cummin(jnp.where(jnp.concatenate([differs, jnp.array([True])]), pos, n), axis=0, reverse=True)
    ws = w[order]
    cw = jnp.cumsum(ws)
    below = cw[first] - ws[first]
    ties = cw[last] - below
    return (below + (ties + 1.0) / 2.0)[jnp.argsort(order)]


def _ranks(x: jax.Array, w: jax.Array) -> jax.Array:
    return jax.vmap(_ranks_1d, in_axes=(1, None), out_axes=1)(x, w)


def _constant(x: jax.Array, w: jax.Array) -> jax.Array:
    """[C] whether a column takes one value over the drawn items (checked exactly)."""
    drawn = (w > 0)[:, None]
    return jnp.max(jnp.where(drawn, x, -jnp.inf), axis=0) == jnp.min(jnp.where(drawn, x, jnp.inf), axis=0)


def _pearson(x: jax.Array, y: jax.Array, w: jax.Array) -> jax.Array:
    total = jnp.sum(w)
    xc = x - (_wsum(w, x) / total)[None, :]
    yc = y - (_wsum(w, y) / total)[None, :]
    cov, vx, vy = _wsum(w, xc * yc), _wsum(w, xc * xc), _wsum(w, yc * yc)
    degenerate = _constant(x, w) | _constant(y, w)
    r = jnp.clip(cov / jnp.sqrt(jnp.where(degenerate, 1.0, vx * vy)), -1.0, 1.0)
    return jnp.where(degenerate, jnp.nan, r)


def _qwk(observed: jax.Array) -> jax.Array:
    """[C] QWK of confusion matrices [C, 8, 8]; NaN where undefined (no expected disagreement)."""
    row, col = jnp.sum(observed, axis=2), jnp.sum(observed, axis=1)
    total = jnp.maximum(jnp.sum(observed, axis=(1, 2)), 1.0)
    expected = row[:, :, None] * col[:, None, :] / total[:, None, None]
    levels = jnp.arange(LEVELS, dtype=jnp.float32)
    weights = (jnp.square(levels[:, None] - levels[None, :]) / (LEVELS - 1) ** 2)[None]
    num, den = jnp.sum(weights * observed, axis=(1, 2)), jnp.sum(weights * expected, axis=(1, 2))
    return jnp.where(den > 0, 1.0 - num / jnp.where(den > 0, den, 1.0), jnp.nan)


def _alpha_1d(x: jax.Array, w: jax.Array) -> jax.Array:
    """Interval alpha of [N, K] (NaN = missing), unit n drawn w_n times: the closed form of
    :func:`emojax.metrics.krippendorff_alpha` with weighted unit sums. (Alpha is
    shift-invariant: centring on the undrawn data's mean keeps the unit sums, which do not
    depend on w, out of the resample loop.)"""
    mask = ~jnp.isnan(x)
    m = jnp.sum(mask, axis=1).astype(jnp.float32)
    center = jnp.sum(jnp.where(mask, x, 0.0)) / jnp.maximum(jnp.sum(m), 1.0)
    xc = jnp.where(mask, x - center, 0.0)
    s1, s2 = jnp.sum(xc, axis=1), jnp.sum(xc * xc, axis=1)
    pairable = m >= 2
    within = 2.0 * (m * s2 - s1 * s1) / jnp.where(pairable, m - 1.0, 1.0)
    units = jnp.stack([within, m, s1, s2], axis=1) * pairable[:, None]  # [N, 4]
    sum_o, n, p1, p2 = _wsum(w, units)
    sum_e = 2.0 * (n * p2 - p1 * p1)
    return jnp.where(sum_e > 0, 1.0 - (n - 1.0) * sum_o / jnp.where(sum_e > 0, sum_e, 1.0), jnp.nan)


def statistics(rated: jax.Array, latent: jax.Array, ratings: jax.Array, w: jax.Array) -> jax.Array:
    """[len(STATISTICS), C] every figure of the module docstring, items drawn w [N] times.

    ``w = 1`` gives the figures of the data themselves.
    """
    t = reference(ratings)
    total = jnp.sum(w)
    truth_constant = _constant(t, w)[None, :]

    def defined(r):  # NaN where the reference is constant, 0 where the prediction is
        return jnp.where(truth_constant[0], jnp.nan, jnp.where(jnp.isnan(r), 0.0, r))

    rank_t = _ranks(t, w)
    counts = level_counts(ratings)
    model = jax.nn.one_hot(metrics.to_levels(rated), LEVELS)
    pairs_model = jnp.einsum("ncl,ncm->nclm", model, counts)  # independent of w
    pairs_human = jnp.einsum("ncl,ncm->nclm", counts, counts) - counts[..., None] * jnp.eye(LEVELS)[None, None]
    x = jnp.where(ratings >= 0, ratings.astype(jnp.float32), jnp.nan)
    return jnp.stack([
        defined(_pearson(_ranks(rated, w), rank_t, w)),
        defined(_pearson(rated, t, w)),
        _wsum(w, jnp.abs(rated - t)) / total,
        jnp.sqrt(_wsum(w, jnp.square(rated - t)) / total),
        _qwk(_wsum(w, pairs_model)),
        _qwk(_wsum(w, pairs_human)),
        jax.vmap(_alpha_1d, in_axes=(2, None))(x, w),
        defined(_pearson(_ranks(latent, w), rank_t, w)),
    ])  # fmt: skip


_POINT = jax.jit(statistics)
_BATCH = jax.jit(jax.vmap(statistics, in_axes=(None, None, None, 0)))


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    """Mean of each row over its finite entries (NaN for a row with none), without warnings."""
    ok = np.isfinite(values)
    count = ok.sum(axis=-1)
    total = np.where(ok, values, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def bootstrap_means(data: tuple, key: jax.Array, n_resamples: int) -> np.ndarray:
    """[n_resamples, len(STATISTICS)] category means on item resamples.

    The indices are drawn as :func:`emojax.metrics.bootstrap_samples` draws them; resamples
    run in equal chunks (one compile) sized to :data:`CHUNK_BUDGET`.
    """
    n, c = data[0].shape
    idx = jax.random.randint(key, (n_resamples, n), 0, n)
    w = jax.vmap(lambda i: jnp.zeros(n, jnp.float32).at[i].add(1.0))(idx)
    chunk = max(1, min(n_resamples, CHUNK_BUDGET // max(n * c, 1)))
    pad = -n_resamples % chunk
    w = jnp.concatenate([w, w[:pad]]) if pad else w
    out = [np.asarray(_BATCH(*data, w[i : i + chunk])) for i in range(0, len(w), chunk)]
    return _nanmean_rows(np.concatenate(out)[:n_resamples])


def _percentiles(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the percentile interval over the finite samples (NaN where none)."""
    low, high = np.full(samples.shape[1], np.nan), np.full(samples.shape[1], np.nan)
    tail = 100.0 * (1.0 - level) / 2.0
    for j in range(samples.shape[1]):
        col = samples[:, j][np.isfinite(samples[:, j])]
        if len(col):
            low[j], high[j] = np.percentile(col, [tail, 100.0 - tail])
    return low, high


def covered_index(covered: list[str]) -> np.ndarray:
    return np.array([taxonomy.INDEX[c] for c in covered], np.int32)


def _data(rated, latent, ratings, covered: list[str]) -> tuple:
    idx = covered_index(covered)
    return (
        jnp.asarray(np.asarray(rated)[:, idx], jnp.float32),
        jnp.asarray(np.asarray(latent)[:, idx], jnp.float32),
        jnp.asarray(np.asarray(ratings)[:, :, idx], jnp.int32),
    )


def evaluate(rated, latent, ratings, covered: list[str], key: jax.Array, n_bootstrap: int, *, with_ci: bool = True) -> dict:
    """Figures for ``eval.json`` over the ``covered`` categories (module docstring).

    Args:
      rated, latent: [N, 40] predictions on the raters' and the latent scale.
      ratings: [N, K, 40] human ratings of the same items, -1 where missing.
      covered: the category names scored.
      key, n_bootstrap: the bootstrap's key and resamples (``with_ci=False``: no CIs).

    Returns:
      ``num_items``, ``covered_categories``, ``<stat>_mean`` (mean over the covered
      categories where defined; NaN if nowhere), ``<stat>_mean_ci`` (95% percentile
      interval) with ``with_ci``, and ``per_category``.
    """
    data = _data(rated, latent, ratings, covered)
    values = np.asarray(_POINT(*data, jnp.ones(data[0].shape[0], jnp.float32)))
    means = _nanmean_rows(values)
    out: dict = {"num_items": int(data[0].shape[0]), "covered_categories": list(covered)}
    if with_ci:
        low, high = _percentiles(bootstrap_means(data, key, n_bootstrap))
    for i, name in enumerate(STATISTICS):
        out[f"{name}_mean"] = float(means[i])
        if with_ci:
            out[f"{name}_mean_ci"] = [float(low[i]), float(high[i])]
    out["per_category"] = {c: {name: float(values[i, j]) for i, name in enumerate(STATISTICS)} for j, c in enumerate(covered)}
    return out


def quick(rated, ratings, covered: list[str]) -> dict:
    """Figures for learning curves (no CIs): Spearman and MAE against the raters' mean
    (the same compiled function as :func:`evaluate`: no extra compile)."""
    data = _data(rated, rated, ratings, covered)
    means = _nanmean_rows(np.asarray(_POINT(*data, jnp.ones(data[0].shape[0], jnp.float32))))
    return {"eval_spearman_mean": float(means[STATISTICS.index("spearman")]), "eval_mae_mean": float(means[STATISTICS.index("mae")])}

"""Evaluation of an estimator against the world's latent intensities and against raters.

Following EmoNet's protocol: per category, correlation and error against the truth (here
the simulator's latent intensities, which no estimator ever trains on) of the model's
latent-scale predictions; quadratic-weighted kappa of its raters'-scale predictions
(:mod:`emojax.models.link`; the same values for a model without a link), rounded, against
each rater, averaged over raters, beside
the raters' kappa against each other (EmoNet's "expert-level" comparison); the raters'
interval alpha. Means over the 40 categories get bootstrap CIs over items.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from emojax import metrics, taxonomy
from emojax.world import language

# The headline figures of an evaluation (each with its ``_ci``), in the order reports show them.
MAIN_KEYS = ("spearman_mean", "pearson_mean", "mae_mean", "rmse_mean", "kappa_qw_model_mean", "kappa_qw_human_mean",
             "alpha_human_mean")


def predict_all(predict: Callable, tokens: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predictions [N, 40] in batches of a fixed size (the last one padded), one compile."""
    fn = jax.jit(predict)
    out = []
    for i in range(0, len(tokens), batch_size):
        chunk = tokens[i : i + batch_size]
        n = len(chunk)
        if n < batch_size:
            chunk = np.concatenate([chunk, np.zeros((batch_size - n,) + chunk.shape[1:], chunk.dtype)])
        out.append(np.asarray(fn(chunk, language.mask(chunk)))[:n])
    return np.concatenate(out)


# Per-category statistics of (pred, rated, latent, ratings): the model's latent-scale and
# raters'-scale predictions [N, 40], the truth [N, 40], the ratings [N, K, 40]. Each takes
# items on axis 0 so the bootstrap can resample them.
def _ranked(r):
    # A category the model never reports (constant predictions, e.g. all absent) orders
    # nothing: its correlation is undefined, and counts as 0 rather than leaving the mean.
    return jnp.where(jnp.isnan(r), 0.0, r)


def spearman(pred, rated, latent, ratings):
    return _ranked(metrics.spearman(pred, latent))


def pearson(pred, rated, latent, ratings):
    return _ranked(metrics.pearson(pred, latent))


def mae(pred, rated, latent, ratings):
    return metrics.mae(pred, latent)


def rmse(pred, rated, latent, ratings):
    return metrics.rmse(pred, latent)


def _qwk_columns(a, b):
    """QWK of matching columns of a, b [N, 40] -> [40]."""
    return jax.vmap(lambda x, y: metrics.quadratic_weighted_kappa(x, y), in_axes=(1, 1))(a, b)


def kappa_model(pred, rated, latent, ratings):
    """[40] QWK of the model's levels (raters' scale) against each rater, averaged over raters."""
    levels = metrics.to_levels(rated)
    per_rater = jnp.stack([_qwk_columns(levels, ratings[:, r]) for r in range(ratings.shape[1])])
    return jnp.nanmean(per_rater, axis=0)


def kappa_human(pred, rated, latent, ratings):
    """[40] QWK between each pair of raters, averaged over pairs."""
    pairs = list(itertools.combinations(range(ratings.shape[1]), 2))
    return jnp.nanmean(jnp.stack([_qwk_columns(ratings[:, i], ratings[:, j]) for i, j in pairs]), axis=0)


def alpha_human(pred, rated, latent, ratings):
    """[40] the raters' interval alpha per category."""
    return jax.vmap(metrics.krippendorff_alpha, in_axes=2)(jnp.swapaxes(ratings, 0, 1).astype(jnp.float32))


STATISTICS = {
    "spearman": spearman, "pearson": pearson, "mae": mae, "rmse": rmse,
    "kappa_qw_model": kappa_model, "kappa_qw_human": kappa_human, "alpha_human": alpha_human,
}  # fmt: skip


def _mean_of(stat):
    def mean(*data):
        return jnp.nanmean(stat(*data))

    mean.__name__ = f"mean_{stat.__name__}"
    return mean


_MEANS = {name: _mean_of(fn) for name, fn in STATISTICS.items()}


def evaluate(
    pred: np.ndarray, latent: np.ndarray, ratings: np.ndarray, key: jax.Array, n_bootstrap: int, rated: np.ndarray | None = None
) -> dict:
    """All figures for ``eval.json``: ``<stat>_mean`` with ``<stat>_mean_ci``, and per category.

    ``pred`` is on the latent scale; ``rated``, on the raters' scale, defaults to ``pred``.
    """
    rated = pred if rated is None else rated
    data = tuple(jnp.asarray(x, jnp.float32) for x in (pred, rated, latent)) + (jnp.asarray(ratings, jnp.int32),)
    out: dict = {"num_items": int(len(pred))}
    per_category: dict = {c: {} for c in taxonomy.CATEGORIES}
    for i, (name, fn) in enumerate(STATISTICS.items()):
        values = np.asarray(fn(*data))
        for c, v in zip(taxonomy.CATEGORIES, values):
            per_category[c][name] = float(v)
        ci = metrics.bootstrap_ci(_MEANS[name], data, jax.random.fold_in(key, i), n_resamples=n_bootstrap, axis=0, batch_size=25)
        out[f"{name}_mean"] = float(np.nanmean(values))
        out[f"{name}_mean_ci"] = [float(ci.low), float(ci.high)]
    out["per_category"] = per_category
    return out


def quick(pred: np.ndarray, latent: np.ndarray) -> dict:
    """Cheap figures for learning curves (no raters, no CIs)."""
    p, t = jnp.asarray(pred), jnp.asarray(latent)
    return {"eval_spearman_mean": float(jnp.mean(_ranked(metrics.spearman(p, t)))), "eval_mae_mean": float(jnp.mean(metrics.mae(p, t)))}

"""Percentile bootstrap confidence intervals over items.

Agreement and correlation figures on a few hundred clips are noisy, so every
reported metric gets an interval. Items (clips) are resampled with replacement;
raters and categories stay fixed, which is the uncertainty we care about when a
benchmark is a sample of clips.

Resampling indices come from an explicit ``jax.random`` key, so an interval is
reproducible from its key alone. For jittable statistics all resamples are evaluated
at once with ``jax.vmap`` (or in ``lax.map`` chunks of ``batch_size`` resamples to
bound memory); ``vectorized=False`` falls back to a Python loop over numpy arrays for
statistics that cannot be traced (e.g. scipy-based ones).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["CI", "bootstrap_ci", "bootstrap_samples"]


class CI(NamedTuple):
    """A point estimate with its percentile bootstrap interval (same shapes)."""

    estimate: jax.Array
    low: jax.Array
    high: jax.Array


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _resampled_statistics(
    statistic: Callable, arrays: tuple, indices: jax.Array, axis: int, batch_size
) -> jax.Array:
    """Evaluates ``statistic`` on every resample in one compiled computation."""

    def one(idx):
        return jnp.asarray(statistic(*(jnp.take(a, idx, axis=axis) for a in arrays)))

    if batch_size is None:
        return jax.vmap(one)(indices)
    return jax.lax.map(one, indices, batch_size=batch_size)


def _looped_statistics(
    statistic: Callable, arrays: tuple, indices: jax.Array, axis: int
) -> jax.Array:
    """Evaluates a non-traceable ``statistic`` resample by resample on numpy arrays."""
    np_arrays = tuple(np.asarray(a) for a in arrays)
    results = [
        np.asarray(statistic(*(np.take(a, idx, axis=axis) for a in np_arrays)))
        for idx in np.asarray(indices)
    ]
    return jnp.asarray(np.stack(results))


def bootstrap_ci(
    statistic: Callable,
    data,
    key: jax.Array,
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    axis: int = -1,
    vectorized: bool = True,
    batch_size: int | None = None,
) -> CI:
    """Percentile bootstrap interval of ``statistic`` over resampled items.

    Args:
      statistic: Function of the data returning a scalar or an array (e.g. ``[40]``
        per-category values); called as ``statistic(data)`` or, for a tuple,
        ``statistic(*data)``. Must be jittable/vmappable unless ``vectorized=False``.
      data: An array, or a tuple of arrays that share the resampled (item) axis,
        e.g. ``(y_true, y_pred)``; the same item indices are drawn for all of them,
        keeping pairs aligned.
      key: ``jax.random`` key; the same key gives the same interval.
      n_resamples: Number of bootstrap resamples.
      level: Confidence level in (0, 1); the interval is the
        [(1-level)/2, (1+level)/2] percentiles of the resampled statistics.
      axis: The item axis of every array in ``data``.
      vectorized: Evaluate resamples with ``jax.vmap`` (True) or a Python loop on
        numpy arrays (False, for non-jittable statistics).
      batch_size: With ``vectorized``, evaluate this many resamples at a time via
        ``jax.lax.map`` to bound memory; None evaluates all at once.

    Returns:
      ``CI(estimate, low, high)``: the statistic on the full data and the interval,
      each shaped like the statistic's output. Resamples where the statistic is NaN
      (e.g. a resample with a constant column) are ignored (``nanpercentile``); if
      all are NaN the bound is NaN.

    Raises:
      ValueError: bad ``level`` or ``n_resamples``, an ``axis`` out of range for
        one of the ``data`` arrays, or ``data`` arrays that disagree on the length
        of ``axis``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    estimate, stats = bootstrap_samples(
        statistic, data, key, n_resamples=n_resamples, axis=axis, vectorized=vectorized, batch_size=batch_size
    )
    tail = 100.0 * (1.0 - level) / 2.0
    stats = stats.astype(jnp.result_type(stats.dtype, float))
    low = jnp.nanpercentile(stats, tail, axis=0)
    high = jnp.nanpercentile(stats, 100.0 - tail, axis=0)
    return CI(estimate=estimate, low=low, high=high)


def bootstrap_samples(
    statistic: Callable,
    data,
    key: jax.Array,
    *,
    n_resamples: int = 1000,
    axis: int = -1,
    vectorized: bool = True,
    batch_size: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """The statistic on the full data and on each of ``n_resamples`` item resamples.

    The building block of :func:`bootstrap_ci` (same arguments), for callers that combine
    resamples themselves, e.g. a two-level bootstrap over rater panels and items.

    Returns:
      ``(estimate, samples)``: ``samples`` has a leading axis of size ``n_resamples``.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    arrays = tuple(data) if isinstance(data, tuple) else (data,)
    if not arrays:
        raise ValueError("data must be an array or a non-empty tuple of arrays")
    if vectorized:
        arrays = tuple(jnp.asarray(a) for a in arrays)
    for i, a in enumerate(arrays):
        shape = np.shape(a)
        if not -len(shape) <= axis < len(shape):
            which = f"data[{i}]" if isinstance(data, tuple) else "data"
            raise ValueError(
                f"axis={axis} is out of range for {which} with shape {shape} "
                f"(ndim={len(shape)})"
            )
    lengths = {np.shape(a)[axis] for a in arrays}
    if len(lengths) != 1:
        raise ValueError(
            f"data arrays must share the length of axis {axis}, got lengths {sorted(lengths)}"
        )
    n_items = lengths.pop()
    indices = jax.random.randint(key, (n_resamples, n_items), 0, n_items)

    if vectorized:
        estimate = jnp.asarray(statistic(*arrays))
        stats = _resampled_statistics(statistic, arrays, indices, axis, batch_size)
    else:
        estimate = jnp.asarray(statistic(*(np.asarray(a) for a in arrays)))
        stats = _looped_statistics(statistic, arrays, indices, axis)

    return estimate, stats

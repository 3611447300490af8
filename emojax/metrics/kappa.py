"""Chance-corrected agreement on discrete levels: weighted Cohen's and Fleiss' kappa.

EmoNet-style benchmarks score a model by quantising its continuous intensity
predictions to integer levels and computing quadratic-weighted kappa against the
reference levels. :func:`to_levels` does the quantisation, and
:func:`quadratic_weighted_kappa` builds the confusion matrix from one-hot matmuls so
it stays shape-static (jittable, vmappable over categories or batches).

:func:`fleiss_kappa` measures agreement among many raters on nominal categories. Its
input check (every subject rated by the same number of raters) needs concrete values,
so it is skipped while tracing; the arithmetic itself is jittable.

As elsewhere in this package, the arithmetic sits in private ``jax.jit`` kernels
behind wrappers that validate arguments, so eager calls compile one program.

Precision: float32 agrees with scikit-learn / statsmodels to about 1e-5; the tests
compare to 1e-6 under ``jax.enable_x64``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from emojax.metrics._checks import count_note, describe_first

__all__ = ["fleiss_kappa", "labels_to_counts", "quadratic_weighted_kappa", "to_levels"]

_LEVEL_MODES = ("round", "truncate")


def to_levels(x, num_levels: int = 8, mode: str = "round") -> jax.Array:
    """Maps continuous intensity predictions to integer levels ``0..num_levels-1``.

    We round to the nearest level (``jnp.round``: halves go to the even level, as in
    numpy), because a prediction of 2.9 is closer to level 3 than to 2. EmoNet's
    evaluation notebook instead truncates with ``int()``; ``mode="truncate"``
    reproduces that (toward zero, then clipped) so published numbers can be matched.
    Finite values outside the range are clipped to the end levels either way; NaN
    and +/-inf have no level and raise ``ValueError`` on concrete inputs (under
    ``jit``/``vmap`` they cannot be checked: +/-inf then clips to an end level and
    NaN gives an unspecified level).

    Args:
      x: Continuous predictions, any shape.
      num_levels: Number of levels K; outputs lie in ``0..K-1``.
      mode: ``"round"`` (default) or ``"truncate"``.

    Returns:
      int32 levels with the shape of ``x``.

    Raises:
      ValueError: unknown ``mode``, ``num_levels < 1``, or a concrete ``x`` holding
        NaN or +/-inf (the message names the first such position).
    """
    if mode not in _LEVEL_MODES:
        raise ValueError(f"mode must be one of {_LEVEL_MODES}, got {mode!r}")
    if num_levels < 1:
        raise ValueError(f"num_levels must be >= 1, got {num_levels}")
    x = jnp.asarray(x)
    x = x.astype(jnp.result_type(x.dtype, float))
    if not isinstance(x, jax.core.Tracer):
        v = np.asarray(x)
        bad = ~np.isfinite(v)
        if bad.any():
            raise ValueError(
                f"x must be finite to map to levels; {describe_first('x', v, bad)} is "
                f"not finite {count_note(bad, 'non-finite')}"
            )
    q = jnp.round(x) if mode == "round" else jnp.trunc(x)
    return jnp.clip(q, 0, num_levels - 1).astype(jnp.int32)


def quadratic_weighted_kappa(a, b, num_levels: int = 8) -> jax.Array:
    """Cohen's kappa with quadratic weights between two raters' integer levels.

    kappa = 1 - sum(w * O) / sum(w * E) with w_ij = (i - j)^2 / (K - 1)^2, O the
    observed confusion matrix and E the outer product of the two marginals scaled to
    the same total. All K levels count even if unused, matching
    ``sklearn.metrics.cohen_kappa_score(a, b, weights="quadratic", labels=range(K))``.

    Degenerate case: if both raters put every item in one and the same level,
    sum(w * E) = 0 and kappa is undefined; we return NaN, as scikit-learn does (its
    default ``replace_undefined_by=np.nan``, with a warning we do not emit).

    Levels outside ``0..K-1`` (or NaN) raise ``ValueError`` on concrete inputs. Under
    ``jit`` they cannot be checked and would silently drop out; quantise with
    :func:`to_levels` first.

    Args:
      a: 1-D integer levels of rater A (integer-valued floats also work).
      b: 1-D integer levels of rater B, same length.
      num_levels: Number of levels K (>= 2).

    Returns:
      Scalar kappa in float (NaN in the degenerate case).
    """
    a = jnp.asarray(a)
    b = jnp.asarray(b)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"a and b must be 1-D of equal length, got shapes {a.shape} and {b.shape}"
        )
    if num_levels < 2:
        raise ValueError(f"num_levels must be >= 2, got {num_levels}")
    for name, x in (("a", a), ("b", b)):
        _check_levels(name, x, num_levels)
    return _qwk(a, b, num_levels)


def _check_levels(name: str, x: jax.Array, num_levels: int) -> None:
    """Rejects concrete levels outside 0..num_levels-1 (tracers pass unchecked)."""
    if isinstance(x, jax.core.Tracer):
        return
    v = np.asarray(x)
    bad = ~np.isfinite(v) | (v < 0) | (v > num_levels - 1) | (v != np.round(v))
    if bad.any():
        raise ValueError(
            f"{name} must hold integer levels in 0..{num_levels - 1}; {describe_first(name, v, bad)} "
            f"{count_note(bad)}; quantise continuous values with to_levels()"
        )


@functools.partial(jax.jit, static_argnums=2)
def _qwk(a: jax.Array, b: jax.Array, num_levels: int) -> jax.Array:
    """QWK kernel: one-hot confusion matrix, weighted observed / expected."""
    dtype = jnp.result_type(float)
    one_a = jax.nn.one_hot(a, num_levels, dtype=dtype)
    one_b = jax.nn.one_hot(b, num_levels, dtype=dtype)
    observed = one_a.T @ one_b
    row = jnp.sum(observed, axis=1)
    col = jnp.sum(observed, axis=0)
    total = jnp.sum(observed)
    expected = jnp.outer(row, col) / jnp.where(total > 0, total, 1.0)
    levels = jnp.arange(num_levels, dtype=dtype)
    weights = jnp.square(levels[:, None] - levels[None, :]) / (num_levels - 1) ** 2
    num = jnp.sum(weights * observed)
    den = jnp.sum(weights * expected)
    safe_den = jnp.where(den > 0, den, 1.0)
    return jnp.where(den > 0, 1.0 - num / safe_den, jnp.nan)


def labels_to_counts(labels, num_categories: int) -> jax.Array:
    """Turns per-rater labels into the per-subject category counts Fleiss' kappa uses.

    Args:
      labels: Integer labels shaped ``[raters, items]`` in ``0..num_categories-1``
        (integer-valued floats also work). Out-of-range, non-integer or NaN labels
        raise ``ValueError`` naming the first one (on concrete inputs; under ``jit``
        they would contribute nothing).
      num_categories: Number of categories.

    Returns:
      ``[items, num_categories]`` counts (float).
    """
    labels = jnp.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2-D [raters, items], got ndim={labels.ndim}")
    if not isinstance(labels, jax.core.Tracer):
        v = np.asarray(labels)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(v) | (v < 0) | (v >= num_categories) | (v != np.round(v))
        if bad.any():
            raise ValueError(
                f"labels must be integers in 0..{num_categories - 1}; "
                f"{describe_first('labels', v, bad)} {count_note(bad)}"
            )
        if not jnp.issubdtype(labels.dtype, jnp.integer):
            # Validated integer values: cast so one_hot gets the integer dtype it wants.
            labels = labels.astype(jnp.int32)
    return jnp.sum(jax.nn.one_hot(labels, num_categories), axis=0)


def _check_counts(counts: jax.Array) -> None:
    """Validates a concrete counts table; skipped while tracing (values unknown)."""
    if counts.ndim != 2:
        raise ValueError(
            f"counts must be 2-D [subjects, categories], got ndim={counts.ndim}"
        )
    if isinstance(counts, jax.core.Tracer):
        return
    c = np.asarray(counts)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(c) | (c < 0) | (c != np.round(c))
    if bad.any():
        raise ValueError(
            "counts must be finite non-negative integers (raters per category); "
            f"{describe_first('counts', c, bad)} {count_note(bad)}"
        )
    totals = c.sum(axis=1)
    if not np.all(totals == totals[0]):
        raise ValueError(
            "counts rows must all sum to the same number of raters; got row totals "
            f"ranging from {totals.min()} to {totals.max()}"
        )
    if totals[0] < 2:
        raise ValueError(f"counts rows must sum to at least 2 raters, got {totals[0]}")


def fleiss_kappa(counts) -> jax.Array:
    """Fleiss' kappa for many raters assigning subjects to nominal categories.

    kappa = (P_bar - P_e) / (1 - P_e), where P_bar is the mean over subjects of the
    fraction of agreeing rater pairs and P_e = sum_j p_j^2 uses the pooled category
    proportions. Matches ``statsmodels.stats.inter_rater.fleiss_kappa``.

    Degenerate case: if every rating falls in one category, P_e = 1 and kappa is
    0/0; we return NaN.

    Args:
      counts: ``[subjects, categories]`` counts; every row must sum to the same
        number of raters n >= 2 (build it with :func:`labels_to_counts`).

    Returns:
      Scalar kappa.

    Raises:
      ValueError: if ``counts`` is not 2-D, has entries that are not finite
        non-negative integers (the message names the first), or its rows have
        unequal totals (value checks only for concrete inputs).
    """
    counts = jnp.asarray(counts)
    _check_counts(counts)
    return _fleiss(counts.astype(jnp.result_type(counts.dtype, float)))


@jax.jit
def _fleiss(counts: jax.Array) -> jax.Array:
    """Fleiss kernel on a validated float counts table."""
    n_subjects = counts.shape[0]
    n_raters = jnp.sum(counts[0])
    p_j = jnp.sum(counts, axis=0) / (n_subjects * n_raters)
    p_i = (jnp.sum(counts * counts, axis=1) - n_raters) / (n_raters * (n_raters - 1))
    p_bar = jnp.mean(p_i)
    p_e = jnp.sum(p_j * p_j)
    den = 1.0 - p_e
    safe_den = jnp.where(den != 0, den, 1.0)
    return jnp.where(den != 0, (p_bar - p_e) / safe_den, jnp.nan)

"""Signal-level stability: how much a measurement repeats itself, for every cell of the 2x2.

Why these three: a training signal is steady if asking again gives the same answer
(test-retest), if asking someone else gives the same answer (inter-judge ICC(2,1)), and if
asking in another frame gives the same answer (cross-frame). Each is computed on the
common footing of :func:`emojax.studies.stability.measure.pair_values` (one value per judge
and pair), so binary and graded cells and both signals are read by the same statistic:

* ``retest_icc`` / ``cross_frame_icc``: ICC(2,1) (absolute agreement) between the two asks
  over (item, judge) units;
* ``inter_judge_icc``: ICC(2,1) over items with the J judges as raters;
* ``retest_agreement`` / ``cross_frame_agreement``: the share of identical values (exact
  for binary cells; graded cells count the same sign, the comparable reading of a forced
  choice);
* ``raw_agreement``: the share of judge pairs on one item who give the same sign
  (InstructGPT's raw agreement for preference labels).

Abstentions are excluded pairwise (a judge who abstained on either ask leaves that unit
out). All functions are pure and jittable; the study vmaps them over seeds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from emojax import metrics

__all__ = ["METRICS", "signal_metrics"]

METRICS = ("retest_icc", "cross_frame_icc", "inter_judge_icc", "retest_agreement", "cross_frame_agreement",
           "raw_agreement")  # fmt: skip


def _weighted_icc(a: jax.Array, b: jax.Array, w: jax.Array) -> jax.Array:
    """ICC(2,1) of the two columns ``a``, ``b`` over units with weight ``w`` (0 or 1):
    dropped units are replaced by the kept units' mean in both columns, then the mean
    squares are rescaled to the kept count (exact for 0/1 weights)."""
    n = jnp.sum(w)
    mean = jnp.sum(w * (a + b)) / jnp.maximum(2 * n, 1)
    a = jnp.where(w > 0, a, mean)
    b = jnp.where(w > 0, b, mean)
    x = jnp.stack([a, b], axis=-1)
    rm = jnp.mean(x, axis=1)
    cm = jnp.sum(w[:, None] * x, axis=0) / jnp.maximum(n, 1)
    grand = jnp.mean(cm)
    msr = 2 * jnp.sum(w * jnp.square(rm - grand)) / jnp.maximum(n - 1, 1)
    msc = n * jnp.sum(jnp.square(cm - grand))
    resid = x - rm[:, None] - cm[None, :] + grand
    mse = jnp.sum(w[:, None] * jnp.square(resid)) / jnp.maximum(n - 1, 1)
    return (msr - mse) / (msr + mse + 2 * (msc - mse) / jnp.maximum(n, 1))


def _same(a, b):
    return (jnp.sign(a) == jnp.sign(b)).astype(jnp.float32)


def signal_metrics(ask: jax.Array, reask: jax.Array, swapped: jax.Array, abstained: jax.Array | None = None):
    """Stability of one cell from three asks, each ``[n, J]`` (pair values).

    Args:
      ask, reask, swapped: the first ask, a re-ask, and the ask under the swapped frame.
      abstained: ``[n, J]`` bool per ask, stacked ``[3, n, J]`` (None: nobody abstained).
    """
    if abstained is None:
        abstained = jnp.zeros((3,) + ask.shape, bool)
    kept = ~abstained
    w_re = (kept[0] & kept[1]).reshape(-1).astype(jnp.float32)
    w_sw = (kept[0] & kept[2]).reshape(-1).astype(jnp.float32)
    flat = lambda x: x.reshape(-1)  # noqa: E731
    mean_w = lambda x, w: jnp.sum(x * w) / jnp.maximum(jnp.sum(w), 1)  # noqa: E731
    j = ask.shape[1]
    same = _same(ask[:, :, None], ask[:, None, :])
    pair_w = (kept[0][:, :, None] & kept[0][:, None, :] & ~jnp.eye(j, dtype=bool)[None]).astype(jnp.float32)
    return {
        "retest_icc": _weighted_icc(flat(ask), flat(reask), w_re),
        "cross_frame_icc": _weighted_icc(flat(ask), flat(swapped), w_sw),
        "inter_judge_icc": metrics.icc(ask, "2,1"),
        "retest_agreement": mean_w(flat(_same(ask, reask)), w_re),
        "cross_frame_agreement": mean_w(flat(_same(ask, swapped)), w_sw),
        "raw_agreement": mean_w(same, pair_w),
    }

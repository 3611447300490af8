"""Output heads: how raw per-category outputs become intensities, and their losses.

An architecture emits ``raw`` of shape ``[batch, 40, outputs]``; the head fixes ``outputs`` and turns
``raw`` into intensities on [0, 7] (``predict``) and into a loss against targets
``[batch, 40]`` on [0, 7] (``loss``). Every loss takes a ``mask`` ([40] or [batch, 40]) so
that datasets covering only some categories train only those.

Absent is a value, not a small number: on EmoNet's 0-7 scale an intensity under half a
level rounds to 0, "absent", and most of the 40 categories are absent from any one item.
``predict`` therefore reports outputs under :data:`ABSENT_BELOW` as exactly 0, as raters
and the latent scale do. (A smooth near-zero output would order the many absent items at
random among themselves; with sparse truths that alone caps a per-category Spearman near
0.5 however well the present emotions are read.) Losses use the raw, smooth outputs.

Two scales. ``predict`` answers on the latent scale (what the text expresses, 0 = absent);
``ratings`` answers on the raters' scale (what a rater would say), which is what the
model is compared with when it is scored against raters. They differ only when the model
carries a rater link (:mod:`emojax.models.link`): its per-category offsets are then
appended to ``raw`` as the last :data:`LINK_CHANNELS` channel, and the regression head
fits ``offset + intensity`` to the ratings. Heads without ``uses_link`` ignore it.

* ``regression``: bounded regression, ``7 * sigmoid(z)``, squared error (through the rater
  link when the model has one);
* ``ordinal``: cumulative logits over the 8 levels, ``P(y > j) = sigmoid(a - t_j)`` with
  increasing thresholds ``t_j`` (so the probabilities are ordered by construction); the
  prediction is the expected level ``sum_j P(y > j)``; the loss is binary cross-entropy
  of each ``P(y > j)`` against ``clip(target - j, 0, 1)``, which is exact for integer
  targets and a soft version for rater means;
* ``single_label``: the baseline that assigns one label: a softmax over the 40 categories
  plus "no emotion" (fixed logit 0), trained with cross-entropy on the target's argmax
  ("no emotion" when every target is below 0.5); it predicts one category, at an intensity
  learned as the mean intensity of the dominant emotion.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from emojax import taxonomy

LEVELS = taxonomy.NUM_LEVELS
TOP = taxonomy.MAX_INTENSITY
ABSENT_BELOW = 0.5  # intensities under half a level round to 0 on the 0-7 scale
LINK_CHANNELS = 1  # the offset per category, appended by emojax.models.link


def absent_as_zero(x: jax.Array) -> jax.Array:
    return jnp.where(x < ABSENT_BELOW, 0.0, x)


def _masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    mask = jnp.broadcast_to(mask, x.shape).astype(x.dtype)
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def _regression_value(raw):
    return TOP * jax.nn.sigmoid(raw[..., 0])


def _regression_rating(raw):
    """The raters' expected rating: the link applied to the intensity, if there is a link."""
    value = _regression_value(raw)
    if raw.shape[-1] == 1:
        return value
    return raw[..., -1] + value


def _regression_predict(raw):
    return absent_as_zero(_regression_value(raw))


def _regression_ratings(raw):
    return jnp.clip(_regression_rating(raw), 0.0, TOP)


def _regression_loss(raw, target, mask):
    return _masked_mean(jnp.square(_regression_rating(raw) - target), mask)


def _cumulative_logits(raw):
    """[..., 7] logits of P(y > j), j = 0..6, decreasing in j."""
    base, steps = raw[..., :1], raw[..., 1:]
    thresholds = jnp.concatenate([jnp.zeros_like(base), jnp.cumsum(jax.nn.softplus(steps), axis=-1)], axis=-1)
    return base - thresholds


def _ordinal_value(raw):
    return jnp.sum(jax.nn.sigmoid(_cumulative_logits(raw)), axis=-1)


def _ordinal_predict(raw):
    return absent_as_zero(_ordinal_value(raw))


def _ordinal_loss(raw, target, mask):
    logits = _cumulative_logits(raw)
    j = jnp.arange(LEVELS - 1, dtype=target.dtype).reshape((1,) * target.ndim + (LEVELS - 1,))
    soft = jnp.clip(target[..., None] - j, 0.0, 1.0)
    bce = jnp.sum(jax.nn.softplus(logits) - soft * logits, axis=-1)  # -log-likelihood
    return _masked_mean(bce, mask)


def _single_logits(raw):
    logits = raw[..., 0]
    none = jnp.zeros(logits.shape[:-1] + (1,), logits.dtype)
    return jnp.concatenate([logits, none], axis=-1)  # [..., 41], last is "no emotion"


def _single_predict(raw):
    logits = _single_logits(raw[..., :1])
    top = jnp.argmax(logits, axis=-1)
    level = TOP * jax.nn.sigmoid(jnp.mean(raw[..., 1], axis=-1))  # learned dominant intensity
    return jax.nn.one_hot(top, taxonomy.NUM_CATEGORIES + 1)[..., :-1] * level[..., None]


def _single_loss(raw, target, mask):
    masked = jnp.where(jnp.broadcast_to(mask, target.shape) > 0, target, 0.0)
    label = jnp.where(jnp.max(masked, axis=-1) >= 0.5, jnp.argmax(masked, axis=-1), taxonomy.NUM_CATEGORIES)
    logits = _single_logits(raw[..., :1])
    ce = jnp.mean(jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, label[..., None], axis=-1)[..., 0])
    level = TOP * jax.nn.sigmoid(jnp.mean(raw[..., 1], axis=-1))
    dominant = jnp.max(masked, axis=-1)
    has = (dominant >= 0.5).astype(target.dtype)
    return ce + jnp.sum(has * jnp.square(level - dominant)) / jnp.maximum(jnp.sum(has), 1.0) / TOP**2


class Head(NamedTuple):
    name: str
    outputs_per_category: int
    predict: object  # raw [..., 40, outputs] -> [..., 40] latent scale, absent as 0
    loss: object  # (raw, target [..., 40], mask) -> scalar
    value: object  # raw -> [..., 40] smooth latent-scale intensity (no absent rounding)
    ratings: object  # raw -> [..., 40] on the raters' scale
    uses_link: bool = False  # reads a rater link's channels when the model has one


HEADS: dict[str, Head] = {
    "regression": Head("regression", 1, _regression_predict, _regression_loss, _regression_value, _regression_ratings, True),
    "ordinal": Head("ordinal", LEVELS - 1, _ordinal_predict, _ordinal_loss, _ordinal_value, _ordinal_predict),
    "single_label": Head("single_label", 2, _single_predict, _single_loss, _single_predict, _single_predict),
}


def get_head(name: str) -> Head:
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; expected one of {sorted(HEADS)}")
    return HEADS[name]

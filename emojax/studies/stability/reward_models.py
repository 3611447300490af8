"""Reward models over one reply representation: Bradley-Terry for preferences, regression
for emotion scores; ensembles and study seeds trained as one vmapped program.

Why: "a steadier signal" only matters if it makes a steadier *reward model*. Every cell of
the 2x2 trains the same Flax network (:class:`RewardModel`, a small MLP on the features of
:func:`emojax.studies.stability.reply_pairs.features`) with the loss its data calls for:

* ``bt``: pairs with a soft target ``p = P(A preferred)`` (the share of judges who chose A,
  or graded strengths mapped onto [0, 1]); loss ``BCE(sigmoid(r_A - r_B), p)``;
* ``regression``: one reply, the mean graded emotion judgment; loss MSE;
* ``logistic``: one reply, the share of judges who said the user felt better; loss
  ``BCE(sigmoid(r), p)``.

Training is full-batch AdamW in a ``lax.scan`` (small data: the whole set fits), a pure
function of (init key, data), so ``jax.vmap`` runs the members of an ensemble (different
init keys: Coste et al.'s "differ only by seed") and the study's seeds (different
measurements) in one compiled program. :func:`aggregate` combines members by mean, worst
case (min) or ``mean - lambda * variance`` (Coste et al., arXiv 2310.02743).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from emojax import config

__all__ = ["AGGREGATIONS", "LOSSES", "RewardModel", "RewardModelConfig", "aggregate", "fit_predict"]

LOSSES = ("bt", "regression", "logistic")
AGGREGATIONS = ("mean", "worst", "uncertainty")


@config.pytree_config
class RewardModelConfig:
    """Reward models of the study.

    Attributes:
      hidden: width of the hidden layer (0: linear).
      steps: full-batch optimisation steps.
      learning_rate, weight_decay: AdamW.
      ensemble: members per (seed, cell), differing only by their init key.
      uncertainty_lambda: lambda of ``mean - lambda * variance``.
    """

    hidden: int = 32
    steps: int = 400
    learning_rate: float = 0.02
    weight_decay: float = 1e-3
    ensemble: int = 4
    uncertainty_lambda: float = 1.0

    def __post_init__(self):
        config.int_at_least(self, 0, "hidden")
        config.int_at_least(self, 1, "steps")
        config.int_at_least(self, 1, "ensemble")
        config.positive(self, "learning_rate")
        config.non_negative(self, "weight_decay", "uncertainty_lambda")


class RewardModel(nnx.Module):
    """``features [..., F] -> reward [...]``: an MLP with one hidden layer (or linear)."""

    def __init__(self, num_features: int, hidden: int, *, rngs: nnx.Rngs):
        if hidden:
            self.hidden = nnx.Linear(num_features, hidden, rngs=rngs)
            self.out = nnx.Linear(hidden, 1, rngs=rngs)
        else:
            self.hidden = None
            self.out = nnx.Linear(num_features, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.hidden is not None:
            x = jax.nn.gelu(self.hidden(x))
        return self.out(x)[..., 0]


class Data(NamedTuple):
    """Training data of one fit: ``x`` is ``[N, 2, F]`` for ``bt``, ``[N, F]`` otherwise."""

    x: jax.Array
    target: jax.Array  # [N]
    weight: jax.Array  # [N] 0 drops an example (e.g. every judge abstained)


def _loss(kind: str, reward, data: Data) -> jax.Array:
    if kind == "bt":
        logit = reward[:, 0] - reward[:, 1]
        per = optax.sigmoid_binary_cross_entropy(logit, data.target)
    elif kind == "logistic":
        per = optax.sigmoid_binary_cross_entropy(reward, data.target)
    elif kind == "regression":
        per = jnp.square(reward - data.target)
    else:
        raise KeyError(f"unknown reward-model loss {kind!r}; known: {LOSSES}")
    return jnp.sum(per * data.weight) / jnp.maximum(jnp.sum(data.weight), 1.0)


@functools.partial(jax.jit, static_argnames=("kind",))
def _fit_predict(key, data: Data, x_eval, cfg: RewardModelConfig, *, kind: str):
    # hidden, steps and ensemble are ints, hence static fields of the config pytree.
    hidden, steps, num_features = cfg.hidden, cfg.steps, data.x.shape[-1]

    def one(key):
        model = RewardModel(num_features, hidden, rngs=nnx.Rngs(key))
        graphdef, params = nnx.split(model)
        opt = optax.adamw(cfg.learning_rate, weight_decay=cfg.weight_decay)

        def loss(p):
            return _loss(kind, nnx.merge(graphdef, p)(data.x), data)

        def step(carry, _):
            p, s = carry
            value, g = jax.value_and_grad(loss)(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), value

        (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
        return nnx.merge(graphdef, params)(x_eval), losses[-1]

    return jax.vmap(one)(jax.random.split(key, cfg.ensemble))


def fit_predict(key: jax.Array, data: Data, x_eval: jax.Array, cfg: RewardModelConfig, kind: str):
    """Train an ensemble on ``data`` and score ``x_eval`` ``[..., F]``.

    Returns ``(rewards [ensemble, ...], final training loss [ensemble])``. Pure: vmap it over
    study seeds (keys and data with a leading seed axis).
    """
    if kind not in LOSSES:
        raise KeyError(f"unknown reward-model loss {kind!r}; known: {LOSSES}")
    return _fit_predict(key, data, x_eval, cfg, kind=kind)


def aggregate(rewards: jax.Array, how: str, lam: float = 1.0) -> jax.Array:
    """Combine ``[members, ...]`` rewards into one: ``mean``, ``worst`` (min over members),
    or ``uncertainty`` (mean - lam * variance over members).

    Members are standardised first (each to zero mean and unit sd over the scored replies),
    since a Bradley-Terry reward is defined only up to a shift and the members' scales
    differ; without it the min and the variance would mostly measure those offsets.
    """
    z = (rewards - jnp.mean(rewards, axis=tuple(range(1, rewards.ndim)), keepdims=True))
    z = z / jnp.maximum(jnp.std(rewards, axis=tuple(range(1, rewards.ndim)), keepdims=True), 1e-8)
    if how == "mean":
        return jnp.mean(z, axis=0)
    if how == "worst":
        return jnp.min(z, axis=0)
    if how == "uncertainty":
        return jnp.mean(z, axis=0) - lam * jnp.var(z, axis=0)
    raise KeyError(f"unknown aggregation {how!r}; known: {AGGREGATIONS}")

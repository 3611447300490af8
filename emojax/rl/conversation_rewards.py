"""Rewards of a conversation read from what the user said: the trained emotion estimator.

RLVER rewards a conversation with the simulated user's own score (``user_emotion``,
privileged: the simulator reports it). The seed's question is whether an *estimate* of the
user's emotion, read from their words, is a signal to train on. ``estimator_emotion`` is
that estimate: the Flax estimator (:func:`emojax.train.estimator.load_estimator`) reads
the user's turns (``Observation.extras["user_turns"]``, :func:`emojax.rl.multiturn.observe`)
and its 40 intensities are read out as one valence score
(:func:`emojax.world.affect.valence_readout`, -7..7), divided by 7. It runs inside the
compiled program like any reward.

Read-outs (``read``):

* ``final`` (default, RLVER's analogue): the user's turn after the last reply, what the
  user says as the conversation ends;
* ``trajectory``: the mean read-out over the user's turns after every reply, which credits
  the whole path and not only where it ended.

``rater_emotion`` (privileged, like ``user_emotion``) is the world's rater panel rating the
user's final 40-dim state, read out the same way: what EmoNet-style human annotation of the
user's true feelings would report, with the raters' noise, bias and inattention.

Code that holds a loaded ``predict`` calls :func:`estimator_reward`. The named factory,
``estimator_emotion(path=DIR)`` or ``estimator_emotion(path=DIR, read=trajectory)`` in a
:class:`~emojax.rl.rewards.RewardConfig`, loads the estimator from disk, which the ``rl``
layer does not do (it never imports ``train``): it is registered by
:mod:`emojax.studies.estimator_reward`, which the launchers import.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from emojax.rl import rewards
from emojax.rl.observation import Observation
from emojax.world import affect, raters, vocab

__all__ = ["READS", "estimator_reward", "rater_emotion"]

READS = ("final", "trajectory")


def _check(predict: Callable, name: str) -> None:
    trained = getattr(predict, "vocab_size", None)
    if trained is not None and trained != vocab.VOCAB_SIZE:
        where = getattr(predict, "workdir", "the estimator")
        raise ValueError(f"reward {name!r}: {where} was trained on a vocabulary of {trained} tokens "
                         f"(data {getattr(predict, 'data', '?')!r}); the users of this environment speak the "
                         f"world's {vocab.VOCAB_SIZE}. Train it on simulated data (emojax.train, --data "
                         "conversation: this environment's users' turns)")  # fmt: skip


def estimator_reward(predict: Callable[[jax.Array, jax.Array], jax.Array], read: str = "final",
                     name: str = "estimator_emotion") -> rewards.Reward:  # fmt: skip
    """The reward of a loaded estimator ``predict(tokens, mask) -> [n, 40]`` (see the module
    docstring). Raises if ``predict`` was trained on another vocabulary or ``read`` is
    unknown."""
    if read not in READS:
        raise ValueError(f"reward {name!r}: read must be one of {READS}, got {read!r}")
    _check(predict, name)
    longest = getattr(predict, "max_len", None)

    def reward(obs: Observation) -> jax.Array:
        if "user_turns" not in obs.extras:
            raise ValueError(f"reward {name!r} reads the user's turns (Observation.extras['user_turns']), which "
                             "only a conversation environment's rollout provides")  # fmt: skip
        said = obs.extras["user_turns"]  # [B, T, U]
        b, t, u = said.shape
        if longest is not None and u > longest:
            raise ValueError(f"reward {name!r}: the user's turns are {u} tokens, the estimator reads at most "
                             f"{longest} (its model_config max_len)")  # fmt: skip
        flat = said.reshape(b * t, u)
        score = affect.valence_readout(predict(flat, flat != vocab.PAD_ID)).reshape(b, t) / 7.0
        turns = obs.extras["turns"]
        spoke = jnp.arange(t)[None, :] < turns[:, None]
        if read == "final":
            return jnp.take_along_axis(score, jnp.maximum(turns - 1, 0)[:, None], axis=1)[:, 0]
        return jnp.sum(jnp.where(spoke, score, 0.0), axis=1) / jnp.maximum(turns, 1)

    return reward


RATER_SEED = 11  # the panel: one fixed set of raters for every conversation


@rewards.register_reward("rater_emotion")
@rewards.privileged
def rater_emotion(obs: Observation) -> jax.Array:
    """The world's raters (:mod:`emojax.world.raters`, the calibrated default panel of 4)
    rate the user's final 40-dim state (``obs.privileged["state"]``); their mean rating's
    valence read-out, divided by 7. The raters' noise is drawn from a key folded with the
    batch's tokens, so the same conversations get the same ratings."""
    if "state" not in obs.privileged:
        raise ValueError("reward 'rater_emotion' rates the user's final 40-dim state, Observation.privileged['state'], "
                         "which only a conversation environment reports (e.g. empathy)")  # fmt: skip
    cfg = raters.RaterConfig()
    state = obs.privileged["state"].astype(jnp.float32)
    panel = raters.sample_panel(jax.random.key(RATER_SEED), cfg)
    weights = jnp.arange(1, obs.completion_tokens.shape[1] + 1, dtype=jnp.uint32)[None, :]
    checksum = jnp.sum(obs.completion_tokens.astype(jnp.uint32) * weights)
    key = jax.random.fold_in(jax.random.key(RATER_SEED + 1), checksum)
    ratings = raters.rate(key, state, panel, cfg)  # [K, B, 40]
    return affect.valence_readout(jnp.mean(ratings.astype(jnp.float32), axis=0)) / 7.0

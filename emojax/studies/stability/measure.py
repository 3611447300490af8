"""Measuring the items: J preference judgments and J emotion judgments per item.

Why one module: the comparison is fair only if both signals get the same number of
judgments per item and face the same kinds of measurement error under the same
conditions. Each judgment of either signal comes in two formats (the 2x2 of the issue):

==============  =======================================  ========================================
signal          binary                                   graded
==============  =======================================  ========================================
preference      "which reply is better?" (+1 A / -1 B)   strength on ``-S..S`` (a forced choice)
emotion         "did the user feel better?" per reply    the read-out after the reply minus before
==============  =======================================  ========================================

Emotion judgments come from the emotion raters of :mod:`emojax.world.raters`, who rate the
user's 40-dim state before the replies and after each (their ratings read out to one score
by :func:`emojax.studies.stability.reply_pairs.readout`); raters keep their scale use, and each
ask redraws perception noise and attention, and the item each rater saw first (the frame:
their anchoring). Preference judgments come from :mod:`emojax.world.annotators`.

The conditions: ``ask`` (a first ask), ``reask`` (the same judges, same frame, fresh
per-ask randomness), ``swap`` (the other order and wording for annotators, another first
item for raters), and the abstain option for annotators.

To compare the signals on one footing, :func:`pair_values` reduces every cell to one value
per (judge, item) for the pair: preferences as they are, emotion as reply A's judgment
minus reply B's (binary: -1, 0 or +1).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from emojax.studies.stability.reply_pairs import Items, WorldConfig, readout, utterances
from emojax.world import annotators, language, raters

__all__ = ["CELLS", "ESTIMATOR_CELLS", "EmotionJudgments", "ask_preference", "pair_values", "rate_emotion", "read_emotion"]

CELLS: tuple[str, ...] = ("emotion_graded", "emotion_binary", "preference_graded", "preference_binary")
# The estimator's reading of the user's next utterance: the same two formats, a third row.
ESTIMATOR_CELLS: tuple[str, ...] = ("estimator_graded", "estimator_binary")


class EmotionJudgments(NamedTuple):
    graded: jax.Array  # [n, J, 2] read-out after each reply minus before
    binary: jax.Array  # [n, J, 2] 1 if the user was rated as feeling better, else 0


def rate_emotion(key: jax.Array, items: Items, panel: raters.RaterPanel, cfg: raters.RaterConfig,
            first_item: jax.Array | None = None) -> EmotionJudgments:  # fmt: skip
    """One ask of the rater panel: each rater rates every user's state before and after each
    reply, in one session (``first_item`` [J] indexes the ``3n`` states; random if None)."""
    n = items.state_before.shape[0]
    states = jnp.concatenate([items.state_before, items.state_after[:, 0], items.state_after[:, 1]])
    scores = readout(raters.rate(key, states, panel, cfg, first_item))  # [J, 3n]
    before, a, b = scores[:, :n], scores[:, n : 2 * n], scores[:, 2 * n :]
    graded = jnp.stack([a - before, b - before], axis=-1).transpose(1, 0, 2)  # [n, J, 2]
    return EmotionJudgments(graded, (graded > 0).astype(jnp.float32))


def read_emotion(key: jax.Array, items: Items, predict, world: WorldConfig, judgments: int) -> EmotionJudgments:
    """One ask of the trained estimator (``predict(tokens, mask) -> [batch, 40]``, e.g.
    :func:`emojax.train.estimator.load_estimator`): each judgment reads a fresh rendering of
    what the user says before any reply and after each, read out like the raters' ratings.
    An estimator has no frame; a re-ask is a new rendering."""
    tokens = utterances(key, items, world, judgments)  # [n, J, 3, L]
    flat = tokens.reshape(-1, tokens.shape[-1])
    # In chunks: all renderings at once would hold the activations of every one in memory.
    read = lambda t: readout(predict(t[None], language.mask(t)[None]))[0]  # noqa: E731
    scores = jax.lax.map(read, flat, batch_size=min(flat.shape[0], 1024)).reshape(tokens.shape[:3])  # [n, J, 3]
    graded = scores[..., 1:] - scores[..., :1]
    return EmotionJudgments(graded, (graded > 0).astype(jnp.float32))


def ask_preference(key: jax.Array, items: Items, resp: annotators.Respondents, frame: annotators.Frame,
               cfg: annotators.AnnotatorConfig, abstain: bool = False) -> annotators.Answers:  # fmt: skip
    """One ask of every annotator on every pair (``[n, J]`` answers)."""
    return annotators.ask(key, resp, items.pair, frame, cfg, abstain)


def pair_values(cell: str, emo: EmotionJudgments | None = None, pref: annotators.Answers | None = None) -> jax.Array:
    """``[n, J]`` one value per judge and pair for ``cell`` (one of :data:`CELLS`)."""
    if cell in ("emotion_graded", "estimator_graded"):
        return emo.graded[..., 0] - emo.graded[..., 1]
    if cell in ("emotion_binary", "estimator_binary"):
        return emo.binary[..., 0] - emo.binary[..., 1]
    if cell == "preference_graded":
        return pref.graded.astype(jnp.float32)
    if cell == "preference_binary":
        return pref.binary.astype(jnp.float32)
    raise KeyError(f"unknown cell {cell!r}; known: {CELLS + ESTIMATOR_CELLS}")

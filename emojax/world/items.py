"""Rated items: emotion instances, the utterances that express them, and K raters' ratings.

This is the unit the estimator datasets and the label-vs-intensity study are made of.
:func:`sample_items` is pure and deterministic given its key, and generates in fixed-size
chunks so that memory stays flat however many items are asked for.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from emojax import config
from emojax.world import acts, affect, language, raters


@config.pytree_config
class ItemsConfig:
    """The world an item comes from: how emotions are built, said, and rated."""

    affect: affect.AffectConfig = affect.AffectConfig()
    language: language.LanguageConfig = language.LanguageConfig()
    raters: raters.RaterConfig = raters.RaterConfig()


class Items(NamedTuple):
    tokens: jax.Array  # [n, max_len] int32 utterance
    intensities: jax.Array  # [n, 40] float32 latent intensities on [0, 7]
    ratings: jax.Array  # [K, n, 40] int32 raters' 0-7 ratings
    topic: jax.Array  # [n] int32
    context: jax.Array  # [n] int32


def _one(key: jax.Array, cfg: ItemsConfig):
    key_sit, key_build, key_topic, key_say = jax.random.split(key, 4)
    situation = affect.sample_situation(key_sit, cfg.affect)
    x = affect.construct(key_build, situation, cfg.affect)
    topic = jax.random.randint(key_topic, (), 0, acts.NUM_TOPICS)
    return language.render(key_say, x, topic, cfg.language), x, topic, situation.context


def sample_items(key: jax.Array, n: int, cfg: ItemsConfig, panel: raters.RaterPanel | None = None) -> Items:
    """``n`` items with their raters' ratings.

    Args:
      key: root key; the same key gives the same items, utterances, panel and ratings.
      n: number of items.
      cfg: the world's configuration.
      panel: the raters; drawn from ``key`` if None (pass one to keep raters fixed).
    """
    if n < 1:
        raise ValueError(f"sample_items: n must be >= 1, got {n}")
    return _sample_items(key, n, cfg, panel)


@functools.partial(jax.jit, static_argnames=("n",))
def _sample_items(key, n, cfg, panel):
    key_items, key_panel, key_rate = jax.random.split(key, 3)
    tokens, x, topic, context = jax.lax.map(
        lambda key: _one(key, cfg), jax.random.split(key_items, n), batch_size=min(n, 1024)
    )
    if panel is None:
        panel = raters.sample_panel(key_panel, cfg.raters)
    ratings = raters.rate(key_rate, x, panel, cfg.raters)
    return Items(tokens, x, ratings, topic.astype(jnp.int32), context.astype(jnp.int32))

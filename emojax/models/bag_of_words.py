"""``bag_of_words``: a linear model of word counts, trainable through the estimator's loop.

It reads which words occur and nothing about their order, so it is the "word lookup" a
contextual estimator must beat. Trained through the same head and loop as any other
architecture, the only thing it lacks is context; the real-data trainer
(:mod:`emojax.train.real`) uses it as the text baseline over a learned tokenizer's
vocabulary. On simulated data the baseline is its closed-form twin,
:func:`emojax.train.baselines.fit_bow` (ridge, read out like the estimator).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from emojax import config, taxonomy
from emojax.models import registry
from emojax.world import vocab


@registry.register_architecture("bag_of_words")
class BagOfWords(nnx.Module):
    @dataclasses.dataclass(frozen=True)
    class Config:
        """Only the vocabulary: the model is one linear map from counts to raw outputs."""

        vocab_size: int = vocab.VOCAB_SIZE

        def __post_init__(self):
            config.int_at_least(self, 1, "vocab_size")

    def __init__(self, cfg: Config, outputs_per_category: int, *, rngs: nnx.Rngs):
        self.outputs = outputs_per_category
        self.out = nnx.Linear(cfg.vocab_size, taxonomy.NUM_CATEGORIES * outputs_per_category, rngs=rngs)

    def __call__(self, tokens: jax.Array, mask: jax.Array, *, deterministic: bool = True) -> jax.Array:
        """tokens, mask [B, T] -> raw outputs [B, 40, outputs] (``deterministic`` unused: no dropout)."""
        del deterministic
        counts = jnp.sum(jax.nn.one_hot(tokens, self.out.in_features) * mask[..., None].astype(jnp.float32), axis=-2)
        raw = self.out(counts)
        return raw.reshape(raw.shape[:-1] + (taxonomy.NUM_CATEGORIES, self.outputs))

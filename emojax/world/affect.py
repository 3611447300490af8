"""Constructed emotion: core affect + concepts + context -> sparse 40-dim intensities.

Following constructed-emotion theory (Barrett), an emotion instance is not read off a fixed
expression; it is *built* from three ingredients, which is what this module simulates:

* core affect, a point (valence, arousal) in [-1, 1]^2;
* the person's concept repertoire, log-weights over the 40 categories (people with coarse
  repertoires reach for a few concepts; fine-grained ones spread wider);
* the situation (a context such as a loss or a threat) that makes some concepts apt.

Their sum is a score per category. A softmax at ``blend_temperature`` turns it into
relative activations: a low temperature makes one category dominate, a high one makes
several near-ties (the *blend entropy* knob that the label-vs-intensity study sweeps).
The strongest category's intensity grows with how far core affect is from neutral; the
others scale with their activation relative to it; those under ``active_threshold`` (and
beyond the ``max_active`` strongest) are 0. The result is a sparse vector on [0, 7].
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from emojax import config, taxonomy

# Situations and the categories each makes apt (an additive boost to their score).
CONTEXTS: dict[str, tuple[str, ...]] = {
    "loss": ("Sadness", "Longing", "Disappointment", "Helplessness", "Emotional Numbness", "Pain"),
    "threat": ("Fear", "Distress", "Doubt", "Helplessness", "Confusion"),
    "achievement": ("Triumph", "Pride", "Elation", "Relief", "Hope/Enthusiasm/Optimism"),
    "connection": ("Affection", "Thankfulness/Gratitude", "Infatuation", "Sexual Lust", "Teasing", "Longing"),
    "novelty": ("Interest", "Awe", "Astonishment/Surprise", "Confusion", "Concentration"),
    "conflict": ("Anger", "Contempt", "Bitterness", "Impatience and Irritability", "Malevolence/Malice", "Jealousy & Envy"),
    "body": ("Pain", "Fatigue/Exhaustion", "Intoxication/Altered States of Consciousness", "Sourness", "Disgust"),
    "leisure": ("Amusement", "Contentment", "Pleasure/Ecstasy", "Contemplation", "Relief"),
    "evaluation": ("Embarrassment", "Shame", "Pride", "Doubt", "Concentration"),
}  # fmt: skip
CONTEXT_NAMES: tuple[str, ...] = tuple(CONTEXTS)
# Core affect this far from neutral (or farther) builds the strongest emotion at peak_max.
EXTREME_RADIUS = 0.8
NUM_CONTEXTS = len(CONTEXTS)


def context_matrix() -> np.ndarray:
    """[contexts, 40] 0/1 matrix of which categories each context makes apt."""
    m = np.zeros((NUM_CONTEXTS, taxonomy.NUM_CATEGORIES), dtype=np.float32)
    for i, cats in enumerate(CONTEXTS.values()):
        m[i, [taxonomy.index(c) for c in cats]] = 1.0
    return m


@config.pytree_config
class AffectConfig:
    """Parameters of emotion construction.

    Attributes:
      basin_width: width (in core-affect units) of each category's region; smaller makes
        core affect more decisive about which category is built.
      concept_sd: spread of a person's concept log-weights; 0 means everyone shares one
        repertoire.
      context_boost: how much an apt context raises a category's score.
      blend_temperature: softmax temperature over scores; the blend-entropy knob.
      active_threshold: activation relative to the strongest below which a category is 0.
      max_active: at most this many categories are non-zero.
      peak_min, peak_max: intensity of the strongest category for neutral and for extreme
        core affect (on 0-7).
      peak_noise: standard deviation of the strongest category's intensity.
    """

    basin_width: float = 0.35
    concept_sd: float = 0.5
    context_boost: float = 1.5
    blend_temperature: float = 1.0
    active_threshold: float = 0.25
    max_active: int = 5
    peak_min: float = 2.0
    peak_max: float = 7.0
    peak_noise: float = 0.75

    def __post_init__(self):
        config.positive(self, "basin_width", "blend_temperature")
        config.non_negative(self, "concept_sd", "context_boost", "peak_noise")
        config.require(self, "active_threshold", lambda v: 0.0 <= v < 1.0, "in [0, 1)")
        config.require(self, "max_active", lambda v: isinstance(v, int) and 1 <= v <= taxonomy.NUM_CATEGORIES, "an int in [1, 40]")
        config.require(self, "peak_min", lambda v: 0.0 <= v <= taxonomy.MAX_INTENSITY, "in [0, 7]")
        config.require(self, "peak_max", lambda v: 0.0 <= v <= taxonomy.MAX_INTENSITY, "in [0, 7]")
        if config._concrete(self.peak_min) and config._concrete(self.peak_max) and self.peak_min > self.peak_max:
            raise ValueError(f"AffectConfig.peak_min ({self.peak_min}) must be <= peak_max ({self.peak_max})")


class Situation(NamedTuple):
    """What an emotion is built from, for one person at one moment."""

    affect: jax.Array  # [2] valence, arousal in [-1, 1]
    concepts: jax.Array  # [40] concept log-weights of the person
    context: jax.Array  # [] int, index into CONTEXT_NAMES


def sample_concepts(key: jax.Array, cfg: AffectConfig) -> jax.Array:
    """A person's concept repertoire: [40] log-weights, centred at 0."""
    return cfg.concept_sd * jax.random.normal(key, (taxonomy.NUM_CATEGORIES,))


def sample_situation(key: jax.Array, cfg: AffectConfig) -> Situation:
    """Core affect spread over the unit disc, a fresh repertoire and a uniform context."""
    key_u, key_c = jax.random.split(key)
    u = jax.random.uniform(key_u, (3,))
    radius = jnp.sqrt(0.05 + 0.95 * u[0])
    angle = 2 * jnp.pi * u[1]
    affect = radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)])
    context = jnp.minimum((u[2] * NUM_CONTEXTS).astype(jnp.int32), NUM_CONTEXTS - 1)
    return Situation(affect, sample_concepts(key_c, cfg), context)


def category_scores(situation: Situation, cfg: AffectConfig) -> jax.Array:
    """[40] unnormalised log-activation of each category."""
    va = jnp.asarray(taxonomy.valence_arousal())
    dist2 = jnp.sum((va - situation.affect[None, :]) ** 2, axis=-1)
    boost = jnp.asarray(context_matrix())[situation.context]
    return -dist2 / (2 * cfg.basin_width**2) + situation.concepts + cfg.context_boost * boost


def construct(key: jax.Array, situation: Situation, cfg: AffectConfig) -> jax.Array:
    """Build the [40] intensities on [0, 7] of one emotion instance. Vmap for batches."""
    scores = category_scores(situation, cfg)
    act = jax.nn.softmax(scores / cfg.blend_temperature)
    rel = act / jnp.max(act)
    kth = jax.lax.top_k(rel, cfg.max_active)[0][-1]
    keep = (rel >= cfg.active_threshold) & (rel >= kth)
    # How far core affect is from neutral: 0 at the centre, 1 from EXTREME_RADIUS outwards.
    extremity = jnp.clip(jnp.linalg.norm(situation.affect) / EXTREME_RADIUS, 0.0, 1.0)
    peak = cfg.peak_min + (cfg.peak_max - cfg.peak_min) * extremity
    peak = peak + cfg.peak_noise * jax.random.normal(key)
    peak = jnp.clip(peak, 1.0, taxonomy.MAX_INTENSITY)
    return jnp.where(keep, peak * rel, 0.0)


def blend_entropy(intensities: jax.Array) -> jax.Array:
    """Entropy (nats) of the intensity profile normalised to sum 1; 0 for one emotion."""
    p = intensities / jnp.maximum(jnp.sum(intensities, axis=-1, keepdims=True), 1e-9)
    return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0), axis=-1)


def valence_readout(intensities: jax.Array) -> jax.Array:
    """One emotion score from 40 intensities: the valence-weighted sum over categories,
    divided by the sum of |valence| (so a state of only pleasant feelings at full intensity
    scores +7, only unpleasant ones -7, nothing felt 0). Works on ``[..., 40]``.

    Why this read-out: "did the user feel better?" is a question about valence, and the
    category placement on valence is the taxonomy's (:func:`emojax.taxonomy.valence_arousal`),
    fixed before any study; it is linear, so the mean of raters' read-outs is the read-out
    of their mean ratings."""
    v = jnp.asarray(taxonomy.valence_arousal()[:, 0])
    return jnp.tensordot(intensities.astype(jnp.float32), v, axes=1) / jnp.sum(jnp.abs(v))

"""Readable utterances rendered from a 40-dim intensity vector, in pure JAX.

An utterance is a shuffled list of fixed-width clauses, compacted into one token sequence
that ends with ``<eos>``. Clause kinds (``W = 7`` tokens, padded):

* feeling:    ``i feel [modifier] <word> .``  one per expressed category; the adverb follows
  the felt intensity with speaker noise and is sometimes dropped;
* irony:      ``oh great i am so <word> .``   a negative feeling said with a *positive*
  word of the opposite category (at ``irony_rate``);
* negation:   ``i am not <word> .``           an absent feeling, usually the opposite of the
  dominant one ("i am not hopeful" from someone in despair) (at ``negation_rate``);
* distractor: ``my friend was [modifier] <word> .``  someone else's feeling (at
  ``distractor_rate``);
* content:    ``it is about my <topic> .``    what the utterance is about.

So the words present are not the feelings present: a bag-of-words reader is misled by
negation, irony and distractors, and misses feelings left unsaid (``expression_rate``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from emojax import config, taxonomy
from emojax.world import vocab

CLAUSE_WIDTH = 7
_P = vocab.PAD_ID


def _w(word: str) -> int:
    return vocab.WORD_ID[word]


def opposite_category() -> np.ndarray:
    """[40] for each category, the category of opposite valence nearest to (-v, a)."""
    va = taxonomy.valence_arousal()
    target = va * np.array([-1.0, 1.0], dtype=np.float32)
    d = np.sum((target[:, None, :] - va[None, :, :]) ** 2, axis=-1)
    opposite_sign = np.sign(va[:, 0])[:, None] != np.sign(va[:, 0])[None, :]
    return np.argmin(np.where(opposite_sign, d, np.inf), axis=1).astype(np.int32)


@config.pytree_config
class LanguageConfig:
    """How feelings become words.

    Attributes:
      max_len: tokens per utterance, including ``<eos>``.
      max_feelings: at most this many feeling clauses (the strongest categories).
      express_threshold: intensities below this are not put into words.
      expression_rate: probability that a feeling above threshold is said at all.
      irony_rate: probability that a negative feeling is said ironically.
      negation_rate: probability of one negated (absent) feeling.
      distractor_rate: probability of one clause about someone else's feeling.
      modifier_noise: sd of the speaker's error when choosing an intensity adverb.
      modifier_drop: probability of saying a feeling without an adverb.
    """

    max_len: int = 64
    max_feelings: int = 5
    express_threshold: float = 0.75
    expression_rate: float = 0.9
    irony_rate: float = 0.1
    negation_rate: float = 0.3
    distractor_rate: float = 0.3
    modifier_noise: float = 0.75
    modifier_drop: float = 0.2

    def __post_init__(self):
        config.probability(self, "expression_rate", "irony_rate", "negation_rate", "distractor_rate", "modifier_drop")
        config.non_negative(self, "modifier_noise")
        config.require(self, "express_threshold", lambda v: 0.0 <= v <= taxonomy.MAX_INTENSITY, "in [0, 7]")
        config.require(self, "max_feelings", lambda v: 1 <= v <= taxonomy.NUM_CATEGORIES, "in [1, 40]")
        need = (self.max_feelings + 3) * CLAUSE_WIDTH + 1
        config.require(self, "max_len", lambda v: v >= need, f">= {need} to fit {self.max_feelings} feelings")


def _clause(*tokens) -> jax.Array:
    toks = [jnp.asarray(t, jnp.int32) for t in tokens]
    toks += [jnp.asarray(_P, jnp.int32)] * (CLAUSE_WIDTH - len(toks))
    return jnp.stack(toks)


def _word(category, u):
    """The emotion word of ``category`` picked by a uniform draw ``u``."""
    words = jnp.asarray(vocab.emotion_word_ids())
    j = jnp.minimum((u * vocab.WORDS_PER_CATEGORY).astype(jnp.int32), vocab.WORDS_PER_CATEGORY - 1)
    return words[category, j]


def _modifier(intensity, z, u, cfg: LanguageConfig):
    """The adverb a speaker uses for ``intensity``: noisy by ``z`` ~ N(0,1), dropped if ``u`` is low."""
    level = jnp.clip(jnp.round(intensity + cfg.modifier_noise * z), 1, taxonomy.NUM_LEVELS - 1)
    mods = jnp.asarray(vocab.ids([m for m in vocab.MODIFIERS if m]))
    return jnp.where(u < cfg.modifier_drop, _P, mods[level.astype(jnp.int32) - 1])


def render(
    key: jax.Array, intensities: jax.Array, topic: jax.Array, cfg: LanguageConfig, extra: jax.Array | None = None
) -> jax.Array:
    """Tokens [max_len] of one utterance expressing ``intensities`` about ``topic``.

    ``extra`` ([n, CLAUSE_WIDTH] tokens) adds clauses of the caller's (e.g. a stated belief),
    shuffled in with the rest.
    """
    # All randomness is drawn in three calls: few PRNG ops keep compile time low.
    key_u, key_z, key_order = jax.random.split(key, 3)
    n = cfg.max_feelings
    u = jax.random.uniform(key_u, (n + 2, 5))
    z = jax.random.normal(key_z, (n + 1,))
    va = jnp.asarray(taxonomy.valence_arousal())
    opposite = jnp.asarray(opposite_category())
    top_val, top_cat = jax.lax.top_k(intensities, n)

    def feeling(value, cat, u, z):
        said = (value >= cfg.express_threshold) & (u[0] < cfg.expression_rate)
        ironic = (va[cat, 0] < 0) & (u[1] < cfg.irony_rate)
        plain = _clause(_w("i"), _w("feel"), _modifier(value, z, u[3], cfg), _word(cat, u[2]), _w("."))
        irony = _clause(_w("oh"), _w("great"), _w("i"), _w("am"), _w("so"), _word(opposite[cat], u[2]), _w("."))
        return jnp.where(said, jnp.where(ironic, irony, plain), _P)

    feelings = jax.vmap(feeling)(top_val, top_cat, u[:n], z[:n])

    e = u[n]  # extra clauses' draws
    negated = opposite[top_cat[0]]
    negation = _clause(_w("i"), _w("am"), _w("not"), _word(negated, e[1]), _w("."))
    negation = jnp.where((e[0] < cfg.negation_rate) & (intensities[negated] == 0), negation, _P)
    other = jnp.minimum((e[3] * taxonomy.NUM_CATEGORIES).astype(jnp.int32), taxonomy.NUM_CATEGORIES - 1)
    distractor = _clause(
        _w("my"), _w("friend"), _w("was"), _modifier(4.0, z[n], e[4], cfg), _word(other, u[n + 1, 0]), _w(".")
    )
    distractor = jnp.where(e[2] < cfg.distractor_rate, distractor, _P)
    content = _clause(_w("it"), _w("is"), _w("about"), _w("my"), jnp.asarray(vocab.ids(vocab.TOPICS))[topic], _w("."))

    clauses = jnp.concatenate([feelings, jnp.stack([negation, distractor, content])], axis=0)
    if extra is not None:
        clauses = jnp.concatenate([clauses, extra.astype(clauses.dtype)], axis=0)
        if clauses.size + 1 > cfg.max_len:
            raise ValueError(f"render: max_len={cfg.max_len} cannot hold {clauses.shape[0]} clauses")
    clauses = clauses[jax.random.permutation(key_order, clauses.shape[0])]
    return compact(clauses.reshape(-1), cfg.max_len)


def compact(tokens: jax.Array, max_len: int) -> jax.Array:
    """Moves non-pad tokens to the front (order kept), appends ``<eos>``, pads to max_len."""
    valid = tokens != _P
    order = jnp.argsort(~valid, stable=True)
    packed = jnp.where(valid[order], tokens[order], _P)
    n = jnp.sum(valid)
    packed = jnp.concatenate([packed, jnp.full((max_len,), _P, jnp.int32)])[:max_len]
    return packed.at[jnp.minimum(n, max_len - 1)].set(vocab.EOS_ID)


def mask(tokens: jax.Array) -> jax.Array:
    """True where a token is not padding."""
    return tokens != _P

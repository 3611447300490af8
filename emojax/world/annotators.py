"""Preference annotators: who answers "which reply is better?", and what their answer measures.

Why: a preference label is treated by RLHF as a reading of one stable quantity. The survey
literature (``findings.md`` section 1) says an answer can be one of four things, and this
module makes each explicit, per annotator and item, so a study can measure what each does
to a reward model and whether a diagnostic can tell them apart:

* ``genuine``: a real preference that follows the gold utility, plus a taste of the
  annotator's own that is fixed across asks and a small per-ask noise;
* ``non_attitude``: no preference at all (Converse 1964): a fresh coin on every ask, even an
  identical re-ask; offered "no preference", it is taken with probability ``abstain_rate``;
* ``constructed``: built at the moment of asking from what the frame makes salient (Slovic
  1995): the reply shown first, the longer, the warmer, the flattering one. The cue adds
  ``frame_strength`` utility units to the side it points to, so it decides close pairs and
  leaves clear ones to their merits; the answer is stable when the frame is repeated and
  shifts when the order or the wording changes (each wording draws its own cue; the cue is
  the item's, shared by its annotators, unless ``own_cue_rate`` gives one its own);
* ``artifact``: a consistent answer to a different question (Vandenberg and Lance 2000):
  "which reply is more informative?", counted from information, solution and question acts
  whether or not what they say is true.

A :class:`Respondents` pytree holds what is fixed for an annotator x item (type, taste,
cues); :func:`ask` draws one ask under a frame (order, wording) with the abstain option on
or off. Mixing weights vary by item: each item's shares are a Dirichlet draw around
``shares`` with concentration ``item_concentration``.

Calibration (``findings.md``): stable holders between 19% and 59% of items (latent-class
re-analysis of Converse's panels), InstructGPT's raw agreement 72.6%, about 25%
self-retest disagreement (Abercrombie et al.). The defaults were set by a grid over
``shares``, ``ask_sd``, ``taste_correlation``, ``own_cue_rate`` and ``frame_strength`` on
the study's items (re-ask in a later session, the pair order drawn anew): about 72% raw
agreement and 22-23% retest disagreement at ``ask_sd`` 0.45, moved to 0.55 for a margin on
the retest figure; per-item stable shares (genuine + artifact) of 22% to 61% (5th to 95th
percentile). The study prints its own figures beside the literature's (``calibration`` in
its ``results.json``). Two facts shaped the calibration: a judge's retest agreement bounds
the agreement between exchangeable judges asked in the same frame, so 75% retest agreement
and 72.6% raw agreement together leave room for little disagreement *between* people; and
the retest figure is reached because a later re-ask shows the pair in a new order, which
moves constructed answers.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from emojax import config

TYPES: tuple[str, ...] = ("genuine", "non_attitude", "constructed", "artifact")
CUES: tuple[str, ...] = ("position", "length", "tone", "flattery")
GENUINE, NON_ATTITUDE, CONSTRUCTED, ARTIFACT = range(4)
ABSTAIN = 0  # the answer code of "no preference"; +1 prefers reply A, -1 reply B


@config.pytree_config
class AnnotatorConfig:
    """How preference annotators answer.

    Attributes:
      shares: mean share of each response type (order of :data:`TYPES`).
      item_concentration: Dirichlet concentration of each item's shares around ``shares``
        (smaller: items differ more).
      taste_sd: sd of a genuine or artifact annotator's taste, in utility units, fixed for
        the annotator x item (so it survives a re-ask).
      taste_correlation: correlation of tastes between annotators of one item (a taste
        shared by the population, e.g. for one of two equally good replies).
      ask_sd: sd of per-ask noise of genuine and artifact answers, in utility units.
      cue_rates: how often a frame makes each cue the deciding one (order of :data:`CUES`).
      frame_strength: the pull of the cue on a constructed answer, in utility units.
      own_cue_rate: probability that a constructed answer goes by a cue of its own rather
        than the one the item's frame makes salient to everyone.
      abstain_rate: probability q that a non-attitude takes "no preference" when offered.
      scale_points: graded answers are integers in ``[-scale_points, scale_points]``.
      strength_gain: graded strength per utility unit of a genuine or artifact answer.
    """

    shares: tuple[float, ...] = (0.33, 0.15, 0.44, 0.08)
    item_concentration: float = 15.0
    taste_sd: float = 0.5
    taste_correlation: float = 0.95
    ask_sd: float = 0.55
    cue_rates: tuple[float, ...] = (0.4, 0.2, 0.2, 0.2)
    own_cue_rate: float = 0.1
    frame_strength: float = 0.6
    abstain_rate: float = 0.5
    scale_points: int = 3
    strength_gain: float = 1.5

    def __post_init__(self):
        simplex = lambda n: lambda v: len(v) == n and min(v) >= 0 and abs(sum(v) - 1) < 1e-6  # noqa: E731
        config.require(self, "shares", simplex(len(TYPES)), f"{len(TYPES)} non-negative shares summing to 1")
        config.require(self, "cue_rates", simplex(len(CUES)), f"{len(CUES)} non-negative rates summing to 1")
        config.require(self, "item_concentration", lambda v: v > 0, "> 0")
        config.non_negative(self, "taste_sd", "ask_sd", "strength_gain", "frame_strength")
        config.probability(self, "abstain_rate", "taste_correlation", "own_cue_rate")
        config.int_at_least(self, 1, "scale_points")


class PairCues(NamedTuple):
    """What annotators can go by, per item (a pair A, B): differences A minus B."""

    gold: jax.Array  # [n] gold utility
    informative: jax.Array  # [n] the artifact's utility
    length: jax.Array  # [n] number of acts
    tone: jax.Array  # [n]
    flattery: jax.Array  # [n]


class Respondents(NamedTuple):
    """What is fixed about each annotator x item, across asks."""

    types: jax.Array  # [n, J] int, index into TYPES
    taste: jax.Array  # [n, J] standard normal
    cues: jax.Array  # [n, J, 2] int, the cue used under wording 0 and 1
    shares: jax.Array  # [n, 4] the item's mixing weights


class Frame(NamedTuple):
    """How a pair is shown to each annotator x item."""

    a_first: jax.Array  # [n, J] bool: reply A is shown first
    wording: jax.Array  # [n, J] int 0 or 1


def sample_respondents(key: jax.Array, n: int, num_annotators: int, cfg: AnnotatorConfig,
                       shares: jax.Array | None = None) -> Respondents:  # fmt: skip
    """Types, tastes and cues for ``num_annotators`` annotators on each of ``n`` items.

    ``shares`` ([4], default ``cfg.shares``) may be a traced array, so a sweep over the
    mixture compiles once."""
    key_mix, key_type, key_taste, key_common, key_cue, key_item_cue, key_own = jax.random.split(key, 7)
    mean = jnp.asarray(cfg.shares if shares is None else shares, jnp.float32)
    shares = jax.random.dirichlet(key_mix, jnp.maximum(cfg.item_concentration * mean, 1e-6), (n,))
    shares = jnp.where(mean > 0, shares, 0.0)
    types = jax.random.categorical(key_type, jnp.log(shares)[:, None, :], shape=(n, num_annotators))
    c = cfg.taste_correlation
    taste = jnp.sqrt(c) * jax.random.normal(key_common, (n, 1)) + jnp.sqrt(1 - c) * jax.random.normal(
        key_taste, (n, num_annotators))
    log_rates = jnp.log(jnp.asarray(cfg.cue_rates))
    item_cues = jax.random.categorical(key_item_cue, log_rates, shape=(n, 1, 2))
    own_cues = jax.random.categorical(key_cue, log_rates, shape=(n, num_annotators, 2))
    own = jax.random.bernoulli(key_own, cfg.own_cue_rate, (n, num_annotators, 1))
    cues = jnp.where(own, own_cues, item_cues)
    return Respondents(types.astype(jnp.int32), taste, cues.astype(jnp.int32), shares)


def random_frame(key: jax.Array, n: int, num_annotators: int, wording: int = 0, shared: bool = True) -> Frame:
    """A random order per item, under one wording. ``shared``: every annotator of an item
    sees the same order (one labelling interface, as in a collected dataset); else each
    annotator gets their own."""
    a_first = jax.random.bernoulli(key, 0.5, (n, 1) if shared else (n, num_annotators))
    a_first = jnp.broadcast_to(a_first, (n, num_annotators))
    return Frame(a_first, jnp.full((n, num_annotators), wording, jnp.int32))


def swap(frame: Frame) -> Frame:
    """The frame swap: the other order and the other wording."""
    return Frame(~frame.a_first, 1 - frame.wording)


def _cue_sign(cue: jax.Array, pair: PairCues, a_first: jax.Array) -> jax.Array:
    """[n, J] +1/-1: the side a cue points to (position when the cue does not separate)."""
    position = jnp.where(a_first, 1.0, -1.0)
    by_cue = jnp.stack([jnp.zeros_like(pair.length), pair.length, pair.tone, pair.flattery], axis=-1)  # [n, 4]
    value = jnp.take_along_axis(by_cue[:, None, :], cue[..., None], axis=-1)[..., 0]  # [n, J]
    return jnp.where(value != 0, jnp.sign(value), position)


class Answers(NamedTuple):
    binary: jax.Array  # [n, J] +1 A, -1 B, 0 abstained
    graded: jax.Array  # [n, J] integer strength in [-S, S], 0 also when abstained


def ask(
    key: jax.Array, resp: Respondents, pair: PairCues, frame: Frame, cfg: AnnotatorConfig, abstain: bool = False
) -> Answers:
    """One ask of every annotator on every item.

    Args:
      key: this ask's randomness (per-ask noise, non-attitudes' coins, abstentions).
      resp: the annotators (fixed across asks).
      pair: the items' cues.
      frame: order and wording per annotator x item.
      cfg: the annotators' configuration.
      abstain: offer "no preference".
    """
    key_noise, key_coin, key_abstain = jax.random.split(key, 3)
    shape = resp.types.shape
    noise = cfg.ask_sd * jax.random.normal(key_noise, shape)
    taste = cfg.taste_sd * resp.taste
    genuine = pair.gold[:, None] + taste + noise
    artifact = pair.informative[:, None] + taste + noise
    cue = jnp.take_along_axis(resp.cues, frame.wording[..., None], axis=-1)[..., 0]
    constructed = pair.gold[:, None] + taste + cfg.frame_strength * _cue_sign(cue, pair, frame.a_first)
    coin = jax.random.normal(key_coin, shape)
    s = cfg.scale_points
    gain = cfg.strength_gain
    latent = jnp.stack([gain * genuine, s * coin / 2.0, gain * constructed, gain * artifact], axis=-1)
    v = jnp.take_along_axis(latent, resp.types[..., None], axis=-1)[..., 0]
    binary = jnp.where(v >= 0, 1, -1)
    graded = jnp.clip(jnp.round(v), -s, s)
    graded = jnp.where(graded == 0, binary, graded)  # a forced choice: no 0 unless abstaining
    abstains = abstain & (resp.types == NON_ATTITUDE) & jax.random.bernoulli(key_abstain, cfg.abstain_rate, shape)
    binary = jnp.where(abstains, ABSTAIN, binary)
    graded = jnp.where(abstains, ABSTAIN, graded)
    return Answers(binary.astype(jnp.int32), graded.astype(jnp.int32))

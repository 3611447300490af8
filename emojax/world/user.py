"""A simulated user who reacts to replies with a 40-dim emotion state and a score e.

The user follows RLVER's simulated user in outline (``findings.md`` section 3): a persona
(negative 41%, passive 34%, avoidant 25%), a hidden need, beliefs about facts (some false),
and an emotion score ``e`` in [0, 100] that starts at 30. Each reply moves ``e`` by a signed
change; here the change is an explicit function of the reply's acts with exposed
parameters (:class:`ReactionParams`), so a study can vary what the user's emotion responds
to. The user's core affect follows ``e``; their 40-dim state is rebuilt from it by
constructed emotion; their next utterance is rendered from that state.

What the user *perceives* is not what is true: a false statement that matches their belief
feels like being informed. Gold quantities (need met, grounding, accuracy) live in
:mod:`emojax.world.gold`; they read only the user's fixed hidden profile (need, topic,
fact, beliefs and ``felt``, the feelings the user came with and says), never the state,
``e`` or anything :func:`react` updates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from emojax import config
from emojax.world import acts as acts_lib
from emojax.world import affect, language, vocab

PERSONAS: tuple[str, ...] = ("negative", "passive", "avoidant")
NEEDS: tuple[str, ...] = ("be_heard", "solution", "information", "reassurance")
NUM_PERSONAS, NUM_NEEDS = len(PERSONAS), len(NEEDS)
# Where each persona's core affect starts (valence follows e; this is the arousal).
PERSONA_AROUSAL = np.array([0.4, -0.4, -0.1], np.float32)


@config.pytree_config
class UserConfig:
    """Who the users are.

    Attributes:
      persona_mix: shares of negative, passive, avoidant personas (RLVER: 41/34/25%).
      need_mix: shares of the hidden needs, in the order of NEEDS.
      start_e: emotion score at the start (RLVER: 30 in training, 40 in its benchmark).
      false_belief_rate: probability that each of the user's beliefs is false.
      affect: how emotions are constructed; language: how they are said.
    """

    persona_mix: tuple[float, ...] = (0.41, 0.34, 0.25)
    need_mix: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25)
    start_e: float = 30.0
    false_belief_rate: float = 0.3
    affect: affect.AffectConfig = affect.AffectConfig()
    language: language.LanguageConfig = language.LanguageConfig()

    def __post_init__(self):
        for name, n in (("persona_mix", NUM_PERSONAS), ("need_mix", NUM_NEEDS)):
            config.require(
                self, name, lambda m, n=n: len(m) == n and min(m) >= 0 and np.isclose(sum(m), 1.0),
                f"{n} non-negative shares summing to 1",
            )
        config.require(self, "start_e", lambda v: 0.0 <= v <= 100.0, "in [0, 100]")
        config.probability(self, "false_belief_rate")


class User(NamedTuple):
    """One user's hidden profile and current state (a pytree; vmap for many users)."""

    persona: jax.Array  # [] int, index into PERSONAS
    need: jax.Array  # [] int, index into NEEDS
    topic: jax.Array  # [] int, what they talk about (index into vocab.TOPICS)
    fact: jax.Array  # [] int, the fact their question turns on
    beliefs: jax.Array  # [NUM_FACTS] +1/-1, what they believe of each fact
    felt: jax.Array  # [40] bool, the feelings they came with (fixed; what gold reads)
    situation: affect.Situation  # core affect, concepts, context
    state: jax.Array  # [40] current emotion intensities
    e: jax.Array  # [] emotion score in [0, 100]


class ReactionParams(NamedTuple):
    """How replies move the user's emotion. A pytree, so studies can vmap over settings.

    The change in e after a reply is ``scale * signal``, then scaled by the persona's
    ``gain`` (if positive) or ``loss`` (if negative), plus the persona's ``drift`` and noise.
    ``signal`` sums the perceived need match of each act (``need_act[need, act]``), a
    penalty for reflecting a feeling the user does not have, a penalty for statements
    contradicting the user's beliefs, ``flattery`` per compliment, ``tone`` times the
    reply's tone, and ``question`` (per persona) per question asked.
    """

    need_act: jax.Array  # [NUM_NEEDS, NUM_ACTS]
    misattuned: jax.Array  # [] reflecting a feeling the user does not have
    contradiction: jax.Array  # [] being told one's belief is wrong
    flattery: jax.Array  # []
    tone: jax.Array  # []
    question: jax.Array  # [NUM_PERSONAS]
    scale: jax.Array  # [] points of e per unit of signal
    gain: jax.Array  # [NUM_PERSONAS]
    loss: jax.Array  # [NUM_PERSONAS]
    drift: jax.Array  # [NUM_PERSONAS] points of e per reply, whatever is said
    noise_sd: jax.Array  # []
    affect_coupling: jax.Array  # [] how far valence follows a change in e


def default_reaction() -> ReactionParams:
    """Defaults: need-matched replies help most; premature solutions hurt someone who wants
    to be heard (BOLT's low-quality-therapy pattern); flattery and warm tone help a little."""
    #                   refl  valid  quest  solve  norm   info   agree  flatter
    need_act = np.array([
        [1.00, 0.60, 0.30, -0.60, 0.20, -0.20, 0.20, 0.00],  # be_heard
        [0.20, 0.20, 0.30, 1.00, 0.00, 0.30, 0.10, 0.00],  # solution
        [0.10, 0.10, 0.10, 0.20, 0.00, 1.00, 0.50, 0.00],  # information
        [0.40, 0.80, 0.00, 0.00, 1.00, 0.00, 0.30, 0.30],  # reassurance
    ], np.float32)  # fmt: skip
    f = lambda *x: jnp.asarray(np.array(x, np.float32)).squeeze()  # noqa: E731
    return ReactionParams(
        need_act=jnp.asarray(need_act), misattuned=f(-0.5), contradiction=f(-0.6),
        flattery=f(0.25), tone=f(0.3), question=f(0.0, 0.2, -0.4), scale=f(12.0),
        gain=f(0.7, 0.6, 0.8), loss=f(1.3, 0.6, 1.0), drift=f(-1.0, -0.5, -0.5),
        noise_sd=f(2.0), affect_coupling=f(1.0),
    )  # fmt: skip


def sample_truth(key: jax.Array) -> jax.Array:
    """The world's facts: [NUM_FACTS] +1 (good for you) or -1 (bad)."""
    return jnp.where(jax.random.bernoulli(key, 0.5, (acts_lib.NUM_FACTS,)), 1, -1).astype(jnp.int32)


def _valence(e):
    return (e - 50.0) / 50.0


def sample_user(key: jax.Array, truth: jax.Array, cfg: UserConfig) -> User:
    """A fresh user at the start of a conversation."""
    key_p, key_n, key_t, key_f, key_b, key_s, key_c = jax.random.split(key, 7)
    persona = jax.random.categorical(key_p, jnp.log(jnp.asarray(cfg.persona_mix)))
    need = jax.random.categorical(key_n, jnp.log(jnp.asarray(cfg.need_mix)))
    false = jax.random.bernoulli(key_b, cfg.false_belief_rate, truth.shape)
    beliefs = jnp.where(false, -truth, truth)
    base = affect.sample_situation(key_s, cfg.affect)
    e = jnp.asarray(cfg.start_e, jnp.float32)
    core = jnp.stack([_valence(e), jnp.asarray(PERSONA_AROUSAL)[persona]])
    situation = base._replace(affect=core)
    state = affect.construct(key_c, situation, cfg.affect)
    return User(
        persona=persona.astype(jnp.int32),
        need=need.astype(jnp.int32),
        topic=jax.random.randint(key_t, (), 0, acts_lib.NUM_TOPICS),
        fact=jax.random.randint(key_f, (), 0, acts_lib.NUM_FACTS),
        beliefs=beliefs,
        felt=state >= cfg.language.express_threshold,
        situation=situation,
        state=state,
        e=e,
    )


def utterance(key: jax.Array, user: User, cfg: UserConfig) -> jax.Array:
    """Tokens of what the user says now: their current feelings, their topic, and their
    belief about the fact their question turns on ("i think coffee is bad .")."""
    w = vocab.WORD_ID
    value = jnp.where(user.beliefs[user.fact] > 0, w["good"], w["bad"])
    subject = jnp.asarray(vocab.ids(vocab.FACT_SUBJECTS))[user.fact]
    belief = language._clause(w["i"], w["think"], subject, w["is"], value, w["."])
    return language.render(key, user.state, user.topic, cfg.language, extra=belief[None])


class Perceived(NamedTuple):
    """A reply as the user takes it, in two parts (a conversation treats them differently:
    :mod:`emojax.world.conversation`)."""

    need: jax.Array  # [] how well the acts the user perceives match their need (need_act[need] . perceived)
    rest: jax.Array  # [] everything else: misattunement, contradiction, flattery, tone, a question
    contradicted: jax.Array  # [] bool: something said or agreed to went against a belief


def perceive(user: User, acts: acts_lib.Acts, reply_tone: jax.Array, params: ReactionParams) -> Perceived:
    """What the user perceives of a reply's acts (before persona effects)."""
    present = (acts.counts > 0).astype(jnp.float32)
    felt = user.state > 0
    attuned = jnp.any(acts.reflected & felt)
    misattuned = jnp.any(acts.reflected & ~felt) & ~attuned
    # Statements are judged against the user's beliefs, not the truth.
    said = jnp.concatenate([acts.stated, acts.agreed])
    belief = jnp.concatenate([user.beliefs, user.beliefs])
    contradicted = jnp.any((said != 0) & (said != belief))
    confirmed_info = jnp.any((acts.stated != 0) & (acts.stated == user.beliefs))
    confirmed_agree = jnp.any((acts.agreed != 0) & (acts.agreed == user.beliefs))
    perceived = present.at[acts_lib.ACT_INDEX["reflection"]].set(attuned.astype(jnp.float32))
    perceived = perceived.at[acts_lib.ACT_INDEX["information"]].set(confirmed_info.astype(jnp.float32))
    perceived = perceived.at[acts_lib.ACT_INDEX["agreement"]].set(confirmed_agree.astype(jnp.float32))
    rest = (
        params.misattuned * misattuned
        + params.contradiction * contradicted
        + params.flattery * acts.counts[acts_lib.ACT_INDEX["flattery"]]
        + params.tone * reply_tone
        + params.question[user.persona] * present[acts_lib.ACT_INDEX["question"]]
    )
    return Perceived(jnp.dot(params.need_act[user.need], perceived), rest, contradicted)


def emotion_signal(user: User, acts: acts_lib.Acts, reply_tone: jax.Array, params: ReactionParams) -> jax.Array:
    """The user's perceived, unscaled reaction to a reply's acts (before persona effects)."""
    p = perceive(user, acts, reply_tone, params)
    return p.need + p.rest


def react(
    key: jax.Array,
    user: User,
    reply: jax.Array,
    params: ReactionParams,
    cfg: UserConfig,
    recogniser: Callable[[jax.Array], acts_lib.Acts] = acts_lib.parse,
) -> tuple[User, jax.Array]:
    """The user after reading ``reply`` (tokens), and the change in e.

    Returns the new user (e, core affect and 40-dim state updated) and the signed change in
    e, already clipped so that e stays in [0, 100].
    """
    signal = emotion_signal(user, recogniser(reply), acts_lib.tone(reply), params)
    return respond(key, user, signal, params, cfg)


def respond(key: jax.Array, user: User, signal: jax.Array, params: ReactionParams, cfg: UserConfig):
    """The user after a reaction of unscaled size ``signal``, and the change in e.

    :func:`react` computes ``signal`` from what the user perceives; a study that defines the
    reaction otherwise (e.g. coupled to gold by a knob) passes its own and keeps the rest:
    persona gain and loss, drift, noise (:func:`change`), e clipped to [0, 100], valence
    following e and the 40-dim state rebuilt by constructed emotion (:func:`move`).
    """
    key_noise, key_state = jax.random.split(key)
    return move(key_state, user, change(key_noise, user, signal, params), params, cfg)


def change(key: jax.Array, user: User, signal: jax.Array, params: ReactionParams) -> jax.Array:
    """The change in e a reaction of unscaled size ``signal`` makes: ``scale * signal``,
    times the persona's gain (if positive) or loss, plus its drift and noise."""
    delta = params.scale * signal
    delta = jnp.where(delta > 0, delta * params.gain[user.persona], delta * params.loss[user.persona])
    return delta + params.drift[user.persona] + params.noise_sd * jax.random.normal(key)


def move(key: jax.Array, user: User, delta: jax.Array, params: ReactionParams, cfg: UserConfig,
         low: float = 0.0, high: float = 100.0) -> tuple[User, jax.Array]:
    """The user after e moves by ``delta`` (clipped to ``[low, high]``), and the change made:
    valence follows e by ``affect_coupling`` and the 40-dim state is rebuilt."""
    e = jnp.clip(user.e + delta, low, high)
    valence = jnp.clip(
        user.situation.affect[0] + params.affect_coupling * (e - user.e) / 50.0, -1.0, 1.0
    )
    situation = user.situation._replace(affect=user.situation.affect.at[0].set(valence))
    state = affect.construct(key, situation, cfg.affect)
    return user._replace(situation=situation, state=state, e=e), e - user.e

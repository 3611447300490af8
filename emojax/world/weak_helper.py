"""A weak helper: BOLT's low-quality therapist, speaking the policy's tokens, whose
conversations pre-train the base policy of RLVER's table.

RLVER starts from an instruction-tuned 7B model that its simulated users mostly leave
unhappy (Table 1: score 13.3, success 2%, failure 76%). BOLT (``findings.md`` section 4)
found LLM therapists resembling low-quality therapy: many solutions when the client shares
feelings, few reflections on what the client feels. This speaker is that pattern in the
world: each reply holds one or two acts drawn with ``act_rates``, written in the policy's
tokens (act frames and slot pointers of :mod:`emojax.world.dialogue`) within the reply
budget and ended by ``<eos>``. By default it offers a solution (90% of replies), states a
fact it does not know (95%: right or wrong by chance, so it contradicts half the users'
beliefs) and names a feeling the user did not say (60%); it never validates, normalizes,
agrees or flatters. The defaults were set on 300 *training* profiles at RLVER's
evaluation settings so that the helper's own conversations start where RLVER's base model
did (score 14.6, success 0.3%, failure 62% against 13.3, 2%, 76%; no setting tried reached
76% failure without a lower score): a start value, not an outcome of training. Its knobs
are exposed.

:func:`conversations` records whole conversations with it in the layout of the engine's
transcripts (:func:`emojax.rl.multiturn.converse`): the opening, then per turn the reply
(``N`` slots) and the user's answer (``turn_len`` slots), with the helper's own tokens
marked. A policy trained to predict those tokens (:mod:`emojax.rl.sft`) is the base row.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from emojax import config, taxonomy
from emojax.world import acts as acts_lib
from emojax.world import conversation as conv
from emojax.world import dialogue, vocab

__all__ = ["HelperConfig", "conversations", "replies", "segments"]

SEGMENT = 4  # the longest act segment: <inform> <subject> is <value>
_F, _P, _W = dialogue.FRAME_ID, dialogue.POINTER_ID, vocab.WORD_ID


@config.pytree_config
class HelperConfig:
    """Who the weak helper is.

    Attributes:
      act_rates: probability of each act in a reply (order of
        :data:`emojax.world.acts.ACTS`: reflection, validation, question, solution,
        normalizing, information, agreement, flattery); one act at least (drawn by these
        rates) and at most ``max_acts``.
      max_acts: acts per reply at most.
      attuned_rate: a reflection points at the feeling the user said (else any emotion).
      claim_rate: information repeats the user's own claim (else states a fact at random:
        the helper does not know the truth).
      on_topic_rate: a question asks about the user's topic.
    """

    act_rates: tuple[float, ...] = (0.6, 0.0, 0.0, 0.9, 0.0, 0.95, 0.0, 0.0)
    max_acts: int = 2
    attuned_rate: float = 0.0
    claim_rate: float = 0.0
    on_topic_rate: float = 0.5

    def __post_init__(self):
        config.require(self, "act_rates", lambda r: len(r) == acts_lib.NUM_ACTS and all(0 <= x <= 1 for x in r)
                       and sum(r) > 0, f"{acts_lib.NUM_ACTS} probabilities, not all 0")  # fmt: skip
        config.int_at_least(self, 1, "max_acts")
        config.probability(self, "attuned_rate", "claim_rate", "on_topic_rate")


def segments(key: jax.Array, chat_user, cfg: HelperConfig) -> jax.Array:
    """``[NUM_ACTS, SEGMENT]`` one user's act segments in policy tokens, pads after: what
    each act would say to this user now."""
    k = jax.random.split(key, 9)
    emotion = jnp.asarray(vocab.emotion_word_ids())[
        jax.random.randint(k[0], (), 0, taxonomy.NUM_CATEGORIES), jax.random.randint(k[1], (), 0, 3)]
    feeling = jnp.where(jax.random.bernoulli(k[2], cfg.attuned_rate), _P["<said_feeling>"], emotion)
    topic = jnp.where(jax.random.bernoulli(k[3], cfg.on_topic_rate), chat_user.topic,
                      jax.random.randint(k[4], (), 0, acts_lib.NUM_TOPICS))  # fmt: skip
    subject = jnp.asarray(vocab.ids(vocab.FACT_SUBJECTS))[chat_user.fact]
    value = jnp.where(jax.random.bernoulli(k[5], 0.5), _W["good"], _W["bad"])
    claim = jax.random.bernoulli(k[6], cfg.claim_rate)
    solution = jnp.asarray(vocab.ids(vocab.SOLUTIONS))[jax.random.randint(k[7], (), 0, len(vocab.SOLUTIONS))]
    compliment = jnp.asarray(vocab.ids(vocab.FLATTERY))[jax.random.randint(k[8], (), 0, len(vocab.FLATTERY))]
    pad = vocab.PAD_ID
    row = lambda *t: jnp.stack([jnp.asarray(x, jnp.int32) for x in t] + [jnp.asarray(pad, jnp.int32)] * (SEGMENT - len(t)))  # noqa: E731
    inform = jnp.where(claim, row(_F["<inform>"], _P["<their_claim>"]), row(_F["<inform>"], subject, _W["is"], value))
    return jnp.stack([
        row(_F["<reflect>"], feeling),
        row(_F["<validate>"]),
        row(_F["<ask>"], jnp.asarray(vocab.ids(vocab.TOPICS))[topic], _W["?"]),
        row(_F["<solve>"], solution),
        row(_F["<normalize>"]),
        inform,
        row(_F["<agree>"], _P["<their_claim>"]),
        row(_F["<flatter>"], compliment),
    ])  # fmt: skip


def _reply(key: jax.Array, user, cfg: HelperConfig, n_tokens: int) -> jax.Array:
    key_acts, key_pick, key_order, key_say = jax.random.split(key, 4)
    rates = jnp.asarray(cfg.act_rates, jnp.float32)
    chosen = jax.random.bernoulli(key_acts, rates)
    fallback = jax.nn.one_hot(jax.random.categorical(key_pick, jnp.log(rates)), acts_lib.NUM_ACTS) > 0
    chosen = jnp.where(jnp.any(chosen), chosen, fallback)
    seg = segments(key_say, user, cfg)
    order = jax.random.permutation(key_order, acts_lib.NUM_ACTS)
    seg, chosen = seg[order], chosen[order]
    # Keep acts in this order while they fit the budget (the end token takes one slot); with
    # a budget of SEGMENT + 1 or more the first act always fits.
    width = jnp.sum(seg != vocab.PAD_ID, axis=1) * chosen
    kept = chosen & (jnp.cumsum(width) <= n_tokens - 1) & (jnp.cumsum(chosen) <= cfg.max_acts)
    tokens = jnp.where(kept[:, None], seg, vocab.PAD_ID).reshape(-1)
    valid = tokens != vocab.PAD_ID
    packed = tokens[jnp.argsort(~valid, stable=True)][:n_tokens]
    n = jnp.minimum(jnp.sum(valid), n_tokens - 1)
    packed = jnp.where(jnp.arange(n_tokens) < n, packed, vocab.PAD_ID)
    return packed.at[n].set(vocab.EOS_ID)


def replies(key: jax.Array, chat: conv.Chat, cfg: HelperConfig, n_tokens: int) -> jax.Array:
    """``[n, n_tokens]`` one reply per conversation in the policy's tokens, ``<eos>`` after
    its acts, pads after that (with fewer than ``SEGMENT + 1`` tokens, acts that do not fit
    are left out)."""
    if n_tokens < 2:
        raise ValueError(f"weak_helper.replies: n_tokens must be >= 2 (an act and its end), got {n_tokens}")
    keys = jax.random.split(key, chat.turn.shape[0])
    return jax.vmap(lambda k, u: _reply(k, u, cfg, n_tokens))(keys, chat.user)


@functools.partial(jax.jit, static_argnames="n_tokens")
def conversations(key: jax.Array, profiles: jax.Array, conv_cfg: conv.ConversationConfig, cfg: HelperConfig,
                  n_tokens: int) -> dict[str, jax.Array]:  # fmt: skip
    """Whole conversations of the helper with ``profiles``, as the engine lays out a
    transcript: ``tokens``, ``mask`` (real tokens) and ``policy_mask`` (the helper's own,
    each reply up to and including its ``<eos>``) ``[n, P + T (N + U)]`` with ``P = U =
    conv_cfg.turn_len``, plus the ``outcome`` and ``gold`` of each conversation."""
    chat, opening = conv.reset(profiles, conv_cfg)

    def turn(chat, k):
        key_reply, key_step = jax.random.split(k)
        reply = jnp.where(chat.done[:, None], vocab.PAD_ID, replies(key_reply, chat, cfg, n_tokens))
        new, said, _ = conv.step(key_step, chat, reply, conv_cfg)
        return new, (reply, said)

    chat, (reply, said) = jax.lax.scan(turn, chat, jax.random.split(key, conv_cfg.max_turns))
    n = profiles.shape[0]
    body = lambda r, a: jnp.concatenate([r, a], axis=2).transpose(1, 0, 2).reshape(n, -1)  # noqa: E731
    tokens = jnp.concatenate([opening, body(reply, said)], axis=1)
    policy = jnp.concatenate([jnp.zeros(opening.shape, bool), body(reply != vocab.PAD_ID, jnp.zeros(said.shape, bool))],
                             axis=1)  # fmt: skip
    return {"tokens": tokens, "mask": tokens != vocab.PAD_ID, "policy_mask": policy,
            **conv.outcome(chat), **conv.gold(chat)}  # fmt: skip


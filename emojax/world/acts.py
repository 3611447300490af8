"""Replies as dialogue acts: rendering a plan into tokens, and reading acts back.

A reply is a token sequence in the world's language. Its dialogue acts are:

==============  ==========================================  =================================
act             surface form                                argument read back
==============  ==========================================  =================================
reflection      ``it sounds like you feel <emotion> .``     the emotion category
validation      ``that is totally valid .``                 -
question        ``what happened with the <topic> ?``        the topic
solution        ``you could try <solution> .``              -
normalizing     ``many people feel this way .``             -
information     ``in fact <subject> is <good|bad> .``       the fact and the value stated
agreement       ``you are right <subject> is <good|bad> .`` the fact and the value agreed to
flattery        ``you are so <compliment> .``               -
==============  ==========================================  =================================

:func:`parse` is the world's exact reader: it finds each act's marker words anywhere in the
sequence (so it also reads replies a policy wrote, not only rendered ones). A *recogniser*
is any function ``tokens -> Acts``; :func:`parse` is the default, and later work can plug
in a learned one. Gold quantities always use :func:`parse`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from emojax import taxonomy
from emojax.world import language, vocab

ACTS: tuple[str, ...] = (
    "reflection", "validation", "question", "solution", "normalizing", "information",
    "agreement", "flattery",
)  # fmt: skip
NUM_ACTS = len(ACTS)
ACT_INDEX = {a: i for i, a in enumerate(ACTS)}
NUM_FACTS = len(vocab.FACT_SUBJECTS)
NUM_TOPICS = len(vocab.TOPICS)
WILD = -1  # matches any token in a pattern

_W = vocab.WORD_ID


class Acts(NamedTuple):
    """What a reply does, as read by a recogniser."""

    counts: jax.Array  # [NUM_ACTS] int: occurrences of each act
    reflected: jax.Array  # [40] bool: categories reflected back
    asked: jax.Array  # [NUM_TOPICS] bool: topics asked about
    stated: jax.Array  # [NUM_FACTS] int: +1 "good", -1 "bad", 0 not stated
    agreed: jax.Array  # [NUM_FACTS] int: +1 / -1 value agreed to, 0 none


class ReplyPlan(NamedTuple):
    """Which acts a reply contains and their arguments (unused arguments are ignored)."""

    acts: jax.Array  # [NUM_ACTS] bool
    reflect: jax.Array  # [] emotion category to reflect
    topic: jax.Array  # [] topic to ask about
    solution: jax.Array  # [] index into vocab.SOLUTIONS
    fact: jax.Array  # [] fact stated by `information`
    fact_value: jax.Array  # [] +1 good / -1 bad
    agree_fact: jax.Array  # [] fact agreed to by `agreement`
    agree_value: jax.Array  # [] +1 / -1
    compliment: jax.Array  # [] index into vocab.FLATTERY


def _value_token(v):
    return jnp.where(v > 0, _W["good"], _W["bad"])


def render_reply(key: jax.Array, plan: ReplyPlan, max_len: int = 64) -> jax.Array:
    """Tokens [max_len] of a reply that performs ``plan``'s acts in a random order."""
    key_word, key_order = jax.random.split(key)
    c = language._clause
    ids = lambda xs: jnp.asarray(vocab.ids(xs))  # noqa: E731
    emotion = jnp.asarray(vocab.emotion_word_ids())[
        plan.reflect, jax.random.randint(key_word, (), 0, vocab.WORDS_PER_CATEGORY)
    ]
    subject = ids(vocab.FACT_SUBJECTS)
    clauses = jnp.stack([
        c(_W["it"], _W["sounds"], _W["like"], _W["you"], _W["feel"], emotion, _W["."]),
        c(_W["that"], _W["is"], _W["totally"], _W["valid"], _W["."]),
        c(_W["what"], _W["happened"], _W["with"], _W["the"], ids(vocab.TOPICS)[plan.topic], _W["?"]),
        c(_W["you"], _W["could"], _W["try"], ids(vocab.SOLUTIONS)[plan.solution], _W["."]),
        c(_W["many"], _W["people"], _W["feel"], _W["this"], _W["way"], _W["."]),
        c(_W["in"], _W["fact"], subject[plan.fact], _W["is"], _value_token(plan.fact_value), _W["."]),
        c(_W["you"], _W["are"], _W["right"], subject[plan.agree_fact], _W["is"], _value_token(plan.agree_value), _W["."]),
        c(_W["you"], _W["are"], _W["so"], ids(vocab.FLATTERY)[plan.compliment], _W["."]),
    ])  # fmt: skip
    if max_len < NUM_ACTS * language.CLAUSE_WIDTH + 1:
        raise ValueError(f"render_reply: max_len must be >= {NUM_ACTS * language.CLAUSE_WIDTH + 1}, got {max_len}")
    clauses = jnp.where(plan.acts[:, None], clauses, vocab.PAD_ID)
    clauses = clauses[jax.random.permutation(key_order, NUM_ACTS)]
    return language.compact(clauses.reshape(-1), max_len)


def _matches(tokens: jax.Array, pattern: tuple[int, ...]) -> jax.Array:
    """[T] bool: the pattern (with WILD slots) starts at each position."""
    t = tokens.shape[0]
    padded = jnp.concatenate([tokens, jnp.full((len(pattern),), vocab.PAD_ID, tokens.dtype)])
    hit = jnp.ones((t,), bool)
    for offset, want in enumerate(pattern):
        if want != WILD:
            hit = hit & (padded[offset : offset + t] == want)
    return hit


def _slot(tokens: jax.Array, offset: int) -> jax.Array:
    """[T] token found ``offset`` places after each position (pad past the end)."""
    padded = jnp.concatenate([tokens, jnp.full((offset,), vocab.PAD_ID, tokens.dtype)])
    return padded[offset : offset + tokens.shape[0]]


def _lookup_table(words) -> np.ndarray:
    """[VOCAB] index of each word within ``words``, -1 for others."""
    table = np.full(vocab.VOCAB_SIZE, -1, np.int32)
    table[vocab.ids(words)] = np.arange(len(words), dtype=np.int32)
    return table


def _signed_facts(hit, subj_tok, value_tok):
    """[NUM_FACTS] +1/-1 for the value said about each fact (0 if none; "bad" wins ties)."""
    fact = jnp.asarray(_lookup_table(vocab.FACT_SUBJECTS))[subj_tok]
    sign = jnp.where(value_tok == _W["good"], 1, jnp.where(value_tok == _W["bad"], -1, 0))
    ok = hit & (fact >= 0) & (sign != 0)
    onehot = jax.nn.one_hot(jnp.where(ok, fact, -1), NUM_FACTS, dtype=jnp.int32)
    good = jnp.any((onehot * (sign == 1)[:, None]) > 0, axis=0)
    bad = jnp.any((onehot * (sign == -1)[:, None]) > 0, axis=0)
    return jnp.where(bad, -1, jnp.where(good, 1, 0)), ok


def parse(tokens: jax.Array) -> Acts:
    """The world's exact act reader over a [T] token sequence (any order, any position)."""
    emotion_of = jnp.asarray(vocab.emotion_word_category())
    topic_of = jnp.asarray(_lookup_table(vocab.TOPICS))
    solution_of = jnp.asarray(_lookup_table(vocab.SOLUTIONS))
    compliment_of = jnp.asarray(_lookup_table(vocab.FLATTERY))

    refl = _matches(tokens, (_W["sounds"], _W["like"], _W["you"], _W["feel"], WILD))
    refl_cat = emotion_of[_slot(tokens, 4)]
    refl = refl & (refl_cat >= 0)
    reflected = jnp.any(jax.nn.one_hot(jnp.where(refl, refl_cat, -1), taxonomy.NUM_CATEGORIES) > 0, axis=0)

    valid = _matches(tokens, (_W["totally"], _W["valid"]))
    quest = _matches(tokens, (_W["what"], _W["happened"], _W["with"], _W["the"], WILD))
    q_topic = topic_of[_slot(tokens, 4)]
    quest = quest & (q_topic >= 0)
    asked = jnp.any(jax.nn.one_hot(jnp.where(quest, q_topic, -1), NUM_TOPICS) > 0, axis=0)
    solve = _matches(tokens, (_W["could"], _W["try"], WILD)) & (solution_of[_slot(tokens, 2)] >= 0)
    normal = _matches(tokens, (_W["many"], _W["people"], _W["feel"]))
    info_hit = _matches(tokens, (_W["in"], _W["fact"], WILD, _W["is"], WILD))
    stated, info = _signed_facts(info_hit, _slot(tokens, 2), _slot(tokens, 4))
    agree_hit = _matches(tokens, (_W["are"], _W["right"], WILD, _W["is"], WILD))
    agreed, agree = _signed_facts(agree_hit, _slot(tokens, 2), _slot(tokens, 4))
    flatter = _matches(tokens, (_W["are"], _W["so"], WILD)) & (compliment_of[_slot(tokens, 2)] >= 0)

    counts = jnp.stack([jnp.sum(x) for x in (refl, valid, quest, solve, normal, info, agree, flatter)])
    return Acts(counts.astype(jnp.int32), reflected, asked, stated, agreed)


def tone(tokens: jax.Array) -> jax.Array:
    """Mean valence of the emotion and compliment words in a reply (0 if it has none)."""
    emotion_of = jnp.asarray(vocab.emotion_word_category())
    valence = jnp.asarray(taxonomy.valence_arousal()[:, 0])
    cat = emotion_of[tokens]
    is_compliment = jnp.asarray(_lookup_table(vocab.FLATTERY))[tokens] >= 0
    v = jnp.where(cat >= 0, valence[jnp.maximum(cat, 0)], 0.0) + jnp.where(is_compliment, 0.8, 0.0)
    n = jnp.sum((cat >= 0) | is_compliment)
    return jnp.sum(v) / jnp.maximum(n, 1)

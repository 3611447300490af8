"""``need_reply``: one reply to a simulated user who says what they need.

Why this task: it is the smallest step from a verifiable task into the simulated world. The
reward is computable from the reply alone, so the optimum is exact, and gold (need met,
grounding, accuracy: :mod:`emojax.world.gold`) is measured beside it, to see where a reward
that reads only what the user *says* departs from what is good for them.

The prompt is the user's utterance (feelings, topic, a belief) and their need in words
(:data:`NEED_PHRASES`); the policy writes act frames and slot pointers
(:mod:`emojax.world.dialogue`), or words only (``frames=False``), expanded into world words
before any reward or gold reads them. Rewards (registered on import): ``need_act`` (an act
that serves the stated need and none that serves another), ``need_progress`` (partial
credit for the act's surface form) and ``ended``; the optimal reply performs the one act
the need calls for and scores their weights' sum, 1.6. The full description, what a
need-blind reply can score and why: ``docs/need_reply.md``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from emojax import config
from emojax.rl.observation import Observation
from emojax.rl.rewards import register_reward
from emojax.rl.tasks.base import Task, terminate
from emojax.world import acts, gold, language, vocab
from emojax.world.dialogue import (FRAME_ID, FRAME_WIDTH, FRAMES, NEED_PHRASES, NEED_WIDTH, NUM_FRAMES, NUM_POINTERS,
                                   POINTER_ID, POINTERS, decode, expand, need_phrase_table, pointer_words, said_feelings,
                                   shifted)
from emojax.world import user as user_lib

__all__ = ["FRAMES", "FRAME_ID", "NEED_PHRASES", "POINTERS", "POINTER_ID", "NeedReplyConfig", "NeedReplyState", "decode",
           "expand", "make", "pointer_words"]

_W = vocab.WORD_ID
# The act the optimal reply performs for each need (order of user.NEEDS).
NEED_ACT = tuple(acts.ACT_INDEX[a] for a in ("reflection", "solution", "information", "validation"))
RENDER_LEN = acts.NUM_ACTS * language.CLAUSE_WIDTH + 1  # what render_reply requires
MIN_NEW_TOKENS = language.CLAUSE_WIDTH + 1  # word level: the longest one-act clause and <eos>

MIN_FRAME_TOKENS = 5  # the longest one-act frame reply, <inform> <subject> is <value>, and <eos>


@config.pytree_config
class NeedReplyConfig:
    """The need_reply task.

    Attributes:
      user: who the users are; the default says at most 2 feelings, so prompts are 50
        tokens (``1 + language.max_len + 6``).
      frames: the policy writes act frames (:data:`FRAMES`) and words; False: words only.
      pointers: (with frames) two more macro tokens, :data:`POINTERS`, that point at what
        the user said instead of copying it word for word: the slot is filled from the
        prompt, the policy only has to choose it.
      max_new_tokens: completion budget: >= 5 with frames (``<inform> <subject> is
        <value> <eos>``), >= 8 without (the longest one-act reply in words and ``<eos>``).
      need_act_weight, progress_weight, ended_weight: default weights of ``need_act``,
        ``need_progress`` and ``ended``; the optimum is their sum.
    """

    user: user_lib.UserConfig = user_lib.UserConfig(language=language.LanguageConfig(max_feelings=2, max_len=43))
    frames: bool = True
    pointers: bool = False
    max_new_tokens: int = 5
    need_act_weight: float = 1.0
    progress_weight: float = 0.5
    ended_weight: float = 0.1

    def __post_init__(self):
        least = MIN_FRAME_TOKENS if self.frames else MIN_NEW_TOKENS
        config.require(self, "pointers", lambda v: not v or self.frames, "False when frames is False")
        config.require(self, "max_new_tokens", lambda v: v >= least, f">= {least} (frames={self.frames})")
        config.non_negative(self, "need_act_weight", "progress_weight", "ended_weight")
        config.require(self, "need_act_weight", lambda v: v + self.progress_weight + self.ended_weight > 0,
                       "such that some weight is positive")


class NeedReplyState(NamedTuple):
    """Each prompt's user (hidden profile included) and world, and what the prompt shows."""

    user: user_lib.User
    truth: jax.Array  # [n, NUM_FACTS]
    visible: dict[str, jax.Array]  # need, topic, fact, belief: [n]; said: [n, 40]


# Act patterns, slot by slot: [pattern, slot, token] allowed. Slots past a pattern's length
# allow nothing, so a prefix match stops there. Two slots depend on the prompt (_slots).
_PATTERNS = ("reflection", "solution", "information", "validation", "normalizing")
_PATTERN_LEN = np.array([5, 3, 5, 2, 3], np.float32)
_NEED_PATTERNS = np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 1]], bool)
_SLOT_LEN = 5
_NEAR_MISS = 0.5
_OTHER_NEED = 0.5  # need_progress's factor when the reply also serves another need
# [needs, NUM_ACTS]: the acts that serve each need (order of user.NEEDS); question,
# agreement and flattery serve none.
_NEED_SERVING = np.zeros((4, acts.NUM_ACTS), bool)
for _n, _names in enumerate((("reflection",), ("solution",), ("information",), ("validation", "normalizing"))):
    _NEED_SERVING[_n, [acts.ACT_INDEX[a] for a in _names]] = True


def _static_slots() -> np.ndarray:
    table = np.zeros((len(_PATTERNS), _SLOT_LEN, vocab.VOCAB_SIZE), bool)
    words = {
        (0, 0): ["sounds"], (0, 1): ["like"], (0, 2): ["you"], (0, 3): ["feel"],  # (0, 4): said feeling
        (1, 0): ["could"], (1, 1): ["try"], (1, 2): list(vocab.SOLUTIONS),
        (2, 0): ["in"], (2, 1): ["fact"], (2, 3): ["is"], (2, 4): list(vocab.FACT_VALUES),  # (2, 2): their fact
        (3, 0): ["totally"], (3, 1): ["valid"],
        (4, 0): ["many"], (4, 1): ["people"], (4, 2): ["feel"],
    }  # fmt: skip
    for (p, j), ws in words.items():
        table[p, j, vocab.ids(ws)] = True
    return table


def _reflectable(said: jax.Array) -> jax.Array:
    """[40] categories whose reflection serves ``be_heard``: those said, or all if none."""
    return jnp.where(jnp.any(said), said, True)


def _serves_another_need(a: acts.Acts, need) -> jax.Array:
    """[] bool: the reply performs an act that serves a need other than ``need``."""
    serves = jnp.asarray(_NEED_SERVING)  # [needs, NUM_ACTS]
    return jnp.any((a.counts > 0) & jnp.any(serves, axis=0) & ~serves[need])


def _need_act(reply, need, fact, said) -> jax.Array:
    a = acts.parse(reply)
    has = lambda name: a.counts[acts.ACT_INDEX[name]] > 0  # noqa: E731
    by_need = jnp.stack([
        jnp.any(a.reflected & _reflectable(said)),
        has("solution"),
        a.stated[fact] != 0,
        has("validation") | has("normalizing"),
    ])  # fmt: skip
    return (by_need[need] & ~_serves_another_need(a, need)).astype(jnp.float32)


def _progress(reply, need, fact, said) -> jax.Array:
    category = jnp.asarray(vocab.emotion_word_category())
    feeling = (category >= 0) & _reflectable(said)[jnp.maximum(category, 0)]
    subject = jnp.arange(vocab.VOCAB_SIZE) == jnp.asarray(vocab.ids(vocab.FACT_SUBJECTS))[fact]
    # A near miss at a copied slot (an emotion word not said, another subject) counts half.
    any_subject = jnp.zeros((vocab.VOCAB_SIZE,), bool).at[jnp.asarray(vocab.ids(vocab.FACT_SUBJECTS))].set(True)
    slots = jnp.asarray(_static_slots()).astype(jnp.float32)
    slots = slots.at[0, 4].set(jnp.where(feeling, 1.0, jnp.where(category >= 0, _NEAR_MISS, 0.0)))
    slots = slots.at[2, 2].set(jnp.where(subject, 1.0, jnp.where(any_subject, _NEAR_MISS, 0.0)))
    windows = jnp.stack([shifted(reply, j) for j in range(_SLOT_LEN)])  # [J, T]
    hits = slots[:, jnp.arange(_SLOT_LEN)[:, None], windows]  # [patterns, J, T]
    matched = jnp.sum(jnp.cumprod(hits, axis=1), axis=1)  # [patterns, T] prefix lengths
    best = jnp.max(matched, axis=-1) / jnp.asarray(_PATTERN_LEN)
    progress = jnp.max(jnp.where(jnp.asarray(_NEED_PATTERNS)[need], best, 0.0))
    # An act that serves another need (a shotgun reply) halves it: never 1 then, as need_act is 0.
    return jnp.where(_serves_another_need(acts.parse(reply), need), _OTHER_NEED * progress, progress)


def _reply(completion: jax.Array, completion_mask: jax.Array, visible: dict[str, jax.Array]) -> jax.Array:
    """[n, T * FRAME_WIDTH] the reply in world words: the completion up to its end, frames
    expanded. A reply without frames is left as written (a pad the policy wrote still
    breaks a phrase), so the word-level task reads exactly what it did before frames."""
    reply = jnp.where(completion_mask, completion, vocab.PAD_ID)
    plain = jnp.pad(reply, [(0, 0)] * (reply.ndim - 1) + [(0, reply.shape[-1] * (FRAME_WIDTH - 1))],
                    constant_values=vocab.PAD_ID)
    has_frames = jnp.any(reply >= vocab.VOCAB_SIZE, axis=-1, keepdims=True)
    return jnp.where(has_frames, expand(reply, pointer_words(visible)), plain)


def _per_reply(fn):
    def batched(obs: Observation) -> jax.Array:
        x = obs.extras
        reply = _reply(obs.completion_tokens, obs.completion_mask, x)
        return jax.vmap(fn)(reply, x["need"], x["fact"], x["said"])

    batched.__doc__ = fn.__doc__
    return batched


need_act = register_reward("need_act")(_per_reply(_need_act))
need_progress = register_reward("need_progress")(_per_reply(_progress))


def _prompt(key: jax.Array, cfg: NeedReplyConfig):
    key_truth, key_user, key_say = jax.random.split(key, 3)
    truth = user_lib.sample_truth(key_truth)
    u = user_lib.sample_user(key_user, truth, cfg.user)
    said = user_lib.utterance(key_say, u, cfg.user)
    said = jnp.where(said == vocab.EOS_ID, vocab.PAD_ID, said)
    raw = jnp.concatenate([jnp.array([vocab.BOS_ID], jnp.int32), said, jnp.asarray(need_phrase_table())[u.need]])
    tokens = raw[jnp.argsort(raw != vocab.PAD_ID, stable=True)]  # pads first, order kept
    visible = {"need": u.need, "topic": u.topic, "fact": u.fact, "belief": u.beliefs[u.fact], "said": said_feelings(tokens)}
    return tokens, tokens != vocab.PAD_ID, NeedReplyState(user=u, truth=truth, visible=visible)


def _optimal_pointers(visible: dict[str, Any], n_new: int) -> jax.Array:
    """[n_new] the one-act frame reply the need calls for, slots by pointer, then ``<eos>``."""
    f, q, e, p = FRAME_ID, POINTER_ID, vocab.EOS_ID, vocab.PAD_ID
    replies = jnp.array([
        [f["<reflect>"], q["<said_feeling>"], e],
        [f["<solve>"], _W["resting"], e],
        [f["<inform>"], q["<their_claim>"], e],
        [f["<validate>"], e, p],
    ], jnp.int32)[visible["need"]]  # fmt: skip
    return jnp.concatenate([replies, jnp.full((n_new - 3,), p, jnp.int32)])


def _optimal_frames(visible: dict[str, Any], n_new: int) -> jax.Array:
    """[n_new] the one-act frame reply the need calls for, then ``<eos>`` and pads."""
    # The slot words are what the pointers stand for: the same feeling and claim.
    feeling, claim = pointer_words(visible)
    f, e, p = FRAME_ID, vocab.EOS_ID, vocab.PAD_ID
    replies = jnp.stack([
        jnp.stack([f["<reflect>"], feeling[0], e, p, p]),
        jnp.array([f["<solve>"], _W["resting"], e, p, p]),
        jnp.stack([f["<inform>"], *claim[:3], e]),
        jnp.array([f["<validate>"], e, p, p, p]),
    ]).astype(jnp.int32)[visible["need"]]  # fmt: skip
    return jnp.concatenate([replies, jnp.full((n_new - MIN_FRAME_TOKENS,), p, jnp.int32)])


def _optimal_reply(key: jax.Array, visible: dict[str, Any], n_new: int) -> jax.Array:
    plan = acts.ReplyPlan(
        acts=jnp.arange(acts.NUM_ACTS) == jnp.asarray(NEED_ACT)[visible["need"]],
        reflect=jnp.argmax(visible["said"]).astype(jnp.int32), topic=visible["topic"],
        solution=jnp.int32(0), fact=visible["fact"], fact_value=visible["belief"],
        agree_fact=visible["fact"], agree_value=visible["belief"], compliment=jnp.int32(0),
    )
    return acts.render_reply(key, plan, RENDER_LEN)[:n_new]


def make(cfg: NeedReplyConfig = NeedReplyConfig()) -> Task:
    """The need_reply :class:`~emojax.rl.tasks.base.Task` for ``cfg``."""
    n_new = cfg.max_new_tokens
    vocab_size = vocab.VOCAB_SIZE + (NUM_FRAMES if cfg.frames else 0) + (NUM_POINTERS if cfg.pointers else 0)

    def sample_prompts(key, n):
        # lax.map, not vmap: the same numbers, and the batched user and utterance take
        # XLA:CPU three times as long to compile.
        return jax.lax.map(lambda key: _prompt(key, cfg), jax.random.split(key, n))

    def observe(prompt_tokens, prompt_mask, state, completion, completion_mask, truncated):
        return Observation(prompt_tokens, prompt_mask, completion, completion_mask, truncated,
                           extras=dict(state.visible))

    def gold_fn(state, completion, completion_mask, truncated):
        del truncated
        reply = _reply(completion, completion_mask, state.visible)
        return jax.vmap(gold.gold)(state.user, reply, state.truth)._asdict()

    def optimal_completion(key, prompt_tokens, prompt_mask, state):
        del prompt_mask
        if cfg.pointers:
            raw = jax.vmap(lambda v: _optimal_pointers(v, n_new))(state.visible)
        elif cfg.frames:
            raw = jax.vmap(lambda v: _optimal_frames(v, n_new))(state.visible)
        else:
            keys = jax.random.split(key, prompt_tokens.shape[0])
            raw = jax.lax.map(lambda kv: _optimal_reply(*kv, n_new), (keys, state.visible))
        return terminate(raw, vocab.EOS_ID, vocab.PAD_ID)

    weights = (("need_act", cfg.need_act_weight), ("need_progress", cfg.progress_weight),
               ("ended", cfg.ended_weight))
    return Task(
        name="need_reply", vocab_size=vocab_size, end_token=vocab.EOS_ID, pad_token=vocab.PAD_ID,
        prompt_len=1 + cfg.user.language.max_len + NEED_WIDTH, max_new_tokens=n_new,
        reward=tuple((name, w) for name, w in weights if w), sample_prompts=jax.jit(sample_prompts, static_argnums=1),
        observe=observe, gold=jax.jit(gold_fn), optimal_completion=jax.jit(optimal_completion),
    )

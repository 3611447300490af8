"""``need_reply``: one reply to a simulated user who says what they need.

Why this task: it is the smallest step from a verifiable task into the simulated world.
The reward is computable from the reply alone, so the optimum is exact, and gold (need
met, grounding, accuracy: :mod:`emojax.world.gold`) can be measured beside it, to see
where a reward that reads only what the user *says* departs from what is good for them.

Prompt (world tokens, :mod:`emojax.world.vocab`: vocabulary ``VOCAB_SIZE``, end token
``EOS_ID``, pad ``PAD_ID``): ``<bos>``, the user's utterance (:func:`user.utterance`:
their feelings, ``it is about my <topic> .`` and ``i think <subject> is <good|bad> .``,
its ``<eos>`` dropped), then the need in words (:data:`NEED_PHRASES`)::

    be_heard     honestly , i just feel .
    solution     what could i try ?
    information  am i right ?
    reassurance  is that valid ?

left-padded to ``P = 1 + language.max_len + 6``. What the prompt shows goes into the
observation's extras: ``need``, ``topic``, ``fact`` and ``belief`` (said in words) and
``said`` ``[40]``, the categories put into words as ``i feel [adverb] <word>``, read from
the prompt tokens. Hidden (task state only, for gold): the user's ``felt`` feelings,
persona, other beliefs and emotion state, and the world's truth.

Completion (``frames=True``, the default): the policy's vocabulary is the world's plus
one macro token per act frame (:data:`FRAMES`, ids ``VOCAB_SIZE + i``), like a dialogue
policy that picks an act and fills its slots: ``<reflect> sad <eos>``, ``<solve> resting
<eos>``, ``<inform> coffee is good <eos>``, ``<validate> <eos>``. :func:`expand` (pure,
jittable) writes each frame out in its words (``<reflect>`` -> ``it sounds like you
feel``) before any reward or gold reads the reply, so both read world language with
:func:`acts.parse`, as before. ``max_new_tokens`` is 5. With ``frames=False`` the policy
writes words only (``max_new_tokens >= 8``), the task as it was.

Slot pointers (``pointers=True``; the ``tiny`` and ``default`` presets of
:mod:`emojax.studies.grpo_tasks`): two more macro tokens, ``<said_feeling>`` and
``<their_claim>`` (:data:`POINTERS`), stand for what the user said (a feeling they named;
``<subject> is <good|bad>``), filled in from the prompt when the reply is expanded, as a
dialogue policy with a copy mechanism points into the user's turn. The need must still be
read and the right act chosen and filled; what the pointers remove is copying a word
through the vocabulary, which GRPO did not find here (``pointers=False``: 0.635
normalised at ``tiny``; trained supervised, the same policy learns that copy, see the
presets' comment). The optimal pointer reply is three tokens (``<inform> <their_claim>
<eos>``) and scores the same 1.6.

Rewards (registered; default weights in :class:`NeedReplyConfig`), on the expanded reply:

* ``need_act``: the reply, read by :func:`acts.parse`, performs an act that serves the
  stated need: ``be_heard`` a reflection of a feeling the user said (of any feeling if
  they said none), ``solution`` a solution, ``information`` a statement about the fact
  they hold a belief about (either value), ``reassurance`` validation or normalizing;
  and no act that serves a *different* need (a reflection, solution, statement of fact,
  validation or normalizing the need does not call for; questions, agreement and
  flattery serve none), so a reply that does every act at once meets no need.
  It departs from gold's need met on purpose: gold wants a reflection of what the user
  *felt* (some feelings go unsaid, ironic ones are said with the opposite word) and, for
  information, a *true* statement; the reward cannot see either.
* ``need_progress``: how far the reply got into the surface form of such an act: the
  longest prefix of the act's pattern (``sounds like you feel <word>``, ``could try
  <solution>``, ``in fact <subject> is <value>``, ``totally valid``, ``many people
  feel``) found anywhere, over its length; a near miss at a copied slot (an emotion word
  the user did not say, another fact's subject) counts half a slot; an act that serves
  another need halves the whole (``_OTHER_NEED``). It is 1 exactly when
  ``need_act`` is (tested), and gives a near-random policy partial credit, hence GRPO
  signal.
* ``ended`` (:mod:`emojax.rl.rewards`).

The optimal reply performs the one act the need calls for, with arguments the prompt
shows (frames: :func:`_optimal_frames`; words: :func:`acts.render_reply`), and scores the
sum of the weights, 1.6. The uniform policy over the world's words and the 8 frames
scores about 0.026.

What the need is worth: a reply chosen without reading the need (copying what the prompt
says is allowed) can meet one need at most, since an act for another need cancels it.
The best of them, by exhaustive search over the 5-token replies of the acts' frames and
slot words, meets ``reassurance`` and starts the other needs' frames without their
slots: ``<validate> <reflect> <inform> <solve> <eos>``, 1.6 on ``reassurance``, 0.3,
0.27 and 0.2 on the others: 0.59 on average, 0.36 normalised (tested: the shotgun reply
``<validate> <solve> resting <reflect> <said feeling>`` meets no need, and no need-blind
reply tried scores more than 0.6). So the issue's 0.9 needs the need read and the slot
copied.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from emojax import config, taxonomy
from emojax.rl.observation import Observation
from emojax.rl.rewards import register_reward
from emojax.rl.tasks.base import Task, terminate
from emojax.world import acts, gold, language, vocab
from emojax.world import user as user_lib

__all__ = ["FRAMES", "FRAME_ID", "NEED_PHRASES", "POINTERS", "POINTER_ID", "NeedReplyConfig", "NeedReplyState", "decode",
           "expand", "make", "pointer_words"]

_W = vocab.WORD_ID
NEED_PHRASES: tuple[tuple[str, ...], ...] = (
    ("honestly", ",", "i", "just", "feel", "."),
    ("what", "could", "i", "try", "?"),
    ("am", "i", "right", "?"),
    ("is", "that", "valid", "?"),
)
NEED_WIDTH = max(map(len, NEED_PHRASES))
# The act the optimal reply performs for each need (order of user.NEEDS).
NEED_ACT = tuple(acts.ACT_INDEX[a] for a in ("reflection", "solution", "information", "validation"))
RENDER_LEN = acts.NUM_ACTS * language.CLAUSE_WIDTH + 1  # what render_reply requires
MIN_NEW_TOKENS = language.CLAUSE_WIDTH + 1  # word level: the longest one-act clause and <eos>

# Act frames: macro tokens after the world's vocabulary (ids ``VOCAB_SIZE + i``), one per
# act of :mod:`emojax.world.acts`, each standing for its act's fixed words; the policy fills
# the slots that follow with words. :func:`expand` turns them back into world words.
FRAMES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("<reflect>", ("it", "sounds", "like", "you", "feel")),  # + <emotion>
    ("<validate>", ("that", "is", "totally", "valid", ".")),
    ("<ask>", ("what", "happened", "with", "the")),  # + <topic> ?
    ("<solve>", ("you", "could", "try")),  # + <solution>
    ("<normalize>", ("many", "people", "feel", "this", "way", ".")),
    ("<inform>", ("in", "fact")),  # + <subject> is <good|bad>
    ("<agree>", ("you", "are", "right")),  # + <subject> is <good|bad>
    ("<flatter>", ("you", "are", "so")),  # + <compliment>
)
NUM_FRAMES = len(FRAMES)
FRAME_ID = {name: vocab.VOCAB_SIZE + i for i, (name, _) in enumerate(FRAMES)}
FRAME_WIDTH = max(len(words) for _, words in FRAMES)
# Slot pointers (``pointers=True``): ids after the frames; each stands for words the prompt
# shows, filled in per prompt by :func:`expand`: ``<said_feeling>`` the first feeling the
# user said (its first word; a feeling of category 0 if they said none), ``<their_claim>``
# the user's claim ``<subject> is <good|bad>``. So ``<inform> <their_claim>`` reads ``in
# fact coffee is good``. A dialogue policy with a copy mechanism chooses a pointer like this.
POINTERS = ("<said_feeling>", "<their_claim>")
NUM_POINTERS = len(POINTERS)
POINTER_ID = {name: vocab.VOCAB_SIZE + NUM_FRAMES + i for i, name in enumerate(POINTERS)}
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


def _phrase_table() -> np.ndarray:
    table = np.full((len(NEED_PHRASES), NEED_WIDTH), vocab.PAD_ID, np.int32)
    for i, phrase in enumerate(NEED_PHRASES):
        table[i, : len(phrase)] = vocab.ids(phrase)
    return table


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


def _expansion_table() -> np.ndarray:
    """[VOCAB_SIZE + NUM_FRAMES + NUM_POINTERS, FRAME_WIDTH]: a world word stands for
    itself, a frame for its words (pad after), a pointer for nothing (its words depend on
    the prompt: :func:`pointer_words`)."""
    table = np.full((vocab.VOCAB_SIZE + NUM_FRAMES + NUM_POINTERS, FRAME_WIDTH), vocab.PAD_ID, np.int32)
    table[: vocab.VOCAB_SIZE, 0] = np.arange(vocab.VOCAB_SIZE)
    for i, (_, words) in enumerate(FRAMES):
        table[vocab.VOCAB_SIZE + i, : len(words)] = vocab.ids(words)
    return table


def pointer_words(visible: dict[str, jax.Array]) -> jax.Array:
    """``[..., NUM_POINTERS, FRAME_WIDTH]`` the words each pointer stands for in a prompt
    (``visible``: the prompt's ``said``, ``fact`` and ``belief``), pads after."""
    emotion = jnp.asarray(vocab.emotion_word_ids())[jnp.argmax(visible["said"], axis=-1), 0]
    subject = jnp.asarray(vocab.ids(vocab.FACT_SUBJECTS))[visible["fact"]]
    value = jnp.where(visible["belief"] > 0, _W["good"], _W["bad"])
    pad = [jnp.full_like(subject, vocab.PAD_ID)] * FRAME_WIDTH
    feeling = jnp.stack([emotion, *pad][:FRAME_WIDTH], axis=-1)
    claim = jnp.stack([subject, jnp.full_like(subject, _W["is"]), value, *pad][:FRAME_WIDTH], axis=-1)
    return jnp.stack([feeling, claim], axis=-2).astype(jnp.int32)


def expand(tokens: jax.Array, pointers: jax.Array | None = None) -> jax.Array:
    """World tokens ``[..., T * FRAME_WIDTH]`` of a completion ``[..., T]`` that may hold
    frames: each frame becomes its words, in place, and the pads are moved to the end (so
    ``<reflect> sad`` reads as ``it sounds like you feel sad``). ``pointers`` (from
    :func:`pointer_words`, ``[..., NUM_POINTERS, FRAME_WIDTH]``) fills in the slot pointers;
    without it a pointer expands to nothing. Pure and jittable; world words pass through
    unchanged."""
    words = jnp.asarray(_expansion_table())[tokens]  # [..., T, FRAME_WIDTH]
    if pointers is not None:
        for i, name in enumerate(POINTERS):
            words = jnp.where((tokens == POINTER_ID[name])[..., None], pointers[..., None, i, :], words)
    words = words.reshape(*tokens.shape[:-1], -1)
    order = jnp.argsort(words == vocab.PAD_ID, axis=-1, stable=True)
    return jnp.take_along_axis(words, order, axis=-1)


def decode(tokens) -> str:
    """Readable text of world tokens and frames (frames written out in words, pointers by
    name: the prompt they point into is not at hand)."""
    tokens = np.asarray(tokens).reshape(-1)
    table = _expansion_table()
    names = {i: name for name, i in POINTER_ID.items()}
    if not any(int(t) in names for t in tokens):
        return vocab.decode(table[tokens].reshape(-1))
    parts = [names.get(int(t)) or vocab.decode(table[t]) for t in tokens]
    return " ".join(part for part in parts if part)


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


def _shift(tokens: jax.Array, k: int) -> jax.Array:
    """[T] the token ``k`` places later (pad past the end)."""
    return jnp.concatenate([tokens, jnp.full((k,), vocab.PAD_ID, tokens.dtype)])[k:]


def _said(prompt: jax.Array) -> jax.Array:
    """[40] bool: categories said as ``feel <word>`` or ``feel <adverb> <word>``."""
    category = jnp.asarray(vocab.emotion_word_category())
    adverb = jnp.zeros((vocab.VOCAB_SIZE,), bool).at[vocab.ids([m for m in vocab.MODIFIERS if m])].set(True)
    feel = prompt == _W["feel"]
    c1, c2 = category[_shift(prompt, 1)], category[_shift(prompt, 2)]
    cat = jnp.where(feel & (c1 >= 0), c1, jnp.where(feel & adverb[_shift(prompt, 1)] & (c2 >= 0), c2, -1))
    return jnp.any(jax.nn.one_hot(cat, taxonomy.NUM_CATEGORIES) > 0, axis=0)


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
    windows = jnp.stack([_shift(reply, j) for j in range(_SLOT_LEN)])  # [J, T]
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
    k_truth, k_user, k_say = jax.random.split(key, 3)
    truth = user_lib.sample_truth(k_truth)
    u = user_lib.sample_user(k_user, truth, cfg.user)
    said = user_lib.utterance(k_say, u, cfg.user)
    said = jnp.where(said == vocab.EOS_ID, vocab.PAD_ID, said)
    raw = jnp.concatenate([jnp.array([vocab.BOS_ID], jnp.int32), said, jnp.asarray(_phrase_table())[u.need]])
    tokens = raw[jnp.argsort(raw != vocab.PAD_ID, stable=True)]  # pads first, order kept
    visible = {"need": u.need, "topic": u.topic, "fact": u.fact, "belief": u.beliefs[u.fact], "said": _said(tokens)}
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
        return jax.lax.map(lambda k: _prompt(k, cfg), jax.random.split(key, n))

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
        reward=tuple((k, w) for k, w in weights if w), sample_prompts=jax.jit(sample_prompts, static_argnums=1),
        observe=observe, gold=jax.jit(gold_fn), optimal_completion=jax.jit(optimal_completion),
    )

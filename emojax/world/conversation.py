"""A conversation with a simulated user, as pure functions: RLVER's environment in the world.

RLVER (``findings.md`` section 3) trains a policy in conversations of up to 8 turns with a
simulated user whose emotion score ``e`` (0-100) is the reward. This module is the user's
side of such a conversation, pure and jittable, so that a whole conversation can run inside
a compiled program:

    keys = conversation.profiles(jax.random.key(0), 500)      # fixed profiles
    chat, said = conversation.reset(keys, TRAIN)              # opening lines [n, L]
    chat, said, done = conversation.step(key, chat, reply, TRAIN)  # reply [n, R] policy tokens
    conversation.gold(chat)                                   # evaluation only
    conversation.outcome(chat)                                # final e, success, grade

What follows RLVER: users of :mod:`emojax.world.user` (personas 41/34/25%, a hidden need
as its hidden intention, a topic, beliefs), ``e`` starting at 30 in training
(:data:`TRAIN`) and 40 in evaluation (:data:`EVALUATION`); at most 8 replies in training,
10 in evaluation; a conversation ends when ``e`` reaches 100 (the user, satisfied, says
goodbye), when it falls to ``fail_at`` (0 in training; below 10 in evaluation) or at the
turn limit; final grades S/A/B/C/F (>= 100, >= 70, >= 40, >= 10, below). As in RLVER's
simulator, ``e`` is capped at 100 and has no lower clamp, and it moves in steps of 5 or 10
(``steps``): RLVER's released evaluation logs show +-5 or +-10 in 97% of 15,369 turns.
``strong`` (the raw change at which the step is 10, not 5) is calibrated so that in whole
conversations at RLVER's evaluation settings the world's candidate replies
(:mod:`emojax.world.behaviour`) move ``e`` by 10 in 26.2% of turns, the share in those logs
(:func:`calibrate_strong`); the mean and sign of the change depend on who replies, and are
measured, not set (:mod:`emojax.studies.empathy` shows them beside RLVER's).

What makes a conversation more than ``T`` copies of one reply (state across turns):

* **acceptance**: a reply that serves the user's need is taken up with probability
  ``acceptance`` (RLVER's harder simulator accepted 33.1% of strategies where the normal one
  accepted 52.4%; :data:`HARD` scales acceptance by that ratio);
* **a need met stays met**: once served, serving it again earns ``repeat_gain`` of the
  first time;
* **a contradiction lingers**: being contradicted stings again on later turns, at
  ``grudge`` times the previous turn's sting;
* **an unheard user says more plainly what they need**: after ``hint_after`` replies that
  did not serve the need, the user's turns include it in words
  (:data:`~emojax.world.dialogue.NEED_PHRASES`).

The reply is in the policy's tokens (world words, act frames and slot pointers of
:mod:`emojax.world.dialogue`), written out in world words before the user reads it. Gold
(:func:`gold`) is tallied per reply from the user's fixed hidden profile with
:func:`emojax.world.gold.gold`, never from ``e`` or the state, and never given to a reward:
what the policy and a reward may see is :func:`visible`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from emojax import config
from emojax.world import acts as acts_lib
from emojax.world import appraisal, behaviour, dialogue, language, vocab
from emojax.world import gold as gold_lib
from emojax.world import user as user_lib

__all__ = ["EVALUATION", "GRADES", "GRADE_FLOORS", "HARD", "PRESETS", "TRAIN", "Chat", "ConversationConfig", "Record",
           "Played", "behaviour_conversations", "behaviour_replies", "calibrate_strong", "change_statistics", "gold",
           "grade", "outcome", "play_behaviour", "profiles", "reset", "step", "user_turns", "visible"]  # fmt: skip

GRADES: tuple[str, ...] = ("S", "A", "B", "C", "F")
GRADE_FLOORS: tuple[float, ...] = (100.0, 70.0, 40.0, 10.0)  # S, A, B, C; F below the last
# RLVER's released evaluation logs (15,369 turns; findings.md section 3), shown beside ours.
RLVER_CHANGES = {"share_5": 0.708, "share_10": 0.262, "mean": 0.93, "mean_abs": 6.2, "sd": 6.6}
RLVER_ACCEPTANCE = {"normal": 0.524, "hard": 0.331}
_BYE = ("well", ",", "that", "is", "it", ".")  # what a user who leaves says last


@config.pytree_config
class ConversationConfig:
    """One conversation setting (see the module docstring).

    Attributes:
      user: who the users are (``start_e``: 30 in training, 40 in evaluation).
      max_turns: replies at most.
      fail_at: the conversation ends (a failure) once ``e <= fail_at``: 0 in training;
        RLVER's evaluation ends below 10 of an integer score, ``9.5`` here.
      success_at: it ends (the user is satisfied and says goodbye) once ``e >= success_at``.
      steps: the two sizes ``e`` moves by (small, large), signed as the raw change; ``()``
        leaves the raw change as it is (continuous).
      strong: the raw change (points of e) at or above which ``e`` moves by the large step.
      acceptance: probability that a reply serving the need is taken up.
      repeat_gain: what serving a need already served earns, relative to the first time.
      grudge: a contradiction's sting on each later turn, relative to the turn before.
      hint_after: replies without the need served after which the user states the need.
      served_at: the perceived need match (``need_act``) at which a reply serves the need.
      reaction_scale, noise_sd: the reaction's points of e per unit of signal, and its
        noise (:class:`~emojax.world.user.ReactionParams`).
      flattery: the signal each compliment adds (``ReactionParams.flattery``; 0.25 by
        default): a study's control that makes flattery pay more, or nothing.
      appraisal_specificity: how much of what a reply did shows in the 40 categories
        beyond ``e`` (:mod:`emojax.world.appraisal`; 0: the state follows ``e`` alone).
      world_seed: the world's facts (one truth for every conversation).
    """

    user: user_lib.UserConfig = user_lib.UserConfig(language=language.LanguageConfig(max_feelings=2, max_len=43))
    max_turns: int = 8
    fail_at: float = 0.0
    success_at: float = 100.0
    steps: tuple[float, ...] = (5.0, 10.0)
    strong: float = 5.9
    acceptance: float = 1.0
    repeat_gain: float = 0.5
    grudge: float = 0.5
    hint_after: int = 2
    served_at: float = 0.5
    reaction_scale: float = 12.0
    noise_sd: float = 2.0
    flattery: float = 0.25
    appraisal_specificity: float = 0.5
    world_seed: int = 7

    def __post_init__(self):
        config.int_at_least(self, 1, "max_turns")
        config.require(self, "steps", lambda v: len(v) in (0, 2) and all(s > 0 for s in v), "() or two sizes > 0")
        config.require(self, "success_at", lambda v: v > self.fail_at, f"> fail_at ({self.fail_at})")
        config.probability(self, "acceptance", "repeat_gain", "grudge", "appraisal_specificity")
        config.int_at_least(self, 0, "hint_after")
        config.non_negative(self, "strong", "reaction_scale", "noise_sd")

    @property
    def reaction(self) -> user_lib.ReactionParams:
        return user_lib.default_reaction()._replace(scale=jnp.asarray(self.reaction_scale, jnp.float32),
                                                    noise_sd=jnp.asarray(self.noise_sd, jnp.float32),
                                                    flattery=jnp.asarray(self.flattery, jnp.float32))  # fmt: skip

    @property
    def turn_len(self) -> int:
        """Tokens of one user turn: an utterance, the need in words, a goodbye."""
        return self.user.language.max_len + dialogue.NEED_WIDTH + len(_BYE)


TRAIN = ConversationConfig()
EVALUATION = ConversationConfig(user=dataclasses.replace(TRAIN.user, start_e=40.0), max_turns=10, fail_at=9.5)
HARD = ConversationConfig(acceptance=RLVER_ACCEPTANCE["hard"] / RLVER_ACCEPTANCE["normal"])
PRESETS: dict[str, ConversationConfig] = {"train": TRAIN, "evaluation": EVALUATION, "hard": HARD}


class Record(NamedTuple):
    """Gold, tallied reply by reply (evaluation only; see :func:`gold`)."""

    need_met_turn: jax.Array  # [] int: the first reply that met the need (gold), -1 if none
    grounded: jax.Array  # [] int: replies that addressed what the user said
    inaccurate: jax.Array  # [] int: replies stating something false or agreeing to a false belief
    false_agreements: jax.Array  # [] int: replies agreeing to a false belief
    compliments: jax.Array  # [] int: replies paying a compliment
    premature_solutions: jax.Array  # [] int: solutions offered to a user who wants to be heard


class Chat(NamedTuple):
    """One conversation's state (a pytree; leading axis ``n`` when batched)."""

    user: user_lib.User  # hidden profile and current emotion
    truth: jax.Array  # [NUM_FACTS] the world's facts
    turn: jax.Array  # [] int: replies so far
    done: jax.Array  # [] bool
    served: jax.Array  # [] bool: the user has taken their need as served
    sting: jax.Array  # [] float: the lingering sting of past contradictions
    unheard: jax.Array  # [] int: replies in a row that did not serve the need
    said: jax.Array  # [turn_len] the user's last turn
    last_raw: jax.Array  # [] the last reply's change in e before it was rounded to a step
    record: Record


def profiles(key: jax.Array, n: int) -> jax.Array:
    """``n`` user profiles (PRNG keys ``[n]``): each fixes a user's persona, need, topic,
    beliefs, feelings and opening line. Training and held-out sets come from different keys
    (``fold_in(key, 0)`` and ``fold_in(key, 1)``)."""
    return jax.random.split(key, n)


def _truth(cfg: ConversationConfig) -> jax.Array:
    return user_lib.sample_truth(jax.random.key(cfg.world_seed))


def _turn(key: jax.Array, u: user_lib.User, hint: jax.Array, bye: jax.Array, cfg: ConversationConfig) -> jax.Array:
    """``[turn_len]`` what the user says: their feelings, topic and belief; their need in
    words if ``hint``; a goodbye if ``bye``. Pads after ``<eos>``."""
    said = user_lib.utterance(key, u, cfg.user)
    said = jnp.where(said == vocab.EOS_ID, vocab.PAD_ID, said)
    need = jnp.where(hint, jnp.asarray(dialogue.need_phrase_table())[u.need], vocab.PAD_ID)
    leave = jnp.where(bye, jnp.asarray(vocab.ids(_BYE), jnp.int32), vocab.PAD_ID)
    return language.compact(jnp.concatenate([said, need, leave]), cfg.turn_len)


def _empty_record() -> Record:
    zero = jnp.zeros((), jnp.int32)
    return Record(jnp.full((), -1, jnp.int32), zero, zero, zero, zero, zero)


def _reset_one(profile: jax.Array, cfg: ConversationConfig) -> Chat:
    key_user, key_say = jax.random.split(profile)
    truth = _truth(cfg)
    u = user_lib.sample_user(key_user, truth, cfg.user)
    hint = jnp.asarray(cfg.hint_after == 0)
    said = _turn(key_say, u, hint, jnp.asarray(False), cfg)
    zero = jnp.zeros((), jnp.int32)
    return Chat(u, truth, zero, jnp.asarray(False), jnp.asarray(False), jnp.zeros(()), zero, said, jnp.zeros(()),
                _empty_record())


@jax.jit
def reset(profile_keys: jax.Array, cfg: ConversationConfig) -> tuple[Chat, jax.Array]:
    """Conversations of the users ``profile_keys`` ``[n]`` (:func:`profiles`), and their
    opening lines ``[n, turn_len]``. Deterministic: clones of one profile (a GRPO group)
    get the same user and the same opening line."""
    chat = jax.vmap(lambda p: _reset_one(p, cfg))(profile_keys)
    return chat, chat.said


def _discretise(raw: jax.Array, cfg: ConversationConfig) -> jax.Array:
    if not cfg.steps:
        return raw
    small, large = cfg.steps
    return jnp.sign(raw) * jnp.where(jnp.abs(raw) >= cfg.strong, large, small)


def _reply_words(reply: jax.Array, chat: Chat) -> jax.Array:
    """The reply in world words (frames written out, pointers filled from the last turn)."""
    u = chat.user
    shown = {"said": dialogue.said_feelings(chat.said), "fact": u.fact, "belief": u.beliefs[u.fact]}
    return dialogue.expand(reply, dialogue.pointer_words(shown))


def _raw_change(key: jax.Array, chat: Chat, words: jax.Array, a: acts_lib.Acts, cfg: ConversationConfig):
    """The undiscretised change in e a reply (``words``, its acts ``a``) makes, whether it
    served the need, the new sting, and whether the user felt contradicted."""
    key_accept, key_noise = jax.random.split(key)
    params = cfg.reaction
    u = chat.user
    p = user_lib.perceive(u, a, acts_lib.tone(words), params)
    accepted = jax.random.bernoulli(key_accept, cfg.acceptance)
    again = jnp.where(chat.served, cfg.repeat_gain, 1.0)
    need = jnp.where(p.need > 0, p.need * accepted * again, p.need)
    lingering = cfg.grudge * chat.sting
    signal = need + p.rest + params.contradiction * lingering
    served = accepted & (p.need >= cfg.served_at)
    return user_lib.change(key_noise, u, signal, params), served, lingering + p.contradicted, p.contradicted


def appraised_events(chat: Chat, a: acts_lib.Acts, served: jax.Array, contradicted: jax.Array) -> jax.Array:
    """``[NUM_EVENTS]`` 0/1: how the user appraises a reply (:data:`emojax.world.appraisal.EVENTS`)."""
    u = chat.user
    count = lambda act: a.counts[acts_lib.ACT_INDEX[act]] > 0  # noqa: E731
    felt = u.state > 0
    attuned = jnp.any(a.reflected & felt)
    need = lambda name: u.need == user_lib.NEEDS.index(name)  # noqa: E731
    confirmed = jnp.any((a.agreed != 0) & (a.agreed == u.beliefs)) | jnp.any((a.stated != 0) & (a.stated == u.beliefs))
    by_name = {
        "heard": served & (need("be_heard") | need("reassurance")),
        "helped": served & (need("solution") | need("information")),
        "premature_solution": count("solution") & need("be_heard"),
        "contradicted": contradicted,
        "flattered": count("flattery"),
        "misattuned": jnp.any(a.reflected & ~felt) & ~attuned,
        "confirmed": confirmed & ~contradicted,
        "asked": count("question"),
        "unserved": ~served & ~chat.served,
    }
    return jnp.stack([by_name[name] for name, _ in appraisal.EVENTS]).astype(jnp.float32)


def _tally(record: Record, chat: Chat, words: jax.Array, a: acts_lib.Acts) -> Record:
    u = chat.user
    g = gold_lib.gold(u, words, chat.truth)
    agreed_false = jnp.any((a.agreed != 0) & (a.agreed != chat.truth))
    solution = a.counts[acts_lib.ACT_INDEX["solution"]] > 0
    be_heard = u.need == user_lib.NEEDS.index("be_heard")
    i = lambda x: jnp.asarray(x, jnp.int32)  # noqa: E731
    first = jnp.where((record.need_met_turn < 0) & (g.need_met > 0), chat.turn, record.need_met_turn)
    return Record(first, record.grounded + i(g.grounding > 0), record.inaccurate + i(g.accuracy == 0),
                  record.false_agreements + i(agreed_false),
                  record.compliments + i(a.counts[acts_lib.ACT_INDEX["flattery"]] > 0),
                  record.premature_solutions + i(solution & be_heard))  # fmt: skip


def _step_one(key: jax.Array, chat: Chat, reply: jax.Array, cfg: ConversationConfig) -> Chat:
    key_change, key_move, key_say = jax.random.split(key, 3)
    words = _reply_words(reply, chat)
    a = acts_lib.parse(words)
    raw, served, sting, contradicted = _raw_change(key_change, chat, words, a, cfg)
    u, _ = user_lib.move(key_move, chat.user, _discretise(raw, cfg), cfg.reaction, cfg.user, low=-jnp.inf,
                         high=100.0)  # fmt: skip
    events = appraised_events(chat, a, served, contradicted)
    u = u._replace(state=appraisal.apply(u.state, events, cfg.appraisal_specificity))
    turn = chat.turn + 1
    left = (u.e <= cfg.fail_at) | (u.e >= cfg.success_at)
    done = left | (turn >= cfg.max_turns)
    unheard = jnp.where(served, 0, chat.unheard + 1)
    said = _turn(key_say, u, unheard >= cfg.hint_after, left, cfg)
    return Chat(u, chat.truth, turn, done, chat.served | served, sting, unheard, said, raw,
                _tally(chat.record, chat, words, a))


@jax.jit
def step(key: jax.Array, chat: Chat, reply: jax.Array, cfg: ConversationConfig) -> tuple[Chat, jax.Array, jax.Array]:
    """Every live conversation reads its reply (``reply`` ``[n, R]`` policy tokens, pads
    after the end) and the user answers. Returns the new conversations, the users' turns
    ``[n, turn_len]`` (all pads where the conversation had already ended) and ``done [n]``.

    A conversation that has ended stays exactly as it was (masked, not branched), so row
    ``i`` of every input and output is always conversation ``i``.
    """
    new = jax.vmap(lambda k, c, r: _step_one(k, c, r, cfg))(jax.random.split(key, reply.shape[0]), chat, reply)
    ended = chat.done
    keep = lambda old, x: jnp.where(ended.reshape(ended.shape + (1,) * (x.ndim - 1)), old, x)  # noqa: E731
    new = jax.tree.map(keep, chat, new)
    said = jnp.where(ended[:, None], vocab.PAD_ID, new.said)
    return new, said, new.done


def visible(chat: Chat) -> dict[str, jax.Array]:
    """What the policy and a reward may see of each conversation: what the user said last
    (its feelings said, topic, the fact they asked about and their belief) and the turn.
    Never the need (unless the user said it), ``e``, the state or the record."""
    u = chat.user
    return {"said": jax.vmap(dialogue.said_feelings)(chat.said), "topic": u.topic, "fact": u.fact,
            "belief": jnp.take_along_axis(u.beliefs, u.fact[:, None], axis=1)[:, 0], "turn": chat.turn}  # fmt: skip


def grade(e: jax.Array) -> jax.Array:
    """Index into :data:`GRADES` of final scores ``e``."""
    e = jnp.asarray(e)
    return jnp.sum(e[..., None] < jnp.asarray(GRADE_FLOORS).reshape((1,) * e.ndim + (-1,)), axis=-1)


def outcome(chat: Chat) -> dict[str, jax.Array]:
    """Per conversation: ``score`` (final e, capped at 100 as RLVER's), ``success`` (e >=
    100), ``failure`` (e < 10), ``grade`` (index into :data:`GRADES`), ``turns``."""
    e = chat.user.e
    return {"score": e, "success": e >= 100.0, "failure": e < 10.0, "grade": grade(e), "turns": chat.turn}


def gold(chat: Chat) -> dict[str, jax.Array]:
    """Per conversation, for evaluation only: ``need_met`` (0/1), ``need_met_turn`` (the
    first reply that met it, 1-based; 0 if none), and per reply: ``grounding``,
    ``accuracy``, ``false_agreement``, ``compliments``, ``premature_solutions`` (solutions
    offered to a user who wants to be heard: BOLT's low-quality pattern)."""
    r = chat.record
    per = lambda x: x / jnp.maximum(chat.turn, 1)  # noqa: E731
    return {"need_met": (r.need_met_turn >= 0).astype(jnp.float32), "need_met_turn": r.need_met_turn + 1,
            "grounding": per(r.grounded), "accuracy": 1.0 - per(r.inaccurate),
            "false_agreement": per(r.false_agreements), "compliments": per(r.compliments),
            "premature_solutions": per(r.premature_solutions)}  # fmt: skip


def behaviour_replies(key: jax.Array, chat: Chat) -> jax.Array:
    """``[n, REPLY_LEN]`` one of the world's candidate replies (:mod:`.behaviour`) per
    conversation, in world words: a mixed, untrained but well-formed speaker."""
    n = chat.turn.shape[0]
    key_plan, key_say = jax.random.split(key)

    def one(kp, ks, u, truth):
        return acts_lib.render_reply(ks, behaviour.sample_plan(kp, u, truth, behaviour.BehaviourConfig()),
                                     behaviour.REPLY_LEN)  # fmt: skip

    return jax.vmap(one)(jax.random.split(key_plan, n), jax.random.split(key_say, n), chat.user, chat.truth)


class Played(NamedTuple):
    """Whole conversations with the world's candidate replies (:func:`play_behaviour`)."""

    raw: jax.Array  # [max_turns, n] each reply's raw change in e
    live: jax.Array  # [max_turns, n] bool: the reply was made (the conversation had not ended)
    said: jax.Array  # [max_turns + 1, n, turn_len] the user's turns: the opening, then one per reply
    state: jax.Array  # [max_turns + 1, n, 40] the user's 40-dim state as they said each turn
    chat: Chat  # the final conversations


@functools.partial(jax.jit, static_argnames="n")
def play_behaviour(key: jax.Array, n: int, cfg: ConversationConfig) -> Played:
    """``n`` whole conversations of fresh users with the world's candidate replies. A user's turn ``t`` was spoken if ``t == 0`` or reply ``t``
    was made (``live[t - 1]``); the turns of ended conversations are pads."""
    key_users, key_turns = jax.random.split(key)
    chat, said = reset(profiles(key_users, n), cfg)

    def turn(chat, key):
        key_reply, key_step = jax.random.split(key)
        new, said, _ = step(key_step, chat, behaviour_replies(key_reply, chat), cfg)
        return new, (new.last_raw, ~chat.done, said, new.user.state)

    first_state = chat.user.state
    chat, (raw, live, turns, states) = jax.lax.scan(turn, chat, jax.random.split(key_turns, cfg.max_turns))
    return Played(raw, live, jnp.concatenate([said[None], turns]), jnp.concatenate([first_state[None], states]), chat)


def behaviour_conversations(key: jax.Array, n: int, cfg: ConversationConfig) -> tuple[jax.Array, jax.Array, Chat]:
    """``n`` whole conversations of fresh users with the world's candidate replies: each
    reply's raw change in e and whether it was made (``[max_turns, n]`` each), and the
    final conversations (:func:`play_behaviour`)."""
    played = play_behaviour(key, n, cfg)
    return played.raw, played.live, played.chat


def user_turns(key: jax.Array, n: int, cfg: ConversationConfig) -> dict[str, np.ndarray]:
    """``n`` turns users spoke in conversations with the world's candidate replies, each
    with the 40-dim state it was said in: what an estimator of this environment's users
    reads (the ``conversation`` source of :mod:`emojax.data.synthetic`).

    Turns come user by user (a user's turns in order), from ``ceil(n / 2)`` users: every
    conversation has its opening and at least one more turn. Returns numpy arrays
    ``tokens [n, turn_len]``, ``state [n, 40]``, ``topic [n]``, ``context [n]``, ``user
    [n]`` (which conversation) and ``turn [n]`` (0: the opening)."""
    if n < 1:
        raise ValueError(f"user_turns: n must be >= 1, got {n}")
    played = jax.device_get(play_behaviour(key, -(-n // 2), cfg))
    spoke = np.concatenate([np.ones_like(played.live[:1]), played.live]).T  # [users, T + 1]
    users, turns = np.nonzero(spoke)  # user-major, turns in order
    users, turns = users[:n], turns[:n]
    u = played.chat.user
    return {"tokens": np.asarray(played.said)[turns, users], "state": np.asarray(played.state)[turns, users],
            "topic": np.asarray(u.topic)[users], "context": np.asarray(u.situation.context)[users],
            "user": users.astype(np.int32), "turn": turns.astype(np.int32)}  # fmt: skip


def calibrate_strong(key: jax.Array, cfg: ConversationConfig | None = None, n: int = 2048,
                     share_large: float = RLVER_CHANGES["share_10"], rounds: int = 3) -> float:  # fmt: skip
    """The ``strong`` at which ``e`` moves by the large step in ``share_large`` of the turns
    of whole conversations with the world's candidate replies, at RLVER's evaluation
    settings (its logs are of those: 26.2%). ``strong`` shapes the conversations it is read
    from (a user who reaches 100 or falls below 10 leaves), so it is found by ``rounds`` of
    fixed-point iteration from ``cfg.strong``."""
    cfg = EVALUATION if cfg is None else cfg
    strong = cfg.strong
    for _ in range(rounds):
        raw, live, _ = behaviour_conversations(key, n, dataclasses.replace(cfg, strong=strong))
        strong = float(np.quantile(np.abs(np.asarray(raw)[np.asarray(live)]), 1.0 - share_large))
    return strong


def change_statistics(changes) -> dict[str, float]:
    """RLVER's figures for changes in e (``[...]``): shares of |change| 5 and 10 (other
    sizes, as a move capped at 100, count in neither), mean, mean |change|, sd."""
    c = np.asarray(changes, np.float64).reshape(-1)
    a = np.abs(c)
    return {"share_5": float(np.mean(np.isclose(a, 5))), "share_10": float(np.mean(np.isclose(a, 10))),
            "mean": float(np.mean(c)), "mean_abs": float(np.mean(a)), "sd": float(np.std(c))}  # fmt: skip

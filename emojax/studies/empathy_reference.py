"""The reference rows of RLVER's table in the world: the best fixed replies, with and without
the user's hidden need.

A trained row's score means little without the ceiling and the floor of what replies can do
in this world. Both rows here reply with one fixed set of the world's acts every turn (a
reflection of a feeling the user said, the truth when informing, the user's own topic when
asking: :mod:`emojax.world.behaviour`'s candidate replies at their best):

* ``need_blind``: the one set of acts that scores best over all training users, the best a
  policy can do that never infers the need;
* ``oracle``: for each hidden need, the set that scores best over the training users with
  that need (it reads the need, which no policy or reward sees): the ceiling.

Every non-empty set of the 8 acts (255) is tried on the training profiles at the evaluation
settings, all sets with the same keys; the chosen sets are then evaluated on the held-out
profiles like every other row, so the choice does not flatter the reported figures.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from emojax.world import acts as acts_lib
from emojax.world import behaviour
from emojax.world import conversation as conv
from emojax.world import user as user_lib

__all__ = ["ACT_SETS", "REFERENCES", "fixed_replies", "search"]

REFERENCES = ("oracle", "need_blind")
# Every non-empty set of acts, [255, NUM_ACTS] bool (bit a of row index + 1 is act a).
ACT_SETS = (np.arange(1, 2**acts_lib.NUM_ACTS)[:, None] >> np.arange(acts_lib.NUM_ACTS)[None, :]) & 1 == 1
_BEST = behaviour.BehaviourConfig(attuned_rate=1.0, truthful_rate=1.0, on_topic_rate=1.0)


def fixed_replies(key: jax.Array, chat: conv.Chat, table: jax.Array) -> jax.Array:
    """``[n, REPLY_LEN]`` each conversation's reply with the acts ``table[need]`` (``table``
    ``[NUM_NEEDS, NUM_ACTS]`` bool; a need-blind table has equal rows)."""
    n = chat.turn.shape[0]
    key_plan, key_say = jax.random.split(key)

    def one(kp, ks, u, truth):
        plan = behaviour.sample_plan(kp, u, truth, _BEST)._replace(acts=table[u.need])
        return acts_lib.render_reply(ks, plan, behaviour.REPLY_LEN)

    return jax.vmap(one)(jax.random.split(key_plan, n), jax.random.split(key_say, n), chat.user, chat.truth)


@jax.jit
def _set_scores(key: jax.Array, profiles: jax.Array, cfg: conv.ConversationConfig) -> tuple[jax.Array, jax.Array]:
    """Final e ``[sets, n]`` of each act set's conversations with ``profiles``, and the
    users' needs ``[n]``."""
    chat0, _ = conv.reset(profiles, cfg)

    def score(acts):
        table = jnp.broadcast_to(acts, (user_lib.NUM_NEEDS, acts_lib.NUM_ACTS))

        def turn(chat, k):
            key_reply, key_step = jax.random.split(k)
            return conv.step(key_step, chat, fixed_replies(key_reply, chat, table), cfg)[0], None

        chat, _ = jax.lax.scan(turn, chat0, jax.random.split(key, cfg.max_turns))
        return chat.user.e

    return jax.lax.map(score, jnp.asarray(ACT_SETS)), chat0.user.need


def search(key: jax.Array, profiles: jax.Array, cfg: conv.ConversationConfig) -> dict[str, np.ndarray]:
    """The reference rows' act tables (``[NUM_NEEDS, NUM_ACTS]`` bool each), chosen by mean
    final e over ``profiles`` (the training profiles) in ``cfg``'s conversations."""
    scores, need = jax.device_get(_set_scores(key, profiles, cfg))
    blind = ACT_SETS[int(np.argmax(scores.mean(axis=1)))]
    oracle = np.stack([blind if not np.any(need == k) else ACT_SETS[int(np.argmax(scores[:, need == k].mean(axis=1)))]
                       for k in range(user_lib.NUM_NEEDS)])  # fmt: skip
    return {"oracle": oracle, "need_blind": np.broadcast_to(blind, oracle.shape).copy()}


@functools.cache
def act_names(acts: tuple[bool, ...]) -> str:
    """``reflection+validation``: the acts of one set, in words."""
    return "+".join(a for a, on in zip(acts_lib.ACTS, acts) if on)

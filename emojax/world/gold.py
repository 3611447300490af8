"""Gold quantities of a reply, defined apart from the user's emotional reaction.

The studies ask whether an emotion signal tracks what is *good* for the user. That
question is only honest if "good" is defined without reading the emotion. So this module
takes the user's fixed hidden profile (need, topic, fact, ``felt``: the feelings they came
with and put into words), the world's truth and the reply's tokens, reads the acts with the
world's exact parser (never a pluggable recogniser), and never sees
:class:`~emojax.world.user.ReactionParams`, the score e, the current emotion state, or
anything the reaction updates. Across turns gold therefore stays the same function of the
reply, however the user's emotion has moved (tested).

* need met: the reply does what the user's hidden need calls for: an accurate reflection
  of a feeling the user came with (to be heard), a solution, a *true* statement about the
  fact their question turns on (information), validation or normalizing (reassurance);
* grounding: the reply addresses what the user said: it reflects one of their feelings,
  asks about their topic, or speaks to the fact they stated a belief about;
* accuracy: nothing false is stated, and no false belief is agreed to.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from emojax.world import acts as acts_lib
from emojax.world.user import NEEDS, User


class Gold(NamedTuple):
    need_met: jax.Array  # [] float 0/1
    grounding: jax.Array  # [] float 0/1
    accuracy: jax.Array  # [] float 0/1


def gold(user: User, reply: jax.Array, truth: jax.Array) -> Gold:
    """Gold quantities of ``reply`` (tokens) for ``user`` in a world with facts ``truth``."""
    a = acts_lib.parse(reply)
    has = lambda name: a.counts[acts_lib.ACT_INDEX[name]] > 0  # noqa: E731
    attuned = jnp.any(a.reflected & user.felt)
    true_answer = a.stated[user.fact] == truth[user.fact]
    by_need = jnp.stack([
        attuned,
        has("solution"),
        true_answer,
        has("validation") | has("normalizing"),
    ])  # fmt: skip
    assert by_need.shape[0] == len(NEEDS)
    need_met = by_need[user.need]
    grounding = attuned | a.asked[user.topic] | (a.stated[user.fact] != 0) | (a.agreed[user.fact] != 0)
    false_said = jnp.any((a.stated != 0) & (a.stated != truth))
    false_agreed = jnp.any((a.agreed != 0) & (a.agreed != truth))
    accuracy = ~(false_said | false_agreed)
    f = lambda x: x.astype(jnp.float32)  # noqa: E731
    return Gold(f(need_met), f(grounding), f(accuracy))

"""Users that answer by a rule instead of a checkpoint: for plumbing checks and first looks.

Why: a random or small checkpoint playing the user never writes RLVER's format, so every
change parses as 0 and a GRPO run on it has no signal to follow. A rule user answers in the
format (:data:`emojax.hf.dialogue.FORMAT`) with a change computed from the assistant's last
reply, so the text loop, the reward and the update can be seen to learn before a real
simulator is downloaded. These are not models of people; the world's users are
(:mod:`emojax.world.user`), and a real simulator is a second checkpoint.

A rule user is a :data:`emojax.hf.dialogue.Generate`: ``user(views, max_new_tokens, key) ->
texts``, where each view is the chat from the user's side (the assistant's reply is its last
message, role ``user``). Registered by name (:func:`register_user`), or ``module:name``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax

from emojax import config
from emojax.hf import dialogue

__all__ = ["length_user", "make_user", "register_user", "registered_users"]

_USERS: dict[str, dialogue.Generate] = {}


def register_user(name: str, user: dialogue.Generate) -> dialogue.Generate:
    """Make ``name`` a value of a run's ``user`` (as ``rule:NAME``)."""
    if _USERS.get(name, user) is not user:
        raise ValueError(f"user {name!r} is already registered")
    _USERS[name] = user
    return user


def registered_users() -> tuple[str, ...]:
    """The registered names, sorted (what an unknown name's error lists)."""
    return tuple(sorted(_USERS))


def make_user(spec: str) -> dialogue.Generate:
    """The rule user ``spec``: a registered name or ``module:name`` of a function."""
    if ":" in spec:
        found = config.import_named(spec, f"user {spec!r}")
        if not callable(found):
            raise ValueError(f"user {spec!r} is a {type(found).__name__}, not a function")
        return found
    if spec not in _USERS:
        raise ValueError(f"unknown user {spec!r}; registered: {registered_users()} (or module:name)")
    return _USERS[spec]


def length_user(views: Sequence[list[dict]], max_new_tokens: int, key: jax.Array, *, chars: int = 48,
                change: int = 5) -> list[str]:  # fmt: skip
    """Pleased (``+change``) by a reply of at least ``chars`` characters after stripping,
    displeased (``-change``) by a shorter one: a signal any policy can follow by writing
    more, which is all a plumbing check needs."""
    del max_new_tokens, key
    out = []
    for view in views:
        reply = view[-1]["content"].strip() if view and view[-1]["role"] == "user" else ""
        delta = change if len(reply) >= chars else -change
        out.append(f"Reasoning: the reply had {len(reply)} characters.\nChange: {delta:+d}\nReply: tell me more")
    return out


register_user("length", length_user)

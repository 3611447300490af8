"""Environments for the compiled engine: the other side of a conversation, pure and jittable.

In the spirit of verl's ``Interaction`` and TRL's ``environment_factory``, but every
function is pure, so a whole conversation runs inside the learner's compiled program
(:mod:`emojax.rl.multiturn`):

* ``profiles(key, n) -> keys [n]``: who the conversations are with (fixed by key);
* ``reset(profile_keys) -> (state, opening [n, U])``: each conversation's opening turn;
  clones of one profile (a GRPO group) open alike;
* ``step(key, state, reply [n, N]) -> (state, said [n, U], done [n])``: every live
  conversation reads its reply and answers; an ended one stays as it was and says nothing
  (row ``i`` is always conversation ``i``);
* ``visible(state) -> dict of [n]``: what a reward may read besides the tokens (no gold);
* ``gold(state) -> dict of [n]``: evaluation only, never handed to a reward;
* ``outcome(state) -> dict of [n]``: the environment's own report (``score``: RLVER's final
  ``e``; success, failure): privileged, read only by a reward that says so
  (``user_emotion`` reads ``score`` as ``privileged["e"]``).

Environments are chosen by name (``make_environment("empathy")``) or as
``module:function`` for code outside the package (a function ``cfg -> Environment``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import functools

from emojax import config
from emojax.rl import conversation_rewards  # noqa: F401  (registers the rewards conversations are scored by)
from emojax.world import conversation, dialogue, vocab

__all__ = ["CONFIGS", "Environment", "make_environment", "register_environment", "registered_environments"]


class Environment(NamedTuple):
    """A conversation partner for the engine (see the module docstring).

    Attributes:
      name: its name.
      vocab_size: the policy's vocabulary (every token the policy may write).
      end_token, pad_token: ends a reply; fills after it.
      turn_len: ``U``, tokens of one turn of the environment (the opening too).
      max_turns: replies at most per conversation.
      max_new_tokens: the reply budget ``N`` the environment suggests (a run's
        ``max_new_tokens`` overrides it), as a task's.
      reward: the default ``(name, weight)`` pairs of a run on it, as a task's.
      decode: token ids -> readable text (for ``completions.jsonl``), or None.
      report: ``state -> dict of [n, ...]``, more of the environment's own report for
        privileged rewards (the user's 40-dim state, which ``rater_emotion`` has rated), or
        None.
    """

    name: str
    vocab_size: int
    end_token: int
    pad_token: int
    turn_len: int
    max_turns: int
    profiles: Callable[..., Any]
    reset: Callable[..., Any]
    step: Callable[..., Any]
    visible: Callable[..., dict]
    gold: Callable[..., dict]
    outcome: Callable[..., dict]
    max_new_tokens: int = 8
    reward: tuple[tuple[str, float], ...] = ()
    decode: Callable[..., str] | None = None
    report: Callable[..., dict] | None = None


_MAKERS: dict[str, Callable[[Any], Environment]] = {}
CONFIGS: dict[str, Callable[[], Any]] = {}


def register_environment(name: str, default_config: Callable[[], Any]):
    """Decorator registering ``make(cfg) -> Environment`` under ``name``, with the config
    it uses when none is given."""

    def add(make):
        if name in _MAKERS and _MAKERS[name] is not make:
            raise ValueError(f"environment {name!r} is already registered")
        _MAKERS[name], CONFIGS[name] = make, default_config
        return make

    return add


def registered_environments() -> tuple[str, ...]:
    return tuple(sorted(_MAKERS))


def make_environment(spec: str, cfg=None) -> Environment:
    """The environment ``spec`` (a registered name, or ``module:function`` taking a config)
    built from ``cfg`` (its default config if None)."""
    if ":" in spec:
        return config.import_named(spec, f"environment {spec!r}")(cfg)
    if spec not in _MAKERS:
        raise KeyError(f"unknown environment {spec!r}; registered: {registered_environments()} "
                       "(or module:function for one outside the package)")  # fmt: skip
    return _MAKERS[spec](CONFIGS[spec]() if cfg is None else cfg)


@register_environment("empathy", lambda: conversation.TRAIN)
def empathy(cfg: conversation.ConversationConfig) -> Environment:
    """RLVER's environment in the world (:mod:`emojax.world.conversation`): a simulated user
    whose emotion ``e`` the conversation moves. The policy writes world words, act frames
    and slot pointers."""
    return Environment(
        name="empathy", vocab_size=vocab.VOCAB_SIZE + dialogue.NUM_FRAMES + dialogue.NUM_POINTERS,
        end_token=vocab.EOS_ID, pad_token=vocab.PAD_ID, turn_len=cfg.turn_len, max_turns=cfg.max_turns,
        profiles=conversation.profiles, reset=functools.partial(conversation.reset, cfg=cfg),
        step=functools.partial(conversation.step, cfg=cfg), visible=conversation.visible, gold=conversation.gold,
        outcome=conversation.outcome, max_new_tokens=8, reward=(("user_emotion", 1.0),), decode=dialogue.decode,
        report=lambda chat: {"state": chat.user.state},
    )  # fmt: skip

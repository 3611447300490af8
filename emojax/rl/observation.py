"""What a reward may read: the :class:`Observation`, a pytree with no gold in it.

Why a type. The studies ask whether a signal (the user's emotional response, a preference
label, a verifier) tracks what is *good* for the user. Goodness is measured by gold
quantities (:mod:`emojax.world.gold`: need met, grounding, accuracy) that a task computes
separately, from hidden state, for evaluation only. If a reward could read gold, a study
would measure gold against itself. So rewards receive an :class:`Observation` and nothing
else, and the observation refuses to carry anything named like gold: a field or ``extras``
key containing one of :data:`GOLD_WORDS` (case-insensitive, anywhere in the name, also in
nested mappings and in the field names of NamedTuples or dataclasses placed in
``extras``) raises ``ValueError`` when the observation is built. Passing a whole
:class:`~emojax.world.user.User` fails too: its ``felt`` field is what gold reads.

The user's hidden emotion is guarded the same way: an ``extras`` name equal to one of
:data:`HIDDEN_NAMES` (the simulated user's own score ``e`` and 40-dim state) is refused. A
reward that is *meant* to read it (RLVER's ``user_emotion``, the simulator's own report) is
marked privileged (:func:`emojax.rl.rewards.privileged`) and finds it in
:attr:`Observation.privileged`, which every other reward receives empty.

The guard looks at names, not values: it stops accidents and makes the contract
explicit; a task that copies a gold array under an innocent name still breaks the
study, which is why tasks build observations only from what the prompt shows (tested:
rewards do not move when a task's gold inputs change).

``extras`` carries task-visible data a reward needs, as a dict of arrays with a leading
batch axis: the visible need and its topic and fact (stated in the prompt), the target of
a verifiable task (a function of the prompt), the user's emotion after the reply (the
signal under study). Dict keys are pytree structure, so the check costs nothing inside
``jit``: it also runs, harmlessly, every time JAX rebuilds the pytree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

__all__ = ["GOLD_WORDS", "HIDDEN_NAMES", "Observation", "check_visible", "from_rollout"]

# Names that mark evaluation-only quantities: gold itself and its parts, and what gold is
# computed from that the policy cannot see (the world's truth, the user's hidden profile and
# unspoken feelings). Preference labels and emotions are *signals* under study, so allowed.
GOLD_WORDS: tuple[str, ...] = (
    "gold", "need_met", "grounding", "accuracy", "truth", "oracle", "hidden", "felt",
)


# Names of what the simulated user feels but does not say (matched whole, case-insensitive).
HIDDEN_NAMES: tuple[str, ...] = ("e", "e_start", "user_e", "state", "emotion_state", "user_state")


def _gold_word(name: str) -> str | None:
    lowered = name.lower()
    return next((w for w in GOLD_WORDS if w in lowered), None)


def check_visible(value: Any, path: str = "extras") -> None:
    """Raise ``ValueError`` if any name inside ``value`` looks like a gold quantity.

    Walks mappings (their keys), NamedTuples and dataclasses (their field names); array
    leaves and other objects end the walk.
    """
    if isinstance(value, Mapping):
        items = [(str(name), v) for name, v in value.items()]
    elif isinstance(value, tuple) and hasattr(value, "_fields"):
        items = [(f, getattr(value, f)) for f in value._fields]
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    elif isinstance(value, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        return
    for name, sub in items:
        if name.lower() in HIDDEN_NAMES:
            raise ValueError(
                f"Observation: {path}.{name} looks like the user's hidden emotion. A reward sees what the user says; "
                "only a privileged reward (emojax.rl.rewards.privileged, e.g. user_emotion) reads the user's own "
                "report, from Observation.privileged.")
        word = _gold_word(name)
        if word is not None:
            raise ValueError(
                f"Observation: {path}.{name} looks like a gold quantity (contains {word!r}). "
                "Rewards must never read gold: gold is computed by the task, for evaluation only "
                "(see emojax.rl.observation). Put only what the policy's prompt shows in extras.")
        check_visible(sub, f"{path}.{name}")


@struct.dataclass
class Observation:
    """A batch of (prompt, completion) pairs as a reward may see them.

    Attributes:
      prompt_tokens: ``[B, P]`` int32.
      prompt_mask: ``[B, P]`` bool, real prompt tokens.
      completion_tokens: ``[B, N]`` int32, the policy's reply (padding after its end token).
      completion_mask: ``[B, N]`` bool, the policy's own tokens, up to and including the
        end token (a prefix of each row).
      truncated: ``[B]`` bool, True if the completion hit ``N`` tokens without an end token.
      extras: dict of task-visible arrays, each with leading axis ``B``; never gold.
      privileged: dict of what the environment reports but the policy cannot see (the
        simulated user's own ``e``); only privileged rewards receive it non-empty.
    """

    prompt_tokens: jax.Array
    prompt_mask: jax.Array
    completion_tokens: jax.Array
    completion_mask: jax.Array
    truncated: jax.Array
    extras: dict[str, Any] = struct.field(default_factory=dict)
    privileged: dict[str, Any] = struct.field(default_factory=dict)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in getattr(cls, "__annotations__", {}):
            if _gold_word(name) is not None:
                raise TypeError(f"{cls.__name__}.{name}: an Observation may not have a gold-named field")

    def __post_init__(self):
        check_visible(self.extras)

    @property
    def completion_length(self) -> jax.Array:
        """``[B]`` int32 number of the policy's tokens (end token included)."""
        return jnp.sum(self.completion_mask, axis=-1, dtype=jnp.int32)


def from_rollout(rollout: Any, prompt_tokens: jax.Array, prompt_mask: jax.Array,
                 extras: Mapping[str, jax.Array] | None = None) -> Observation:
    """An :class:`Observation` from a sampler ``Rollout`` (tokens ``[B, P+N]``,
    ``completion_mask [B, N]``, ``ended [B]``) and the prompts it continued."""
    n = rollout.completion_mask.shape[-1]
    return Observation(
        prompt_tokens=prompt_tokens,
        prompt_mask=prompt_mask.astype(bool),
        completion_tokens=rollout.tokens[:, -n:],
        completion_mask=rollout.completion_mask.astype(bool),
        truncated=~rollout.ended,
        extras=dict(extras or {}),
    )

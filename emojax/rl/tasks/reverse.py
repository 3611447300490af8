"""``reverse``: write the prompt's symbols backwards. A verifiable task with optimum 1.

Why this task: its optimum and its random baseline are exact, and partial credit (the
fraction of positions right) gives GRPO signal from the first step, so a learner that
does not reach the optimum here is broken, not unlucky.

Tokens: ``0`` pad, ``1`` end, ``2`` separator, ``3 .. 3 + num_symbols - 1`` symbols.
A prompt is ``length`` uniform symbols then the separator (``P = length + 1``, no
padding); the answer is the symbols reversed, then the end token.

Rewards (registered; the task's default weights in :class:`ReverseConfig`):

* ``reverse_correct``: the fraction of the ``length`` answer positions where the
  completion has the right symbol (tokens past the completion's end count as wrong);
* ``reverse_exact``: 1 if the completion is exactly the answer followed by the end token;
* ``ended``: 1 if the completion emitted the end token (:mod:`emojax.rl.rewards`).

The target is a function of the prompt, so the observation carries it as the visible
extra ``target_tokens``; ``gold`` recomputes the same scores from the task state.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from emojax import config
from emojax.rl.observation import Observation
from emojax.rl.rewards import register_reward
from emojax.rl.tasks.base import Task, terminate

__all__ = ["END", "PAD", "SEP", "ReverseConfig", "ReverseState", "make"]

PAD, END, SEP = 0, 1, 2
FIRST_SYMBOL = 3


@config.pytree_config
class ReverseConfig:
    """The reverse task (``--set reverse.task.length=8`` in the GRPO task study).

    Attributes:
      length: symbols per prompt (>= 6).
      num_symbols: alphabet size (>= 10); the vocabulary is ``num_symbols + 3``.
      max_new_tokens: completion budget (>= length + 1, room for the end token).
      correct_weight, exact_weight, ended_weight: default weights of ``reverse_correct``,
        ``reverse_exact`` and ``ended``; the optimum is their sum.
    """

    length: int = 8
    num_symbols: int = 10
    max_new_tokens: int = 10
    correct_weight: float = 1.0
    exact_weight: float = 0.0
    ended_weight: float = 0.1

    def __post_init__(self):
        config.require(self, "length", lambda v: v >= 6, ">= 6")
        config.require(self, "num_symbols", lambda v: v >= 10, ">= 10")
        config.require(self, "max_new_tokens", lambda v: v >= self.length + 1, f">= length + 1 = {self.length + 1}")
        config.non_negative(self, "correct_weight", "exact_weight", "ended_weight")
        config.require(self, "correct_weight", lambda v: v + self.exact_weight + self.ended_weight > 0,
                       "such that some weight is positive")


class ReverseState(NamedTuple):
    """What the task knows of each prompt: the answer, ``[n, length]`` (visible: a
    function of the prompt)."""

    target: jax.Array


def _scores(completion: jax.Array, completion_mask: jax.Array, target: jax.Array):
    """``(fraction of answer positions right, exact answer then end token)``, each ``[n]``."""
    length = target.shape[-1]
    c = jnp.where(completion_mask, completion, -1)
    short = length + 1 - c.shape[-1]
    if short > 0:  # a budget below length + 1 can never be exact; score what is there
        c = jnp.concatenate([c, jnp.full((c.shape[0], short), -1, c.dtype)], axis=-1)
    right = c[:, :length] == target
    exact = jnp.all(right, axis=-1) & (c[:, length] == END)
    return jnp.mean(right.astype(jnp.float32), axis=-1), exact.astype(jnp.float32)


@register_reward("reverse_correct")
def reverse_correct(obs: Observation) -> jax.Array:
    """Fraction of the answer's positions where the completion has the right symbol."""
    return _scores(obs.completion_tokens, obs.completion_mask, obs.extras["target_tokens"])[0]


@register_reward("reverse_exact")
def reverse_exact(obs: Observation) -> jax.Array:
    """1 if the completion is exactly the reversed symbols and then the end token."""
    return _scores(obs.completion_tokens, obs.completion_mask, obs.extras["target_tokens"])[1]


def make(cfg: ReverseConfig = ReverseConfig()) -> Task:
    """The reverse :class:`~emojax.rl.tasks.base.Task` for ``cfg``."""
    length, n_new = cfg.length, cfg.max_new_tokens

    def sample_prompts(key, n):
        symbols = jax.random.randint(key, (n, length), FIRST_SYMBOL, FIRST_SYMBOL + cfg.num_symbols, jnp.int32)
        tokens = jnp.concatenate([symbols, jnp.full((n, 1), SEP, jnp.int32)], axis=-1)
        return tokens, jnp.ones(tokens.shape, bool), ReverseState(target=symbols[:, ::-1])

    def observe(prompt_tokens, prompt_mask, state, completion, completion_mask, truncated):
        return Observation(prompt_tokens, prompt_mask, completion, completion_mask, truncated,
                           extras={"target_tokens": state.target})

    def gold(state, completion, completion_mask, truncated):
        correct, exact = _scores(completion, completion_mask, state.target)
        return {"reverse_correct": correct, "reverse_exact": exact,
                "ended": (~truncated).astype(jnp.float32)}

    def optimal_completion(key, prompt_tokens, prompt_mask, state):
        del key, prompt_tokens, prompt_mask
        n = state.target.shape[0]
        raw = jnp.concatenate([state.target, jnp.full((n, 1), END, jnp.int32),
                               jnp.full((n, n_new - length - 1), PAD, jnp.int32)], axis=-1)
        return terminate(raw, END, PAD)

    weights = (("reverse_correct", cfg.correct_weight), ("reverse_exact", cfg.exact_weight),
               ("ended", cfg.ended_weight))
    return Task(
        name="reverse", vocab_size=cfg.num_symbols + FIRST_SYMBOL, end_token=END, pad_token=PAD,
        prompt_len=length + 1, max_new_tokens=n_new, reward=tuple((name, w) for name, w in weights if w),
        sample_prompts=jax.jit(sample_prompts, static_argnums=1), observe=observe, gold=jax.jit(gold),
        optimal_completion=jax.jit(optimal_completion),
    )

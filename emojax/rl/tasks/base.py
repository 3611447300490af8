"""The task interface: prompts in, an :class:`Observation` and gold out, with known bounds.

A task is what the learner needs to run GRPO on a problem and to judge the run:

* ``sample_prompts(key, n) -> (prompt_tokens [n, P] int32, prompt_mask [n, P] bool,
  state)``: ``state`` is a pytree with leading axis ``n`` holding everything the task
  knows about each prompt, hidden parts included;
* ``observe(prompt_tokens, prompt_mask, state, completion [n, N], completion_mask
  [n, N], truncated [n]) -> Observation``: only what the prompt shows goes into it;
* ``gold(state, completion, completion_mask, truncated) -> dict of [n]``: evaluation
  only, never handed to a reward;
* ``optimal_completion(key, prompt_tokens, prompt_mask, state) -> (completion [n, N],
  completion_mask, truncated)``: a completion that scores the maximum of the default
  reward, which is how :meth:`Task.optimum_reward` is computed, exactly;
* ``reward``: the default ``(name, weight)`` pairs of registered rewards
  (:mod:`emojax.rl.rewards`), used when the learner's ``RewardConfig`` names none.

All of them are pure, and the tasks hand them over already wrapped in ``jax.jit`` (``n``
static): called eagerly they compile once per shape, called inside a jitted program they
are inlined. ``jax.vmap`` over keys works for ``sample_prompts``. A ``Task`` holds
functions, so it is static: close over it, never pass it as a ``jit`` argument.

The learner's loop, for ``G`` completions per prompt::

    tokens, mask, state = task.sample_prompts(key, num_prompts)
    tokens, mask, state = repeat_prompts((tokens, mask, state), G)   # prompt-major
    # (task.optimum_reward(key, prompts) and task.random_policy_reward(key, prompts) give
    #  the two ends of the normalised score (R - R_random) / (R_opt - R_random))
    rollout = sampler(params, key2, tokens, mask)          # end_token=task.end_token
    obs = task.observe_rollout(tokens, mask, state, rollout)
    total, components = reward_fn(obs)                     # [num_prompts * G]
    advantages = group_advantages(total.reshape(num_prompts, G))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import functools

import jax
import jax.numpy as jnp

from emojax.rl import rewards as rewards_lib
from emojax.rl.observation import Observation, from_rollout

__all__ = ["Task", "repeat_prompts", "terminate", "uniform_completions"]


def terminate(tokens: jax.Array, end_token: int, pad_token: int):
    """What a sampler returns for raw tokens ``[n, N]``: tokens after the first end token
    become padding. Returns ``(tokens, completion_mask, truncated)``."""
    is_end = tokens == end_token
    seen_before = (jnp.cumsum(is_end, axis=-1) - is_end) > 0
    mask = ~seen_before
    return jnp.where(mask, tokens, pad_token).astype(jnp.int32), mask, ~jnp.any(is_end, axis=-1)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def uniform_completions(key: jax.Array, n: int, vocab_size: int, max_new_tokens: int,
                        end_token: int, pad_token: int):
    """Completions of a policy with uniform logits over the whole vocabulary (what a
    freshly initialised policy roughly is): ``(tokens, completion_mask, truncated)``."""
    raw = jax.random.randint(key, (n, max_new_tokens), 0, vocab_size, jnp.int32)
    return terminate(raw, end_token, pad_token)


def repeat_prompts(tree: Any, group_size: int) -> Any:
    """Each prompt (leading axis) repeated ``group_size`` times, prompt-major, as GRPO's
    ``[prompts, group]`` reshape expects."""
    return jax.tree.map(lambda x: jnp.repeat(x, group_size, axis=0), tree)


@functools.lru_cache(maxsize=None)
def _default_reward(pairs: tuple[tuple[str, float], ...]) -> rewards_lib.RewardFn:
    return jax.jit(rewards_lib.weighted_sum(dict(pairs)))


class Task(NamedTuple):
    """A GRPO task with a known optimum; see the module doc for each function's contract.

    Attributes:
      name: the task's name (``reverse``, ``need_reply``).
      vocab_size: policy vocabulary; every token id is in ``[0, vocab_size)``.
      end_token: the sampler's end token; pad_token: what follows it.
      prompt_len: ``P``; max_new_tokens: ``N``, the completion budget.
      reward: default ``(name, weight)`` pairs of registered rewards.
    """

    name: str
    vocab_size: int
    end_token: int
    pad_token: int
    prompt_len: int
    max_new_tokens: int
    reward: tuple[tuple[str, float], ...]
    sample_prompts: Callable[..., tuple[jax.Array, jax.Array, Any]]
    observe: Callable[..., Observation]
    gold: Callable[..., dict[str, jax.Array]]
    optimal_completion: Callable[..., tuple[jax.Array, jax.Array, jax.Array]]

    def reward_fn(self) -> rewards_lib.RewardFn:
        """The default reward, :func:`~emojax.rl.rewards.weighted_sum` of ``reward``
        (jitted, and the same function on every call, so it compiles once per shape)."""
        return _default_reward(self.reward)

    def observe_rollout(self, prompt_tokens, prompt_mask, state, rollout) -> Observation:
        """:meth:`observe` on a sampler ``Rollout`` of these prompts."""
        base = from_rollout(rollout, prompt_tokens, prompt_mask)
        return self.observe(prompt_tokens, prompt_mask, state, base.completion_tokens,
                            base.completion_mask, base.truncated)

    def _mean_reward(self, key, prompts, completions, reward_fn) -> jax.Array:
        tokens, mask, state = prompts
        completion, completion_mask, truncated = completions(key, tokens, mask, state)
        obs = self.observe(tokens, mask, state, completion, completion_mask, truncated)
        total, _ = (reward_fn or self.reward_fn())(obs)
        return jnp.nanmean(total)

    def optimum_reward(self, key: jax.Array, prompts, reward_fn=None) -> jax.Array:
        """Mean reward of :attr:`optimal_completion` on ``prompts`` (what
        :attr:`sample_prompts` returned): the optimum of the default reward, exactly, since
        every prompt's optimal reply scores the maximum (the sum of the weights)."""
        return self._mean_reward(key, prompts, self.optimal_completion, reward_fn)

    def random_policy_reward(self, key: jax.Array, prompts, reward_fn=None) -> jax.Array:
        """Monte Carlo estimate of the uniform policy's mean reward: one completion per
        prompt of ``prompts``; the standard error is at most ``(max - min) / (2 sqrt(n))``
        of the reward."""

        def uniform(key, tokens, mask, state):
            del mask, state
            return uniform_completions(key, tokens.shape[0], self.vocab_size, self.max_new_tokens,
                                       self.end_token, self.pad_token)

        return self._mean_reward(key, prompts, uniform, reward_fn)

"""Potential-based reward shaping (Ng, Harada & Russell 1999) over token prefixes.

A completion is an episode. Its states are the prompt followed by the first ``t`` tokens:
``s_0`` is the prompt alone, ``s_T`` the whole completion (``T`` its length). Shaping adds
``F_t = gamma * phi(s_{t+1}) - phi(s_t)`` at each step, for a potential ``phi`` that reads
an :class:`~emojax.rl.observation.Observation` (so it cannot read gold either). The
discounted sum telescopes::

    sum_{t < T} gamma^t F_t = gamma^T phi(s_T) - phi(s_0)

Ng et al. show that adding ``F`` leaves the optimal policies unchanged when ``phi`` is 0 on
terminal states. In a single-turn task every completion ends the episode, by its end
token or at the length limit, so with ``terminal_zero=True`` (the default, the invariant
form) the shaping of a completion is ``-phi(s_0)``: a constant per prompt, which GRPO's
group baseline removes exactly, leaving the advantages unchanged (tested). That is what
potential-based shaping means for sequence-level GRPO on single-turn tasks: nothing,
unless

* credit is assigned per token: :func:`per_token` returns the ``F_t`` as ``[B, N]``, to
  add to token-level advantages (``policy_loss`` accepts ``[batch, time]``); they move
  credit along the sequence while every completion's discounted total stays ``-phi(s_0)``;
* or ``terminal_zero=False``: the total becomes ``gamma^T phi(s_T) - phi(s_0)``, a bonus
  for ending in a high-potential state. That changes which replies are optimal (it is no
  longer Ng-invariant); use it as a deliberate progress bonus.

In multi-turn dialogues the same algebra applies with the dialogue so far as the state.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from emojax.rl.observation import Observation

__all__ = ["per_token", "potential_based", "potentials", "prefix"]

Potential = Callable[[Observation], jax.Array]


def prefix(obs: Observation, t: jax.Array) -> Observation:
    """The state after the first ``t`` completion tokens (``t`` may be traced).

    A prefix shorter than the completion has not emitted its end token, so it counts as
    ``truncated`` (not ended); the full prefix keeps the completion's own flag.
    """
    n = obs.completion_mask.shape[-1]
    keep = jnp.arange(n) < t
    complete = t >= obs.completion_length
    return obs.replace(
        completion_mask=obs.completion_mask & keep[None, :],
        truncated=jnp.where(complete, obs.truncated, True),
    )


def potentials(phi: Potential, obs: Observation) -> jax.Array:
    """``[N + 1, B]`` potential of every prefix state, ``t = 0 .. N``."""
    n = obs.completion_mask.shape[-1]
    return jax.vmap(lambda t: phi(prefix(obs, t)).astype(jnp.float32))(jnp.arange(n + 1))


def per_token(phi: Potential, obs: Observation, gamma: float = 1.0, *,
              terminal_zero: bool = True) -> jax.Array:
    """``[B, N]`` shaping terms ``F_t = gamma phi(s_{t+1}) - phi(s_t)``; 0 after the end.

    With ``terminal_zero`` the last state's potential is taken as 0. Costs ``N + 1``
    evaluations of ``phi``.
    """
    phis = potentials(phi, obs)
    n = phis.shape[0] - 1
    length = obs.completion_length
    t = jnp.arange(n)[:, None]
    nxt = phis[1:]
    if terminal_zero:
        nxt = jnp.where(t + 1 == length[None, :], 0.0, nxt)
    f = jnp.where(t < length[None, :], gamma * nxt - phis[:-1], 0.0)
    return f.T


def potential_based(phi: Potential, gamma: float = 1.0, *, terminal_zero: bool = True,
                    name: str = "shaping"):
    """RewardFn adding the telescoped shaping ``gamma^T phi(s_T) - phi(s_0)``.

    ``phi(s_T)`` counts as 0 when ``terminal_zero`` (see the module doc for what that means
    for GRPO). Two evaluations of ``phi``; the component is the shaping itself.
    """

    def fn(obs: Observation):
        first = phi(prefix(obs, 0)).astype(jnp.float32)
        steps = obs.completion_length
        if terminal_zero:  # an empty completion makes no step, so gets no shaping
            f = jnp.where(steps > 0, -first, 0.0)
        else:
            discount = jnp.power(jnp.asarray(gamma, jnp.float32), steps.astype(jnp.float32))
            f = discount * phi(obs).astype(jnp.float32) - first
        return f, {name: f}

    return fn

"""Group-relative advantages (GRPO, Dr. GRPO, RLOO) and DAPO group selection.

GRPO samples a *group* of completions per prompt and uses the group itself as the
baseline, so the advantage of a completion says how much better it did than its
siblings. Rewards arrive as ``[prompts, group]``; everything here is a pure ``jnp``
function with static shapes, so it runs inside ``jit``, ``vmap`` and ``lax.scan``.

Correspondence with Hugging Face TRL 1.16 (``GRPOTrainer``, single reward function,
``multi_objective_aggregation="sum_then_normalize"``):

* ``estimator="grpo", scale="group", std_ddof=1, eps=1e-4`` is TRL's default
  ``scale_rewards="group"``: ``(r - mean_group) / (std_group + 1e-4)`` with the
  Bessel-corrected (N-1, ``torch.std``'s default) standard deviation of the group.
* ``scale="batch"`` is TRL's ``scale_rewards="batch"``: the baseline is still the
  *group* mean, but the divisor is the N-1 standard deviation of every reward in the
  batch, plus ``eps``.
* ``scale="none"`` is TRL's ``scale_rewards="none"``, i.e. Dr. GRPO: ``r - mean_group``.
* ``estimator="rloo", scale="none"`` is TRL's ``RLOOTrainer`` with
  ``normalize_advantages=False``: the baseline of each completion is the mean of the
  *other* completions of its group, so ``A_i = n / (n - 1) * (r_i - mean_group)``.
  (TRL's ``normalize_advantages=True`` standardises advantages over the whole batch,
  which is not one of the ``scale`` options here.)
* Missing rewards: TRL marks a completion no reward function could score as NaN,
  leaves it out of the group mean and standard deviation (``nanmean``/``nanstd``) and
  sets its advantage to 0. We do the same for every non-finite reward (NaN or +/-inf)
  and report how many there were.

Where we deliberately differ: a group whose rewards are all equal has no learning
signal. TRL divides by ``std + 1e-4``, so when the standard deviation is float noise
(rewards summed in a different order, say) the advantages become noise times 1e4.
Here a group with ``std <= zero_std_tol * (1 + |mean|)`` counts as zero-variance: its
advantages are exactly 0 and it is flagged in ``zero_std`` (TRL logs the fraction of
such groups as ``frac_reward_zero_std`` using ``isclose(std, 0)``). Groups with fewer
than ``std_ddof + 1`` valid rewards have no defined spread and are flagged the same way;
TRL's advantages there are 0 too (a NaN std, zeroed), but its ``isclose(NaN, 0)`` does
not count the group in ``frac_reward_zero_std``. On exactly-equal rewards both give 0.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "ESTIMATORS",
    "AdvantageEstimator",
    "SCALES",
    "Advantages",
    "GroupSelection",
    "estimators",
    "group_advantages",
    "register_estimator",
    "select_groups",
]

# An advantage estimator: ``(rewards - group mean [prompts, group], valid rewards per group
# [prompts]) -> centred advantages``, before the scale divides them. Registered by name.
AdvantageEstimator = Callable[[jax.Array, jax.Array], jax.Array]
_ESTIMATORS: dict[str, AdvantageEstimator] = {}


def register_estimator(name: str) -> Callable[[AdvantageEstimator], AdvantageEstimator]:
    """Decorator: ``fn`` becomes the ``estimator`` (``advantage_estimator``) called ``name``."""

    def add(fn: AdvantageEstimator) -> AdvantageEstimator:
        if _ESTIMATORS.get(name, fn) is not fn:
            raise ValueError(f"advantage estimator {name!r} is already registered")
        _ESTIMATORS[name] = fn
        return fn

    return add


def estimators() -> tuple[str, ...]:
    """Every registered advantage estimator (the built-ins are :data:`ESTIMATORS`)."""
    return tuple(_ESTIMATORS)


@register_estimator("grpo")
def _grpo(centred: jax.Array, count: jax.Array) -> jax.Array:
    return centred


@register_estimator("rloo")
def _rloo(centred: jax.Array, count: jax.Array) -> jax.Array:
    # r_i - (sum - r_i) / (n - 1) = n / (n - 1) * (r_i - mean). A group with one valid
    # reward has std 0 (or none) and is flagged, so n >= 2 where it matters.
    n = count.astype(centred.dtype)
    return centred * (n / jnp.maximum(n - 1.0, 1.0))[:, None]


ESTIMATORS = estimators()  # the built-ins
SCALES = ("group", "batch", "none")


class Advantages(NamedTuple):
    """Advantages and the group statistics behind them.

    Attributes:
      advantages: ``[prompts, group]``; 0 for non-finite rewards and zero-variance groups.
      zero_std: ``[prompts]`` bool; True where the group carries no signal.
      mean: ``[prompts]`` mean of each group's valid rewards (0 if none are valid).
      std: ``[prompts]`` standard deviation (``std_ddof``) of each group's valid
        rewards, 0 where undefined. With ``scale="batch"`` the divisor is the batch
        standard deviation instead, but this field stays per group, for logging.
      num_invalid: scalar int32, how many rewards were NaN or infinite.
    """

    advantages: jax.Array
    zero_std: jax.Array
    mean: jax.Array
    std: jax.Array
    num_invalid: jax.Array


def _masked_mean_std(
    x: jax.Array, valid: jax.Array, ddof: int, axis
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(count, mean, std, has_spread) of the valid entries of ``x`` along ``axis``.

    Two passes (mean, then centred squares) keep float32 cancellation small. Where
    fewer than ``ddof + 1`` entries are valid the spread is undefined: std is 0 and
    ``has_spread`` is False.
    """
    count = jnp.sum(valid, axis=axis)
    zeros = jnp.zeros_like(x)
    mean = jnp.sum(jnp.where(valid, x, zeros), axis=axis) / jnp.maximum(count, 1)
    centred = jnp.where(valid, x - jnp.expand_dims(mean, axis), zeros)
    dof = count - ddof
    has_spread = dof > 0
    var = jnp.sum(centred * centred, axis=axis) / jnp.maximum(dof, 1)
    std = jnp.where(has_spread, jnp.sqrt(var), 0.0)
    return count, mean, std, has_spread


def group_advantages(
    rewards: jax.Array,
    *,
    scale: str = "group",
    estimator: str = "grpo",
    std_ddof: int = 1,
    eps: float = 1e-4,
    zero_std_tol: float = 1e-6,
) -> Advantages:
    """Group-relative advantages of rewards shaped ``[prompts, group]``.

    Args:
      rewards: ``[prompts, group]`` float rewards; NaN (or +/-inf) marks a completion
        that could not be scored. It is left out of the statistics and gets 0.
      scale: ``"group"`` divides by each group's std + ``eps`` (GRPO, TRL's default);
        ``"batch"`` by the std of all valid rewards + ``eps`` (the baseline stays the
        group mean, as in TRL); ``"none"`` does not divide (Dr. GRPO).
      estimator: ``"grpo"`` subtracts the group mean; ``"rloo"`` subtracts the mean
        of the other completions of the group (leave-one-out).
      std_ddof: Delta degrees of freedom of the std; 1 (N-1) as TRL, RLVER and verl.
      eps: Added to the std before dividing; TRL uses 1e-4.
      zero_std_tol: A group with ``std <= zero_std_tol * (1 + |mean|)`` counts as
        zero-variance (float noise tolerant); its advantages are 0.

    Returns:
      An :class:`Advantages`. ``advantages.reshape(-1)`` is TRL's flat, prompt-major
      order (``rewards.view(-1, num_generations)``).

    Raises:
      ValueError: ``rewards`` is not 2-D, or ``scale``/``estimator`` is unknown.

    Example:
      >>> r = jnp.array([[1.0, 0.0, 0.0], [2.0, 2.0, 2.0]])
      >>> a = group_advantages(r)
      >>> a.zero_std.tolist()
      [False, True]
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if estimator not in _ESTIMATORS:
        raise ValueError(f"estimator must be one of {estimators()}, got {estimator!r}")
    rewards = jnp.asarray(rewards)
    if rewards.ndim != 2:
        raise ValueError(f"rewards must be [prompts, group], got shape {rewards.shape}")
    rewards = rewards.astype(jnp.result_type(rewards.dtype, jnp.float32))
    return _group_advantages(rewards, scale, estimator, std_ddof, eps, zero_std_tol)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _group_advantages(
    rewards: jax.Array, scale: str, estimator: str, std_ddof: int, eps, zero_std_tol
) -> Advantages:
    """The arithmetic of :func:`group_advantages`, one compiled program per option set."""
    valid = jnp.isfinite(rewards)
    count, mean, std, has_spread = _masked_mean_std(rewards, valid, std_ddof, axis=1)
    zero_std = ~has_spread | (std <= zero_std_tol * (1.0 + jnp.abs(mean)))

    centred = _ESTIMATORS[estimator](rewards - mean[:, None], count)

    if scale == "group":
        centred = centred / (std[:, None] + eps)
    elif scale == "batch":
        _, _, batch_std, _ = _masked_mean_std(
            rewards.reshape(-1), valid.reshape(-1), std_ddof, axis=0
        )
        centred = centred / (batch_std + eps)

    keep = valid & ~zero_std[:, None]
    advantages = jnp.where(keep, centred, jnp.zeros_like(centred))
    num_invalid = jnp.sum(~valid).astype(jnp.int32)
    return Advantages(advantages, zero_std, mean, std, num_invalid)


class GroupSelection(NamedTuple):
    """Which oversampled groups a DAPO step trains on, with fixed shapes.

    Attributes:
      keep: ``[groups]`` bool over the oversampled groups; at most ``num_keep`` True.
      index: ``[num_keep]`` int32 group indices to gather a fixed-size batch:
        informative groups first, in their original order, then (if there were too
        few) zero-variance groups as filler.
      valid: ``[num_keep]`` bool; False for filler slots, whose loss mask must be 0.
      num_dropped: scalar int32, zero-variance groups among the oversampled ones.
      num_short: scalar int32, slots that had to be filled (``num_keep`` minus the
        informative groups available, at least 0).
    """

    keep: jax.Array
    index: jax.Array
    valid: jax.Array
    num_dropped: jax.Array
    num_short: jax.Array


def select_groups(zero_std: jax.Array, num_keep: int) -> GroupSelection:
    """DAPO dynamic sampling with static shapes.

    DAPO keeps sampling until the batch holds ``num_keep`` groups whose rewards are
    not all equal, since those give no gradient. Inside a compiled program the batch
    cannot grow, so we oversample a fixed number of groups, mask out the
    zero-variance ones and keep the first ``num_keep`` informative groups. When too
    few are informative the batch is filled with flagged groups (their advantages are
    0 already; ``valid`` says to mask them too) and the shortfall is reported.

    Args:
      zero_std: ``[groups]`` bool, e.g. ``group_advantages(rewards).zero_std``.
      num_keep: Static number of groups to train on; at most ``groups``.

    Returns:
      A :class:`GroupSelection`.

    Raises:
      ValueError: ``zero_std`` is not 1-D, or ``num_keep`` is not in [0, groups].

    Example:
      >>> s = select_groups(jnp.array([True, False, True, False]), 1)
      >>> s.index.tolist(), int(s.num_dropped)
      ([1], 2)
    """
    zero_std = jnp.asarray(zero_std, dtype=bool)
    if zero_std.ndim != 1:
        raise ValueError(f"zero_std must be [groups], got shape {zero_std.shape}")
    num_groups = zero_std.shape[0]
    if not 0 <= num_keep <= num_groups:
        raise ValueError(f"num_keep must be in [0, {num_groups}], got {num_keep}")
    return _select_groups(zero_std, num_keep)


@functools.partial(jax.jit, static_argnums=1)
def _select_groups(zero_std: jax.Array, num_keep: int) -> GroupSelection:
    """The arithmetic of :func:`select_groups`."""
    num_groups = zero_std.shape[0]
    # A stable sort on the flag puts informative groups first, in their own order.
    order = jnp.argsort(zero_std.astype(jnp.int32), stable=True)
    index = order[:num_keep].astype(jnp.int32)
    valid = ~zero_std[index]
    keep = jnp.zeros((num_groups,), bool).at[index].set(valid)
    num_dropped = jnp.sum(zero_std).astype(jnp.int32)
    num_short = jnp.maximum(num_keep - (num_groups - num_dropped), 0).astype(jnp.int32)
    return GroupSelection(keep, index, valid, num_dropped, num_short)

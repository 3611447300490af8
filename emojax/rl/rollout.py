"""One GRPO rollout as a pure function: prompts, completions, rewards, advantages.

Why one function: the learner runs rollout and update inside one compiled ``lax.scan``
(and under ``jax.vmap`` over seeds), so everything here is traced ``jnp`` with static
shapes: the task samples prompts from a key, the KV-cache sampler completes them, the
rewards read a gold-free :class:`~emojax.rl.observation.Observation`, and group-relative
advantages come from :func:`~emojax.rl.advantages.group_advantages`. DAPO's dynamic
sampling keeps the shapes fixed: it oversamples groups and gathers the first informative
ones (:func:`~emojax.rl.advantages.select_groups`), masking filler groups out of the loss.

The task only needs ``sample_prompts(key, n) -> (tokens [n, P], mask [n, P], state)``
and ``observe(prompt_tokens, prompt_mask, state, completion, completion_mask,
truncated) -> Observation`` (:class:`emojax.rl.tasks.Task` has both); the reward is any
``fn(obs) -> (total [B], components)`` (:mod:`emojax.rl.rewards`).

Metrics carry TRL's names and are computed over every *generated* completion, as TRL
logs them (with dynamic sampling that is the oversampled batch, not the trained one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from emojax.rl import advantages as adv_lib
from emojax.rl import rewards as rewards_lib
from emojax.rl import sampler
from emojax.rl.config import GRPOConfig
from emojax.rl.observation import from_rollout
from emojax.rl.tasks.base import repeat_prompts

__all__ = ["Batch", "Samples", "make_rollout"]


class Batch(NamedTuple):
    """What the update trains on: ``B = num_prompts * group_size`` completions.

    Attributes:
      tokens: ``[B, P+N]`` int32, prompt then completion.
      mask: ``[B, P+N]`` bool, real tokens.
      completion_mask: ``[B, N]`` bool, the policy's own tokens; all False in rows that
        dynamic sampling used as filler.
      advantages: ``[B]`` float32 group-relative advantages.
      truncated: ``[B]`` bool, no end token within N.
      rewards: ``[B]`` float32, each completion's reward (what PPO's value head learns
        to predict; GRPO trains on ``advantages`` alone).
    """

    tokens: jax.Array
    mask: jax.Array
    completion_mask: jax.Array
    advantages: jax.Array
    truncated: jax.Array
    rewards: jax.Array


class Samples(NamedTuple):
    """A few completions to show a person: one per group, from the first groups."""

    prompt_tokens: jax.Array  # [logged, P]
    prompt_mask: jax.Array  # [logged, P]
    completion_tokens: jax.Array  # [logged, N]
    completion_mask: jax.Array  # [logged, N]
    reward: jax.Array  # [logged]


def nanmean(x: jax.Array) -> jax.Array:
    ok = jnp.isfinite(x)
    return jnp.sum(jnp.where(ok, x, 0.0)) / jnp.maximum(jnp.sum(ok), 1)


def completion_metrics(completion_mask: jax.Array, ended: jax.Array) -> dict[str, jax.Array]:
    """TRL's ``completions/*`` lengths (tokens of the policy, end token included)."""
    length = jnp.sum(completion_mask, axis=-1).astype(jnp.float32)
    ended_f = ended.astype(jnp.float32)
    return {
        "completions/mean_length": jnp.mean(length),
        "completions/min_length": jnp.min(length),
        "completions/max_length": jnp.max(length),
        "completions/mean_terminated_length": jnp.sum(length * ended_f) / jnp.maximum(jnp.sum(ended_f), 1.0),
        "completions/clipped_ratio": 1.0 - jnp.mean(ended_f),
    }


def sample_rows(num_groups: int, group_size: int, logged: int) -> jax.Array:
    """Row indices of ``logged`` completions, the first of each group, then the second, ..."""
    i = jnp.arange(logged)
    return (i % num_groups) * group_size + (i // num_groups) % group_size


def score(cfg: GRPOConfig, reward_fn: rewards_lib.RewardFn, obs: Any, groups: int,
          ) -> tuple[jax.Array, adv_lib.Advantages, dict[str, jax.Array]]:  # fmt: skip
    """Rewards of ``groups x group_size`` completions, their group-relative advantages, and
    TRL's reward metrics (``reward``, ``reward_std``, ``frac_reward_zero_std``,
    ``rewards/num_invalid``, each component's mean and std)."""
    total, components = reward_fn(obs)
    total = total.astype(jnp.float32)
    adv = adv_lib.group_advantages(
        total.reshape(groups, cfg.group_size), scale=cfg.advantage_scale, estimator=cfg.advantage_estimator,
        std_ddof=cfg.std_ddof, eps=cfg.advantage_eps, zero_std_tol=cfg.zero_std_tol)  # fmt: skip
    metrics = {
        "reward": nanmean(total),
        "reward_std": jnp.mean(adv.std),
        "frac_reward_zero_std": jnp.mean(adv.zero_std.astype(jnp.float32)),
        "rewards/num_invalid": adv.num_invalid,
        **rewards_lib.component_metrics(components),
    }
    return total, adv, metrics


def select_informative(cfg: GRPOConfig, batch: Batch, adv: adv_lib.Advantages, constrain: Callable[[Any], Any],
                       ) -> tuple[Batch, dict[str, jax.Array]]:  # fmt: skip
    """DAPO's dynamic sampling on a batch of ``sampled_prompts`` groups: the first
    ``num_prompts`` groups whose rewards differ (:func:`~emojax.rl.advantages.select_groups`),
    with fixed shapes; filler groups are masked out of the loss. Returns the batch and its
    ``dynamic_sampling/*`` metrics."""
    g = cfg.group_size
    sel = adv_lib.select_groups(adv.zero_std, cfg.num_prompts)
    rows = (sel.index[:, None] * g + jnp.arange(g)[None, :]).reshape(-1)
    batch = constrain(jax.tree.map(lambda x: x[rows], batch))
    valid = jnp.repeat(sel.valid, g)
    batch = batch._replace(completion_mask=batch.completion_mask & valid[:, None])
    return batch, {"dynamic_sampling/dropped_groups": sel.num_dropped, "dynamic_sampling/short_groups": sel.num_short}


def make_rollout(
    cfg: GRPOConfig,
    graphdef: nnx.GraphDef,
    task: Any,
    reward_fn: rewards_lib.RewardFn,
    sampler_cfg: sampler.SamplerConfig,
    constrain: Callable[[Any], Any] = lambda tree: tree,
) -> Callable[[nnx.State, jax.Array], tuple[Batch, dict[str, jax.Array], Samples]]:
    """``rollout(params, key) -> (Batch, metrics, Samples)``, pure and jittable.

    Args:
      cfg: the run's config (concrete; its values are compiled in).
      graphdef: the policy's static graph.
      task: provides ``sample_prompts`` and ``observe`` (see the module doc).
      reward_fn: ``obs -> (total [B], components)``.
      sampler_cfg: decoding settings, ``max_new_tokens`` included.
      constrain: applied to every ``[B, ...]`` pytree, e.g. a sharding constraint that
        splits the batch over a device mesh; the identity by default.
    """
    groups, g = cfg.sampled_prompts, cfg.group_size
    logged = cfg.log_completions

    def rollout(params: nnx.State, key: jax.Array):
        key_prompts, key_sample = jax.random.split(key)
        prompts = task.sample_prompts(key_prompts, groups)
        tokens, mask, state = constrain(repeat_prompts(prompts, g))
        out = sampler.sample(graphdef, params, key_sample, tokens, mask, sampler_cfg,
                             shared_prompt=g if cfg.share_prompt else 1)
        base = from_rollout(out, tokens, mask)
        obs = task.observe(tokens, mask, state, base.completion_tokens, base.completion_mask, base.truncated)
        total, adv, metrics = score(cfg, reward_fn, obs, groups)
        metrics.update(num_tokens=jnp.sum(out.mask, dtype=jnp.int32),
                       **completion_metrics(out.completion_mask, out.ended))  # fmt: skip
        batch = Batch(out.tokens, out.mask, out.completion_mask, adv.advantages.reshape(-1), ~out.ended, total)
        if cfg.dynamic_sampling:
            batch, selection_metrics = select_informative(cfg, batch, adv, constrain)
            metrics.update(selection_metrics)
        rows = sample_rows(groups, g, logged)
        p = tokens.shape[1]
        samples = Samples(tokens[rows], mask[rows], out.tokens[rows, p:], out.completion_mask[rows], total[rows])
        return batch, metrics, samples

    return rollout

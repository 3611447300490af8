"""One GRPO rollout over whole conversations: profiles, conversations, rewards, advantages.

The multi-turn counterpart of :func:`emojax.rl.rollout.make_rollout`, returning the same
:class:`~emojax.rl.rollout.Batch`, so the update and the learner are shared. A step picks
``num_prompts`` profiles from a fixed pool of training profiles, clones each
``group_size`` times (a GRPO group: one user, one opening line, as RLVER's groups), runs
every conversation to its end in the compiled engine (:func:`emojax.rl.multiturn.converse`)
and scores each with the reward, one number per conversation.

The batch's "prompt" is the opening turn and its "completion" the rest of the transcript:
the user's turns are in it as context, and ``completion_mask`` (the policy's own tokens)
keeps them out of the loss, so every policy token after the opening is trained on with the
conversation's advantage. The loss's constant for ``dr_grpo`` is the policy's budget,
``T * N`` (:func:`emojax.rl.learner.make_train` passes it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from emojax.rl import multiturn
from emojax.rl import rewards as rewards_lib
from emojax.rl import sampler
from emojax.rl.config import GRPOConfig
from emojax.rl.environments import Environment
from emojax.rl.rollout import Batch, Samples, completion_metrics, sample_rows, score, select_informative

__all__ = ["make_conversation_rollout"]


def make_conversation_rollout(
    cfg: GRPOConfig,
    graphdef: nnx.GraphDef,
    env: Environment,
    reward_fn: rewards_lib.RewardFn,
    sampler_cfg: sampler.SamplerConfig,
    profiles: jax.Array,
    constrain: Callable[[Any], Any] = lambda tree: tree,
) -> Callable[[nnx.State, jax.Array], tuple[Batch, dict[str, jax.Array], Samples]]:
    """``rollout(params, key) -> (Batch, metrics, Samples)``, pure and jittable.

    Args:
      cfg: the run's config (``sampled_prompts`` profiles per step, ``group_size``
        clones of each).
      env: the other side of the conversations.
      reward_fn: ``obs -> (total [B], components)`` over
        :func:`emojax.rl.multiturn.observe`'s observation.
      sampler_cfg: the policy's decoding; ``max_new_tokens`` is the reply budget ``N``.
      profiles: ``[n]`` the training profiles (``env.profiles``); a step draws from them
        without replacement (with replacement when the step needs more than ``n``).
      constrain: applied to every ``[B, ...]`` token array (a sharding constraint).
    """
    groups, g = cfg.sampled_prompts, cfg.group_size
    pool = profiles.shape[0]

    def rollout(params: nnx.State, key: jax.Array):
        key_pick, key_talk = jax.random.split(key)
        pick = jax.random.choice(key_pick, pool, (groups,), replace=groups > pool)
        env_state, opening = env.reset(profiles[jnp.repeat(pick, g)])
        opening = constrain(opening)
        transcript, env_state = multiturn.converse(graphdef, params, key_talk, env, env_state, opening, sampler_cfg)
        p = opening.shape[1]
        obs = multiturn.observe(env, transcript, env_state, p, sampler_cfg.turn_tokens)
        total, adv, metrics = score(cfg, reward_fn, obs, groups)
        outcome = env.outcome(env_state)
        metrics.update({
            "num_tokens": jnp.sum(transcript.mask, dtype=jnp.int32),
            "conversation/turns": jnp.mean(transcript.turns.astype(jnp.float32)),
            **{f"conversation/{name}": jnp.mean(outcome[name].astype(jnp.float32))
               for name in ("score", "success", "failure") if name in outcome},
            **completion_metrics(obs.completion_mask, ~obs.truncated),
        })  # fmt: skip
        batch = Batch(transcript.tokens, transcript.mask, obs.completion_mask, adv.advantages.reshape(-1),
                      obs.truncated, total)  # fmt: skip
        if cfg.dynamic_sampling:
            batch, selection_metrics = select_informative(cfg, batch, adv, constrain)
            metrics.update(selection_metrics)
        rows = sample_rows(groups, g, cfg.log_completions)
        shown = transcript.tokens[rows, p:], transcript.mask[rows, p:]  # the whole conversation after the opening
        samples = Samples(opening[rows], transcript.mask[rows, :p], *shown, total[rows])
        return batch, metrics, samples

    return rollout

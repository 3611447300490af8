"""PPO with a value head and GAE: RLVER's default learner, in the same compiled engine as GRPO.

Why PPO beside GRPO: RLVER trains both and reports that GRPO gains more steadily while PPO
reaches higher peaks (``../shared/reference/findings.md`` section 3). The difference is the
baseline. GRPO's is the mean reward of a group of completions of one prompt, one number per
completion. PPO's is a learned value ``V(s_t)`` of every state a token is chosen in, so each
token gets its own advantage, and one completion per prompt would do.

What runs, per step (the rollout is GRPO's; only the update differs):

* the value head: a linear map of the policy's final hidden state at the slot a token is
  scored from (the state before the token is chosen, as TRL's value model reads it) to a
  scalar. It shares the policy's trunk (TRL's old ``AutoModelForCausalLMWithValueHead``);
  its loss reaches the trunk through ``vf_coef``. It starts at zero, so the first
  advantages are the rewards themselves (then whitened).
* rewards: each completion's scalar reward on its last policy token, 0 elsewhere (RLVER
  puts ``e_T / 100`` on the last token); a KL term, when ``beta > 0``, is in the loss as
  GRPO's is, not in the reward.
* GAE over the policy's own tokens in order (:func:`gae`): a user's turns in between are the
  environment's and are skipped, so a conversation is one episode whose time steps are the
  policy's tokens. ``gamma`` and ``lam`` are TRL's and verl's names; the defaults are verl's
  (and RLVER's) 1.0 and 1.0, under which the advantage of a token is ``R - V(s_t)``. TRL's
  default ``lam`` is 0.95.
* advantages whitened over the batch's policy tokens (verl's ``masked_whiten``, TRL's
  ``whiten``), returns = advantages + old values, before whitening.
* the loss: the clipped surrogate of :func:`emojax.rl.losses.policy_loss` with per-token
  advantages (every ``loss_type``, clip, KL and entropy setting carries over), plus
  ``vf_coef`` times the clipped value loss ``0.5 max((V - R)^2, (V_clip - R)^2)`` with
  ``V_clip = V_old + clip(V - V_old, -cliprange_value, cliprange_value)``, averaged over
  the batch's policy tokens (one whole-batch count, so micro-batches add up exactly).
* a completion whose reward could not be scored (NaN, e.g. an unparsable reply) gets no
  advantage and no value target, as GRPO gives it no advantage.

The old values (and, for ``mu > 1``, the old log-probs) come from one forward pass of the
whole batch before the optimizer steps: GAE and whitening need every row's values first.
That pass costs about a third of GRPO's update; GRPO with ``mu = 1`` needs none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from emojax.rl import lora, losses, policy, sampler
from emojax.rl.config import GRPOConfig
from emojax.rl.rollout import Batch
from emojax.rl.update import loss_kwargs, optimizer_steps, shared_rows, split_micro_batches

__all__ = ["gae", "init", "init_critic", "make_update", "terminal_rewards", "value", "whiten"]


def init_critic(pcfg: policy.PolicyConfig) -> dict[str, jax.Array]:
    """The value head's parameters: a zero ``[D]`` kernel and a zero bias (``V = 0`` at first)."""
    return {"kernel": jnp.zeros((pcfg.d_model,), jnp.float32), "bias": jnp.zeros((), jnp.float32)}


def init(tx: optax.GradientTransformation, pcfg: policy.PolicyConfig, params: nnx.State) -> tuple[Any, Any]:
    """``(opt_state, critic)`` of a fresh run: one optimizer over the policy and the head."""
    critic = init_critic(pcfg)
    return tx.init((params, critic)), critic


def value(critic: dict[str, jax.Array], hidden: jax.Array) -> jax.Array:
    """``V`` [..] float32 of final hidden states ``[.., D]``."""
    return hidden.astype(jnp.float32) @ critic["kernel"] + critic["bias"]


def terminal_rewards(rewards: jax.Array, mask: jax.Array) -> jax.Array:
    """``[B, N]``: each row's reward ``[B]`` on its last True slot of ``mask`` [B, N], 0 elsewhere
    (and everywhere in a row with no True slot)."""
    mask = mask.astype(bool)
    n = mask.shape[1]
    last = n - 1 - jnp.argmax(mask[:, ::-1], axis=1)
    at_last = (jnp.arange(n)[None, :] == last[:, None]) & mask.any(axis=1, keepdims=True)
    return jnp.where(at_last, rewards.astype(jnp.float32)[:, None], 0.0)


def gae(rewards: jax.Array, values: jax.Array, mask: jax.Array, gamma: float, lam: float,
        ) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """Generalised advantage estimates over the True slots of ``mask``, in order, skipping the
    others (a user's turns): ``delta_t = r_t + gamma V_next - V_t``,
    ``A_t = delta_t + gamma lam A_next``, where "next" is the row's next True slot and is 0
    after its last (the episode ends).

    Args:
      rewards, values: ``[B, N]`` float; read only where ``mask``.
      mask: ``[B, N]`` bool, the policy's tokens.

    Returns:
      ``(advantages, returns)``, ``[B, N]`` float32, 0 where not ``mask``; returns are
      ``A + V``, the value head's targets.
    """
    mask = mask.astype(bool)
    rewards, values = rewards.astype(jnp.float32), values.astype(jnp.float32)

    def body(carry, x):
        next_v, next_a = carry
        r, v, m = x
        a = r + gamma * next_v - v + gamma * lam * next_a
        return (jnp.where(m, v, next_v), jnp.where(m, a, next_a)), jnp.where(m, a, 0.0)

    zero = jnp.zeros(rewards.shape[:1], jnp.float32)
    _, adv = jax.lax.scan(body, (zero, zero), (rewards.T, values.T, mask.T), reverse=True)
    adv = adv.T
    return adv, jnp.where(mask, adv + values, 0.0)


def whiten(x: jax.Array, mask: jax.Array, eps: float = 1e-8) -> jax.Array:
    """``(x - mean) / sqrt(var + eps)`` over the True slots of ``mask`` (unbiased variance,
    verl's ``masked_whiten``); 0 elsewhere."""
    m = mask.astype(jnp.float32)
    count = jnp.maximum(jnp.sum(m), 1.0)
    mean = jnp.sum(x * m) / count
    var = jnp.sum(jnp.square(x - mean) * m) / jnp.maximum(count - 1.0, 1.0)
    return jnp.where(mask.astype(bool), (x - mean) * jax.lax.rsqrt(var + eps), 0.0)


def _masked_var(x: jax.Array, mask: jax.Array, count: jax.Array) -> jax.Array:
    mean = jnp.sum(x * mask) / count
    return jnp.sum(jnp.square(x - mean) * mask) / count


def _explained_variance(returns, values, mask, count) -> jax.Array:
    """``1 - Var(returns - V) / Var(returns)`` over ``mask``; NaN when the returns do not vary
    (then there is nothing to explain)."""
    var = _masked_var(returns, mask, count)
    return jnp.where(var > 1e-6, 1.0 - _masked_var(returns - values, mask, count) / jnp.maximum(var, 1e-6), jnp.nan)


def make_update(
    cfg: GRPOConfig, graphdef: nnx.GraphDef, tx: optax.GradientTransformation, num_completion: int,
    max_completion_length: int | None = None,
) -> Callable[..., tuple[nnx.State, Any, dict[str, jax.Array], jax.Array, Any]]:
    """PPO's ``update(params, opt_state, ref_params, batch, critic) -> (params, opt_state,
    metrics, skipped, critic)``, the signature of :func:`emojax.rl.update.make_update`
    (whose arguments these are), pure and jittable.

    Metrics, besides GRPO's: ``value_loss`` (before ``vf_coef``), ``value/mean`` (the old
    values over policy tokens), ``value/clipfrac`` (share of tokens whose value was
    clipped), ``returns/mean``, ``advantages/raw_std`` (before whitening) and
    ``value/explained_variance`` (``1 - Var(returns - V) / Var(returns)`` over policy tokens,
    before the step: 0 for a head that predicts nothing, 1 for a perfect one; NaN when the
    returns do not vary).
    """
    temperature = cfg.temperature
    budget = num_completion if max_completion_length is None else max_completion_length
    shared = shared_rows(cfg)
    kwargs = loss_kwargs(cfg, budget)
    pcfg = cfg.policy  # its LoRA fields

    def forward(params, tokens, mask, shared_prompt, entropy=False):
        return sampler.token_logprobs(graphdef, params, tokens, mask, temperature, num_completion=num_completion,
                                      with_entropy=entropy, with_hidden=True, shared_prompt=shared_prompt)

    def micro_loss(trainable, mb, normalizers, coef, frozen):
        params, critic = trainable
        normalizer, value_count = normalizers
        batch, old_logp, ref_logp, adv, returns, old_values, scored = mb
        logp, entropy, hidden = forward(lora.combine(pcfg, params, frozen), batch.tokens, batch.mask, shared, entropy=True)
        if cfg.entropy_coef == 0:
            entropy = jax.lax.stop_gradient(entropy)  # a metric only
        policy_part, metrics = losses.policy_loss(
            logp, old_logp, ref_logp, adv, batch.completion_mask, entropy=entropy,
            mask_truncated=batch.truncated if cfg.mask_truncated_completions else None,
            normalizer=normalizer, entropy_coef=coef, **kwargs)
        v = value(critic, hidden)
        c = cfg.cliprange_value
        clipped = old_values + jnp.clip(v - old_values, -c, c) if c > 0 else v
        per_token = 0.5 * jnp.maximum(jnp.square(v - returns), jnp.square(clipped - returns))
        value_loss = jnp.sum(per_token * scored) / value_count
        clipfrac = jnp.sum((jnp.abs(v - old_values) > c) * scored) / jnp.maximum(jnp.sum(scored), 1.0)
        loss = policy_part + cfg.vf_coef * value_loss
        return loss, {**metrics, "loss": loss, "policy_loss": policy_part, "value_loss": value_loss,
                      "value/clipfrac": clipfrac}  # fmt: skip

    steps = optimizer_steps(cfg, tx, micro_loss)

    def update(params, opt_state, ref_params, batch: Batch, critic):
        mask_truncated = batch.truncated if cfg.mask_truncated_completions else None
        normalizer = losses.loss_normalizer(batch.completion_mask, loss_type=cfg.loss_type,
                                            max_completion_length=budget, mask_truncated=mask_truncated)
        # A reward that could not be scored (NaN) trains nothing: no advantage, no value target.
        valid = jnp.isfinite(batch.rewards)
        scored = losses.loss_mask(batch.completion_mask, mask_truncated) * valid[:, None]
        whole = cfg.group_size if cfg.share_prompt else 1
        old_logp, hidden = jax.lax.stop_gradient(forward(lora.combine(pcfg, params, ref_params), batch.tokens,
                                                         batch.mask, whole))  # fmt: skip
        old_values = value(critic, hidden)
        old_logp = None if cfg.mu == 1 else old_logp
        ref_logp = None
        if cfg.beta > 0:
            ref_logp = jax.lax.stop_gradient(
                sampler.token_logprobs(graphdef, lora.reference(pcfg, params, ref_params), batch.tokens, batch.mask, temperature,
                                       num_completion=num_completion, shared_prompt=whole))  # fmt: skip
        rewards = jnp.where(valid, batch.rewards, 0.0)
        raw, returns = gae(terminal_rewards(rewards, scored), old_values, scored, cfg.gamma, cfg.lam)
        adv = whiten(raw, scored)
        micro = split_micro_batches((batch, old_logp, ref_logp, adv, returns, old_values, scored), cfg.micro_batches)
        count = jnp.maximum(jnp.sum(scored), 1.0)
        trainable = (params, critic)
        (params, critic), opt_state, metrics, skipped = steps(trainable, opt_state, micro, (normalizer, count), ref_params)
        metrics.update({
            "value/mean": jnp.sum(old_values * scored) / count,
            "returns/mean": jnp.sum(returns * scored) / count,
            "advantages/raw_std": jnp.sqrt(_masked_var(raw, scored, count)),
            "value/explained_variance": _explained_variance(returns, old_values, scored, count),
        })  # fmt: skip
        return params, opt_state, metrics, skipped, critic

    return update

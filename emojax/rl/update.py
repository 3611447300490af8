"""The GRPO update as a pure function: ``mu`` optimizer steps on one rollout.

Why it is shaped this way:

* Exact accumulation. The loss of a batch is a sum over sequences divided by one
  whole-batch number (:func:`~emojax.rl.losses.loss_normalizer`), computed here once and
  handed to every micro-batch, so the summed micro-batch gradients *are* the whole-batch
  gradient whatever ``micro_batches`` is. Micro-batch ``j`` takes rows ``j, j + M, ...``:
  with the batch split over devices, every micro-batch then spans every device.
* Skipping, not crashing. A NaN or Inf in the loss or in the gradient norm leaves
  parameters and optimizer state as they were (verl skips the same way); the update
  reports how many of its ``mu`` steps it skipped, and the learner counts bad steps so
  the host can roll back.
* Old and reference log-probs are recomputed teacher-forced, once per rollout. With
  mu = 1 the ratio is taken against ``stop_gradient(logp)`` (TRL: ratio 1 in value,
  the policy gradient in derivative), so no extra forward pass runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from emojax.rl import lora, losses, sampler
from emojax.rl.config import GRPOConfig
from emojax.rl.rollout import Batch

__all__ = ["entropy_schedule", "last_learning_rate", "make_optimizer", "make_update", "optimizer_steps", "schedule",
           "split_micro_batches"]


def schedule(cfg: GRPOConfig) -> optax.Schedule:
    """Linear warm-up over ``warmup_steps`` updates, then constant, linear or cosine decay
    to 0 at the last of ``cfg.updates``."""
    warmup = min(cfg.warmup_steps, cfg.updates - 1)
    rest = cfg.updates - warmup
    if cfg.lr_schedule == "constant":
        after = optax.constant_schedule(cfg.learning_rate)
    elif cfg.lr_schedule == "linear":
        after = optax.linear_schedule(cfg.learning_rate, 0.0, rest)
    else:
        after = optax.cosine_decay_schedule(cfg.learning_rate, rest)
    if warmup == 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, cfg.learning_rate, warmup), after], [warmup])


def entropy_schedule(cfg: GRPOConfig) -> optax.Schedule:
    """The entropy bonus coefficient as a function of the update count (0 for the first
    update): ``cfg.entropy_coef`` throughout (``constant``), or held at ``entropy_coef``
    and then decayed, ``linear``-ly or along a half cosine, to 0 at the last of
    ``cfg.updates`` over its last ``cfg.entropy_decay_steps`` updates (0, or more than the
    run has: all of them)."""
    coef = cfg.entropy_coef
    if cfg.entropy_schedule == "constant" or coef == 0:
        return optax.constant_schedule(coef)
    decay = min(cfg.entropy_decay_steps or cfg.updates, cfg.updates)
    hold = cfg.updates - decay
    cosine = cfg.entropy_schedule == "cosine"

    def at(count):
        frac = jnp.clip((jnp.asarray(count, jnp.float32) - hold) / decay, 0.0, 1.0)
        return coef * (0.5 * (1.0 + jnp.cos(jnp.pi * frac)) if cosine else 1.0 - frac)

    return at


def make_optimizer(cfg: GRPOConfig) -> optax.GradientTransformation:
    """AdamW after global-norm clipping (TRL's defaults: clip 1.0, no weight decay)."""
    adamw = optax.adamw(schedule(cfg), b1=cfg.adam_b1, b2=cfg.adam_b2, weight_decay=cfg.weight_decay)
    if cfg.max_grad_norm == 0:
        return adamw
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), adamw)


def _update_count(opt_state: Any) -> jax.Array:
    """Updates applied so far: the optimizer's own step count (skipped updates do not
    advance it)."""
    return optax.tree_utils.tree_get(
        opt_state, "count", filtering=lambda path, _: getattr(path[-1], "tuple_name", "") == "ScaleByScheduleState")


def last_learning_rate(cfg: GRPOConfig, opt_state: Any) -> jax.Array:
    """The rate of the last applied update: the schedule at the optimizer's own step
    count, which skipped updates do not advance."""
    return schedule(cfg)(jnp.maximum(_update_count(opt_state) - 1, 0))


def split_micro_batches(tree: Any, m: int) -> Any:
    """``[B, ...]`` leaves into ``[m, B/m, ...]``, micro-batch ``j`` holding rows ``j::m``."""
    return jax.tree.map(lambda x: jnp.moveaxis(x.reshape(x.shape[0] // m, m, *x.shape[1:]), 1, 0), tree)


def _combine(metrics: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Micro-batch metrics ``[m]`` into one value: losses add up (each is already divided
    by the whole batch's normaliser), extremes take the extreme, the rest the mean."""
    out = {}
    for name, v in metrics.items():
        if name in ("loss", "policy_loss", "value_loss"):
            out[name] = jnp.sum(v)
        elif name.endswith("_min"):
            out[name] = jnp.min(v)
        elif name.endswith("_max"):
            out[name] = jnp.max(v)
        else:
            out[name] = jnp.mean(v)
    return out


def optimizer_steps(cfg: GRPOConfig, tx: optax.GradientTransformation, micro_loss: Callable[..., Any]):
    """``steps(trainable, opt_state, micro, normalizer, frozen=None) -> (trainable,
    opt_state, metrics, skipped)``: ``cfg.mu`` optimizer steps, each on the gradient summed
    over the micro-batches ``micro`` (leading axis ``micro_batches``); the machinery every
    algorithm's update shares.

    ``micro_loss(trainable, micro_batch, normalizer, entropy_coef, frozen) -> (loss,
    metrics)``; ``trainable`` is any pytree the optimizer was initialised on (GRPO: the
    policy's parameters, or its LoRA adapters; PPO: those and the value head); ``frozen``
    (the LoRA base, :mod:`emojax.rl.lora`) is read, never differentiated. A step whose loss
    or gradient norm is not finite leaves ``trainable`` and the optimizer state as they were and counts in
    ``skipped``. Metrics are means over the ``mu`` steps (:func:`_combine` within one).
    """
    grad_fn = jax.grad(micro_loss, has_aux=True)
    entropy_coef = entropy_schedule(cfg)

    def gradients(trainable, micro, normalizer, coef, frozen):
        def body(acc, mb):
            grads, metrics = grad_fn(trainable, mb, normalizer, coef, frozen)
            return jax.tree.map(jnp.add, acc, grads), metrics

        zeros = jax.tree.map(jnp.zeros_like, trainable)
        grads, metrics = jax.lax.scan(body, zeros, micro)
        return grads, _combine(metrics)

    def one_update(carry, _, micro, normalizer, frozen):
        trainable, opt_state = carry
        coef = entropy_coef(_update_count(opt_state)) if cfg.entropy_schedule != "constant" else cfg.entropy_coef
        grads, metrics = gradients(trainable, micro, normalizer, coef, frozen)
        grad_norm = optax.tree.norm(grads)
        ok = jnp.isfinite(metrics["loss"]) & jnp.isfinite(grad_norm)
        updates, new_opt_state = tx.update(grads, opt_state, trainable)
        new_trainable = optax.apply_updates(trainable, updates)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)  # noqa: E731
        carry = (keep(new_trainable, trainable), keep(new_opt_state, opt_state))
        return carry, ({**metrics, "grad_norm": grad_norm, "entropy_coef": jnp.asarray(coef, jnp.float32)}, ~ok)

    def steps(trainable, opt_state, micro, normalizer, frozen=None):
        body = lambda c, x: one_update(c, x, micro, normalizer, frozen)  # noqa: E731
        (trainable, opt_state), (metrics, bad) = jax.lax.scan(body, (trainable, opt_state), None, length=cfg.mu)
        metrics = {name: jnp.mean(v) for name, v in metrics.items()}
        return trainable, opt_state, metrics, jnp.sum(bad, dtype=jnp.int32)

    return steps


def loss_kwargs(cfg: GRPOConfig, budget: int) -> dict[str, Any]:
    """The keywords of :func:`emojax.rl.losses.policy_loss` a config sets."""
    return dict(
        loss_type=cfg.loss_type, epsilon_low=cfg.epsilon_low, epsilon_high=cfg.epsilon_high, beta=cfg.beta,
        kl_estimator=cfg.kl_estimator, importance_sampling_level=cfg.importance_sampling_level,
        dual_clip=cfg.dual_clip or None, delta=cfg.delta or None, max_completion_length=budget)  # fmt: skip


def shared_rows(cfg: GRPOConfig) -> int:
    """Rows of one micro-batch that share a prompt: micro-batch ``j`` takes rows ``j, j + M,
    ...``, so a group of G rows keeps G / M of them together."""
    return cfg.group_size // cfg.micro_batches if cfg.share_prompt and cfg.group_size % cfg.micro_batches == 0 else 1


def make_update(
    cfg: GRPOConfig, graphdef: nnx.GraphDef, tx: optax.GradientTransformation, num_completion: int,
    max_completion_length: int | None = None,
) -> Callable[..., tuple[nnx.State, Any, dict[str, jax.Array], jax.Array, Any]]:
    """GRPO's ``update(params, opt_state, ref_params, batch, critic=None) -> (params,
    opt_state, metrics, skipped, critic)``, pure and jittable; ``skipped`` counts the
    non-finite updates (0..mu); ``critic`` (None: GRPO has none) passes through, so every
    registered algorithm (:mod:`emojax.rl.algorithms`) has one signature. With LoRA
    (``cfg.policy.lora_rank > 0``) ``params`` are the adapters and ``ref_params`` the frozen
    base they sit on (:mod:`emojax.rl.lora`); otherwise the policy and its frozen copy.

    ``num_completion`` is the width of the batch's completion part; ``max_completion_length``
    (default the same) the policy's token budget in it, ``dr_grpo``'s constant. They differ
    in a conversation, whose completion part holds the user's turns too (``T * N`` of its
    ``T * (N + U)`` slots are the policy's).

    Metrics (means over the ``mu`` updates): TRL's ``kl`` (when ``beta > 0``),
    ``entropy``, ``clip_ratio/*``, plus ``loss``, ``policy_loss``, ``grad_norm`` (before
    clipping) and ``entropy_coef`` (:func:`entropy_schedule` at the optimizer's step
    count, the same clock as the learning rate).
    """
    temperature = cfg.temperature
    budget = num_completion if max_completion_length is None else max_completion_length
    shared = shared_rows(cfg)
    pcfg = cfg.policy  # its LoRA fields (the vocabulary may be the task's)

    def logprobs(params, tokens, mask, entropy=False, shared_prompt=1):
        return sampler.token_logprobs(graphdef, params, tokens, mask, temperature, num_completion=num_completion,
                                      with_entropy=entropy, shared_prompt=shared_prompt)

    kwargs = loss_kwargs(cfg, budget)

    def micro_loss(params, mb, normalizer, coef, frozen):
        batch, old_logp, ref_logp = mb
        logp, entropy = logprobs(lora.combine(pcfg, params, frozen), batch.tokens, batch.mask, entropy=True,
                                 shared_prompt=shared)  # fmt: skip
        if cfg.entropy_coef == 0:
            entropy = jax.lax.stop_gradient(entropy)  # a metric only
        loss, metrics = losses.policy_loss(
            logp, old_logp, ref_logp, batch.advantages, batch.completion_mask, entropy=entropy,
            mask_truncated=batch.truncated if cfg.mask_truncated_completions else None,
            normalizer=normalizer, entropy_coef=coef, **kwargs)
        return loss, {"loss": loss, **metrics}

    steps = optimizer_steps(cfg, tx, micro_loss)

    def update(params, opt_state, ref_params, batch: Batch, critic=None):
        mask_truncated = batch.truncated if cfg.mask_truncated_completions else None
        normalizer = losses.loss_normalizer(batch.completion_mask, loss_type=cfg.loss_type,
                                            max_completion_length=budget, mask_truncated=mask_truncated)
        whole = cfg.group_size if cfg.share_prompt else 1  # the whole batch keeps its groups
        old_logp = None if cfg.mu == 1 else jax.lax.stop_gradient(
            logprobs(lora.combine(pcfg, params, ref_params), batch.tokens, batch.mask, shared_prompt=whole))
        ref_logp = None
        if cfg.beta > 0:
            ref_logp = jax.lax.stop_gradient(logprobs(lora.reference(pcfg, params, ref_params), batch.tokens,
                                                      batch.mask, shared_prompt=whole))  # fmt: skip
        micro = split_micro_batches((batch, old_logp, ref_logp), cfg.micro_batches)
        params, opt_state, metrics, skipped = steps(params, opt_state, micro, normalizer, ref_params)
        return params, opt_state, metrics, skipped, critic

    return update

"""The GRPO policy loss, meaning what TRL's ``GRPOTrainer`` means by each setting.

One pure function, :func:`policy_loss`, covers the clipped surrogate with token- or
sequence-level (GSPO) importance ratios, an optional KL penalty to a reference policy,
an optional entropy bonus, and TRL's four aggregations (``loss_type``). It returns the
scalar loss and TRL-named metrics. Semantics follow TRL 1.16
``GRPOTrainer._compute_loss``, restated here:

* ratio. ``log r = logp - old_logp`` per token. With one update per generation
  (``num_iterations`` mu = 1) TRL sets ``old_logp = logp.detach()``: the ratio is 1 in
  value but still carries the policy-gradient. Pass ``old_logp=None`` for that; for
  mu > 1 pass the log-probs of the policy that sampled the batch. With
  ``importance_sampling_level="sequence"`` (GSPO) ``log r`` is replaced by its mean
  over the sequence's loss tokens, one ratio per sequence broadcast to its tokens.
* surrogate. ``-min(r A, clip(r, 1 - epsilon_low, 1 + epsilon_high) A)`` per token.
  TRL's ``delta`` (two-sided clipping) caps the unclipped ``r`` at ``delta``;
  ``dual_clip`` (verl, Ye et al. 2020) instead bounds the loss of negative-advantage
  tokens by ``-dual_clip * A``. Neither is on by default.
* KL. ``beta * KL`` is added per token. TRL uses Schulman's k3 estimator,
  ``exp(ref - logp) - (ref - logp) - 1`` (always >= 0, unbiased for KL(pi || ref)
  under samples of pi). ``kl_estimator`` also offers k1 = ``logp - ref`` and
  k2 = ``(logp - ref)^2 / 2``.
* aggregation, per token loss ``l`` and loss mask ``m`` (B sequences):
  ``grpo`` = mean over sequences of each sequence's token mean;
  ``bnpo`` = sum(l m) / sum(m) over the batch;
  ``dr_grpo`` = sum(l m) / (B * max_completion_length);
  ``dapo`` = sum(l m) / sum(m) over the *global* batch (TRL's ``num_items_in_batch``).
* entropy bonus. ``loss -= entropy_coef * sum(H m) / sum(m)``: a token mean whatever
  the ``loss_type``, as in TRL.
* truncation. TRL's ``mask_truncated_completions`` zeroes the loss mask of every
  completion that ended without an end token; ``mask_truncated`` takes that per-sequence
  flag. Such sequences still count in B for ``grpo`` and ``dr_grpo``, as in TRL.

Exact by construction under accumulation and sharding: every aggregation is a sum
over sequences divided by one number that depends only on the whole batch's mask.
:func:`loss_normalizer` computes those numbers once over the whole batch; pass them as
``normalizer=`` to the loss of each micro-batch (or device shard) and the sum of the
micro-batch losses *is* the whole-batch loss, so their gradients add up exactly. (TRL
divides per micro-batch by the accumulation steps instead, which is exact only for
``dapo`` and, with equal micro-batch sizes, ``grpo`` and ``dr_grpo``.) On the batch
it is normalised over, ``bnpo`` and ``dapo`` give the same value: TRL tells them apart
only by what "the batch" is under accumulation (``bnpo``: each micro-batch on each
process). To reproduce TRL's ``bnpo`` exactly, call :func:`policy_loss` on each
micro-batch without ``normalizer`` and average.

Metrics are means over the batch given (a micro-batch: average them yourself).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "IMPORTANCE_SAMPLING_LEVELS",
    "KL_ESTIMATORS",
    "LOSS_TYPES",
    "LossNormalizer",
    "LossType",
    "kl_divergence",
    "loss_mask",
    "loss_normalizer",
    "loss_types",
    "policy_loss",
    "register_loss_type",
]

IMPORTANCE_SAMPLING_LEVELS = ("token", "sequence")
KL_ESTIMATORS = ("k1", "k2", "k3")


class LossNormalizer(NamedTuple):
    """Denominators of the loss, computed once over the whole batch.

    Attributes:
      policy: Scalar dividing the summed policy (+KL) terms: the number of sequences
        (``grpo``), the number of loss tokens (``bnpo``, ``dapo``), or sequences times
        ``max_completion_length`` (``dr_grpo``).
      tokens: Scalar number of loss tokens (at least 1), dividing the entropy bonus.
    """

    policy: jax.Array
    tokens: jax.Array


def loss_mask(mask: jax.Array, mask_truncated: jax.Array | None = None) -> jax.Array:
    """The ``[batch, time]`` loss mask with truncated sequences zeroed.

    Args:
      mask: ``[batch, time]`` 1 on the policy's own completion tokens, 0 elsewhere.
      mask_truncated: Optional ``[batch]`` bool, True for completions that hit the
        length limit without an end token (TRL's ``mask_truncated_completions``).

    Returns:
      ``[batch, time]`` float mask.
    """
    mask = jnp.asarray(mask)
    mask = mask.astype(mask.dtype if jnp.issubdtype(mask.dtype, jnp.floating) else jnp.float32)
    if mask_truncated is None:
        return mask
    keep = ~jnp.asarray(mask_truncated, dtype=bool)
    return mask * keep[:, None].astype(mask.dtype)


class LossType(NamedTuple):
    """What a ``loss_type`` decides, registered under its name (:func:`register_loss_type`).

    Attributes:
      reduce: ``(per_token [batch, time], mask [batch, time]) -> scalar``: the summed loss
        of a batch (or of a micro-batch: sums add up), before the normaliser divides it.
      normalizer: ``(mask [batch, time] of the whole batch, max_completion_length | None)
        -> scalar``, the denominator (:attr:`LossNormalizer.policy`), computed once for the
        whole batch so that accumulation and sharding stay exact.
    """

    reduce: Callable[[jax.Array, jax.Array], jax.Array]
    normalizer: Callable[[jax.Array, int | None], jax.Array]


_LOSS_TYPES: dict[str, LossType] = {}


def register_loss_type(name: str, *, reduce, normalizer) -> LossType:
    """Make ``name`` a ``loss_type`` of :func:`policy_loss`, :func:`loss_normalizer` and
    ``GRPOConfig`` (one definition per name)."""
    entry = LossType(reduce, normalizer)
    old = _LOSS_TYPES.get(name)
    if old is not None and old != entry:
        raise ValueError(f"loss type {name!r} is already registered")
    _LOSS_TYPES[name] = entry
    return entry


def loss_types() -> tuple[str, ...]:
    """Every registered loss type (the built-ins are :data:`LOSS_TYPES`)."""
    return tuple(_LOSS_TYPES)


def _sum_tokens(per_token, m):
    return jnp.sum(per_token * m)


def _sum_sequence_means(per_token, m):
    return jnp.sum(jnp.sum(per_token * m, axis=-1) / jnp.maximum(jnp.sum(m, axis=-1), 1.0))


def _num_tokens(m, max_completion_length):
    return jnp.maximum(jnp.sum(m), 1.0)


def _num_sequences(m, max_completion_length):
    return jnp.asarray(m.shape[0], m.dtype)


def _sequences_times_length(m, max_completion_length):
    length = m.shape[1] if max_completion_length is None else max_completion_length
    return jnp.asarray(m.shape[0] * length, m.dtype)


# TRL's four: per-sequence means averaged over sequences (grpo), tokens over the batch's
# tokens (bnpo, and dapo, which TRL normalises over the whole accumulated batch: so do we,
# always), tokens over sequences times a fixed length (dr_grpo).
register_loss_type("grpo", reduce=_sum_sequence_means, normalizer=_num_sequences)
register_loss_type("bnpo", reduce=_sum_tokens, normalizer=_num_tokens)
register_loss_type("dr_grpo", reduce=_sum_tokens, normalizer=_sequences_times_length)
register_loss_type("dapo", reduce=_sum_tokens, normalizer=_num_tokens)
LOSS_TYPES = loss_types()  # the built-ins, TRL's (the reference fixtures cover these)


def loss_normalizer(
    mask: jax.Array,
    *,
    loss_type: str = "dapo",
    max_completion_length: int | None = None,
    mask_truncated: jax.Array | None = None,
) -> LossNormalizer:
    """Whole-batch denominators, to share among micro-batches or device shards.

    Args:
      mask: ``[batch, time]`` loss mask of the *whole* batch.
      loss_type: A registered loss type (:func:`loss_types`).
      max_completion_length: The ``dr_grpo`` constant; defaults to ``time``.
      mask_truncated: Optional ``[batch]`` truncation flags, see :func:`loss_mask`.

    Returns:
      A :class:`LossNormalizer`.

    Example:
      >>> m = jnp.array([[1, 1, 0], [1, 0, 0]])
      >>> loss_normalizer(m, loss_type="dapo").policy.item()
      3.0
    """
    _check_choice("loss_type", loss_type, loss_types())
    m = loss_mask(mask, mask_truncated)
    if m.ndim != 2:
        raise ValueError(f"mask must be [batch, time], got shape {m.shape}")
    policy = _LOSS_TYPES[loss_type].normalizer(m, max_completion_length)
    return LossNormalizer(policy, _num_tokens(m, max_completion_length))


def kl_divergence(logp: jax.Array, ref_logp: jax.Array, estimator: str = "k3") -> jax.Array:
    """Per-token estimate of KL(pi || ref) from log-probs of tokens sampled by pi.

    ``k1 = logp - ref`` is unbiased but noisy and can be negative; ``k2 =
    (logp - ref)^2 / 2`` is biased, low variance; ``k3 = exp(ref - logp) - (ref -
    logp) - 1`` (TRL's choice) is unbiased, non-negative and low variance
    (Schulman, "Approximating KL divergence", 2020).
    """
    _check_choice("kl_estimator", estimator, KL_ESTIMATORS)
    d = ref_logp - logp
    if estimator == "k1":
        return -d
    if estimator == "k2":
        return 0.5 * d * d
    return jnp.exp(d) - d - 1.0


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _is_nonzero(x) -> bool:
    """True if ``x`` is a concrete non-zero number (tracers are unknown: False)."""
    return not isinstance(x, jax.core.Tracer) and bool(x != 0)


def _masked_mean(x: jax.Array, m: jax.Array) -> jax.Array:
    return jnp.sum(x * m) / jnp.maximum(jnp.sum(m), 1.0)


def _clip_metrics(
    low: jax.Array, high: jax.Array, m: jax.Array, per_sequence: bool
) -> dict[str, jax.Array]:
    """TRL's ``clip_ratio/*``: means over loss tokens, or over sequences for GSPO.

    ``low_min``/``high_max`` are the extremes over sequences of each sequence's
    clipped fraction; sequences without loss tokens are skipped (0 if none remain).
    """
    low = low.astype(m.dtype)
    high = high.astype(m.dtype)
    region = jnp.maximum(low, high)
    if per_sequence:  # one ratio per sequence, every sequence counts (as TRL)
        low_seq, high_seq = low[:, 0], high[:, 0]
        has = jnp.ones(low_seq.shape, bool)
        means = [jnp.mean(x) for x in (low_seq, high_seq, region[:, 0])]
    else:
        counts = jnp.sum(m, axis=-1)
        has = counts > 0
        low_seq = jnp.sum(low * m, axis=-1) / jnp.maximum(counts, 1.0)
        high_seq = jnp.sum(high * m, axis=-1) / jnp.maximum(counts, 1.0)
        means = [_masked_mean(x, m) for x in (low, high, region)]
    any_seq = jnp.any(has)
    low_min = jnp.where(any_seq, jnp.min(jnp.where(has, low_seq, jnp.inf)), 0.0)
    high_max = jnp.where(any_seq, jnp.max(jnp.where(has, high_seq, -jnp.inf)), 0.0)
    return {
        "clip_ratio/low_mean": means[0],
        "clip_ratio/high_mean": means[1],
        "clip_ratio/region_mean": means[2],
        "clip_ratio/low_min": low_min,
        "clip_ratio/high_max": high_max,
    }


def policy_loss(
    logp: jax.Array,
    old_logp: jax.Array | None,
    ref_logp: jax.Array | None,
    advantages: jax.Array,
    mask: jax.Array,
    *,
    loss_type: str = "dapo",
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    kl_estimator: str = "k3",
    importance_sampling_level: str = "token",
    dual_clip: float | None = None,
    delta: float | None = None,
    entropy: jax.Array | None = None,
    entropy_coef: float = 0.0,
    max_completion_length: int | None = None,
    mask_truncated: jax.Array | None = None,
    normalizer: LossNormalizer | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """GRPO-family clipped surrogate loss of one (micro-)batch; see the module doc.

    String and ``None``-ness options are static; the float options may be traced
    (e.g. ``vmap`` over ``beta``). Padding positions (``mask == 0``) never reach the
    arithmetic, so garbage log-probs there cannot produce NaN values or gradients.

    Args:
      logp: ``[batch, time]`` log-probs of the sampled tokens under the policy being
        trained (differentiate with respect to these).
      old_logp: ``[batch, time]`` log-probs under the sampling policy, or ``None``
        for ``stop_gradient(logp)`` (mu = 1, as TRL).
      ref_logp: ``[batch, time]`` log-probs under the reference policy, or ``None``
        for no KL term (then ``beta`` must be 0).
      advantages: ``[batch]`` (one per sequence, as TRL) or ``[batch, time]``.
      mask: ``[batch, time]`` 1 on the policy's own completion tokens.
      loss_type: ``"grpo"``, ``"bnpo"``, ``"dr_grpo"`` or ``"dapo"`` (TRL's default).
      epsilon_low: Lower clip range, ratio >= 1 - epsilon_low (TRL ``epsilon``).
      epsilon_high: Upper clip range; ``None`` means ``epsilon_low`` (DAPO uses 0.28).
      beta: KL coefficient (TRL default 0).
      kl_estimator: ``"k1"``, ``"k2"`` or ``"k3"`` (TRL), see :func:`kl_divergence`.
      importance_sampling_level: ``"token"`` or ``"sequence"`` (GSPO).
      dual_clip: Optional constant c > 1 bounding negative-advantage losses by -c A.
      delta: Optional TRL two-sided clipping: the unclipped ratio is capped at delta.
      entropy: Optional ``[batch, time]`` per-token policy entropy.
      entropy_coef: Entropy bonus coefficient (needs ``entropy``).
      max_completion_length: The ``dr_grpo`` constant; defaults to ``time``.
      mask_truncated: Optional ``[batch]`` bool, True for truncated completions,
        whose tokens are removed from the loss.
      normalizer: Whole-batch :class:`LossNormalizer` for micro-batches or shards;
        ``None`` computes it from this batch.

    Returns:
      ``(loss, metrics)``. Metrics (TRL names): ``policy_loss`` (loss without the
      entropy bonus), ``clip_ratio/low_mean``, ``clip_ratio/high_mean``,
      ``clip_ratio/region_mean``, ``clip_ratio/low_min``, ``clip_ratio/high_max``,
      plus ``kl`` when ``ref_logp`` is given and ``entropy`` when ``entropy`` is.

    Raises:
      ValueError: an unknown option, mismatched shapes, or a concrete non-zero
        ``beta``/``entropy_coef`` without ``ref_logp``/``entropy``.
    """
    _check_choice("loss_type", loss_type, loss_types())
    _check_choice("importance_sampling_level", importance_sampling_level,
                  IMPORTANCE_SAMPLING_LEVELS)
    _check_choice("kl_estimator", kl_estimator, KL_ESTIMATORS)
    logp = jnp.asarray(logp)
    if logp.ndim != 2:
        raise ValueError(f"logp must be [batch, time], got shape {logp.shape}")
    for name, x in (("old_logp", old_logp), ("ref_logp", ref_logp), ("mask", mask),
                    ("entropy", entropy)):
        if x is not None and jnp.shape(x) != logp.shape:
            raise ValueError(f"{name} must have logp's shape {logp.shape}, got {jnp.shape(x)}")
    advantages = jnp.asarray(advantages, logp.dtype)
    if advantages.ndim == 1:
        advantages = advantages[:, None]
    if advantages.shape not in ((logp.shape[0], 1), logp.shape):
        raise ValueError(f"advantages must be [batch] or [batch, time], got {advantages.shape}")
    if ref_logp is None and _is_nonzero(beta):
        raise ValueError("beta != 0 needs ref_logp")
    if entropy is None and _is_nonzero(entropy_coef):
        raise ValueError("entropy_coef != 0 needs entropy")

    return _policy_loss(
        logp, old_logp, ref_logp, advantages, mask, epsilon_low, epsilon_high, beta,
        dual_clip, delta, entropy, entropy_coef, mask_truncated, normalizer,
        loss_type=loss_type, kl_estimator=kl_estimator,
        importance_sampling_level=importance_sampling_level,
        max_completion_length=max_completion_length)


@functools.partial(jax.jit, static_argnames=(
    "loss_type", "kl_estimator", "importance_sampling_level", "max_completion_length"))
def _policy_loss(
    logp, old_logp, ref_logp, advantages, mask, epsilon_low, epsilon_high, beta,
    dual_clip, delta, entropy, entropy_coef, mask_truncated, normalizer, *,
    loss_type: str, kl_estimator: str, importance_sampling_level: str,
    max_completion_length: int | None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The arithmetic of :func:`policy_loss`, one compiled program per option set."""
    m = loss_mask(mask, mask_truncated).astype(logp.dtype)
    if normalizer is None:
        normalizer = loss_normalizer(mask, loss_type=loss_type,
                                     max_completion_length=max_completion_length,
                                     mask_truncated=mask_truncated)
    on = m > 0

    def tokens_only(x):  # padding never enters the arithmetic (no NaN gradients)
        return jnp.where(on, x, jnp.zeros_like(x))

    logp = tokens_only(logp)
    old = jax.lax.stop_gradient(logp) if old_logp is None else tokens_only(
        jnp.asarray(old_logp, logp.dtype))

    log_ratio = logp - old
    if importance_sampling_level == "sequence":
        log_ratio = jnp.sum(log_ratio * m, axis=-1, keepdims=True) / jnp.maximum(
            jnp.sum(m, axis=-1, keepdims=True), 1.0)
    ratio = jnp.exp(log_ratio)
    eps_high = epsilon_low if epsilon_high is None else epsilon_high
    clipped = jnp.clip(ratio, 1.0 - epsilon_low, 1.0 + eps_high)
    unclipped = ratio if delta is None else jnp.minimum(ratio, delta)
    per_token = -jnp.minimum(unclipped * advantages, clipped * advantages)
    if dual_clip is not None:
        per_token = jnp.where(advantages < 0,
                              jnp.minimum(per_token, -dual_clip * advantages), per_token)

    metrics: dict[str, jax.Array] = {}
    if ref_logp is not None:
        kl = kl_divergence(logp, tokens_only(jnp.asarray(ref_logp, logp.dtype)), kl_estimator)
        per_token = per_token + beta * kl
        metrics["kl"] = _masked_mean(kl, m)
    per_token = jnp.broadcast_to(per_token, logp.shape)

    total = _LOSS_TYPES[loss_type].reduce(per_token, m)
    loss = total / jnp.asarray(normalizer.policy, logp.dtype)
    metrics["policy_loss"] = loss
    if entropy is not None:
        entropy = tokens_only(jnp.asarray(entropy, logp.dtype))
        bonus = jnp.sum(entropy * m) / jnp.asarray(normalizer.tokens, logp.dtype)
        loss = loss - entropy_coef * bonus
        metrics["entropy"] = _masked_mean(entropy, m)

    # TRL flags clipping on the (delta-capped) ratio and the advantage sign.
    low = (unclipped < 1.0 - epsilon_low) & (advantages < 0)
    high = (unclipped > 1.0 + eps_high) & (advantages > 0)
    per_sequence = importance_sampling_level == "sequence" and low.shape[-1] == 1
    metrics.update(_clip_metrics(low, high, m, per_sequence))
    return loss, metrics

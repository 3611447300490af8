"""Supervised pre-training of a policy on transcripts: next-token learning on the
speaker's own tokens.

RLVER's table starts from an instruction-tuned model, not from random weights; a policy
that has learned to speak like someone first (here, the world's weak helper,
:mod:`emojax.world.weak_helper`) is the analogue. The loss is the mean negative log-likelihood
of the speaker's tokens (``policy_mask``) given everything before them, the other side's
turns included but never scored: the same teacher-forced pass
(:func:`emojax.rl.sampler.token_logprobs`) and the same model code as the GRPO update, so
the pre-trained parameters load straight into :func:`emojax.rl.learner.make_train`
(``initial_params``). The parameters are saved with Orbax (:func:`save`, :func:`load`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from emojax import checkpoint, config, progress
from emojax.rl import policy, sampler

__all__ = ["SFTConfig", "load", "loss", "save", "train"]


@dataclasses.dataclass(frozen=True)
class SFTConfig:
    """One pre-training run.

    Attributes:
      steps: optimizer steps.
      batch_size: transcripts per step (drawn without replacement within an epoch).
      learning_rate: AdamW's peak rate, after ``warmup_steps`` of linear warm-up, then
        cosine decay to 0.
      warmup_steps: linear warm-up.
      seed: the parameters' initialisation and the batches' order.
    """

    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 20
    seed: int = 0

    def __post_init__(self):
        config.int_at_least(self, 1, "steps")
        config.int_at_least(self, 1, "batch_size")
        config.require(self, "learning_rate", lambda v: v > 0, "> 0")
        config.require(self, "warmup_steps", lambda v: isinstance(v, int) and 0 <= v < self.steps, "in [0, steps)")


def loss(graphdef: nnx.GraphDef, params: nnx.State, tokens: jax.Array, mask: jax.Array,
         policy_mask: jax.Array) -> jax.Array:  # fmt: skip
    """Mean negative log-likelihood of the ``policy_mask`` tokens ``[B, L]`` given the real
    tokens before each."""
    logp = sampler.token_logprobs(graphdef, params, tokens, mask)
    scored = policy_mask.astype(jnp.float32)
    return -jnp.sum(logp * scored) / jnp.maximum(jnp.sum(scored), 1.0)


def train(cfg: SFTConfig, policy_cfg: policy.PolicyConfig, data: dict[str, np.ndarray],
          log_every: int = 50) -> tuple[nnx.State, list[dict[str, float]]]:  # fmt: skip
    """Pre-train a fresh policy on ``data`` (``tokens``, ``mask``, ``policy_mask``, each
    ``[n, L]``). Returns the parameters and the logged losses (``{"step", "loss"}``)."""
    n = int(data["tokens"].shape[0])
    if n < cfg.batch_size:
        raise ValueError(f"SFT: {n} transcripts, fewer than batch_size={cfg.batch_size}")
    top = int(np.max(data["tokens"]))
    if top >= policy_cfg.vocab_size:
        raise ValueError(f"SFT: the transcripts hold token {top}, the policy's vocabulary has {policy_cfg.vocab_size}")
    graphdef, params = policy.init(policy_cfg, jax.random.key(cfg.seed))
    schedule = optax.warmup_cosine_decay_schedule(0.0, cfg.learning_rate, max(cfg.warmup_steps, 1), cfg.steps)
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=0.0))
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, tokens, mask, policy_mask):
        value, grads = jax.value_and_grad(lambda p: loss(graphdef, p, tokens, mask, policy_mask))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    rng = np.random.default_rng(cfg.seed)
    order, at, logged = rng.permutation(n), 0, []
    with progress.phase("pre-training the base policy", cfg.steps, unit="steps") as bar:
        for i in range(cfg.steps):
            if at + cfg.batch_size > n:
                order, at = rng.permutation(n), 0
            rows = order[at : at + cfg.batch_size]
            at += cfg.batch_size
            params, opt_state, value = step(params, opt_state, *(jnp.asarray(data[k][rows]) for k in
                                                                 ("tokens", "mask", "policy_mask")))  # fmt: skip
            if (i + 1) % log_every == 0 or i == 0 or i + 1 == cfg.steps:
                logged.append({"step": i + 1, "loss": float(value)})
                bar.update(loss=float(value))
            else:
                bar.update()
    return params, logged


def save(path: str, params: nnx.State, meta: dict[str, Any]) -> None:
    """Parameters into ``path/checkpoints`` (Orbax: complete or absent) and ``meta`` (JSON:
    the policy's config and what made it) beside them."""
    checkpoint.save(checkpoint.manager(path, keep=1), 0, params, meta)


def load(path: str, policy_cfg: policy.PolicyConfig) -> tuple[nnx.State, dict[str, Any]]:
    """The parameters :func:`save` wrote in ``path``, shaped as ``policy_cfg``'s; raises
    naming the path if there are none or they are of another policy."""
    mngr = checkpoint.manager(path, keep=1)
    if mngr.latest_step() is None:
        raise FileNotFoundError(f"{path}: no pre-trained policy (checkpoints/ is empty or missing)")
    like = policy.init(policy_cfg, jax.random.key(0))[1]
    where = os.path.join(path, "checkpoints")
    try:
        params, meta = checkpoint.restore(mngr, like)
    except (ValueError, KeyError) as err:
        raise ValueError(f"{where}: not a pre-trained policy of this shape ({config.to_dict(policy_cfg)}): "
                         f"{err}") from None  # fmt: skip
    want = json.loads(json.dumps(config.to_dict(policy_cfg)))
    if meta.get("policy") != want:
        raise ValueError(f"{where}: a pre-trained policy of another shape ({meta.get('policy')}), not {want}")
    return params, meta

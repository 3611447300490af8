"""LoRA in the learner: which parameters train, how they meet the frozen base, and the
reference policy with the adapters off.

Why here and not in each algorithm: a run's parameters are two parts when
``PolicyConfig.lora_rank > 0``: the adapters (:class:`nnx.LoRAParam`, what the optimizer
sees, so its state is the adapters' size) and the base weights, frozen. The learner keeps
the adapters in ``TrainState.params`` and the base in ``TrainState.ref_params``: with
``B = 0`` at the start the base *is* the initial policy, so the KL reference costs no second
copy of the weights. Every forward pass asks :func:`combine` for the policy's state (a
pytree merge, no arithmetic), and gradients reach the adapters only, because the base is
not an argument of the differentiated function. Without LoRA these functions are the
identity on the whole state and the reference is the learner's copy of it.

Example::

    cfg = policy.PolicyConfig(lora_rank=8)
    graphdef, state = policy.init(cfg, key)
    trainable, frozen = lora.split(cfg, state)      # adapters; base
    state_again = lora.combine(cfg, trainable, frozen)
    base_cfg, merged = lora.merge(cfg, state)        # W + scale A B, no adapters: a full checkpoint
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from emojax.rl import policy

__all__ = ["attach", "base_config", "combine", "merge", "reference", "split", "start"]


def base_config(cfg: policy.PolicyConfig) -> policy.PolicyConfig:
    """The same policy without adapters (what a merged checkpoint is)."""
    return dataclasses.replace(cfg, lora_rank=0)


def _trained_whole(cfg: policy.PolicyConfig):
    """The filter of the tensors ``cfg.lora_train`` trains whole."""
    names = {"norms": ("scale",), "embeddings": ("embedding",), "biases": ("bias",)}
    last = {n for kind in cfg.lora_train for n in names[kind]}
    head = "embeddings" in cfg.lora_train

    def chosen(path, value) -> bool:
        return path[-1] in last or (head and path[-2:] == ("lm_head", "kernel"))

    return chosen


def split(cfg: policy.PolicyConfig, state: nnx.State) -> tuple[nnx.State, nnx.State | None]:
    """``(trainable, frozen)``: the adapters (and a copy of the tensors ``lora_train``
    names) and the base (those tensors as they started: the reference's); the whole state
    and None without LoRA."""
    if not cfg.lora_rank:
        return state, None
    adapters, base = nnx.split_state(state, nnx.LoRAParam, ...)
    if cfg.lora_train:
        adapters = nnx.merge_state(adapters, jax.tree.map(jnp.copy, nnx.filter_state(base, _trained_whole(cfg))))
    return adapters, base


def start(cfg: policy.PolicyConfig, state: nnx.State, reference: bool) -> tuple[nnx.State, nnx.State | None]:
    """A run's ``(params, ref_params)`` from the policy's whole state: :func:`split`, and
    without LoRA a copy of the whole as the frozen reference when ``reference`` (a copy, so
    that the two are distinct buffers when a jitted step donates its input)."""
    trainable, frozen = split(cfg, state)
    if frozen is None and reference:
        frozen = jax.tree.map(jnp.copy, trainable)
    return trainable, frozen


def combine(cfg: policy.PolicyConfig, trainable: nnx.State, frozen: nnx.State | None) -> nnx.State:
    """The policy's whole state from :func:`split`'s two parts (without LoRA: ``trainable``);
    the tensors trained whole take the place of the base's."""
    return nnx.merge_state(frozen, trainable) if cfg.lora_rank else trainable


def reference(cfg: policy.PolicyConfig, trainable: nnx.State, frozen: nnx.State | None) -> nnx.State | None:
    """The KL reference policy's state: the base with its adapters off (``B = 0``, so each
    adapter adds exactly 0, and the tensors trained whole as they started) with LoRA; ``frozen`` (the
    learner's copy of the initial policy) without."""
    if not cfg.lora_rank:
        return frozen
    off = jax.tree.map(jnp.zeros_like, nnx.filter_state(trainable, nnx.LoRAParam))
    return nnx.merge_state(frozen, off)


def attach(cfg: policy.PolicyConfig, base: nnx.State, key: jax.Array) -> nnx.State:
    """A LoRA policy's whole state: ``base`` (a state of :func:`base_config`'s policy, e.g. a
    loaded checkpoint) and fresh adapters from ``key`` (:func:`emojax.rl.policy.init_adapters`,
    the adapters ``policy.init(cfg, key)`` would draw)."""
    return nnx.merge_state(base, policy.init_adapters(cfg, key))


def merge(cfg: policy.PolicyConfig, state: nnx.State) -> tuple[policy.PolicyConfig, nnx.State]:
    """Fold the adapters into the kernels: ``(base_config(cfg), state)`` with every adapted
    kernel ``W + (alpha / r) A B`` and no adapters, to save as a full checkpoint
    (:func:`emojax.hf.from_policy`) or sample without the adapters' matmuls. Without LoRA:
    ``(cfg, state)``."""
    if not cfg.lora_rank:
        return cfg, state
    scale = cfg.lora_alpha / cfg.lora_rank
    flat = dict(nnx.to_flat_state(state))
    out = {}
    for path, var in flat.items():
        if isinstance(var, nnx.LoRAParam):
            continue
        if path[-1] == "kernel" and path[:-1] + ("lora_a",) in flat:
            a, b = flat[path[:-1] + ("lora_a",)][...], flat[path[:-1] + ("lora_b",)][...]
            kernel = var[...]
            var = var.replace(value=(kernel.astype(jnp.float32) + scale * (a @ b)).astype(kernel.dtype))
        out[path] = var
    return base_config(cfg), nnx.from_flat_state(out)


"""``policy``: a Llama/Qwen2-family decoder for GRPO, with a functional KV cache.

Why this family: it is what small open chat models are (Qwen2, Llama), so a later issue can
load a real checkpoint by renaming and transposing tensors, with no change to the maths.
RMSNorm, rotary positions (theta configurable), a SwiGLU MLP, grouped-query attention,
optional q/k/v bias (Qwen2 has it, Llama does not), tied or untied output embeddings.

Why a functional cache: the sampler runs inside ``lax.scan`` and under ``jax.vmap`` over
seeds, so the cache is a plain pytree (:class:`KVCache`) passed in and returned, never a
mutable module variable. The module itself holds parameters only; :func:`init` and
:func:`apply` give the pure ``(graphdef, state)`` view that ``jit``/``vmap``/``scan`` carry.

Padding. ``mask`` [B, T] says which tokens are real. A key is visible to a query when it is
real and sits at or before the query's slot, so left-, right- or mid-padded rows all work;
``positions`` (see :func:`positions_from_mask`) count real tokens only, so a prompt gets the
same rotary phases whatever its padding.

Hugging Face names (``L`` = layer index; HF ``nn.Linear`` weights are ``[out, in]``, ours
``[in, out]``, hence the transposes; :func:`hf_parameter_map` returns this table)::

    HF (Llama / Qwen2)                                 here                                  transpose
    model.embed_tokens.weight        [V, D]            embed_tokens.embedding     [V, D]     no
    model.layers.L.input_layernorm.weight   [D]        layers.L.input_layernorm.scale         no
    model.layers.L.self_attn.q_proj.weight  [H*hd, D]  layers.L.self_attn.q_proj.kernel      yes
    model.layers.L.self_attn.q_proj.bias    [H*hd]     layers.L.self_attn.q_proj.bias        no (Qwen2)
    model.layers.L.self_attn.k_proj.{weight,bias}      layers.L.self_attn.k_proj.{kernel,bias}  yes / no
    model.layers.L.self_attn.v_proj.{weight,bias}      layers.L.self_attn.v_proj.{kernel,bias}  yes / no
    model.layers.L.self_attn.o_proj.weight  [D, H*hd]  layers.L.self_attn.o_proj.kernel      yes
    model.layers.L.post_attention_layernorm.weight     layers.L.post_attention_layernorm.scale  no
    model.layers.L.mlp.gate_proj.weight     [F, D]     layers.L.mlp.gate_proj.kernel         yes
    model.layers.L.mlp.up_proj.weight       [F, D]     layers.L.mlp.up_proj.kernel           yes
    model.layers.L.mlp.down_proj.weight     [D, F]     layers.L.mlp.down_proj.kernel         yes
    model.norm.weight                [D]               norm.scale                            no
    lm_head.weight                   [V, D]            lm_head.kernel             [D, V]     yes (untied only)

Rotary embeddings use HF's rotate-half layout (dimension ``i`` pairs with ``i + hd/2``), so
HF q/k weights load without permuting rows. Query head ``h`` reads key/value head
``h // (H / KV)``, as HF's ``repeat_kv``. Not covered: Llama 3.1 "llama3" rope scaling,
sliding-window attention.

Example::

    cfg = PRESETS["2x64"]
    graphdef, state = init(cfg, jax.random.key(0))
    logits, _ = apply(graphdef, state, tokens, positions_from_mask(mask), mask)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from emojax import config


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """Sizes of the decoder. Defaults: Qwen2-shaped, 2 layers of width 64, vocabulary 300."""

    vocab_size: int = 300
    d_model: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 4
    head_dim: int | None = None  # None: d_model // num_heads (Qwen2); Llama may set it
    mlp_dim: int = 256
    rope_theta: float = 10_000.0
    rms_eps: float = 1e-6
    qkv_bias: bool = True
    tie_embeddings: bool = True
    init_std: float = 0.02  # HF's initializer_range

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "num_layers", "num_heads", "num_kv_heads", "mlp_dim"):
            config.require(self, name, lambda v: isinstance(v, int) and v >= 1, "an int >= 1")
        kv = self.num_kv_heads
        config.require(self, "num_heads", lambda v: v % kv == 0, f"a multiple of num_kv_heads={kv}")
        if self.head_dim is None:
            heads = self.num_heads
            config.require(self, "d_model", lambda v: v % heads == 0, f"divisible by num_heads={heads} (or set head_dim)")
        else:
            config.require(self, "head_dim", lambda v: isinstance(v, int) and v >= 1, "an int >= 1 or None")
        if self.head_size % 2:
            raise ValueError(f"PolicyConfig.head_dim must be even (rotary pairs), got {self.head_size} (derived if None)")
        config.positive(self, "rope_theta", "rms_eps", "init_std")

    @property
    def head_size(self) -> int:
        return self.head_dim if self.head_dim is not None else self.d_model // self.num_heads


PRESETS: dict[str, PolicyConfig] = {
    # What tests run: GQA (2 query heads per key/value head) and untied output embeddings.
    "smoke": PolicyConfig(vocab_size=48, d_model=32, num_heads=4, num_kv_heads=2, mlp_dim=64, tie_embeddings=False),
    # The benchmark shapes: the same parameter counts as the random Qwen2 models TRL was
    # timed with (../shared/reference/grpo.md): 151k and 4.28M.
    "2x64": PolicyConfig(),
    "4x256": PolicyConfig(d_model=256, num_layers=4, num_heads=4, num_kv_heads=4, mlp_dim=1024),
}


class KVCache(NamedTuple):
    """Keys and values of every layer, stacked so the cache is one pytree for ``lax.scan``."""

    k: jax.Array  # [layers, B, S, kv_heads, head_dim] float32, after rotary
    v: jax.Array  # [layers, B, S, kv_heads, head_dim] float32
    mask: jax.Array  # [B, S] bool: the slot holds a real token
    index: jax.Array  # [B] int32: the next slot each row writes


def init_cache(cfg: PolicyConfig, batch: int, length: int, dtype=jnp.float32) -> KVCache:
    """An empty cache of ``length`` slots. Writes past the end are clamped by XLA: size it
    for prompt plus completion."""
    shape = (cfg.num_layers, batch, length, cfg.num_kv_heads, cfg.head_size)
    return KVCache(
        k=jnp.zeros(shape, dtype),
        v=jnp.zeros(shape, dtype),
        mask=jnp.zeros((batch, length), bool),
        index=jnp.zeros((batch,), jnp.int32),
    )


def positions_from_mask(mask: jax.Array) -> jax.Array:
    """Rotary positions [B, T] int32: the number of real tokens before each slot (pads: 0)."""
    return jnp.maximum(jnp.cumsum(mask.astype(jnp.int32), axis=-1) - 1, 0)


def _write(buf: jax.Array, update: jax.Array, index: jax.Array) -> jax.Array:
    """Row ``b`` of ``update`` [B, T, ...] into ``buf`` [B, S, ...] at slot ``index[b]``."""
    return jax.vmap(lambda b, u, i: jax.lax.dynamic_update_slice_in_dim(b, u, i, axis=0))(buf, update, index)


def _rotary(x: jax.Array, sin: jax.Array, cos: jax.Array) -> jax.Array:
    """x [B, T, heads, hd]; sin, cos [B, T, hd/2]. HF's rotate-half convention."""
    x1, x2 = jnp.split(x, 2, axis=-1)
    sin, cos = sin[:, :, None, :], cos[:, :, None, :]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


class Attention(nnx.Module):
    def __init__(self, cfg: PolicyConfig, *, rngs: nnx.Rngs):
        init = nnx.initializers.normal(cfg.init_std)
        d, hd = cfg.d_model, cfg.head_size
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, hd
        self.q_proj = nnx.Linear(d, cfg.num_heads * hd, use_bias=cfg.qkv_bias, kernel_init=init, rngs=rngs)
        self.k_proj = nnx.Linear(d, cfg.num_kv_heads * hd, use_bias=cfg.qkv_bias, kernel_init=init, rngs=rngs)
        self.v_proj = nnx.Linear(d, cfg.num_kv_heads * hd, use_bias=cfg.qkv_bias, kernel_init=init, rngs=rngs)
        self.o_proj = nnx.Linear(cfg.num_heads * hd, d, use_bias=False, kernel_init=init, rngs=rngs)

    def __call__(self, x, sin, cos, allowed, kv=None, index=None):
        """x [B, T, D]; allowed [B, T, S]; kv: this layer's (k, v) [B, S, KV, hd] or None.

        Returns (out [B, T, D], (k, v) with this call's keys and values written at ``index``).
        """
        b, t, _ = x.shape
        kvh, groups, hd = self.num_kv_heads, self.num_heads // self.num_kv_heads, self.head_dim
        q = _rotary(self.q_proj(x).reshape(b, t, self.num_heads, hd), sin, cos)
        k = _rotary(self.k_proj(x).reshape(b, t, kvh, hd), sin, cos)
        v = self.v_proj(x).reshape(b, t, kvh, hd)
        if kv is not None:
            k, v = _write(kv[0], k, index), _write(kv[1], v, index)
        q = q.reshape(b, t, kvh, groups, hd)
        scores = jnp.einsum("btkgd,bskd->bkgts", q, k) / math.sqrt(hd)
        # A finite floor, not -inf: a pad query with no visible key then averages instead of NaN.
        scores = jnp.where(allowed[:, None, None, :, :], scores, jnp.finfo(scores.dtype).min)
        probs = jax.nn.softmax(scores, axis=-1)
        out = jnp.einsum("bkgts,bskd->btkgd", probs, v).reshape(b, t, self.num_heads * hd)
        return self.o_proj(out), (k, v)


class MLP(nnx.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: PolicyConfig, *, rngs: nnx.Rngs):
        init = nnx.initializers.normal(cfg.init_std)
        self.gate_proj = nnx.Linear(cfg.d_model, cfg.mlp_dim, use_bias=False, kernel_init=init, rngs=rngs)
        self.up_proj = nnx.Linear(cfg.d_model, cfg.mlp_dim, use_bias=False, kernel_init=init, rngs=rngs)
        self.down_proj = nnx.Linear(cfg.mlp_dim, cfg.d_model, use_bias=False, kernel_init=init, rngs=rngs)

    def __call__(self, x):
        return self.down_proj(jax.nn.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nnx.Module):
    def __init__(self, cfg: PolicyConfig, *, rngs: nnx.Rngs):
        self.input_layernorm = nnx.RMSNorm(cfg.d_model, epsilon=cfg.rms_eps, rngs=rngs)
        self.self_attn = Attention(cfg, rngs=rngs)
        self.post_attention_layernorm = nnx.RMSNorm(cfg.d_model, epsilon=cfg.rms_eps, rngs=rngs)
        self.mlp = MLP(cfg, rngs=rngs)

    def __call__(self, x, sin, cos, allowed, kv=None, index=None):
        h, kv = self.self_attn(self.input_layernorm(x), sin, cos, allowed, kv, index)
        x = x + h
        return x + self.mlp(self.post_attention_layernorm(x)), kv


class Policy(nnx.Module):
    """The decoder. Attribute names follow HF's module tree (see the module docstring)."""

    def __init__(self, cfg: PolicyConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        init = nnx.initializers.normal(cfg.init_std)
        self.embed_tokens = nnx.Embed(cfg.vocab_size, cfg.d_model, embedding_init=init, rngs=rngs)
        self.layers = nnx.List([DecoderLayer(cfg, rngs=rngs) for _ in range(cfg.num_layers)])
        self.norm = nnx.RMSNorm(cfg.d_model, epsilon=cfg.rms_eps, rngs=rngs)
        self.lm_head = (
            None if cfg.tie_embeddings else nnx.Linear(cfg.d_model, cfg.vocab_size, use_bias=False, kernel_init=init, rngs=rngs)
        )

    def __call__(
        self, tokens: jax.Array, positions: jax.Array, mask: jax.Array, cache: KVCache | None = None
    ) -> tuple[jax.Array, KVCache | None]:
        """tokens, positions [B, T] int, mask [B, T] bool -> (logits [B, T, V] float32, cache).

        Without a cache the T tokens attend to each other (causal in slot order, real keys
        only) and the returned cache is None. With one, they are written at each row's
        ``cache.index`` and attend to every real cached slot at or before their own; the
        returned cache has the new keys, values and mask, and ``index + T``.
        """
        b, t = tokens.shape
        mask = mask.astype(bool)
        half = self.cfg.head_size // 2
        inv_freq = self.cfg.rope_theta ** (-jnp.arange(half, dtype=jnp.float32) / half)
        angles = positions.astype(jnp.float32)[:, :, None] * inv_freq[None, None, :]
        sin, cos = jnp.sin(angles), jnp.cos(angles)

        if cache is None:
            key_mask, key_slot, query_slot = mask, jnp.arange(t), jnp.broadcast_to(jnp.arange(t), (b, t))
        else:
            key_mask = _write(cache.mask, mask, cache.index)
            key_slot = jnp.arange(key_mask.shape[1])
            query_slot = cache.index[:, None] + jnp.arange(t)[None, :]
        allowed = key_mask[:, None, :] & (key_slot[None, None, :] <= query_slot[:, :, None])

        x = self.embed_tokens(tokens)
        ks, vs = [], []
        for i, layer in enumerate(self.layers):
            kv = None if cache is None else (cache.k[i], cache.v[i])
            x, (k, v) = layer(x, sin, cos, allowed, kv, None if cache is None else cache.index)
            ks.append(k)
            vs.append(v)
        x = self.norm(x)
        logits = self.embed_tokens.attend(x) if self.lm_head is None else self.lm_head(x)
        if cache is None:
            return logits.astype(jnp.float32), None
        return logits.astype(jnp.float32), KVCache(jnp.stack(ks), jnp.stack(vs), key_mask, cache.index + t)


def init(cfg: PolicyConfig, key: jax.Array) -> tuple[nnx.GraphDef, nnx.State]:
    """A fresh policy as ``(graphdef, state)``; ``jax.vmap`` over keys stacks seeds' states.

    Weights are N(0, ``init_std``) as from the constructor's initialisers, norm scales 1 and
    biases 0 (HF's init), but every weight comes from one normal draw of ``key``: a random
    call per tensor made the compiled initialiser about 4x slower to compile.
    """
    return nnx.graphdef(_abstract(cfg)), _init_state(cfg, key)


def _abstract(cfg: PolicyConfig) -> Policy:
    return nnx.eval_shape(lambda: Policy(cfg, rngs=nnx.Rngs(0)))


@functools.partial(jax.jit, static_argnums=0)
def _init_state(cfg: PolicyConfig, key: jax.Array) -> nnx.State:
    model = _abstract(cfg)
    variables = list(nnx.to_flat_state(nnx.state(model)))
    drawn = [var for path, var in variables if path[-1] not in ("scale", "bias")]
    normal = cfg.init_std * jax.random.normal(key, (sum(var.size for var in drawn),))
    offset = 0
    for path, var in variables:
        if path[-1] in ("scale", "bias"):
            var.set_value(jnp.full(var.shape, 1.0 if path[-1] == "scale" else 0.0, var.dtype))
        else:
            var.set_value(normal[offset : offset + var.size].reshape(var.shape).astype(var.dtype))
            offset += var.size
    return nnx.state(model)


def apply(graphdef: nnx.GraphDef, state: nnx.State, tokens, positions, mask, cache: KVCache | None = None):
    """The pure forward pass: :meth:`Policy.__call__` on ``nnx.merge(graphdef, state)``."""
    return nnx.merge(graphdef, state)(tokens, positions, mask, cache)


def hf_parameter_map(cfg: PolicyConfig) -> dict[str, tuple[tuple[str | int, ...], bool]]:
    """HF checkpoint name -> (path in ``nnx.state(Policy)``, whether to transpose).

    The same table as the module docstring, for the checkpoint loader of a later issue.
    """
    table = {
        "model.embed_tokens.weight": (("embed_tokens", "embedding"), False),
        "model.norm.weight": (("norm", "scale"), False),
    }
    for i in range(cfg.num_layers):
        hf, here = f"model.layers.{i}.", ("layers", i)
        table[hf + "input_layernorm.weight"] = (here + ("input_layernorm", "scale"), False)
        table[hf + "post_attention_layernorm.weight"] = (here + ("post_attention_layernorm", "scale"), False)
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            table[hf + f"self_attn.{proj}.weight"] = (here + ("self_attn", proj, "kernel"), True)
            if cfg.qkv_bias and proj != "o_proj":
                table[hf + f"self_attn.{proj}.bias"] = (here + ("self_attn", proj, "bias"), False)
        for proj in ("gate_proj", "up_proj", "down_proj"):
            table[hf + f"mlp.{proj}.weight"] = (here + ("mlp", proj, "kernel"), True)
    if not cfg.tie_embeddings:
        table["lm_head.weight"] = (("lm_head", "kernel"), True)
    return table

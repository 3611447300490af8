"""``policy``: a Llama/Qwen2-family decoder for GRPO, with a functional KV cache.

Why this family: it is what small open chat models are (Qwen2, Llama), so a later issue can
load a real checkpoint by renaming and transposing tensors, with no change to the maths.
RMSNorm, rotary positions (theta configurable), a SwiGLU MLP, grouped-query attention,
optional q/k/v bias (Qwen2 has it, Llama does not), tied or untied output embeddings.

Why a functional cache: the sampler runs inside ``lax.scan`` and under ``jax.vmap`` over
seeds, so the cache is a plain pytree (:class:`KVCache`) passed in and returned, never a
mutable module variable. The module itself holds parameters only; :func:`init` and
:func:`apply` give the pure ``(graphdef, state)`` view that ``jit``/``vmap``/``scan`` carry.

How it is laid out for XLA:CPU (measured on one core; see :mod:`emojax.bench.grpo`):

* Every dense layer sees 2-D activations ``[B*T, D]``. On 3-D ``[B, T, D]`` inputs the
  weight gradient contracts two axes, and XLA:CPU transposed the activation gradient to
  ``[F, B, T]`` and fell back to a slow GEMM: a 4-layer d=256 update took twice as long.
* Attention runs head-major (``[B, heads, T, hd]``), and the cache is stored that way, one
  buffer per layer (``[B, kv_heads, S, hd]``): the score and value matmuls read the cache
  in place, and a decode step writes one slot per row instead of transposing, stacking and
  slicing the whole cache (what made a cached decode step cost 2.5x a cache-less forward).
* The rotary tables are computed once per call and kept out of XLA's fusions
  (:func:`_materialize`): fused, ``sin``/``cos`` and the positions' cumulative sum were
  recomputed for every element of every q/k projection.

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
``h // (H / KV)``, as HF's ``repeat_kv``. Llama 3.1's "llama3" rope scaling is
``rope_llama3`` (:func:`rope_frequencies`); Qwen3's per-head q/k RMSNorms are ``qk_norm``
(``self_attn.q_norm.weight`` and ``k_norm.weight``, ``[hd]``). Not covered: sliding-window attention.

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
    # Llama 3's "llama3" rope scaling: (factor, low_freq_factor, high_freq_factor,
    # original_max_position_embeddings); () for none. See :func:`rope_frequencies`.
    rope_llama3: tuple = ()
    rms_eps: float = 1e-6
    qkv_bias: bool = True
    qk_norm: bool = False  # Qwen3: an RMSNorm over each head of q and k, before rotary
    tie_embeddings: bool = True
    init_std: float = 0.02  # HF's initializer_range
    # The dtype activations and matmuls run in. Parameters stay float32 (the master weights
    # the optimiser updates) and are cast on use; logits, log-probs and the loss are float32.
    dtype: str = "float32"
    # LoRA (Hu et al. 2021): rank-``lora_rank`` adapters beside the projections named in
    # ``lora_targets``, their product scaled by ``lora_alpha / lora_rank`` (PEFT's ``r``,
    # ``lora_alpha``, ``target_modules``); 0: none. See :class:`LoRALinear`, :mod:`emojax.rl.lora`.
    lora_rank: int = 0
    lora_alpha: float = 16.0
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    # Whole tensors trained beside the adapters (PEFT's ``modules_to_save``): any of
    # "norms" (the RMSNorm scales), "embeddings" (the input embedding and an untied output
    # head), "biases". A base with frozen random embeddings cannot learn a new vocabulary's
    # use (docs/lora.md); a pre-trained one has already.
    lora_train: tuple[str, ...] = ()

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "num_layers", "num_heads", "num_kv_heads", "mlp_dim"):
            config.int_at_least(self, 1, name)
        kv = self.num_kv_heads
        config.require(self, "num_heads", lambda v: v % kv == 0, f"a multiple of num_kv_heads={kv}")
        if self.head_dim is None:
            heads = self.num_heads
            config.require(self, "d_model", lambda v: v % heads == 0, f"divisible by num_heads={heads} (or set head_dim)")
        else:
            config.int_at_least(self, 1, "head_dim", note="or None")
        if self.head_size % 2:
            raise ValueError(f"PolicyConfig.head_dim must be even (rotary pairs), got {self.head_size} (derived if None)")
        config.positive(self, "rope_theta", "rms_eps", "init_std")
        config.require(self, "rope_llama3", lambda v: v == () or (len(v) == 4 and all(x > 0 for x in v) and v[2] > v[1]),
                       "() or (factor, low_freq_factor, high_freq_factor, original_max_position_embeddings), all > 0, "
                       "high > low")  # fmt: skip
        config.require(self, "dtype", lambda v: v in DTYPES, f"one of {DTYPES}")
        config.int_at_least(self, 0, "lora_rank", note="0: no adapters")
        config.positive(self, "lora_alpha")
        config.require(self, "lora_targets", lambda v: len(v) > 0 and set(v) <= set(PROJECTIONS),
                       f"a non-empty subset of {PROJECTIONS}")  # fmt: skip
        config.require(self, "lora_train", lambda v: set(v) <= set(LORA_TRAIN), f"a subset of {LORA_TRAIN}")

    @property
    def compute_dtype(self):
        return jnp.dtype(self.dtype)

    @property
    def head_size(self) -> int:
        return self.head_dim if self.head_dim is not None else self.d_model // self.num_heads


DTYPES = ("float32", "bfloat16")
LORA_TRAIN = ("norms", "embeddings", "biases")
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

PRESETS: dict[str, PolicyConfig] = {
    # What tests run: GQA (2 query heads per key/value head) and untied output embeddings.
    "smoke": PolicyConfig(vocab_size=48, d_model=32, num_heads=4, num_kv_heads=2, mlp_dim=64, tie_embeddings=False),
    # The benchmark shapes: the same parameter counts as the random Qwen2 models TRL was
    # timed with (../shared/reference/grpo.md): 151k and 4.28M.
    "2x64": PolicyConfig(),
    "4x256": PolicyConfig(d_model=256, num_layers=4, num_heads=4, num_kv_heads=4, mlp_dim=1024),
}


class KVCache(NamedTuple):
    """Keys and values of every layer, one buffer per layer, head-major (see the module doc)."""

    k: tuple[jax.Array, ...]  # per layer [B, kv_heads, S, head_dim] compute dtype, after rotary
    v: tuple[jax.Array, ...]  # per layer [B, kv_heads, S, head_dim] compute dtype
    mask: jax.Array  # [B, S] bool: the slot holds a real token
    index: jax.Array  # [B] int32: the next slot each row writes


def init_cache(cfg: PolicyConfig, batch: int, length: int, dtype=None) -> KVCache:
    """An empty cache of ``length`` slots, in ``dtype`` (default: the policy's compute
    dtype). Writes past the end are clamped by XLA: size it for prompt plus completion."""
    dtype = cfg.compute_dtype if dtype is None else dtype
    shape = (batch, cfg.num_kv_heads, length, cfg.head_size)
    return KVCache(
        k=tuple(jnp.zeros(shape, dtype) for _ in range(cfg.num_layers)),
        v=tuple(jnp.zeros(shape, dtype) for _ in range(cfg.num_layers)),
        mask=jnp.zeros((batch, length), bool),
        index=jnp.zeros((batch,), jnp.int32),
    )


def positions_from_mask(mask: jax.Array) -> jax.Array:
    """Rotary positions [B, T] int32: the number of real tokens before each slot (pads: 0)."""
    return jnp.maximum(jnp.cumsum(mask.astype(jnp.int32), axis=-1) - 1, 0)


def _write(buf: jax.Array, update: jax.Array, index: jax.Array, axis: int = 0) -> jax.Array:
    """Row ``b`` of ``update`` [B, ..., T, ...] into ``buf`` [B, ..., S, ...] at slot
    ``index[b]`` of ``axis`` (counted without the batch axis)."""
    return jax.vmap(lambda b, u, i: jax.lax.dynamic_update_slice_in_dim(b, u, i, axis=axis))(buf, update, index)


def _materialize(x: jax.Array) -> jax.Array:
    """``x`` [..., n] float, unchanged (a product with the identity is exact), but as the
    output of a matmul, which XLA computes once. Left to XLA:CPU's fusion, the rotary
    tables (and the positions' cumulative sum under them) were recomputed inside every
    q/k fusion, forward and backward; ``optimization_barrier`` does not stop that on CPU
    (the barrier is gone before fusion runs)."""
    eye = jnp.eye(x.shape[-1], dtype=x.dtype)
    return jnp.einsum("...i,ij->...j", x, eye, precision=jax.lax.Precision.HIGHEST)


@jax.custom_vjp
def _matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    return jnp.dot(x, w)


def _matmul_fwd(x, w):
    return jnp.dot(x, w), (x, w)


def _matmul_bwd(res, g):
    x, w = res
    dx = jax.lax.dot_general(g, w, (((1,), (1,)), ((), ())))
    if w.shape[0] <= w.shape[1]:
        dw = jax.lax.dot_general(x, g, (((0,), (0,)), ((), ())))
    else:
        # XLA:CPU's GEMM with a transposed left operand is slow for tall outputs ([1024, 256]:
        # 90 GFLOP/s, against 170 for [256, 1024]); compute the wide one and transpose it.
        # The barrier keeps XLA from folding the transpose back into the dot.
        dw = jnp.transpose(jax.lax.optimization_barrier(jax.lax.dot_general(g, x, (((0,), (0,)), ((), ())))))
    return dx, dw


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def _dot_general(lhs, rhs, dimension_numbers, precision=None, **kwargs):
    """``nnx.Linear``'s ``dot_general``: a 2-D ``[M, K] @ [K, N]`` goes through
    :func:`_matmul` (same forward, weight gradient in the faster orientation); anything else
    is ``lax.dot_general``."""
    if lhs.ndim == 2 and rhs.ndim == 2 and dimension_numbers == (((1,), (0,)), ((), ())) and precision is None \
            and not kwargs.get("preferred_element_type") and kwargs.get("out_sharding") is None:
        return _matmul(lhs, rhs)
    return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision=precision, **kwargs)


class LoRALinear(nnx.Linear):
    """``nnx.Linear`` plus a low-rank update: ``y = x W + b + scale (x A) B``.

    Why apart from the kernel: only ``lora_a`` [in, r] and ``lora_b`` [r, out] train
    (:class:`nnx.LoRAParam`, split from the frozen ``nnx.Param`` by type), and a forward
    with the adapters never forms ``W + scale A B``, so the base weights exist once. The
    kernel and bias keep ``nnx.Linear``'s names, so the Hugging Face map is unchanged. ``A``
    starts uniform in +-1/sqrt(in) (PEFT's Kaiming-uniform) and ``B`` at zero, so a fresh
    adapter leaves the base's outputs exactly as they were.
    """

    def __init__(self, in_features: int, out_features: int, *, rank: int, scale: float, rngs: nnx.Rngs, **kwargs):
        super().__init__(in_features, out_features, rngs=rngs, **kwargs)
        bound = 1.0 / math.sqrt(in_features)
        self.lora_a = nnx.LoRAParam(jax.random.uniform(rngs.params(), (in_features, rank), jnp.float32, -bound, bound))
        self.lora_b = nnx.LoRAParam(jnp.zeros((rank, out_features), jnp.float32))
        self.lora_scale = scale

    def __call__(self, x: jax.Array) -> jax.Array:
        a, b = self.lora_a[...].astype(x.dtype), self.lora_b[...].astype(x.dtype)
        return super().__call__(x) + (self.lora_scale * ((x @ a) @ b)).astype(x.dtype)


def _dense(cfg: PolicyConfig, rngs: nnx.Rngs, name: str | None = None):
    """``nnx.Linear`` with HF's initialiser and :func:`_dot_general`; a :class:`LoRALinear`
    for a projection ``name`` among ``cfg.lora_targets`` when ``cfg.lora_rank > 0``."""
    init = nnx.initializers.normal(cfg.init_std)
    kw = dict(kernel_init=init, dot_general=_dot_general, dtype=cfg.compute_dtype, rngs=rngs)
    if cfg.lora_rank and name in cfg.lora_targets:
        return functools.partial(LoRALinear, rank=cfg.lora_rank, scale=cfg.lora_alpha / cfg.lora_rank, **kw)
    return functools.partial(nnx.Linear, **kw)


def _rotary(x: jax.Array, sin: jax.Array, cos: jax.Array) -> jax.Array:
    """x [B, T, heads, hd]; sin, cos [B, T, 1, hd/2]. HF's rotate-half convention."""
    x1, x2 = jnp.split(x, 2, axis=-1)
    sin, cos = sin.astype(x.dtype), cos.astype(x.dtype)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


class Attention(nnx.Module):
    def __init__(self, cfg: PolicyConfig, *, rngs: nnx.Rngs):
        dense = functools.partial(_dense, cfg, rngs)
        d, hd = cfg.d_model, cfg.head_size
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, hd
        self.q_proj = dense("q_proj")(d, cfg.num_heads * hd, use_bias=cfg.qkv_bias)
        self.k_proj = dense("k_proj")(d, cfg.num_kv_heads * hd, use_bias=cfg.qkv_bias)
        self.v_proj = dense("v_proj")(d, cfg.num_kv_heads * hd, use_bias=cfg.qkv_bias)
        self.o_proj = dense("o_proj")(cfg.num_heads * hd, d, use_bias=False)
        norm = lambda: nnx.RMSNorm(hd, epsilon=cfg.rms_eps, dtype=cfg.compute_dtype, rngs=rngs)  # noqa: E731
        self.q_norm, self.k_norm = (norm(), norm()) if cfg.qk_norm else (None, None)

    def _project(self, x2, b, t, sin, cos):
        """Rows ``[b*t, D]`` -> head-major q [b, KV, G*t, hd] (query head h = kv * G + g
        reads key/value head kv, HF's repeat_kv), k, v [b, KV, t, hd], rotary applied."""
        kvh, groups, hd = self.num_kv_heads, self.num_heads // self.num_kv_heads, self.head_dim
        q, k = self.q_proj(x2).reshape(b, t, self.num_heads, hd), self.k_proj(x2).reshape(b, t, kvh, hd)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = _rotary(q, sin, cos), _rotary(k, sin, cos)
        v = self.v_proj(x2).reshape(b, t, kvh, hd)
        q = jnp.transpose(q, (0, 2, 1, 3)).reshape(b, kvh, groups * t, hd)
        return q, jnp.transpose(k, (0, 2, 1, 3)), jnp.transpose(v, (0, 2, 1, 3))

    def _attend(self, q, k, v, allowed):
        """q [b, KV, G*t, hd], k, v [b, KV, s, hd], allowed [b, t, s] -> rows [b*t, H*hd]."""
        b, t, s = allowed.shape
        kvh, groups, hd = self.num_kv_heads, self.num_heads // self.num_kv_heads, self.head_dim
        # Scores and softmax in float32 whatever the compute dtype (bfloat16 loses the small
        # differences between large scores); the probabilities return to the compute dtype.
        scores = jnp.einsum("bkqd,bksd->bkqs", q, k, preferred_element_type=jnp.float32) / math.sqrt(hd)
        scores = scores.reshape(b, kvh, groups, t, s)
        # A finite floor, not -inf: a pad query with no visible key then averages instead of NaN.
        scores = jnp.where(allowed[:, None, None, :, :], scores, jnp.finfo(scores.dtype).min)
        probs = jax.nn.softmax(scores, axis=-1).reshape(b, kvh, groups * t, s).astype(v.dtype)
        out = jnp.einsum("bkqs,bksd->bkqd", probs, v).reshape(b, self.num_heads, t, hd)
        return jnp.transpose(out, (0, 2, 1, 3)).reshape(b * t, self.num_heads * hd)

    def __call__(self, x, sin, cos, allowed, kv=None, index=None):
        """x [B, T, D] or [B*T, D] with T = ``allowed.shape[1]``; allowed [B, T, S]; kv:
        this layer's (k, v) [B, KV, S, hd] or None.

        Returns (out, shaped as x; (k, v) [B, KV, S, hd] with this call's keys and values
        written at ``index``, or [B, KV, T, hd] without a cache).
        """
        b, t = allowed.shape[:2]
        # 2-D rows, so that the weight gradients are plain GEMMs.
        q, k, v = self._project(x.reshape(b * t, x.shape[-1]), b, t, sin, cos)
        if kv is not None:
            k, v = _write(kv[0], k, index, axis=1), _write(kv[1], v, index, axis=1)
        return self.o_proj(self._attend(q, k, v, allowed)).reshape(x.shape), (k, v)

    def grouped(self, x, shared: "_Shared"):
        """The shared-prefix layout of :meth:`Policy.hidden_grouped`: x rows are ``n*P``
        prompt rows then ``n*G*N`` continuation rows. Prompts attend to themselves; each
        continuation to its group's prompt (keys and values repeated, so their gradients
        add up over the group) and to itself."""
        n, p, b, t, g = shared.n, shared.p, shared.b, shared.t, shared.group
        qp, kp, vp = self._project(x[: n * p], n, p, shared.sin_p, shared.cos_p)
        qc, kc, vc = self._project(x[n * p :], b, t, shared.sin_c, shared.cos_c)
        out_p = self._attend(qp, kp, vp, shared.allowed_p)
        k = jnp.concatenate([jnp.repeat(kp, g, axis=0), kc], axis=2)
        v = jnp.concatenate([jnp.repeat(vp, g, axis=0), vc], axis=2)
        out_c = self._attend(qc, k, v, shared.allowed_c)
        return self.o_proj(jnp.concatenate([out_p, out_c], axis=0))


class _Shared(NamedTuple):
    """What every layer of a shared-prefix forward needs (see :meth:`Policy.hidden_grouped`)."""

    n: int
    p: int
    b: int
    t: int
    group: int
    sin_p: jax.Array
    cos_p: jax.Array
    sin_c: jax.Array
    cos_c: jax.Array
    allowed_p: jax.Array
    allowed_c: jax.Array


class MLP(nnx.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: PolicyConfig, *, rngs: nnx.Rngs):
        dense = functools.partial(_dense, cfg, rngs)
        self.gate_proj = dense("gate_proj")(cfg.d_model, cfg.mlp_dim, use_bias=False)
        self.up_proj = dense("up_proj")(cfg.d_model, cfg.mlp_dim, use_bias=False)
        self.down_proj = dense("down_proj")(cfg.mlp_dim, cfg.d_model, use_bias=False)

    def __call__(self, x):
        return self.down_proj(jax.nn.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nnx.Module):
    def __init__(self, cfg: PolicyConfig, *, rngs: nnx.Rngs):
        norm = functools.partial(nnx.RMSNorm, cfg.d_model, epsilon=cfg.rms_eps, dtype=cfg.compute_dtype, rngs=rngs)
        self.input_layernorm = norm()
        self.self_attn = Attention(cfg, rngs=rngs)
        self.post_attention_layernorm = norm()
        self.mlp = MLP(cfg, rngs=rngs)

    def __call__(self, x, sin, cos, allowed, kv=None, index=None):
        h, kv = self.self_attn(self.input_layernorm(x), sin, cos, allowed, kv, index)
        x = x + h
        return x + self.mlp(self.post_attention_layernorm(x)), kv

    def grouped(self, x, shared: _Shared):
        x = x + self.self_attn.grouped(self.input_layernorm(x), shared)
        return x + self.mlp(self.post_attention_layernorm(x))


class Policy(nnx.Module):
    """The decoder. Attribute names follow HF's module tree (see the module docstring)."""

    def __init__(self, cfg: PolicyConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        init = nnx.initializers.normal(cfg.init_std)
        self.embed_tokens = nnx.Embed(cfg.vocab_size, cfg.d_model, embedding_init=init, dtype=cfg.compute_dtype,
                                      rngs=rngs)
        self.layers = nnx.List([DecoderLayer(cfg, rngs=rngs) for _ in range(cfg.num_layers)])
        self.norm = nnx.RMSNorm(cfg.d_model, epsilon=cfg.rms_eps, dtype=cfg.compute_dtype, rngs=rngs)
        self.lm_head = None if cfg.tie_embeddings else _dense(cfg, rngs)(cfg.d_model, cfg.vocab_size, use_bias=False)

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
        x, cache = self.hidden(tokens, positions, mask, cache)
        return self.logits(x).reshape(b, t, -1), cache

    def hidden(
        self, tokens: jax.Array, positions: jax.Array, mask: jax.Array, cache: KVCache | None = None
    ) -> tuple[jax.Array, KVCache | None]:
        """As :meth:`__call__`, but returns the final normalised hidden states ``[B*T, D]``
        (row ``b * T + t``) instead of logits: :meth:`logits` of the rows that are needed."""
        b, t = tokens.shape
        mask = mask.astype(bool)
        if cache is None:
            key_mask, key_slot, query_slot = mask, jnp.arange(t), jnp.broadcast_to(jnp.arange(t), (b, t))
        else:
            key_mask = _write(cache.mask, mask, cache.index)
            key_slot = jnp.arange(key_mask.shape[1])
            query_slot = cache.index[:, None] + jnp.arange(t)[None, :]
        allowed = key_mask[:, None, :] & (key_slot[None, None, :] <= query_slot[:, :, None])
        sin, cos = self._rotary_tables(positions)

        x = self.embed_tokens(tokens).reshape(b * t, self.cfg.d_model)
        ks, vs = [], []
        for i, layer in enumerate(self.layers):
            kv = None if cache is None else (cache.k[i], cache.v[i])
            x, (k, v) = layer(x, sin, cos, allowed, kv, None if cache is None else cache.index)
            ks.append(k)
            vs.append(v)
        x = self.norm(x)
        if cache is None:
            return x, None
        return x, KVCache(tuple(ks), tuple(vs), key_mask, cache.index + t)

    def _rotary_tables(self, positions: jax.Array) -> tuple[jax.Array, jax.Array]:
        """sin, cos [B, T, 1, hd/2] of rotary positions [B, T]."""
        inv_freq = rope_frequencies(self.cfg)
        angles = positions.astype(jnp.float32)[:, :, None, None] * inv_freq[None, None, None, :]
        return _materialize(jnp.sin(angles)), _materialize(jnp.cos(angles))

    def hidden_grouped(
        self, prompt_tokens: jax.Array, prompt_mask: jax.Array, tokens: jax.Array, mask: jax.Array, group: int
    ) -> jax.Array:
        """The forward pass of ``n`` prompts each continued ``group`` times, with every
        prompt computed once (GRPO's groups share their prompt).

        Equal, up to float rounding, to :meth:`hidden` on the ``[n*group, P+N]`` rows
        ``concat(repeat(prompt, group), continuation)`` (tested): the same masks and
        positions, but the prompt's ``n*P`` rows go through every layer once instead of
        ``group`` times, and gradients reaching them add up over their group.

        Args:
          prompt_tokens, prompt_mask: ``[n, P]``, one row per group.
          tokens, mask: ``[n*group, N]`` continuations, group-major (rows ``i*group ..
            (i+1)*group - 1`` continue prompt ``i``).
          group: continuations per prompt.

        Returns:
          Final normalised hidden states ``[n*P + n*group*N, D]``: prompt ``i``'s slot ``j``
          at row ``i*P + j``, continuation ``r``'s slot ``j`` at row ``n*P + r*N + j``.
        """
        n, p = prompt_tokens.shape
        b, t = tokens.shape
        if b != n * group:
            raise ValueError(f"{b} continuations for {n} prompts x group {group}")
        prompt_mask, mask = prompt_mask.astype(bool), mask.astype(bool)
        full = jnp.concatenate([jnp.repeat(prompt_mask, group, axis=0), mask], axis=1)
        positions = positions_from_mask(full)
        sin_p, cos_p = self._rotary_tables(positions_from_mask(prompt_mask))
        sin_c, cos_c = self._rotary_tables(positions[:, p:])
        allowed_p = prompt_mask[:, None, :] & (jnp.arange(p)[None, None, :] <= jnp.arange(p)[None, :, None])
        allowed_c = full[:, None, :] & (jnp.arange(p + t)[None, None, :] <= (p + jnp.arange(t))[None, :, None])
        shared = _Shared(n, p, b, t, group, sin_p, cos_p, sin_c, cos_c, allowed_p, allowed_c)
        d = self.cfg.d_model
        x = jnp.concatenate([self.embed_tokens(prompt_tokens).reshape(n * p, d),
                             self.embed_tokens(tokens).reshape(b * t, d)], axis=0)
        for layer in self.layers:
            x = layer.grouped(x, shared)
        return self.norm(x)

    def logits(self, x: jax.Array) -> jax.Array:
        """Hidden states [..., D] -> logits [..., V] float32."""
        logits = self.embed_tokens.attend(x) if self.lm_head is None else self.lm_head(x)
        return logits.astype(jnp.float32)


def rope_frequencies(cfg: PolicyConfig) -> jax.Array:
    """The rotary inverse frequencies ``[hd/2]`` float32: ``theta^(-2i/hd)``, and with
    ``cfg.rope_llama3`` Llama 3's rescaling of them: wavelengths longer than
    ``original / low_freq_factor`` are stretched by ``factor``, those shorter than
    ``original / high_freq_factor`` are kept, and the ones between are interpolated
    linearly in ``original / wavelength`` (Meta's Llama 3.1 release)."""
    half = cfg.head_size // 2
    inv_freq = cfg.rope_theta ** (-jnp.arange(half, dtype=jnp.float32) / half)
    if not cfg.rope_llama3:
        return inv_freq
    factor, low, high, original = (float(x) for x in cfg.rope_llama3)
    wavelength = 2 * math.pi / inv_freq
    ratio = original / wavelength  # periods that fit in the original context
    blend = jnp.clip((ratio - low) / (high - low), 0.0, 1.0)  # 0: long waves, stretched; 1: short, kept
    return (1 - blend) * inv_freq / factor + blend * inv_freq


def init(cfg: PolicyConfig, key: jax.Array) -> tuple[nnx.GraphDef, nnx.State]:
    """A fresh policy as ``(graphdef, state)``; ``jax.vmap`` over keys stacks seeds' states.

    Weights are N(0, ``init_std``) as from the constructor's initialisers, norm scales 1 and
    biases 0 (HF's init), but every weight comes from one normal draw of ``key``: a random
    call per tensor made the compiled initialiser about 4x slower to compile.
    """
    return graphdef_of(cfg), _init_state(cfg, key)


def graphdef_of(cfg: PolicyConfig) -> nnx.GraphDef:
    """The structure of a policy of ``cfg``, without drawing weights (for
    :func:`apply`, ``nnx.merge`` with a state from elsewhere)."""
    return nnx.graphdef(_abstract(cfg))


def _abstract(cfg: PolicyConfig) -> Policy:
    return nnx.eval_shape(lambda: Policy(cfg, rngs=nnx.Rngs(0)))


@functools.partial(jax.jit, static_argnums=0)
def _init_state(cfg: PolicyConfig, key: jax.Array) -> nnx.State:
    model = _abstract(cfg)
    variables = list(nnx.to_flat_state(nnx.state(model)))
    base = [(path, var) for path, var in variables if not isinstance(var, nnx.LoRAParam)]
    drawn = [var for path, var in base if path[-1] not in ("scale", "bias")]
    normal = cfg.init_std * jax.random.normal(key, (sum(var.size for var in drawn),))
    offset = 0
    for path, var in base:
        if path[-1] in ("scale", "bias"):
            var.set_value(jnp.full(var.shape, 1.0 if path[-1] == "scale" else 0.0, var.dtype))
        else:
            var.set_value(normal[offset : offset + var.size].reshape(var.shape).astype(var.dtype))
            offset += var.size
    # Adapters from their own draw, so that the base weights of a key are the same with
    # LoRA on or off (a LoRA run and a full fine-tune start from one policy).
    _init_adapters([(path, var) for path, var in variables if isinstance(var, nnx.LoRAParam)],
                   jax.random.fold_in(key, 1))  # fmt: skip
    return nnx.state(model)


def _init_adapters(adapters: list, key: jax.Array) -> None:
    """Set :class:`LoRALinear`'s adapters in place: ``A`` uniform in +-1/sqrt(in) (one draw
    for all of them), ``B`` zero."""
    a = [var for path, var in adapters if path[-1] == "lora_a"]
    uniform = jax.random.uniform(key, (sum(var.size for var in a),), jnp.float32, -1.0, 1.0)
    offset = 0
    for path, var in adapters:
        if path[-1] == "lora_b":
            var.set_value(jnp.zeros(var.shape, var.dtype))
        else:
            piece = uniform[offset : offset + var.size].reshape(var.shape) / math.sqrt(var.shape[0])
            var.set_value(piece.astype(var.dtype))
            offset += var.size


@functools.partial(jax.jit, static_argnums=0)
def init_adapters(cfg: PolicyConfig, key: jax.Array) -> nnx.State:
    """Fresh adapters (the :class:`nnx.LoRAParam` part of a policy of ``cfg``), to put beside
    base weights from elsewhere (a checkpoint, a pre-trained policy)."""
    model = _abstract(cfg)
    adapters = list(nnx.to_flat_state(nnx.state(model, nnx.LoRAParam)))
    _init_adapters(adapters, jax.random.fold_in(key, 1))
    return nnx.state(model, nnx.LoRAParam)


def apply(graphdef: nnx.GraphDef, state: nnx.State, tokens, positions, mask, cache: KVCache | None = None):
    """The pure forward pass: :meth:`Policy.__call__` on ``nnx.merge(graphdef, state)``."""
    return nnx.merge(graphdef, state)(tokens, positions, mask, cache)


def apply_hidden(graphdef: nnx.GraphDef, state: nnx.State, tokens, positions, mask, cache: KVCache | None = None):
    """The pure :meth:`Policy.hidden`: final hidden states ``[B*T, D]`` and the cache."""
    return nnx.merge(graphdef, state).hidden(tokens, positions, mask, cache)


def apply_hidden_grouped(graphdef: nnx.GraphDef, state: nnx.State, prompt_tokens, prompt_mask, tokens, mask,
                         group: int) -> jax.Array:
    """The pure :meth:`Policy.hidden_grouped` (prompts computed once per group)."""
    return nnx.merge(graphdef, state).hidden_grouped(prompt_tokens, prompt_mask, tokens, mask, group)


def apply_logits(graphdef: nnx.GraphDef, state: nnx.State, hidden: jax.Array) -> jax.Array:
    """The pure :meth:`Policy.logits`: the output projection of hidden states ``[..., D]``."""
    return nnx.merge(graphdef, state).logits(hidden)


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
        if cfg.qk_norm:
            for norm in ("q_norm", "k_norm"):
                table[hf + f"self_attn.{norm}.weight"] = (here + ("self_attn", norm, "scale"), False)
        for proj in ("gate_proj", "up_proj", "down_proj"):
            table[hf + f"mlp.{proj}.weight"] = (here + ("mlp", proj, "kernel"), True)
    if not cfg.tie_embeddings:
        table["lm_head.weight"] = (("lm_head", "kernel"), True)
    return table

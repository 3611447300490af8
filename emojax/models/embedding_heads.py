"""``embedding_heads``: EmoNet's Empathic Insight design, 40 independent MLP heads.

The published models put one small MLP per emotion (1152 -> 128 -> 32 -> 1, ReLU, dropout
0.1) on a frozen embedding (SigLIP2 for faces), built as a list of 40 modules. Here the 40
heads are one batched computation: the same function as 40 separate MLPs, without a loop.

Parameters (and checkpoint shapes): layer ``i`` of all heads is ``kernels[i]`` of shape
``[40, out, in]``, head ``h``'s weight in the layout of ``torch.nn.Linear.weight`` (so a
published PyTorch head's ``weight`` is ``kernels[i][h]``), and ``biases[i]`` ``[40, out]``.
(Checkpoints from before this layout held ``[40, in, out]``: swap the last two axes.)

Layout, for speed on CPU (``python -m experiments.bench estimator`` measures it; one core):

* Activations are feature-major, ``[40, e, batch]``, so the first layer of all heads is one
  GEMM ``[40 * 128, 1152] @ x^T`` and its weight gradient one GEMM ``g [40 * 128, B] @ x``
  written straight into ``kernels[0]``'s layout: no transpose or copy of the 23.6 MB
  kernel or of its gradient, and no gradient w.r.t. the frozen embedding (XLA drops it).
  The forward GEMM takes 2.3 / 16.6 ms at batch 32 / 256, against 5.0 / 18.0 ms in the
  batch-major orientation ``x @ [1152, 40 * 128]``; the previous layout (``[40, in, out]``,
  a scan of per-head GEMMs) also zero-filled the gradient and copied every head's slice in
  and out, 12 ms of a batch-256 step.
* Dropout masks come from a counter-based hash (:func:`dropout`), not from
  ``jax.random.bernoulli``: threefry bits for the ``[40, 128 + 32, B]`` masks took 13 ms of
  a batch-256 step (XLA's ``rbg`` generator was slower still on CPU, 17-19 ms); the hash
  costs under 1 ms and fuses into the ReLU and its gradient, recomputed instead of stored.

Inputs: a precomputed embedding ``[batch, D]`` (``input="embedding"``, for real data), or
the world's tokens, turned into the fixed utterance embedding of :func:`world_embedding`
(``input="tokens"``, for simulated data).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from emojax import config, taxonomy
from emojax.models import registry
from emojax.world import vocab

EMBEDDING_SEED = 20250526  # fixed: the world embedding is part of the data's definition


@functools.lru_cache(maxsize=4)
def _tables(dim: int) -> np.ndarray:
    """[6, VOCAB, dim] fixed Gaussian tables: 1 for unigrams, 2 for bigrams, 3 for trigrams."""
    return np.random.RandomState(EMBEDDING_SEED).standard_normal((6, vocab.VOCAB_SIZE, dim)).astype(np.float32)


def world_embedding(tokens: jax.Array, mask: jax.Array, dim: int = 1152) -> jax.Array:
    """The fixed utterance embedding of simulated text: [..., T] tokens -> [..., dim].

    A random-feature sketch of the utterance's unigrams, bigrams and trigrams:

        e = ( sum_t u[x_t] + sum_t b1[x_{t-1}] * b2[x_t]
              + sum_t c1[x_{t-2}] * c2[x_{t-1}] * c3[x_t] ) / sqrt(#tokens)

    with fixed standard-normal tables (seed ``EMBEDDING_SEED``) and elementwise products,
    so distinct n-grams map to nearly orthogonal directions. It plays the role SigLIP2
    features play for faces: frozen, not trained, and rich enough that a small head per
    emotion can read local context ("not hopeful", "so victorious", "was furious").
    """
    u, b1, b2, c1, c2, c3 = (jnp.asarray(t) for t in _tables(dim))
    m = mask.astype(jnp.float32)
    uni = u[tokens] * m[..., None]
    m2 = m[..., 1:] * m[..., :-1]
    bi = b1[tokens[..., :-1]] * b2[tokens[..., 1:]] * m2[..., None]
    m3 = m2[..., 1:] * m[..., :-2]
    tri = c1[tokens[..., :-2]] * c2[tokens[..., 1:-1]] * c3[tokens[..., 2:]] * m3[..., None]
    total = jnp.sum(uni, -2) + jnp.sum(bi, -2) + jnp.sum(tri, -2)
    return total / jnp.sqrt(jnp.maximum(jnp.sum(m, -1, keepdims=True), 1.0))


@registry.register_architecture("embedding_heads")
class EmbeddingHeads(nnx.Module):
    @dataclasses.dataclass(frozen=True)
    class Config:
        """Defaults follow Empathic Insight Face: 1152 -> 128 -> 32 -> outputs per emotion."""

        input: str = "tokens"  # "tokens" (world embedding) or "embedding" (precomputed)
        embed_dim: int = 1152
        hidden: tuple[int, ...] = (128, 32)
        dropout: float = 0.1

        def __post_init__(self):
            config.require(self, "input", lambda v: v in ("tokens", "embedding"), "'tokens' or 'embedding'")
            config.int_at_least(self, 1, "embed_dim")
            config.require(self, "hidden", lambda v: len(v) >= 1 and min(v) >= 1, "a non-empty tuple of sizes >= 1")
            config.require(self, "dropout", lambda v: 0.0 <= v < 1.0, "in [0, 1)")

    def __init__(self, cfg: Config, outputs_per_category: int, *, rngs: nnx.Rngs):
        self.cfg = cfg
        sizes = (cfg.embed_dim, *cfg.hidden, outputs_per_category)
        heads = taxonomy.NUM_CATEGORIES
        init = nnx.initializers.lecun_normal(in_axis=2, out_axis=1, batch_axis=(0,))  # [40, out, in]
        self.kernels = nnx.List([nnx.Param(init(rngs.params(), (heads, b, a))) for a, b in zip(sizes[:-1], sizes[1:])])
        self.biases = nnx.List([nnx.Param(jnp.zeros((heads, b))) for b in sizes[1:]])
        self.drop = nnx.Dropout(cfg.dropout, rngs=rngs)  # holds the rate and the dropout key stream

    def embed(self, inputs: jax.Array, mask: jax.Array | None) -> jax.Array:
        if self.cfg.input == "tokens":
            return world_embedding(inputs, mask, self.cfg.embed_dim)
        return inputs.astype(jnp.float32)

    def __call__(self, inputs: jax.Array, mask: jax.Array | None = None, *, deterministic: bool = True) -> jax.Array:
        """inputs [B, T] tokens (or [B, D] embeddings) -> raw outputs [B, 40, outputs]."""
        x = self.embed(inputs, mask)
        # Feature-major [40, e, B] throughout; per head h the same function as
        # a = x @ W0[h].T + b0[h]; a = drop(relu(a)) @ W[h].T + b[h] for the later layers.
        h = jnp.einsum("hed,bd->heb", self.kernels[0][...], x) + self.biases[0][...][..., None]
        for w, b in zip(list(self.kernels)[1:], list(self.biases)[1:]):
            h = jax.nn.relu(h)
            if not deterministic and self.drop.rate > 0:
                h = dropout(h, self.drop.rngs(), self.drop.rate)
            h = jnp.einsum("hed,hdb->heb", w[...], h) + b[...][..., None]
        return jnp.transpose(h, (2, 0, 1))


def _mix32(h: jax.Array) -> jax.Array:
    """MurmurHash3's 32-bit finaliser: a bijection of uint32 in which every input bit
    flips every output bit with probability close to 1/2."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def dropout_bits(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """uint32 bits for a dropout mask: a counter-based hash keyed by 64 bits of ``key``.

    ``bits[i] = mix(mix(i * 0x9E3779B9 + k0) ^ k1)`` over the flat index ``i``, with
    ``(k0, k1)`` drawn from ``key`` by threefry and ``mix`` :func:`_mix32`. Within one mask
    the map ``i -> bits`` is a bijection (no value repeats); masks of different keys are
    unrelated. A few integer operations per element that XLA fuses into the consumer,
    where threefry's 20 rounds per pair of words cost 10-20x more on CPU (see the module
    docstring); quality is that of a good hash, ample for dropout (tested: keep rate,
    neighbours and keys uncorrelated), not for cryptography or statistics.
    """
    k0, k1 = jax.random.bits(key, (2,), jnp.uint32)
    i = jax.lax.iota(jnp.uint32, int(np.prod(shape))).reshape(shape)
    return _mix32(_mix32(i * jnp.uint32(0x9E3779B9) + k0) ^ k1)


def dropout(x: jax.Array, key: jax.Array, rate: float) -> jax.Array:
    """Inverted dropout: each entry kept with probability ``1 - rate`` (exact to 2^-32)
    and scaled by ``1 / (1 - rate)``, as :class:`flax.nnx.Dropout`; the mask is
    :func:`dropout_bits` below a threshold."""
    keep = 1.0 - rate
    threshold = jnp.uint32(min(round(keep * 2**32), 2**32 - 1))
    return jnp.where(dropout_bits(key, x.shape) < threshold, x / keep, jnp.zeros_like(x))


def flops_per_example(cfg: EmbeddingHeads.Config, outputs_per_category: int = 1) -> int:
    """Forward multiply-adds x 2 of the 40 heads (the embedding itself not counted)."""
    sizes = (cfg.embed_dim, *cfg.hidden, outputs_per_category)
    return 2 * taxonomy.NUM_CATEGORIES * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

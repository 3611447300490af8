"""``embedding_heads``: EmoNet's Empathic Insight design, 40 independent MLP heads.

The published models put one small MLP per emotion (1152 -> 128 -> 32 -> 1, ReLU, dropout
0.1) on a frozen embedding (SigLIP2 for faces), built as a list of 40 modules. Here the 40
heads are one batched computation: each layer's weights are stacked ``[40, in, out]`` and
applied to all heads at once: the same function as 40 separate MLPs, without a Python loop.

Layout, for speed on CPU (``python -m experiments.bench estimator`` measures it): the first
layer, which holds 97% of the FLOPs and of the parameters, is computed head by head
(:func:`shared_input_matmul`: a ``scan`` of ``x @ w[h]`` over the 40 contiguous
``[in, out]`` slices) and its weight gradient likewise (``x^T @ g[h]``), so neither the
``[40, 1152, 128]`` kernel nor its gradient is ever transposed; a single ``einsum`` over
``[40, in, out]`` made XLA transpose both (23.6 MB each) every step, and the training step
ran 1.8x (batch 256) to 2.5x (batch 32) slower on one core. Activations stay head-major ``[40, B, e]`` through the small layers;
dropout masks are drawn in the ``[B, 40, e]`` shape as before, so the random stream is the
one the einsum version used.

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
        """Defaults follow Empathic Insight Face: 1152 -> 128 -> 32 -> k per emotion."""

        input: str = "tokens"  # "tokens" (world embedding) or "embedding" (precomputed)
        embed_dim: int = 1152
        hidden: tuple[int, ...] = (128, 32)
        dropout: float = 0.1

        def __post_init__(self):
            config.require(self, "input", lambda v: v in ("tokens", "embedding"), "'tokens' or 'embedding'")
            config.require(self, "embed_dim", lambda v: isinstance(v, int) and v >= 1, "an int >= 1")
            config.require(self, "hidden", lambda v: len(v) >= 1 and min(v) >= 1, "a non-empty tuple of sizes >= 1")
            config.require(self, "dropout", lambda v: 0.0 <= v < 1.0, "in [0, 1)")

    def __init__(self, cfg: Config, outputs_per_category: int, *, rngs: nnx.Rngs):
        self.cfg = cfg
        sizes = (cfg.embed_dim, *cfg.hidden, outputs_per_category)
        heads = taxonomy.NUM_CATEGORIES
        init = nnx.initializers.lecun_normal(in_axis=1, out_axis=2, batch_axis=(0,))
        self.kernels = nnx.List([nnx.Param(init(rngs.params(), (heads, a, b))) for a, b in zip(sizes[:-1], sizes[1:])])
        self.biases = nnx.List([nnx.Param(jnp.zeros((heads, b))) for b in sizes[1:]])
        self.drop = nnx.Dropout(cfg.dropout, rngs=rngs)

    def embed(self, inputs: jax.Array, mask: jax.Array | None) -> jax.Array:
        if self.cfg.input == "tokens":
            return world_embedding(inputs, mask, self.cfg.embed_dim)
        return inputs.astype(jnp.float32)

    def __call__(self, inputs: jax.Array, mask: jax.Array | None = None, *, deterministic: bool = True) -> jax.Array:
        """inputs [B, T] tokens (or [B, D] embeddings) -> raw outputs [B, 40, k]."""
        x = self.embed(inputs, mask)
        # Head-major [40, B, e] throughout; the same function as
        # h = einsum("bd,hde->bhe", x, w0) + b0; h = einsum("bhd,hde->bhe", drop(relu(h)), w) + b.
        h = shared_input_matmul(x, self.kernels[0][...]) + self.biases[0][...][:, None, :]
        for w, b in zip(list(self.kernels)[1:], list(self.biases)[1:]):
            h = jax.nn.relu(h)
            h = jnp.swapaxes(self.drop(jnp.swapaxes(h, 0, 1), deterministic=deterministic), 0, 1)  # masks drawn [B, 40, e]
            h = jnp.einsum("hbd,hde->hbe", h, w[...]) + b[...][:, None, :]
        return jnp.swapaxes(h, 0, 1)


@jax.custom_jvp
def shared_input_matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    """``[B, D] x [H, D, E] -> [H, B, E]``: ``x @ w[h]`` for every head, one GEMM per head.

    The same as ``einsum("bd,hde->hbe", x, w)``, computed without transposing ``w``: a scan
    over its leading axis reads each head's ``[D, E]`` slice in place. The custom JVP makes
    the weight gradient (the transpose of the tangent map) ``x^T @ g[h]`` per head, written
    straight into ``[H, D, E]``; plain autodiff would contract ``x`` over its leading axis,
    which XLA's CPU backend runs at about two thirds of the speed.
    """
    return jax.lax.scan(lambda carry, wh: (carry, x @ wh), None, w)[1]


@shared_input_matmul.defjvp
def _shared_input_matmul_jvp(primals, tangents):
    x, w = primals
    dx, dw = tangents
    xt = x.T  # [D, B], materialised once; each head's weight tangent is xt^T @ dw[h]
    contract_d = (((0,), (0,)), ((), ()))
    t_w = jax.lax.scan(lambda carry, dwh: (carry, jax.lax.dot_general(xt, dwh, contract_d)), None, dw)[1]
    t_x = jnp.einsum("bd,hde->hbe", dx, w)
    return shared_input_matmul(x, w), t_w + t_x


def flops_per_example(cfg: EmbeddingHeads.Config, outputs_per_category: int = 1) -> int:
    """Forward multiply-adds x 2 of the 40 heads (the embedding itself not counted)."""
    sizes = (cfg.embed_dim, *cfg.hidden, outputs_per_category)
    return 2 * taxonomy.NUM_CATEGORIES * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

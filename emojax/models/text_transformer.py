"""``text_transformer``: a token encoder with a masked-mean pooled representation.

Pre-LayerNorm transformer blocks over learned token and position embeddings; the pooled
vector feeds a small MLP that emits ``[batch, 40, outputs]`` raw outputs for the chosen head.
Context matters in the world's language ("i am not hopeful", "oh great i am so
victorious", "my friend was furious"), which a bag of words cannot read and attention can.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from emojax import config, taxonomy
from emojax.models import registry
from emojax.world import vocab


class Block(nnx.Module):
    def __init__(self, d: int, heads: int, mlp: int, dropout: float, *, rngs: nnx.Rngs):
        self.norm1 = nnx.LayerNorm(d, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(heads, d, dropout_rate=dropout, decode=False, rngs=rngs)
        self.norm2 = nnx.LayerNorm(d, rngs=rngs)
        self.up = nnx.Linear(d, mlp, rngs=rngs)
        self.down = nnx.Linear(mlp, d, rngs=rngs)
        self.drop = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x, attn_mask, *, deterministic: bool):
        x = x + self.drop(self.attn(self.norm1(x), mask=attn_mask, deterministic=deterministic), deterministic=deterministic)
        h = self.down(jax.nn.gelu(self.up(self.norm2(x))))
        return x + self.drop(h, deterministic=deterministic)


@registry.register_architecture("text_transformer")
class TextTransformer(nnx.Module):
    @dataclasses.dataclass(frozen=True)
    class Config:
        """Sizes of the encoder (defaults: a small model that trains on 2 CPU cores)."""

        vocab_size: int = vocab.VOCAB_SIZE
        max_len: int = 64
        d_model: int = 128
        num_layers: int = 2
        num_heads: int = 4
        mlp_dim: int = 256
        hidden: int = 128
        dropout: float = 0.1

        def __post_init__(self):
            for name in ("vocab_size", "max_len", "d_model", "num_layers", "num_heads", "mlp_dim", "hidden"):
                config.int_at_least(self, 1, name)
            config.require(self, "d_model", lambda v: v % self.num_heads == 0, f"divisible by num_heads={self.num_heads}")
            config.require(self, "dropout", lambda v: 0.0 <= v < 1.0, "in [0, 1)")

    def __init__(self, cfg: Config, outputs_per_category: int, *, rngs: nnx.Rngs):
        self.cfg = cfg
        self.outputs = outputs_per_category
        self.embed = nnx.Embed(cfg.vocab_size, cfg.d_model, rngs=rngs)
        self.pos = nnx.Param(0.02 * jax.random.normal(rngs.params(), (cfg.max_len, cfg.d_model)))
        self.blocks = nnx.List([Block(cfg.d_model, cfg.num_heads, cfg.mlp_dim, cfg.dropout, rngs=rngs) for _ in range(cfg.num_layers)])
        self.norm = nnx.LayerNorm(cfg.d_model, rngs=rngs)
        self.hidden = nnx.Linear(cfg.d_model, cfg.hidden, rngs=rngs)
        self.out = nnx.Linear(cfg.hidden, taxonomy.NUM_CATEGORIES * outputs_per_category, rngs=rngs)

    def __call__(self, tokens: jax.Array, mask: jax.Array, *, deterministic: bool = True) -> jax.Array:
        """tokens, mask [B, T] -> raw outputs [B, 40, outputs]."""
        t = tokens.shape[-1]
        x = self.embed(tokens) + self.pos[...][None, :t, :]
        attn_mask = nnx.make_attention_mask(mask, mask)
        for block in self.blocks:
            x = block(x, attn_mask, deterministic=deterministic)
        x = self.norm(x)
        w = mask.astype(x.dtype)[..., None]
        pooled = jnp.sum(x * w, axis=-2) / jnp.maximum(jnp.sum(w, axis=-2), 1.0)
        raw = self.out(jax.nn.gelu(self.hidden(pooled)))
        return raw.reshape(raw.shape[:-1] + (taxonomy.NUM_CATEGORIES, self.outputs))

"""``hf_encoder``: an emotion estimator whose encoder is a loaded Hugging Face checkpoint.

Why: "extending estimator architectures" has to reach real language models. This is the
registered architecture (:mod:`emojax.models.registry`) that does: the decoder of a local
Llama / Qwen2 / Qwen3 folder (:func:`emojax.hf.load`) reads the text, its final hidden
states are pooled over the text's tokens (``pooling``: their mean, or the last one, the
state that has read the whole text under causal attention), and a small MLP emits the
40 categories' raw outputs for whichever head the trainer chose. The existing trainer,
heads, rater link, checkpoints and ``eval.json`` are unchanged; the data are the real
datasets' token ids, made with the checkpoint's own ``tokenizer.json``
(``--set 'data_config={"tokenizer": "PATH/tokenizer.json"}'``). The launcher takes it as
``--model emojax.hf.estimator:HFEncoder`` (the name ``hf_encoder`` is registered once
:mod:`emojax.hf` is imported; the estimator layer does not import the ``hf`` layer above it).

What trains (``train``): ``frozen`` (the head only; the encoder's weights are not in the
optimizer), ``lora`` (rank-``lora_rank`` adapters on the encoder's projections,
:class:`emojax.rl.policy.LoRALinear`, and the head) or ``full``. The trainer asks the model
for its :attr:`HFEncoder.trainable` filter.

The dataset shifts every id up by its ``token_id_offset`` when the tokenizer's id 0 is not
a padding token; :func:`emojax.train.real.resolve` copies that offset here and the encoder
subtracts it, so the checkpoint sees its own ids.

Example::

    python -m experiments.train_estimator --preset tiny --workdir DIR --data goemotions_raw \\
        --manual-dir ~/data/goemotions --model emojax.hf.estimator:HFEncoder \\
        --set 'data_config={"tokenizer": "~/models/Qwen2.5-0.5B/tokenizer.json"}' \\
        --set 'model_config={"checkpoint": "~/models/Qwen2.5-0.5B", "train": "lora"}'
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
from flax import nnx

from emojax import config, taxonomy
from emojax.hf import checkpoint
from emojax.models import registry
from emojax.rl import lora, policy

__all__ = ["HFEncoder"]

TRAIN = ("frozen", "lora", "full")
POOLING = ("mean", "last")


@registry.register_architecture("hf_encoder")
class HFEncoder(nnx.Module):
    @dataclasses.dataclass(frozen=True)
    class Config:
        """The encoder and what trains.

        Attributes:
          checkpoint: the local Hugging Face folder (``config.json`` and safetensors).
          dtype: the encoder's compute dtype, ``float32`` or ``bfloat16`` (parameters stay
            float32).
          train: ``frozen``, ``lora`` or ``full`` (see the module docstring).
          lora_rank, lora_alpha: the adapters' rank and scale numerator (``train="lora"``).
          pooling: ``mean`` over the text's tokens, or the ``last`` one.
          hidden: the head MLP's width.
          dropout: on the pooled vector, in training.
          token_id_offset: subtracted from every real id (the dataset's; filled in by
            :func:`emojax.train.real.resolve`).
          vocab_size: ids the dataset uses, with the offset (filled in the same way; 0:
            unchecked); more than the checkpoint has is an error.
        """

        checkpoint: str = ""
        dtype: str = "float32"
        train: str = "frozen"
        lora_rank: int = 8
        lora_alpha: float = 16.0
        pooling: str = "mean"
        hidden: int = 256
        dropout: float = 0.1
        token_id_offset: int = 0
        vocab_size: int = 0

        def __post_init__(self):
            config.require(self, "checkpoint", lambda v: bool(v), "the folder of a Hugging Face checkpoint")
            config.require(self, "dtype", lambda v: v in policy.DTYPES, f"one of {policy.DTYPES}")
            config.require(self, "train", lambda v: v in TRAIN, f"one of {TRAIN}")
            config.require(self, "pooling", lambda v: v in POOLING, f"one of {POOLING}")
            config.int_at_least(self, 1, "lora_rank", "hidden")
            config.int_at_least(self, 0, "token_id_offset", "vocab_size")
            config.positive(self, "lora_alpha")
            config.require(self, "dropout", lambda v: 0.0 <= v < 1.0, "in [0, 1)")

    def __init__(self, cfg: Config, outputs_per_category: int, *, rngs: nnx.Rngs):
        self.cfg = cfg
        self.outputs = outputs_per_category
        loaded = checkpoint.load(os.path.expanduser(cfg.checkpoint), dtype=cfg.dtype)
        pcfg, state = loaded.config, loaded.state
        if cfg.vocab_size - cfg.token_id_offset > pcfg.vocab_size:
            raise ValueError(f"{cfg.checkpoint}: the encoder has {pcfg.vocab_size} token ids, the data use up to "
                             f"{cfg.vocab_size - cfg.token_id_offset} (model_config.vocab_size - token_id_offset): "
                             "build the dataset with this checkpoint's tokenizer.json")  # fmt: skip
        if cfg.train == "lora":
            pcfg = dataclasses.replace(pcfg, lora_rank=cfg.lora_rank, lora_alpha=cfg.lora_alpha)
            state = lora.attach(pcfg, state, rngs.params())
        self.encoder = nnx.merge(policy.graphdef_of(pcfg), state)
        self.drop = nnx.Dropout(cfg.dropout, rngs=rngs)
        self.hidden = nnx.Linear(pcfg.d_model, cfg.hidden, rngs=rngs)
        self.out = nnx.Linear(cfg.hidden, taxonomy.NUM_CATEGORIES * outputs_per_category, rngs=rngs)

    @property
    def trainable(self) -> nnx.filterlib.Filter:
        """What the trainer's optimizer updates (see the module docstring)."""
        head = nnx.All(nnx.Param, nnx.Not(nnx.PathContains("encoder")))
        if self.cfg.train == "frozen":
            return head
        if self.cfg.train == "lora":
            return nnx.Any(nnx.LoRAParam, head)
        return nnx.Param

    def __call__(self, tokens: jax.Array, mask: jax.Array, *, deterministic: bool = True) -> jax.Array:
        """tokens, mask [B, T] -> raw outputs [B, 40, outputs]."""
        mask = mask.astype(bool)
        b, t = tokens.shape
        ids = jnp.where(mask, tokens - self.cfg.token_id_offset, 0)
        hidden, _ = self.encoder.hidden(ids, policy.positions_from_mask(mask), mask)
        hidden = hidden.reshape(b, t, -1).astype(jnp.float32)
        if self.cfg.train == "frozen":
            hidden = jax.lax.stop_gradient(hidden)  # no backward pass through a frozen encoder
        if self.cfg.pooling == "mean":
            w = mask.astype(jnp.float32)[..., None]
            pooled = jnp.sum(hidden * w, axis=1) / jnp.maximum(jnp.sum(w, axis=1), 1.0)
        else:
            last = t - 1 - jnp.argmax(mask[:, ::-1], axis=1)
            pooled = hidden[jnp.arange(b), last]
        pooled = self.drop(pooled, deterministic=deterministic)
        raw = self.out(jax.nn.gelu(self.hidden(pooled)))
        return raw.reshape(b, taxonomy.NUM_CATEGORIES, self.outputs)

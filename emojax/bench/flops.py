"""FLOPs of the estimators' training steps, counted by hand: matmuls only, 2 per multiply-add.

* forward of a dense layer ``[in] -> [out]``: ``2 * in * out`` per example (and per token);
* training: 3 x forward (the forward, the gradient w.r.t. the layer's input and the gradient
  w.r.t. its weights), the usual rule, called ``train`` here;
* not counted: embedding lookups, bias adds, activations, LayerNorm, softmax, dropout, the
  loss, gradient norms and the optimizer update (elementwise or memory-bound).

The 3x rule over-counts where a layer's input is data: no framework computes the gradient
w.r.t. an input that is not trained. The embedding heads' first layer (1152 x 128, 97% of
their FLOPs) reads the frozen embedding, so a step *needs* 2x that layer plus 3x the rest,
about 2.03x forward (``needed``); XLA's cost analysis of the gradient agrees (tested). The
transformer's first layers read a trained token embedding, so 3x is what it needs.
"""

from __future__ import annotations

from emojax import taxonomy
from emojax.models import embedding_heads as eh
from emojax.models.text_transformer import TextTransformer


def embedding_heads_flops(cfg: eh.EmbeddingHeads.Config, outputs_per_category: int = 1) -> dict:
    """Per-example FLOPs of the 40 heads: ``forward``, ``train`` (3x) and ``needed``."""
    forward = eh.flops_per_example(cfg, outputs_per_category)
    first_layer = 2 * taxonomy.NUM_CATEGORIES * cfg.embed_dim * cfg.hidden[0]
    return {"forward": forward, "train": 3 * forward, "needed": 3 * forward - first_layer}


def text_transformer_forward_flops(cfg: TextTransformer.Config, outputs_per_category: int = 1, seq_len: int | None = None) -> int:
    """Forward FLOPs per example of :class:`TextTransformer` over ``seq_len`` tokens.

    Per block and token: the Q, K, V and output projections ``4 * 2 d^2``; the attention
    scores ``Q K^T`` and the weighted sum ``A V``, ``2 * 2 T d`` (all heads together); the
    MLP ``2 * 2 d m``. After pooling, once per example: ``2 d h`` (hidden) and ``2 h 40 o``
    (output, o = ``outputs_per_category``).
    """
    t = cfg.max_len if seq_len is None else seq_len
    d, m = cfg.d_model, cfg.mlp_dim
    per_token = 4 * 2 * d * d + 2 * 2 * t * d + 2 * 2 * d * m
    head = 2 * d * cfg.hidden + 2 * cfg.hidden * taxonomy.NUM_CATEGORIES * outputs_per_category
    return cfg.num_layers * t * per_token + head


def policy_forward_flops(cfg, *, rows: int, attention_pairs: int, logit_rows: int) -> int:
    """Forward FLOPs of the GRPO policy (:class:`emojax.rl.policy.PolicyConfig`), by hand.

    Args:
      rows: token rows that go through the layers.
      attention_pairs: (query, key) pairs whose score is computed, per head (masked pairs
        that are computed count: XLA computes the whole rectangle).
      logit_rows: rows that go through the output projection.

    Per layer and row: the q, k, v and output projections ``2 D (H + 2 KV + H) hd`` and the
    SwiGLU MLP ``3 * 2 D F``; per layer and pair: the score and the weighted sum, ``2 * 2 hd``
    per query head; per logit row: ``2 D V``. Not counted: embedding lookups, norms,
    rotary, softmax, biases, the loss, the optimizer.
    """
    d, f, hd = cfg.d_model, cfg.mlp_dim, cfg.head_size
    proj = 2 * d * (2 * cfg.num_heads + 2 * cfg.num_kv_heads) * hd
    dense = cfg.num_layers * rows * (proj + 3 * 2 * d * f)
    attention = cfg.num_layers * attention_pairs * cfg.num_heads * 2 * 2 * hd
    return dense + attention + logit_rows * 2 * d * cfg.vocab_size


def grpo_update_flops(cfg, *, num_prompts: int, group_size: int, prompt_len: int, new_tokens: int,
                      share_prompt: bool = True) -> dict:
    """FLOPs of one GRPO update (mu = 1, beta = 0: one forward and one backward pass) on
    ``num_prompts x group_size`` completions of ``new_tokens`` after ``prompt_len`` tokens.

    ``share_prompt`` counts what emojax computes with :attr:`GRPOConfig.share_prompt`: each
    prompt once (``n P`` rows; prompts attend to themselves, completions to their prompt and
    themselves); otherwise every row is ``P + N`` tokens long (what TRL computes). Logits are
    computed for the ``N`` scored slots of each completion. ``train`` is 3 x forward: the
    weight gradients and the input gradients (the first layer's input is the trained token
    embedding, so every input gradient is needed).

    Returns ``{"forward", "train", "rows", "attention_pairs"}``.
    """
    n, g, p, t = num_prompts, group_size, prompt_len, new_tokens
    b = n * g
    if share_prompt:
        rows, pairs = n * p + b * t, n * p * p + b * t * (p + t)
    else:
        rows, pairs = b * (p + t), b * (p + t) ** 2
    forward = policy_forward_flops(cfg, rows=rows, attention_pairs=pairs, logit_rows=b * t)
    return {"forward": forward, "train": 3 * forward, "rows": rows, "attention_pairs": pairs}


def grpo_step_flops(cfg, *, num_prompts: int, group_size: int, prompt_len: int, new_tokens: int) -> dict:
    """Model FLOPs of one whole GRPO step with shared prompts: the rollout (each prompt
    prefilled once, then ``new_tokens`` decode steps of every completion over the whole
    cache, as the sampler computes them) plus the update (:func:`grpo_update_flops`). The
    rollout's rows, pairs and logits are the update's forward, so the step is 4 forwards.

    Returns ``{"rollout", "update", "step"}``.
    """
    update = grpo_update_flops(cfg, num_prompts=num_prompts, group_size=group_size, prompt_len=prompt_len,
                               new_tokens=new_tokens)
    return {"rollout": update["forward"], "update": update["train"], "step": update["forward"] + update["train"]}

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
    MLP ``2 * 2 d m``. After pooling, once per example: ``2 d h`` (hidden) and ``2 h 40 k``
    (output).
    """
    t = cfg.max_len if seq_len is None else seq_len
    d, m = cfg.d_model, cfg.mlp_dim
    per_token = 4 * 2 * d * d + 2 * 2 * t * d + 2 * 2 * d * m
    head = 2 * d * cfg.hidden + 2 * cfg.hidden * taxonomy.NUM_CATEGORIES * outputs_per_category
    return cfg.num_layers * t * per_token + head

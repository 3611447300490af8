"""The PyTorch peer of the embedding heads, built as the published Empathic Insight models are.

An ``nn.ModuleList`` of 40 separate ``nn.Sequential(Linear(1152, 128), ReLU, Dropout(0.1),
Linear(128, 32), ReLU, Dropout(0.1), Linear(32, 1))`` heads, looped in ``forward``; the same
loss as emojax's regression head (MSE of ``7 * sigmoid(out)`` against the target) and
``torch.optim.AdamW`` with its defaults (lr 1e-3, weight decay 0.01 as in emojax), on one
thread. torch is optional (the ``bench`` extra); it is imported only here.
"""

from __future__ import annotations

import math

from emojax import taxonomy
from emojax.bench import flops, timing
from emojax.models.embedding_heads import EmbeddingHeads


def build(cfg: EmbeddingHeads.Config):
    """The torch module: ``[B, embed_dim] -> [B, 40]``."""
    from torch import cat, nn

    sizes = (cfg.embed_dim, *cfg.hidden, 1)

    def one_head() -> nn.Sequential:
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers += [nn.ReLU(), nn.Dropout(cfg.dropout)]
        return nn.Sequential(*layers)

    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleList([one_head() for _ in range(taxonomy.NUM_CATEGORIES)])

        def forward(self, x):
            return cat([head(x) for head in self.heads], dim=1)

    return Heads()


def bench_torch_embedding_heads(
    batch_size: int, cfg: EmbeddingHeads.Config, *, peak: float, min_time: float, min_steps: int, seed: int = 0, num_batches: int = 4
) -> dict:
    """Time a training step (zero_grad, forward, loss, backward, AdamW step) of the peer."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = build(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    top = taxonomy.MAX_INTENSITY
    batches = [
        (torch.randn(batch_size, cfg.embed_dim, generator=g), top * torch.rand(batch_size, taxonomy.NUM_CATEGORIES, generator=g))
        for _ in range(num_batches)
    ]
    box = {"i": 0, "loss": float("nan")}

    def run():
        x, y = batches[box["i"] % num_batches]
        opt.zero_grad(set_to_none=True)
        loss = torch.mean(torch.square(top * torch.sigmoid(model(x)) - y))
        loss.backward()
        opt.step()
        box["loss"], box["i"] = loss.item(), box["i"] + 1

    t = timing.time_steps(run, min_time=min_time, min_steps=min_steps)
    if not math.isfinite(box["loss"]):
        raise FloatingPointError(f"torch_embedding_heads_b{batch_size}: non-finite loss")
    out = timing.summarize(t, batch_size, flops.embedding_heads_flops(cfg, 1), peak)
    out["config"] = {
        "model": "torch nn.ModuleList of 40 nn.Sequential heads",
        "model_config": _jsonable(cfg),
        "optimizer": "torch.optim.AdamW(lr=1e-3, weight_decay=0.01), otherwise defaults",
    }
    out["params"] = int(sum(p.numel() for p in model.parameters()))
    out["torch_num_threads"] = torch.get_num_threads()
    return out


def _jsonable(cfg: EmbeddingHeads.Config) -> dict:
    return {"input": cfg.input, "embed_dim": cfg.embed_dim, "hidden": list(cfg.hidden), "dropout": cfg.dropout}

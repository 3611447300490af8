"""The estimator's data: datasets built on demand, batches by step, and training targets.

Batches come from :func:`emojax.data.batches`, a grain ``MapDataset`` whose element ``i``
is a pure function of ``i`` and the seed. So the data iterator's state *is* the step: a
resumed run asks for batch ``step`` and sees exactly what the uninterrupted run saw.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from emojax import data as data_lib
from emojax.train.config import TrainConfig


def data_dir(cfg: TrainConfig) -> str:
    return cfg.data_dir or os.environ.get("EMOJAX_DATA_DIR") or os.path.expanduser("~/.cache/emojax/datasets")


def sources(cfg: TrainConfig):
    """(train, test) random-access sources of ``cfg.data``, building it first if needed."""
    if cfg.data not in data_lib.EmojaxSynthetic.builder_configs:
        names = sorted(data_lib.EmojaxSynthetic.builder_configs)
        raise ValueError(f"--data {cfg.data!r}: unknown dataset; expected one of {names}")
    root = data_dir(cfg)
    data_lib.build(cfg.data, root)
    split = f"train[:{cfg.max_train_examples}]" if cfg.max_train_examples else "train"
    train = data_lib.load(cfg.data, root, split)
    if cfg.max_train_examples and len(train) < cfg.max_train_examples:
        raise ValueError(f"max_train_examples={cfg.max_train_examples} but {cfg.data} has {len(train)} training items")
    return train, data_lib.load(cfg.data, root, "test")


def train_batches(cfg: TrainConfig, source):
    """Index ``[step]`` for the training batch of that step (repeats forever)."""
    return data_lib.batches(source, batch_size=cfg.batch_size, seed=cfg.seed, num_epochs=None)


def as_arrays(batch: dict) -> dict:
    """The numeric fields a step needs, as numpy arrays."""
    return {k: np.asarray(batch[k]) for k in ("tokens", "ratings", "intensities")}


def read_all(source, batch_size: int = 512, limit: int | None = None) -> dict:
    """A whole (evaluation) split in memory, in source order (its first ``limit`` items)."""
    ds = data_lib.batches(source, batch_size=batch_size, seed=0, shuffle=False, drop_remainder=False)
    n = len(source) if limit is None else min(limit, len(source))
    parts = [as_arrays(ds[i]) for i in range(-(-n // batch_size))]
    return {k: np.concatenate([p[k] for p in parts])[:n] for k in parts[0]}


def targets(batch: dict, target: str) -> tuple[jax.Array, jax.Array]:
    """(tokens, targets [n, 40]) for the target mode; ``per_rater`` gives K rows per item."""
    tokens, ratings = batch["tokens"], batch["ratings"].astype(jnp.float32)
    if target == "mean":
        return tokens, jnp.mean(ratings, axis=1)
    if target == "per_rater":
        k = ratings.shape[1]
        return jnp.repeat(tokens, k, axis=0), ratings.reshape(-1, ratings.shape[-1])
    rater = int(target.split(":")[1])
    if rater >= ratings.shape[1]:
        raise ValueError(f"target {target!r}: the data has only {ratings.shape[1]} raters")
    return tokens, ratings[:, rater]

"""The estimator's data: datasets built on demand, batches by step, and training targets.

Batches come from :func:`emojax.data.batches`, a grain ``MapDataset`` whose element ``i``
is a pure function of ``i`` and the seed. So the data iterator's state *is* the step: a
resumed run asks for batch ``step`` and sees exactly what the uninterrupted run saw.
"""

from __future__ import annotations

import dataclasses
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
    if cfg.data in data_lib.REAL_DATASETS:
        built = real_dataset(cfg)
        train = built.source(f"train[:{cfg.max_train_examples}]" if cfg.max_train_examples else "train")
        _check_size(cfg, train)
        return train, built.source("test")
    synthetic = synthetic_config(cfg)
    root = data_dir(cfg)
    data_lib.build(synthetic, root)
    split = f"train[:{cfg.max_train_examples}]" if cfg.max_train_examples else "train"
    train = data_lib.load(synthetic, root, split)
    _check_size(cfg, train)
    return train, data_lib.load(synthetic, root, "test")


def synthetic_config(cfg: TrainConfig) -> data_lib.SyntheticConfig:
    """The simulated dataset ``cfg`` names: the named config ``cfg.data`` with the fields in
    ``cfg.data_config`` replaced (e.g. ``{"negation_rate": 0.6}``).

    Why overrides rather than only named configs: sweeps over the world's knobs (the
    context-gap sweep, :mod:`emojax.studies.context_gap`) need datasets no one named. A
    changed config gets a name of its own (so a folder of its own); one whose parameters
    equal a named config's *is* that config, so the same data are never built twice.
    """
    configs = data_lib.EmojaxSynthetic.builder_configs
    if cfg.data not in configs:
        names = sorted(configs) + sorted(data_lib.REAL_DATASETS)
        raise ValueError(f"--data {cfg.data!r}: unknown dataset; expected one of {names}")
    base, params = configs[cfg.data], configs[cfg.data].params()
    unknown = sorted(set(cfg.data_config) - set(params))
    if unknown:
        raise ValueError(f"data_config: {unknown} are not fields of the simulated dataset {cfg.data!r}; expected some of {sorted(params)}")
    changed = {name: v for name, v in sorted(cfg.data_config.items()) if v != params[name]}
    if not changed:
        return base
    suffix = "-".join(f"{name}{v}" for name, v in changed.items())
    custom = dataclasses.replace(base, name=f"{base.name}-{suffix}", description=f"{base.description} Changed: {changed}.", **changed)
    same = [c for c in configs.values() if c.params() == custom.params()]
    return same[0] if same else custom


def canonical(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with a simulated dataset named by its named config where overrides make one
    (``default`` with both rates 0 is ``plain``), so equal runs have equal configs."""
    if is_real(cfg) or not cfg.data_config:
        return cfg
    synthetic = synthetic_config(cfg)
    if synthetic.name in data_lib.EmojaxSynthetic.builder_configs:
        return dataclasses.replace(cfg, data=synthetic.name, data_config={})
    return cfg


def _check_size(cfg: TrainConfig, train) -> None:
    if cfg.max_train_examples and len(train) < cfg.max_train_examples:
        raise ValueError(f"max_train_examples={cfg.max_train_examples} but {cfg.data} has {len(train)} training items")


def is_real(cfg: TrainConfig) -> bool:
    """Whether ``cfg.data`` names a dataset built from downloaded files (not simulated)."""
    return cfg.data in data_lib.REAL_DATASETS


def real_dataset(cfg: TrainConfig):
    """The built real dataset of ``cfg`` (``emojax.data.manual.Built``), built from
    ``cfg.manual_dir`` with ``cfg.on_bad_row`` and ``cfg.data_config`` if not built yet."""
    if not cfg.manual_dir:
        raise ValueError(
            f"--data {cfg.data} is built from files you download: pass --manual-dir PATH "
            "(the folder holding them; docs/datasets.md says which files and where to get them)"
        )
    module = data_lib.REAL_DATASETS[cfg.data]
    return module.build(cfg.manual_dir, data_dir(cfg), on_bad_row=cfg.on_bad_row, **cfg.data_config)


def train_batches(cfg: TrainConfig, source):
    """Index ``[step]`` for the training batch of that step (repeats forever)."""
    return data_lib.batches(source, batch_size=cfg.batch_size, seed=cfg.seed, num_epochs=None)


# What a step or an evaluation reads; a dataset has some of them (``embedding`` replaces
# ``tokens`` for precomputed inputs; ``num_raters`` marks ratings padded with MISSING).
FIELDS = ("tokens", "embedding", "ratings", "intensities", "num_raters", "model_ratings")
MISSING = -1  # a rater slot (or a category) with no rating


def as_arrays(batch: dict) -> dict:
    """The numeric fields a step needs, as numpy arrays."""
    return {name: np.asarray(batch[name]) for name in FIELDS if name in batch}


def read_all(source, batch_size: int = 512, limit: int | None = None) -> dict:
    """A whole (evaluation) split in memory, in source order (its first ``limit`` items)."""
    ds = data_lib.batches(source, batch_size=batch_size, seed=0, shuffle=False, drop_remainder=False)
    n = len(source) if limit is None else min(limit, len(source))
    parts = [as_arrays(ds[i]) for i in range(-(-n // batch_size))]
    return {name: np.concatenate([p[name] for p in parts])[:n] for name in parts[0]}


def model_inputs(batch: dict):
    """What the model reads: the precomputed ``embedding`` if the data have one, else ``tokens``."""
    return batch["embedding"] if "embedding" in batch else batch["tokens"]


def targets(batch: dict, target: str) -> tuple[jax.Array, jax.Array]:
    """(inputs, targets [n, 40]) for the target mode; ``per_rater`` gives K rows per item.

    Real datasets pad ``ratings`` with ``MISSING`` (items have different numbers of raters;
    GoEmotions leaves uncovered categories unrated): ``mean`` is then the mean of the raters
    present, and missing entries are 0 in the targets and 0 in :func:`target_mask`.
    """
    tokens, ratings = model_inputs(batch), batch["ratings"]
    if "num_raters" in batch:
        ratings = jnp.where(ratings >= 0, ratings, 0).astype(jnp.float32)
        if target == "mean":
            count = jnp.sum(batch["ratings"] >= 0, axis=1).astype(jnp.float32)
            return tokens, jnp.sum(ratings, axis=1) / jnp.maximum(count, 1.0)
    ratings = ratings.astype(jnp.float32)
    if target == "mean":
        return tokens, jnp.mean(ratings, axis=1)
    if target == "per_rater":
        k = ratings.shape[1]
        return jnp.repeat(tokens, k, axis=0), ratings.reshape(-1, ratings.shape[-1])
    rater = int(target.split(":")[1])
    if rater >= ratings.shape[1]:
        raise ValueError(f"target {target!r}: the data has only {ratings.shape[1]} raters")
    return tokens, ratings[:, rater]


def target_mask(batch: dict, target: str) -> jax.Array:
    """Which targets of :func:`targets` are real: ``[40]`` ones for complete ratings, else
    ``[rows, 40]`` with 0 where no rater rated (a missing rater, an uncovered category)."""
    if "num_raters" not in batch:
        return jnp.ones((batch["ratings"].shape[-1],), jnp.float32)
    present = batch["ratings"] >= 0
    if target == "mean":
        return jnp.any(present, axis=1).astype(jnp.float32)
    if target == "per_rater":
        return present.reshape(-1, present.shape[-1]).astype(jnp.float32)
    return present[:, int(target.split(":")[1])].astype(jnp.float32)

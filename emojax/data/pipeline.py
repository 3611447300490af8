"""Deterministic ``grain`` batches over a random-access data source.

Why ``grain.MapDataset`` over the TFDS source rather than a ``tf.data`` pipeline: it needs
no TensorFlow, and because every step is index-based (element ``i`` of the shuffled,
repeated, batched dataset is a pure function of ``i`` and the seed), a run can be resumed
or replayed exactly, and two runs with the same seed see the same batches.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import grain
import numpy as np

TEXT = "text"


def batches(
    source: Sequence[Mapping[str, Any]],
    *,
    batch_size: int,
    seed: int,
    shuffle: bool = True,
    num_epochs: int | None = 1,
    drop_remainder: bool = True,
    keep_text: bool = False,
) -> grain.MapDataset:
    """Batches of examples as dicts of numpy arrays with a leading batch axis.

    Shuffling happens before repeating, so each epoch is a permutation of the whole
    source (grain reseeds every epoch: the epochs differ, but deterministically), and a
    batch may straddle two epochs.

    Args:
      source: anything with ``len`` and ``[i]`` returning a dict, e.g. :func:`emojax.data.load`.
      batch_size: examples per batch.
      seed: shuffle seed in [0, 2**32); the same seed gives the same order.
      shuffle: if False, examples come in source order (evaluation).
      num_epochs: passes over the source; None repeats forever.
      drop_remainder: drop a last batch smaller than ``batch_size`` (keeps shapes static,
        so a jitted step does not recompile).
      keep_text: keep the ``text`` feature (a bytes array); dropped by default because
        models read ``tokens``, and bytes cannot go to a device.

    Returns:
      A ``grain.MapDataset``: iterate it for batches, index it, take ``len`` (when finite),
      or call ``.to_iter_dataset()`` for prefetching.
    """
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"batches: batch_size must be an int >= 1, got {batch_size!r}")
    if num_epochs is not None and not (isinstance(num_epochs, int) and num_epochs >= 1):
        raise ValueError(f"batches: num_epochs must be an int >= 1 or None, got {num_epochs!r}")
    if not (isinstance(seed, (int, np.integer)) and 0 <= seed < 2**32):
        raise ValueError(f"batches: seed must be an int in [0, 2**32), got {seed!r}")
    if len(source) == 0:
        raise ValueError("batches: source is empty")

    ds = grain.MapDataset.source(source)
    if shuffle:
        ds = ds.shuffle(seed=int(seed))
    ds = ds.repeat(num_epochs)
    ds = ds.map(functools.partial(_prepare, dtypes=declared_dtypes(source), keep_text=keep_text))
    return ds.batch(batch_size, drop_remainder=drop_remainder)


def declared_dtypes(source: Any) -> dict[str, np.dtype]:
    """Numeric dtypes the source's TFDS features declare ({} for a source without them).

    Needed because TFDS's NumPy decoder returns scalar features as Python ints, which
    would batch as int64 although the dataset declares int32.
    """
    features = getattr(getattr(source, "dataset_info", None), "features", None)
    if features is None:
        return {}
    out = {}
    for name, dtype in features.np_dtype.items():
        dtype = np.dtype(dtype)
        if dtype.kind in "biuf":
            out[name] = dtype
    return out


def _prepare(example: Mapping[str, Any], *, dtypes: Mapping[str, np.dtype], keep_text: bool) -> dict[str, Any]:
    return {
        name: np.asarray(v, dtype=dtypes.get(name)) if name in dtypes else v
        for name, v in example.items()
        if keep_text or name != TEXT
    }

"""Datasets and input pipelines.

* :mod:`~emojax.data.synthetic`: ``emojax_synthetic``, the simulated world's rated items
  as a TFDS (``array_record``) dataset, with atomic :func:`build` and :func:`load`;
* :mod:`~emojax.data.pipeline`: deterministic ``grain`` batches over a data source.
"""

from emojax.data.pipeline import batches
from emojax.data.synthetic import (
    CHUNK_SIZE,
    DEFAULT,
    HIGH_BLEND,
    PLAIN,
    LOW_BLEND,
    NAME,
    SMALL,
    EmojaxSynthetic,
    SyntheticConfig,
    build,
    load,
)

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT",
    "HIGH_BLEND",
    "PLAIN",
    "LOW_BLEND",
    "NAME",
    "SMALL",
    "EmojaxSynthetic",
    "SyntheticConfig",
    "batches",
    "build",
    "load",
]

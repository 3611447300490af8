"""Datasets and input pipelines.

* :mod:`~emojax.data.synthetic`: ``emojax_synthetic``, the simulated world's rated items
  as a TFDS (``array_record``) dataset, with atomic :func:`build` and :func:`load`;
* :mod:`~emojax.data.pipeline`: deterministic ``grain`` batches over a data source;
* :mod:`~emojax.data.emonet_face_hq`, :mod:`~emojax.data.goemotions_raw`: real datasets built
  from files the user downloaded (a manual directory), listed in :data:`REAL_DATASETS`;
  bad rows raise :class:`BadRowError` (:mod:`~emojax.data.errors`).
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
from emojax.data.errors import BadRowError
from emojax.data import emonet_face_hq, goemotions_raw  # noqa: E402  (after synthetic: they import it)

# name -> module with build(manual_dir, data_dir, *, on_bad_row, **options) -> manual.Built
REAL_DATASETS = {emonet_face_hq.NAME: emonet_face_hq, goemotions_raw.NAME: goemotions_raw}

__all__ = [
    "REAL_DATASETS",
    "BadRowError",
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

"""JAX's persistent compilation cache, safe for several processes at once.

JAX writes a cache entry with a plain ``write_bytes`` and reads it without a lock unless the
cache has a size limit. Two processes that share a directory (pytest's workers, a study run
beside the test suite) can then read an entry the other is still writing, and deserialising a
half-written executable crashes the reader with a segfault (seen twice in CI, 2026-12-04).
With ``jax_compilation_cache_max_size`` set, JAX takes a file lock around every read and
write, so an entry is always read whole. The limit also keeps the cache from growing without
bound.

The default directory is ``~/.cache/emojax/xla`` (``EMOJAX_JAX_CACHE`` overrides it). A
size-limited cache keeps an access-time file beside every entry; entries written without one
(by an unlimited cache) are given one here, so an older directory can be reused.
"""

from __future__ import annotations

import os
import pathlib

DEFAULT_DIR = "~/.cache/emojax/xla"
MAX_BYTES = 8 * 2**30


def directory() -> str:
    """The cache directory: ``EMOJAX_JAX_CACHE`` or :data:`DEFAULT_DIR`, user-expanded."""
    return os.path.expanduser(os.environ.get("EMOJAX_JAX_CACHE", DEFAULT_DIR))


def enable(path: str | None = None, *, min_compile_secs: float = 1.0, max_bytes: int = MAX_BYTES) -> str:
    """Point JAX's persistent cache at ``path`` (default :func:`directory`) with a size limit,
    which turns on JAX's file lock; programs that compiled in under ``min_compile_secs`` are
    not stored. Returns the directory."""
    import jax

    path = path or directory()
    _stamp_unstamped(pathlib.Path(path))
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_compilation_cache_max_size", int(max_bytes))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_secs))
    return path


def _stamp_unstamped(path: pathlib.Path) -> None:
    """Give every entry without an access-time file one dated now (JAX's eviction reads it)."""
    if not path.is_dir():
        return
    now = None
    for entry in path.glob("*-cache"):
        stamp = entry.with_name(entry.name.removesuffix("-cache") + "-atime")
        if not stamp.exists():
            if now is None:
                import time

                now = time.time_ns().to_bytes(8, "little")
            stamp.write_bytes(now)

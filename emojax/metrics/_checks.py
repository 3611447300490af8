"""Value checks shared by the public metric wrappers.

Each check looks at concrete (non-traced) arrays on the host and raises a
``ValueError`` that names the argument, the first offending index and its value.
Under ``jit``/``vmap`` the values are unknown, so the checks are skipped and the
jitted kernels stay free of them.
"""

from __future__ import annotations

import jax
import numpy as np


def is_traced(*xs) -> bool:
    """True if any of ``xs`` is a tracer (values unknown, checks cannot run)."""
    return any(isinstance(x, jax.core.Tracer) for x in xs)


def describe_first(name: str, values: np.ndarray, bad: np.ndarray) -> str:
    """``"name[i, j] = v"`` for the first True of ``bad`` (row-major order)."""
    idx = np.unravel_index(int(np.argmax(bad)), bad.shape)
    where = "[" + ", ".join(str(int(i)) for i in idx) + "]" if idx else ""
    return f"{name}{where} = {values[idx]}"


def count_note(bad: np.ndarray, what: str = "bad") -> str:
    """``"(n bad value(s))"``: how many entries a check rejected."""
    return f"({int(np.count_nonzero(bad))} {what} value(s))"


def check_complete(metric: str, name: str, x, hint: str) -> None:
    """Rejects a concrete ``x`` containing NaN: ``metric`` needs complete data."""
    if is_traced(x):
        return
    v = np.asarray(x)
    if not np.issubdtype(v.dtype, np.inexact):
        return
    bad = np.isnan(v)
    if bad.any():
        raise ValueError(
            f"{metric} needs complete data (no NaN), but {describe_first(name, v, bad)} "
            f"{count_note(bad, 'NaN')}; {hint}"
        )

"""Numbers in printed tables and Markdown summaries: an estimate with its interval, printed
to the precision the interval supports (a mean of 0.0984 with a half-width of 0.014 is
"0.10", not "0.098" and not "0.0984"), so that no study reports digits its seeds cannot
back."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["decimals", "interval", "seed_ci"]

# Two-sided 97.5% quantiles of Student's t, by degrees of freedom.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 19: 2.093, 24: 2.064, 29: 2.045}  # fmt: skip


def seed_ci(values) -> dict[str, float]:
    """Mean and 95% t-interval over seeds of ``values`` ``[S]`` (NaNs dropped)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    m = float(np.mean(v))
    if v.size < 2:
        return {"mean": m, "lo": float("nan"), "hi": float("nan"), "n": int(v.size)}
    df = v.size - 1
    if df < 30:  # the nearest tabulated df at or below: a slightly wider, conservative interval
        t = _T975[max(d for d in _T975 if d <= df)]
    else:
        t = 1.96 + 2.4 / df
    half = float(t * np.std(v, ddof=1) / np.sqrt(v.size))
    return {"mean": m, "lo": m - half, "hi": m + half, "n": int(v.size)}


def decimals(half_width: float) -> int:
    """The decimals an interval of this half-width supports: down to its first significant
    digit (0.014 -> 2, 0.0045 -> 3), between 1 and 4; 3 when the width is unknown."""
    if not half_width > 0:
        return 3
    return int(min(4, max(1, -math.floor(math.log10(half_width)))))


def _missing(x) -> bool:
    return x is None or x != x


def interval(estimate: float | None, low: float | None, high: float | None) -> str:
    """``0.51 [0.48, 0.54]``; the estimate alone (3 decimals) without an interval; ``-``
    without an estimate. ``None`` counts as missing (JSON stores NaN as null)."""
    if _missing(estimate):
        return "-"
    if _missing(low) or _missing(high):
        return f"{estimate:.3f}"
    d = decimals((high - low) / 2)
    return f"{estimate:.{d}f} [{low:.{d}f}, {high:.{d}f}]"

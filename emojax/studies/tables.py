"""Numbers in printed tables and Markdown summaries: an estimate with its interval, printed
to the precision the interval supports (a mean of 0.0984 with a half-width of 0.014 is
"0.10", not "0.098" and not "0.0984"), so that no study reports digits its seeds cannot
back."""

from __future__ import annotations

import math

__all__ = ["decimals", "interval"]


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

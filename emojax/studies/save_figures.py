"""Writing a study's figures: one function for every study's ``save_all``."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import matplotlib.pyplot as plt

__all__ = ["save_figures"]


def save_figures(results: Any, workdir: str, figures: Mapping[str, Callable[[Any], Any]], dpi: int = 120) -> list[str]:
    """Draw each ``figures[file_name](results)``, write it to ``workdir/file_name`` as PNG and
    close it (a long sweep must not keep every figure open); returns the paths in order."""
    paths = []
    for name, draw in figures.items():
        fig = draw(results)
        path = os.path.join(workdir, name)
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        paths.append(path)
    return paths

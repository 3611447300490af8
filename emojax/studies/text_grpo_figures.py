"""The text-GRPO run's figure: the training reward a step, and the held-out score."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from emojax.studies.save_figures import save_figures

__all__ = ["curves_figure", "save_all"]


def curves_figure(results: dict[str, Any]):
    """Left: each step's mean reward (``max(e_T / 100, 0)`` of its conversations) and a
    running mean of 10 steps. Right: the held-out users' mean final ``e`` at each evaluation."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    steps, reward = np.asarray(results["curve"]["step"]), np.asarray(results["curve"]["reward"])
    left.plot(steps, reward, ".", color="0.6", label="a step")
    if len(reward) >= 10:
        left.plot(steps[9:], np.convolve(reward, np.ones(10) / 10, "valid"), color="C0", lw=2, label="mean of 10")
    left.set(xlabel="step", ylabel="training reward", title="training conversations")
    left.legend(fontsize=10)
    evals = {int(k): v for k, v in results["evaluations"].items()}  # JSON keys are strings
    at = sorted(evals)
    right.plot(at, [evals[k]["score"] for k in at], "o-", color="C1")
    right.set(xlabel="step", ylabel="mean final e (0-100)", title="held-out users", ylim=(0, 100))
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return fig


def save_all(results: dict[str, Any], workdir: str) -> list[str]:
    """Write ``curves.png`` into ``workdir``; returns its path in a list."""
    return save_figures(results, workdir, {"curves.png": curves_figure})

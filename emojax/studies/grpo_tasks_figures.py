"""Figures of the GRPO task study, drawn from its ``results`` dict.

The launcher saves them as PNG; a notebook calls the same functions.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from emojax.studies.save_figures import save_figures


def _steps(results: dict) -> np.ndarray:
    return np.arange(1, len(results["reward"]["mean"]) + 1)


def _curves(ax, results: dict, key: str) -> None:
    steps = _steps(results)
    for seed, values in results[key]["per_seed"].items():
        ax.plot(steps, np.asarray(values, float), lw=0.8, alpha=0.45, label=f"seed {seed}")
    ax.plot(steps, np.asarray(results[key]["mean"], float), lw=2.2, color="black", label="mean over seeds")
    first, last = results["final"]["steps"]
    ax.axvspan(first - 0.5, last + 0.5, color="0.9", zorder=0, label="final window")
    ax.set_xlabel("GRPO step (one rollout, then its updates)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _caption(fig, results: dict) -> None:
    """What the lines are: no interval is drawn, every seed is."""
    fig.text(0.01, 0.01, f"Thin lines: each of {len(results['seeds'])} seeds; black: their mean (no interval drawn). "
             "Grey band: the final window the summary averages.", fontsize=8, color="0.3")  # fmt: skip


def reward_figure(results: dict):
    """Reward per step for each seed and their mean, between the random policy and the optimum."""
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    _curves(ax, results, "reward")
    ax.axhline(results["optimum_reward"], color="tab:green", ls="--", label="optimum")
    ax.axhline(results["random_reward"], color="tab:red", ls=":", label="uniform random policy")
    ax.set_ylabel("mean reward of the step's completions")
    ax.set_title(f"GRPO on {results['task']} ({results['preset'] or 'custom'} preset, {len(results['seeds'])} seeds)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: curves fill the axes
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    _caption(fig, results)
    return fig


def normalised_figure(results: dict):
    """The normalised score ``(R - R_random) / (R_opt - R_random)`` per step, with the target."""
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    _curves(ax, results, "normalised")
    ax.axhline(1.0, color="tab:green", ls="--", label="optimum (1)")
    ax.axhline(0.0, color="tab:red", ls=":", label="uniform random policy (0)")
    ax.axhline(results["target"], color="tab:blue", ls="-.", label=f"target {results['target']}")
    final = results["final"]["normalised"]["mean"]
    ax.set_ylabel("normalised reward")
    ax.set_title(f"{results['task']}: final normalised mean {final:.3f} "
                 f"(steps {results['final']['steps'][0]}-{results['final']['steps'][1]})")  # fmt: skip
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: curves fill the axes
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    _caption(fig, results)
    return fig


FIGURES = {"reward_curves.png": reward_figure, "normalised.png": normalised_figure}


def save_all(results: dict, workdir: str) -> list[str]:
    """Write every figure to ``workdir`` as PNG; returns the paths."""
    return save_figures(results, workdir, FIGURES)

"""Figures of the empathy study, drawn from its ``results`` dict (the launcher saves them as
PNG; a notebook calls the same functions)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from emojax.studies.save_figures import save_figures
from emojax.studies.tables import seed_ci

__all__ = ["FIGURES", "curves_figure", "save_all"]

# One colour per trained row, the same in every figure and run (GRPO blues and greens, PPO reds
# and purples; the estimator's reward orange).
_COLOURS = {"grpo_user_emotion": "tab:blue", "grpo_estimator_emotion": "tab:orange", "ppo_user_emotion": "tab:red",
            "grpo_user_emotion_hard": "tab:cyan", "ppo_user_emotion_hard": "tab:pink",
            "grpo_user_emotion_think": "tab:green", "ppo_user_emotion_think": "tab:purple",
            "grpo_user_emotion_kl": "tab:olive", "grpo_user_emotion_flattery": "tab:brown"}  # fmt: skip


def _band(ax, steps, values, colour, label):
    """Mean over seeds with its 95% t-interval (``values`` ``[K, S]``)."""
    cis = [seed_ci(v) for v in values]
    ax.plot(steps, [c["mean"] for c in cis], color=colour, lw=2.2, label=label)
    ax.fill_between(steps, [c["lo"] for c in cis], [c["hi"] for c in cis], color=colour, alpha=0.2, lw=0)


def curves_figure(results: dict):
    """Held-out score and need met (gold) over training, each trained row with its interval."""
    rows = [r for r in results["rows"] if r.get("kind") == "trained" and "curve" in r]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for name, ax, label in (("score", axes[0], "held-out score (mean final e)"),
                            ("need_met", axes[1], "need met (gold, share of dialogues)")):  # fmt: skip
        for row in rows:
            curve = row["curve"]
            _band(ax, curve["steps"], np.asarray(curve[name]), _COLOURS.get(row["name"], "tab:gray"), row["name"])
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for paper, ls in (("grpo_no_think", "--"), ("ppo_no_think", ":")):
        axes[0].axhline(results["rlver_table"][paper]["score"], color="0.5", ls=ls, lw=1.2,
                        label=f"RLVER {paper.split('_')[0].upper()} no-think (7B)")  # fmt: skip
    axes[0].axhline(13.3, color="black", ls="-.", lw=1.2, label="RLVER base (7B)")
    axes[0].legend(fontsize=9, loc="best")
    fig.suptitle(f"Training in conversations with the simulated user ({len(rows[0]['per_seed']['score']) if rows else 0} "
                 "seeds; bands: 95% CI over seeds)")  # fmt: skip
    fig.tight_layout()
    return fig


FIGURES = {"curves.png": curves_figure}


def save_all(results: dict, workdir: str) -> list[str]:
    """Write every figure to ``workdir`` as PNG; returns the paths."""
    if not any(r.get("kind") == "trained" and "curve" in r for r in results["rows"]):
        return []
    return save_figures(results, workdir, FIGURES)

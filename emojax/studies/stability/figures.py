"""The study's figures, drawn from ``results.json`` alone (the notebook calls the same)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from emojax.studies.save_figures import save_figures
from emojax.studies.stability.measure import CELLS
from emojax.studies.stability.comparisons import AS_USED

__all__ = ["cells_figure", "phase_figure", "save_all"]


def _bars(ax, results, key, title):
    cells = results["defaults"]["cells"]
    m = [cells[c][key]["mean"] for c in CELLS]
    err = np.array([[cells[c][key]["mean"] - cells[c][key]["lo"], cells[c][key]["hi"] - cells[c][key]["mean"]]
                    for c in CELLS]).T  # fmt: skip
    ax.bar(range(len(CELLS)), m, yerr=np.nan_to_num(err), color=["C0", "C0", "C1", "C1"], alpha=0.8, capsize=3)
    ax.set_xticks(range(len(CELLS)), [c.replace("_", "\n") for c in CELLS], fontsize=8)
    ax.set_title(title, fontsize=9)


def cells_figure(results: dict[str, Any]):
    """Signal and reward-model stability and gold accuracy of the four cells (95% CIs)."""
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    for ax, (name, t) in zip(axes, (("signal/retest_icc", "signal: test-retest ICC"),
                                 ("signal/inter_judge_icc", "signal: inter-judge ICC(2,1)"),
                                 ("rm/mean/seed_spearman", "reward model: seed-to-seed Spearman"),
                                 ("rm/mean/gold_accuracy", "reward model: gold accuracy"))):  # fmt: skip
        _bars(ax, results, name, t)
    fig.tight_layout()
    return fig


def phase_figure(results: dict[str, Any]):
    """Per phase point, the paired difference (graded emotion - binary preference) in RM
    stability and gold accuracy, with its CI; points above 0 favour emotion."""
    rows = results.get("phase") or []
    fig, axes = plt.subplots(1, 2, figsize=(14, 3.6), sharex=True)
    labels = [f"rho {r['rho']}\ng {r['genuine_share']} na {r['non_attitude_share']}\nnoise {r['noise_scale']}" for r in rows]
    for ax, metric in zip(axes, ("stability", "gold_accuracy")):
        d = [r["comparisons"][AS_USED][metric]["difference"] for r in rows]
        m = np.array([x["mean"] for x in d], float)
        err = np.nan_to_num(np.array([[x["mean"] - x["lo"], x["hi"] - x["mean"]] for x in d], float).T)
        ax.errorbar(range(len(rows)), m, yerr=err, fmt="o", capsize=2)
        ax.axhline(0, color="k", lw=0.7)
        ax.set_title(f"emotion - preference: {metric.replace('_', ' ')}", fontsize=9)
        ax.set_xticks(range(len(rows)), labels, fontsize=5, rotation=90)
    fig.tight_layout()
    return fig


def save_all(results: dict[str, Any], workdir: str) -> list[str]:
    """Write ``cells.png`` (and ``phase.png`` when the phase diagram ran); returns the paths."""
    figs = {"cells.png": cells_figure, **({"phase.png": phase_figure} if results.get("phase") else {})}
    return save_figures(results, workdir, figs, dpi=110)

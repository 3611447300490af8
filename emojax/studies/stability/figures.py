"""The study's figures, drawn from ``results.json`` alone (the notebook calls the same)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from emojax.studies.save_figures import save_figures
from emojax.studies.stability.measure import CELLS
from emojax.studies.stability.comparisons import AS_USED

__all__ = ["cells_figure", "phase_figure", "save_all"]


_PANELS = (  # key, title, y label, reference line (value, what it is) or None
    ("signal/retest_icc", "signal: test-retest", "ICC (1 = same answer again)", None),
    ("signal/inter_judge_icc", "signal: between judges", "ICC(2,1)", None),
    ("rm/mean/seed_spearman", "reward model: seed to seed", "Spearman between seeds", None),
    ("rm/mean/gold_accuracy", "reward model: agrees with gold", "pairwise accuracy", (0.5, "chance")),
)
_COLOURS = {"emotion": "C1", "preference": "C0"}


def _num(x) -> float:
    """A JSON number (``None`` for NaN, as ``results.json`` writes it) as a float."""
    return float("nan") if x is None else float(x)


def _seeds(results: dict[str, Any]) -> int:
    cells = results["defaults"]["cells"]
    return max(int(cells[c][key].get("n", 0)) for c in CELLS for key, *_ in _PANELS)


def cells_figure(results: dict[str, Any]):
    """Signal and reward-model stability and gold accuracy of the four cells: means over
    seeds with their 95% t-intervals, chance where there is one."""
    cells = results["defaults"]["cells"]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    x = np.arange(len(CELLS))
    for ax, (key, title, ylabel, ref) in zip(axes, _PANELS):
        m = np.array([cells[c][key]["mean"] for c in CELLS], float)
        err = np.array([[cells[c][key]["mean"] - cells[c][key]["lo"], cells[c][key]["hi"] - cells[c][key]["mean"]]
                        for c in CELLS], float).T  # fmt: skip
        ax.bar(x, m, yerr=np.nan_to_num(err), color=[_COLOURS[c.split("_")[0]] for c in CELLS], alpha=0.85, capsize=3)
        if ref is not None:
            ax.axhline(ref[0], color="0.3", ls="--", lw=1, label=ref[1])
            ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
        ax.set_xticks(x, [c.split("_", 1)[1] for c in CELLS], fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour, alpha=0.85) for colour in _COLOURS.values()]
    fig.legend(handles, list(_COLOURS), loc="upper right", ncol=2, fontsize=9, frameon=False)
    fig.suptitle("Which signal is steadier, and which reward model is closer to gold?", fontsize=11, x=0.4)
    fig.text(0.5, 0.01, f"Bars: mean over {_seeds(results)} seeds; whiskers: 95% t-interval over the seeds.",
             ha="center", fontsize=8, color="0.3")  # fmt: skip
    fig.tight_layout(rect=(0, 0.04, 1, 0.93))
    return fig


def phase_figure(results: dict[str, Any]):
    """The phase diagram as heat maps: for each rater noise level (columns) and each
    measure (rows), the paired difference graded emotion minus binary preference in
    reward-model stability and gold accuracy, by rho (x) and preference mixture (y).
    Red favours emotion; a star marks a 95% interval that excludes 0."""
    rows = results.get("phase") or []
    noises = sorted({r["noise_scale"] for r in rows}, reverse=True)
    rhos = sorted({r["rho"] for r in rows})
    mixes = sorted({(r["genuine_share"], r["non_attitude_share"]) for r in rows})
    metrics = (("stability", "RM stability"), ("gold_accuracy", "RM gold accuracy"))
    fig, axes = plt.subplots(len(metrics), len(noises), figsize=(3.1 * len(noises) + 1.6, 2.4 + 0.45 * len(mixes) * 2),
                             squeeze=False, layout="constrained")  # fmt: skip
    for i, (metric, name) in enumerate(metrics):
        means = [r["comparisons"][AS_USED][metric]["difference"]["mean"] for r in rows]
        limit = max([abs(_num(v)) for v in means if np.isfinite(_num(v))] or [1.0]) or 1.0
        for j, noise in enumerate(noises):
            ax = axes[i, j]
            mean = np.full((len(mixes), len(rhos)), np.nan)
            sure = np.zeros_like(mean, dtype=bool)
            for r in (r for r in rows if r["noise_scale"] == noise):
                d = r["comparisons"][AS_USED][metric]["difference"]
                at = (mixes.index((r["genuine_share"], r["non_attitude_share"])), rhos.index(r["rho"]))
                lo, hi = _num(d["lo"]), _num(d["hi"])
                mean[at] = _num(d["mean"])
                sure[at] = lo > 0 or hi < 0  # False when NaN

            image = ax.imshow(mean, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
            for (a, b), v in np.ndenumerate(mean):
                if np.isfinite(v):
                    ax.text(b, a, f"{v:+.2f}{'*' if sure[a, b] else ''}", ha="center", va="center", fontsize=8)
            ax.set_xticks(range(len(rhos)), [f"{v:g}" for v in rhos], fontsize=8)
            ax.set_yticks(range(len(mixes)), [f"{g:g} / {n:g}" for g, n in mixes] if j == 0 else [], fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{name}\ngenuine / non-attitude share", fontsize=8)
            ax.set_title(f"rater noise {noise:g}", fontsize=9)
        fig.colorbar(image, ax=list(axes[i]), shrink=0.9, label="emotion - preference")
    fig.suptitle("Graded emotion minus binary preference, as reward models (red: emotion better)\n"
                 "numbers: mean paired difference over the seeds; *: its 95% t-interval excludes 0", fontsize=10)
    fig.supxlabel("rho (how much the user's reaction follows need met)", fontsize=9)
    return fig


def save_all(results: dict[str, Any], workdir: str) -> list[str]:
    """Write ``cells.png`` (and ``phase.png`` when the phase diagram ran); returns the paths."""
    figs = {"cells.png": cells_figure, **({"phase.png": phase_figure} if results.get("phase") else {})}
    return save_figures(results, workdir, figs, dpi=110)

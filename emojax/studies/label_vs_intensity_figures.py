"""Figures of the label-vs-intensity study, drawn from its ``results`` dict.

The launcher saves them as PNG; the notebook calls the same functions.
"""

from __future__ import annotations


import matplotlib.pyplot as plt
from matplotlib.patches import Patch
import numpy as np

from emojax import taxonomy
from emojax.studies.save_figures import save_figures

SERIES = {
    "label_kappa": "argmax label: Fleiss' kappa",
    "pooled_alpha": "intensities: interval alpha (pooled)",
    "pooled_icc": "intensities: ICC(2,1) (pooled)",
    "mean_category_alpha": "intensities: mean per-category alpha",
}


def _errorbar(ax, x, cis, label, **kw):
    est = np.array([c["estimate"] for c in cis], dtype=float)
    lo = np.array([c["low"] for c in cis], dtype=float)
    hi = np.array([c["high"] for c in cis], dtype=float)
    ax.errorbar(x, est, yerr=[est - lo, hi - est], capsize=3, marker="o", label=label, **kw)


def blend_figure(results: dict):
    """Agreement on the argmax label vs on intensities, as blend entropy grows (95% CIs),
    for the calibrated raters (left) and careful raters with idiosyncratic scales (right)."""
    panels = [("blend", "calibrated raters"), ("idiosyncratic_blend", "careful raters, idiosyncratic scales")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, (key, title) in zip(axes, panels):
        rows = results[key]
        x = [b["blend_entropy"] for b in rows]
        for series, label in SERIES.items():
            _errorbar(ax, x, [b[series] for b in rows], label)
        ax.set_xlabel("blend entropy of the true intensities (nats); blend temperature T above")
        ax.set_title(title)
        top = max(max(b[s]["high"] for s in SERIES) for b in rows)
        ax.set_ylim(-0.05, max(0.5, top + 0.1))
        for b in rows:
            ax.annotate(f"T={b['blend_temperature']:g}", (b["blend_entropy"], 0.95), xycoords=("data", "axes fraction"), fontsize=7, ha="center")
    axes[0].set_ylabel("agreement among raters")
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle("Same raters, two response formats: one label vs 40 intensities")
    fig.tight_layout()
    return fig


def calibration_figure(results: dict):
    """Per-category alpha of the default raters, by group, beside EmoNet's reported figures."""
    per = results["calibration"]["per_category"]
    names = sorted(per, key=lambda c: np.nan_to_num(per[c]["alpha"], nan=-1))
    groups = list(taxonomy.GROUP_NAMES)
    colors = plt.cm.tab10(np.arange(len(groups)))
    fig, ax = plt.subplots(figsize=(7, 8))
    y = np.arange(len(names))
    est = np.array([per[c]["alpha"] for c in names], dtype=float)
    lo = np.array([per[c]["low"] for c in names], dtype=float)
    hi = np.array([per[c]["high"] for c in names], dtype=float)
    ax.barh(y, est, xerr=[est - lo, hi - est], color=[colors[groups.index(per[c]["group"])] for c in names])
    ref = results["calibration"]["emonet_reference"]
    lo_v, hi_v = ref["voice_cronbach_alpha_per_emotion_range"]
    ax.axvspan(lo_v, hi_v, color="grey", alpha=0.2, label="EmoNet-Voice per-emotion range (Cronbach)")
    ax.axvline(ref["face_hq_alpha_third_party"]["Elation"], color="k", ls="--", lw=1, label="Face HQ Elation (3rd party)")
    ax.set_yticks(y, [c[:28] for c in names], fontsize=7)
    ax.set_xlabel("interval Krippendorff alpha (95% CI)")
    handles, _ = ax.get_legend_handles_labels()
    handles += [Patch(color=col, label=g) for g, col in zip(groups, colors)]
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    ax.set_title("Simulated raters, default calibration")
    fig.tight_layout()
    return fig


def knob_figure(results: dict):
    """Mean per-category alpha as the rater-noise knob turns."""
    knob = results["noise_knob"]
    fig, ax = plt.subplots(figsize=(6, 4))
    _errorbar(ax, [point["noise_scale"] for point in knob], [point["mean_category_alpha"] for point in knob], "mean per-category alpha")
    ax.axhline(0.14, color="grey", ls=":", label="0.14 (EmoNet-Voice level)")
    ax.axhline(0.6, color="grey", ls="--", label="0.6")
    ax.set_xlabel("raters.noise_scale")
    ax.set_ylabel("interval alpha")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def per_category_figure(results: dict):
    """Per category, at the lowest and highest blend level: label kappa ("is it category c?")
    beside the category's interval alpha and ICC(2,1), calibrated raters, 95% CIs."""
    rows = [results["blend"][0], results["blend"][-1]]
    fig, axes = plt.subplots(1, 2, figsize=(12, 8), sharey=True)
    names = list(taxonomy.CATEGORIES)
    y = np.arange(len(names))
    for ax, row in zip(axes, rows):
        per = row["per_category"]
        for j, (stat, label) in enumerate((("label_kappa", "label kappa"), ("alpha", "interval alpha"), ("icc", "ICC(2,1)"))):
            est = np.array([np.nan if per[c][stat]["estimate"] is None else per[c][stat]["estimate"] for c in names], float)
            lo = np.array([np.nan if per[c][stat]["low"] is None else per[c][stat]["low"] for c in names], float)
            hi = np.array([np.nan if per[c][stat]["high"] is None else per[c][stat]["high"] for c in names], float)
            ax.errorbar(est, y + (j - 1) * 0.25, xerr=[est - lo, hi - est], fmt="o", ms=3, capsize=2, label=label)
        ax.set_title(f"T = {row['blend_temperature']:g} (blend entropy {row['blend_entropy']:.2f})")
        ax.set_xlabel("agreement")
        ax.axvline(0, color="grey", lw=0.5)
    axes[0].set_yticks(y, [c[:28] for c in names], fontsize=7)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


FIGURES = {"label_vs_intensity": blend_figure, "per_category": per_category_figure, "calibration": calibration_figure, "noise_knob": knob_figure}


def captioned(make):
    """``make`` with a line under the figure saying what its intervals are."""

    def draw(results: dict):
        fig = make(results)
        n = results["config"]["n_bootstrap"]
        fig.text(0.5, 0.005, f"Intervals: 95% bootstrap CIs ({n} resamples of rater panels and items).",
                 ha="center", va="bottom", fontsize=8, color="0.3")  # fmt: skip
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        return fig

    return draw


def save_all(results: dict, workdir: str) -> list[str]:
    """Writes every figure as ``workdir/<name>.png``; returns the paths."""
    return save_figures(results, workdir, {f"{name}.png": captioned(make) for name, make in FIGURES.items()})

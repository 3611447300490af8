"""Figures of the label-vs-intensity study, drawn from its ``results`` dict.

The launcher saves them as PNG; the notebook calls the same functions.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from emojax import taxonomy  # noqa: E402

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
    """Agreement on the argmax label vs on intensities, as blend entropy grows (95% CIs)."""
    blend = results["blend"]
    x = [b["blend_entropy"] for b in blend]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in SERIES.items():
        _errorbar(ax, x, [b[key] for b in blend], label)
    for b in blend:
        ax.annotate(f"T={b['blend_temperature']:g}", (b["blend_entropy"], 0.02), fontsize=7, ha="center")
    ax.set_xlabel("blend entropy of the true intensities (nats)")
    ax.set_ylabel("agreement among raters")
    ax.set_ylim(0, 1)
    ax.set_title("Same raters, two response formats")
    ax.legend(fontsize=8, loc="upper right")
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
    for g, col in zip(groups, colors):
        ax.barh([], [], color=col, label=g)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Simulated raters, default calibration")
    fig.tight_layout()
    return fig


def knob_figure(results: dict):
    """Mean per-category alpha as the rater-noise knob turns."""
    knob = results["noise_knob"]
    fig, ax = plt.subplots(figsize=(6, 4))
    _errorbar(ax, [k["noise_scale"] for k in knob], [k["mean_category_alpha"] for k in knob], "mean per-category alpha")
    ax.axhline(0.14, color="grey", ls=":", label="0.14 (EmoNet-Voice level)")
    ax.axhline(0.6, color="grey", ls="--", label="0.6")
    ax.set_xlabel("raters.noise_scale")
    ax.set_ylabel("interval alpha")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


FIGURES = {"label_vs_intensity": blend_figure, "calibration": calibration_figure, "noise_knob": knob_figure}


def save_all(results: dict, workdir: str) -> list[str]:
    """Writes every figure as ``workdir/<name>.png``; returns the paths."""
    import os

    paths = []
    for name, make in FIGURES.items():
        fig = make(results)
        path = os.path.join(workdir, f"{name}.png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths

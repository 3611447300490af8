"""Figures of an estimator run, drawn from its work dir (``metrics.jsonl``, ``eval.json``)."""

from __future__ import annotations

import json
import os

import matplotlib.pyplot as plt
import numpy as np

from emojax import taxonomy
from emojax.tracking import read_metrics


def learning_curves(workdir: str):
    """Training loss and held-out Spearman (against the latent intensities) by step."""
    rows = read_metrics(workdir)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    for prefix, label in (("", "estimator"), ("single_label/", "single-label baseline")):
        pts = [(r["step"], r[f"{prefix}loss"]) for r in rows if f"{prefix}loss" in r]
        if pts:
            a.plot(*zip(*pts), label=label)
    evals = [(r["step"], r["eval_spearman_mean"]) for r in rows if "eval_spearman_mean" in r]
    if evals:
        b.plot(*zip(*evals), marker="o")
    a.set_xlabel("step"), a.set_ylabel("training loss"), a.legend(fontsize=8)
    b.set_xlabel("step"), b.set_ylabel("held-out mean Spearman")
    fig.tight_layout()
    return fig


def load_eval(workdir: str) -> dict:
    with open(os.path.join(workdir, "eval.json")) as f:
        return json.load(f)


def _per_category(block: dict, stat: str) -> np.ndarray:
    return np.array([np.nan if block["per_category"][c][stat] is None else block["per_category"][c][stat] for c in taxonomy.CATEGORIES], float)


def per_category(results: dict):
    """Per category: the estimator's Spearman, its kappa against raters, the raters' kappa."""
    m = results["model"]
    names = list(taxonomy.CATEGORIES)
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 9))
    for j, (stat, label) in enumerate((("spearman", "model Spearman vs latent"), ("kappa_qw_model", "model QWK vs raters"), ("kappa_qw_human", "rater vs rater QWK"))):
        ax.plot(_per_category(m, stat), y + (j - 1) * 0.25, "o", ms=3, label=label)
    if "bag_of_words" in results.get("baselines", {}):
        ax.plot(_per_category(results["baselines"]["bag_of_words"], "spearman"), y, "x", ms=3, label="bag-of-words Spearman")
    ax.set_yticks(y, [c[:28] for c in names], fontsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def per_group(results: dict):
    """Group means of the same figures (EmoNet's 7 groups)."""
    m = results["model"]
    groups = list(taxonomy.GROUP_NAMES)
    stats = (("spearman", "model Spearman"), ("kappa_qw_model", "model QWK vs raters"), ("kappa_qw_human", "rater vs rater QWK"))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    width = 0.8 / len(stats)
    for j, (stat, label) in enumerate(stats):
        vals = _per_category(m, stat)
        ax.bar(np.arange(len(groups)) + j * width, [np.nanmean(vals[taxonomy.group_mask(g)]) for g in groups], width, label=label)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups, rotation=20, fontsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig

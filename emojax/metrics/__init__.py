"""Evaluation and agreement metrics for emotion-intensity ratings.

Per-category correlations and errors (:mod:`.correlation`), chance-corrected
agreement on discrete levels (:mod:`.kappa`), reliability coefficients
(:mod:`.alpha`, :mod:`.icc`) and bootstrap intervals (:mod:`.bootstrap`). All are
pure functions of arrays; most are jittable, see each module for the exceptions.
"""

from emojax.metrics.alpha import cronbach_alpha, krippendorff_alpha
from emojax.metrics.bootstrap import CI, bootstrap_ci, bootstrap_samples
from emojax.metrics.correlation import (
    average_ranks,
    kendall_tau,
    mae,
    pearson,
    per_category,
    rmse,
    spearman,
)
from emojax.metrics.icc import icc, icc2_1, icc3_1
from emojax.metrics.kappa import (
    fleiss_kappa,
    labels_to_counts,
    quadratic_weighted_kappa,
    to_levels,
)

__all__ = [
    "CI",
    "average_ranks",
    "bootstrap_ci",
    "bootstrap_samples",
    "cronbach_alpha",
    "fleiss_kappa",
    "icc",
    "icc2_1",
    "icc3_1",
    "kendall_tau",
    "krippendorff_alpha",
    "labels_to_counts",
    "mae",
    "pearson",
    "per_category",
    "quadratic_weighted_kappa",
    "rmse",
    "spearman",
    "to_levels",
]

"""Which cells the stability study compares, and the per-seed metrics it compares them on.

Why a module of its own: the study computes the comparisons, and the prediction scoring,
the report and the figures read them back from ``results.json`` by these names; keeping
the names here lets all of them import one place below them.
"""

from __future__ import annotations

__all__ = ["ACCURACY", "AS_USED", "COMPARISONS", "STABILITY"]

AS_USED = "as used: graded emotion vs binary preference"  # each signal as it is used in practice
COMPARISONS: dict[str, tuple[str, str]] = {  # name: (first cell, second cell)
    "binary: emotion vs preference": ("emotion_binary", "preference_binary"),
    "graded: emotion vs preference": ("emotion_graded", "preference_graded"),
    AS_USED: ("emotion_graded", "preference_binary"),
    "emotion: graded vs binary": ("emotion_graded", "emotion_binary"),
    "preference: graded vs binary": ("preference_graded", "preference_binary"),
    "estimator: graded emotion vs binary preference": ("estimator_graded", "preference_binary"),
}
STABILITY = "rm/mean/seed_spearman"  # reward-model stability: seed-to-seed Spearman of held-out rewards
ACCURACY = "rm/mean/gold_accuracy"  # share of held-out pairs ordered as gold orders them

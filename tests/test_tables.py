"""Intervals print to the precision they support, in every study's tables."""

import math

from emojax.studies import context_gap, label_vs_intensity, tables


def test_decimals_follow_the_half_width():
    assert [tables.decimals(h) for h in (0.5, 0.014, 0.0045, 1e-7, 3.0)] == [1, 2, 3, 4, 1]
    assert tables.decimals(float("nan")) == 3 and tables.decimals(0.0) == 3


def test_interval():
    assert tables.interval(0.0984, 0.0841, 0.1123) == "0.10 [0.08, 0.11]"
    assert tables.interval(0.3541, 0.3461, 0.3621) == "0.354 [0.346, 0.362]"
    assert tables.interval(0.5, None, None) == "0.500"
    assert tables.interval(None, 0.1, 0.2) == "-" and tables.interval(math.nan, 0.1, 0.2) == "-"


def test_study_tables_round_to_their_intervals():
    ci = {"estimate": 0.41234, "low": 0.39, "high": 0.43}
    band = {"blend_temperature": 1.0, "blend_entropy": 2.0, "label_kappa": ci, "pooled_alpha": ci, "pooled_icc": ci,
            "mean_category_alpha": ci}  # fmt: skip
    results = {"blend": [band], "idiosyncratic_blend": [], "predictions": {},
               "noisy_low_blend": {"noise_scale": 2.0, "blend_temperature": 1.0, **band}}  # fmt: skip
    assert "| 0.41 [0.39, 0.43] |" in label_vs_intensity.results_table(results)
    point = {"negation_rate": 0.3, "irony_rate": 0.1, "estimator_spearman": 0.8, "bag_of_words_spearman": 0.7,
             "gap": 0.10456, "gap_ci": [0.1031, 0.1062]}  # fmt: skip
    gap = {"points": [point], "bars": {"bar": 0.1, "plain_bar": 0.02, "met_at_defaults": True, "points_meeting_bar": []},
           "crossing_negation_rate": None, "published": {}, "predictions": {}}  # fmt: skip
    assert "| 0.105 [0.103, 0.106] |" in context_gap.summary(gap)

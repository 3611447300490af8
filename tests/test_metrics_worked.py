"""Published worked examples with known answers, and rejection of bad input.

The examples come from ../shared/reference/metrics.md (Krippendorff 2011, Shrout &
Fleiss 1979, Fleiss 1971). They run at JAX's default float32 on purpose: the
published four-decimal answers must come out without enabling x64.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emojax import metrics

NAN = np.nan
# Recorded at collection, before any test runs, to detect a leaked x64 setting.
X64_AT_COLLECTION = jax.config.jax_enable_x64

# Krippendorff (2011): four observers x twelve units, NaN = missing.
KRIPPENDORFF_RATINGS = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
)
KRIPPENDORFF_ALPHA = {"nominal": 0.7434, "ordinal": 0.8154, "interval": 0.8491, "ratio": 0.7974}

# Shrout & Fleiss (1979), Table 2: six targets x four judges.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
)
SHROUT_FLEISS_ICC = {
    "1,1": 0.1657,
    "2,1": 0.2898,
    "3,1": 0.7148,
    "1,k": 0.4428,
    "2,k": 0.6201,
    "3,k": 0.9093,
}

# Fleiss (1971): ten subjects, fourteen raters, five categories (counts per category).
FLEISS_COUNTS = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


def test_x64_setting_not_leaked_by_other_metric_tests():
    # The reference tests switch x64 on in a fixture; it must be restored.
    assert jax.config.jax_enable_x64 == X64_AT_COLLECTION


@pytest.mark.parametrize("level", sorted(KRIPPENDORFF_ALPHA))
def test_krippendorff_worked_example(level):
    got = metrics.krippendorff_alpha(KRIPPENDORFF_RATINGS, level=level)
    assert abs(float(got) - KRIPPENDORFF_ALPHA[level]) < 1e-4


@pytest.mark.parametrize("level", sorted(KRIPPENDORFF_ALPHA))
def test_krippendorff_worked_example_with_explicit_domain(level):
    # An explicit domain with an unused value (6) must not change the answer.
    got = metrics.krippendorff_alpha(KRIPPENDORFF_RATINGS, level=level, values=np.arange(1, 7))
    assert abs(float(got) - KRIPPENDORFF_ALPHA[level]) < 1e-4


def test_krippendorff_single_value_unit_drops_out():
    # The last unit has one value; deleting the column must leave alpha unchanged.
    full = metrics.krippendorff_alpha(KRIPPENDORFF_RATINGS, level="interval")
    trimmed = metrics.krippendorff_alpha(KRIPPENDORFF_RATINGS[:, :-1], level="interval")
    assert abs(float(full) - float(trimmed)) < 1e-6


@pytest.mark.parametrize("kind", sorted(SHROUT_FLEISS_ICC))
def test_icc_shrout_fleiss(kind):
    got = metrics.icc(SHROUT_FLEISS, kind=kind)
    assert abs(float(got) - SHROUT_FLEISS_ICC[kind]) < 1e-4


def test_icc_convenience_wrappers():
    assert abs(float(metrics.icc2_1(SHROUT_FLEISS)) - SHROUT_FLEISS_ICC["2,1"]) < 1e-4
    assert abs(float(metrics.icc3_1(SHROUT_FLEISS)) - SHROUT_FLEISS_ICC["3,1"]) < 1e-4


def test_fleiss_worked_example():
    assert abs(float(metrics.fleiss_kappa(FLEISS_COUNTS)) - 0.2099) < 1e-4


def test_labels_to_counts_round_trip():
    # Expand each count row into 14 raters' labels, then count them back.
    labels = np.stack([np.repeat(np.arange(5), row) for row in FLEISS_COUNTS], axis=1)
    counts = metrics.labels_to_counts(labels, num_categories=5)
    np.testing.assert_array_equal(np.asarray(counts), FLEISS_COUNTS)


def test_average_ranks_ties():
    ranks = metrics.average_ranks(jnp.array([10.0, 20.0, 20.0, 5.0, 20.0]))
    np.testing.assert_allclose(np.asarray(ranks), [2.0, 4.0, 4.0, 1.0, 4.0])


def test_kendall_tau_hand_example():
    # Pairs: x=(1,2,3), y=(1,3,2): 2 concordant, 1 discordant, no ties -> 1/3.
    assert abs(float(metrics.kendall_tau([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])) - 1 / 3) < 1e-6


def test_pearson_constant_column_is_nan():
    x = jnp.stack([jnp.arange(5.0), jnp.full(5, 0.1)], axis=1)
    y = jnp.stack([jnp.arange(5.0) ** 2, jnp.arange(5.0)], axis=1)
    for fn in (metrics.pearson, metrics.spearman):
        r = np.asarray(fn(x, y))
        assert np.isfinite(r[0]) and np.isnan(r[1])
    assert np.isnan(float(metrics.kendall_tau(jnp.full(4, 2.0), jnp.arange(4.0))))


def test_mae_rmse_by_hand():
    x = jnp.array([[0.0, 1.0], [2.0, 1.0]])
    y = jnp.array([[1.0, 1.0], [5.0, 1.0]])
    np.testing.assert_allclose(np.asarray(metrics.mae(x, y)), [2.0, 0.0])
    np.testing.assert_allclose(np.asarray(metrics.rmse(x, y)), [np.sqrt(5.0), 0.0], rtol=1e-6)


def test_to_levels_round_and_truncate():
    x = jnp.array([-0.7, 0.4, 2.6, 2.5, 3.5, 7.9, 9.0])
    rounded = metrics.to_levels(x, num_levels=8, mode="round")
    truncated = metrics.to_levels(x, num_levels=8, mode="truncate")
    np.testing.assert_array_equal(np.asarray(rounded), [0, 0, 3, 2, 4, 7, 7])
    np.testing.assert_array_equal(np.asarray(truncated), [0, 0, 2, 2, 3, 7, 7])
    assert rounded.dtype == jnp.int32


def test_qwk_perfect_and_degenerate():
    a = jnp.array([0, 3, 7, 2, 2])
    assert abs(float(metrics.quadratic_weighted_kappa(a, a)) - 1.0) < 1e-6
    # Both raters constant and identical: kappa is 0/0, reported as NaN.
    const = jnp.full(6, 4)
    assert np.isnan(float(metrics.quadratic_weighted_kappa(const, const)))


def test_cronbach_parallel_items():
    # Identical items are perfectly consistent.
    col = jnp.array([1.0, 4.0, 2.0, 5.0])
    assert abs(float(metrics.cronbach_alpha(jnp.stack([col, col, col], axis=1))) - 1.0) < 1e-6


# --- bad input -------------------------------------------------------------------


def test_krippendorff_rejects_unknown_level():
    with pytest.raises(ValueError, match="level"):
        metrics.krippendorff_alpha(KRIPPENDORFF_RATINGS, level="cardinal")


def test_krippendorff_rejects_wrong_ndim():
    with pytest.raises(ValueError, match="ratings must be 2-D"):
        metrics.krippendorff_alpha(KRIPPENDORFF_RATINGS[0])


def test_krippendorff_rejects_all_missing():
    with pytest.raises(ValueError, match="ratings are all missing"):
        metrics.krippendorff_alpha(np.full((3, 4), NAN), level="nominal")


def test_krippendorff_rejects_no_pairable_unit():
    ratings = np.array([[1.0, NAN], [NAN, 2.0]])
    with pytest.raises(ValueError, match="pairable"):
        metrics.krippendorff_alpha(ratings)


def test_krippendorff_rejects_out_of_domain_values():
    with pytest.raises(ValueError, match="values"):
        metrics.krippendorff_alpha(KRIPPENDORFF_RATINGS, level="ordinal", values=np.arange(1, 5))


def test_fleiss_rejects_unequal_row_totals():
    bad = FLEISS_COUNTS.copy()
    bad[3, 0] += 1
    with pytest.raises(ValueError, match="counts rows must all sum to the same"):
        metrics.fleiss_kappa(bad)


def test_fleiss_rejects_wrong_ndim():
    with pytest.raises(ValueError, match="counts must be 2-D"):
        metrics.fleiss_kappa(FLEISS_COUNTS[0])


def test_icc_rejects_unknown_kind_and_ndim():
    with pytest.raises(ValueError, match="kind"):
        metrics.icc(SHROUT_FLEISS, kind="4,1")
    with pytest.raises(ValueError, match="x must be 2-D"):
        metrics.icc(SHROUT_FLEISS[0])


def test_cronbach_rejects_wrong_ndim_and_policy():
    with pytest.raises(ValueError, match="x must be 2-D"):
        metrics.cronbach_alpha(jnp.arange(5.0))
    with pytest.raises(ValueError, match="nan_policy"):
        metrics.cronbach_alpha(SHROUT_FLEISS, nan_policy="omit")


def test_qwk_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="a and b"):
        metrics.quadratic_weighted_kappa(jnp.zeros(4, jnp.int32), jnp.zeros(5, jnp.int32))


def test_to_levels_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        metrics.to_levels(jnp.zeros(3), mode="floor")


def test_correlation_rejects_mismatched_shapes_and_kendall_ndim():
    with pytest.raises(ValueError, match="x and y"):
        metrics.pearson(jnp.zeros((4, 2)), jnp.zeros((4, 3)))
    with pytest.raises(ValueError, match="1-D"):
        metrics.kendall_tau(jnp.zeros((4, 2)), jnp.zeros((4, 2)))


@pytest.mark.parametrize("bad", [8, -1, 2.5, float("nan")])
def test_qwk_rejects_levels_off_the_scale(bad):
    a = np.array([0, 1, bad, 3], dtype=float)
    with pytest.raises(ValueError, match=r"a must hold integer levels in 0\.\.7; a\[2\]"):
        metrics.quadratic_weighted_kappa(a, np.array([0, 1, 2, 3]))


def test_labels_to_counts_names_the_out_of_range_label():
    with pytest.raises(ValueError, match=r"labels\[0, 1\] = 9"):
        metrics.labels_to_counts(np.array([[0, 9], [1, 1]]), 5)

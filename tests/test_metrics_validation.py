"""Bad values in concrete inputs raise a ValueError naming the argument and position.

The checks run in the public wrappers on concrete arrays only; under jit/vmap the
values are unknown, so the traced paths must keep running (and give NaN or an
unchecked result) rather than raise.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emojax import metrics

NAN, INF = np.nan, np.inf


# --- to_levels ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_to_levels_rejects_non_finite(bad):
    x = np.array([0.5, bad, 3.0, 9.0])
    with pytest.raises(ValueError, match=rf"x\[1\] = {bad} is not finite"):
        metrics.to_levels(x)


def test_to_levels_still_clips_finite_values_off_the_scale():
    levels = metrics.to_levels(np.array([-3.0, 12.0, 1e30]), num_levels=8)
    np.testing.assert_array_equal(np.asarray(levels), [0, 7, 7])


# --- labels_to_counts / fleiss_kappa ------------------------------------------------


@pytest.mark.parametrize("bad", [1.5, NAN, INF])
def test_labels_to_counts_rejects_non_integer_labels(bad):
    labels = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, bad]])
    msg = rf"labels must be integers in 0\.\.2; labels\[1, 2\] = {bad}"
    with pytest.raises(ValueError, match=msg):
        metrics.labels_to_counts(labels, 3)


def test_labels_to_counts_accepts_integer_valued_floats():
    counts = metrics.labels_to_counts(np.array([[0.0, 2.0], [2.0, 2.0]]), 3)
    np.testing.assert_array_equal(np.asarray(counts), [[1, 0, 1], [0, 0, 2]])


@pytest.mark.parametrize("bad", [0.5, -1.0, NAN, INF])
def test_fleiss_rejects_non_integer_counts(bad):
    # Row totals stay equal where possible, so the integer check is what fires.
    counts = np.array([[1.0, 2.0], [3.0 - bad, bad], [2.0, 1.0]])
    msg = r"counts must be finite non-negative integers.*counts\[1, [01]\] = "
    with pytest.raises(ValueError, match=msg):
        metrics.fleiss_kappa(counts)


def test_fleiss_message_names_first_fractional_count():
    counts = np.array([[1.0, 2.0], [2.5, 0.5], [2.0, 1.0]])
    msg = r"counts must be finite non-negative integers.*counts\[1, 0\] = 2\.5"
    with pytest.raises(ValueError, match=msg):
        metrics.fleiss_kappa(counts)


# --- krippendorff_alpha -------------------------------------------------------------


@pytest.mark.parametrize("bad", [INF, -INF])
@pytest.mark.parametrize("level", ["interval", "ordinal"])
def test_krippendorff_rejects_infinite_ratings(bad, level):
    ratings = np.array([[1.0, 2.0, NAN, 3.0], [1.0, 3.0, bad, 3.0]])
    with pytest.raises(ValueError, match=rf"ratings\[1, 2\] = {bad} is not finite"):
        metrics.krippendorff_alpha(ratings, level=level)


def test_krippendorff_still_accepts_nan_as_missing():
    ratings = np.array([[1.0, 2.0, NAN, 3.0], [1.0, 3.0, 2.0, 3.0]])
    assert np.isfinite(float(metrics.krippendorff_alpha(ratings)))


# --- bootstrap_ci -------------------------------------------------------------------


@pytest.mark.parametrize("axis", [1, -2])
def test_bootstrap_rejects_axis_out_of_range(axis, key):
    msg = rf"axis={axis} is out of range for data with shape \(5,\)"
    with pytest.raises(ValueError, match=msg):
        metrics.bootstrap_ci(jnp.mean, jnp.ones(5), key, axis=axis)


@pytest.mark.parametrize("vectorized", [True, False])
def test_bootstrap_axis_error_names_the_tuple_member(vectorized, key):
    data = (np.ones((6, 2)), np.ones(6))
    with pytest.raises(ValueError, match=r"axis=1 is out of range for data\[1\] with shape \(6,\)"):
        metrics.bootstrap_ci(metrics.pearson, data, key, axis=1, vectorized=vectorized)


# --- complete-data metrics: correlations, errors, ICC -------------------------------

PAIRED = [metrics.pearson, metrics.spearman, metrics.mae, metrics.rmse]


@pytest.mark.parametrize("arg", ["x", "y"])
@pytest.mark.parametrize("fn", PAIRED, ids=lambda f: f.__name__)
def test_paired_metrics_reject_nan(fn, arg):
    clean = np.arange(10.0).reshape(5, 2)
    dirty = clean.copy()
    dirty[2, 1] = NAN
    x, y = (dirty, clean) if arg == "x" else (clean, dirty)
    msg = rf"{fn.__name__} needs complete data.*{arg}\[2, 1\] = nan"
    with pytest.raises(ValueError, match=msg):
        fn(x, y)


@pytest.mark.parametrize("arg", ["x", "y"])
def test_kendall_tau_rejects_nan(arg):
    clean = np.arange(5.0)
    dirty = np.array([0.0, 1.0, NAN, 3.0, NAN])
    x, y = (dirty, clean) if arg == "x" else (clean, dirty)
    msg = rf"kendall_tau needs complete data.*{arg}\[2\] = nan \(2 NaN"
    with pytest.raises(ValueError, match=msg):
        metrics.kendall_tau(x, y)


def test_nan_error_points_to_krippendorff():
    with pytest.raises(ValueError, match="krippendorff_alpha"):
        metrics.spearman(np.array([1.0, NAN, 2.0]), np.arange(3.0))


@pytest.mark.parametrize("kind", ["1,1", "2,1", "3,k"])
def test_icc_rejects_nan(kind):
    x = np.array([[1.0, 2.0], [3.0, 3.0], [4.0, NAN]])
    with pytest.raises(ValueError, match=r"icc needs complete data.*x\[2, 1\] = nan"):
        metrics.icc(x, kind=kind)


# --- traced paths: unchecked, still running -----------------------------------------


def test_traced_paths_skip_value_checks():
    x = jnp.array([[1.0, 2.0], [NAN, 3.0], [2.0, 5.0], [4.0, 1.0]])
    y = jnp.array([[1.0, 2.0], [2.0, 3.0], [3.0, 4.0], [1.0, 1.0]])
    for fn in PAIRED:
        r = np.asarray(jax.jit(fn)(x, y))
        assert np.isnan(r[0]) and np.isfinite(r[1]), fn.__name__
    r = jax.jit(jax.vmap(metrics.pearson, in_axes=(1, 1)))(x, y)
    assert np.isnan(float(r[0]))
    assert np.isnan(float(jax.jit(metrics.kendall_tau)(x[:, 0], y[:, 0])))
    assert np.isnan(float(jax.jit(metrics.icc)(x)))
    levels = jax.jit(metrics.to_levels)(jnp.array([1.2, INF, -INF]))
    np.testing.assert_array_equal(np.asarray(levels), [1, 7, 0])
    ratings = jnp.array([[1.0, 2.0, 3.0], [1.0, 3.0, INF]])
    jax.jit(metrics.krippendorff_alpha)(ratings)  # no check under jit
    jax.jit(lambda c: metrics.fleiss_kappa(c))(jnp.array([[0.5, 1.5], [1.0, 1.0]]))
    counts = jax.jit(lambda lab: metrics.labels_to_counts(lab, 3))(jnp.array([[0, 5]]))
    np.testing.assert_array_equal(np.asarray(counts), [[1, 0, 0], [0, 0, 0]])

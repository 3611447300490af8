"""Random data against established implementations, to 1e-6 in float64.

Every test runs inside ``jax.enable_x64`` (fixture below), restored afterwards so
other test files keep JAX's float32 default. float32 would agree to about 1e-5.
"""

import warnings

import jax
import krippendorff
import numpy as np
import pandas as pd
import pingouin
import pytest
import scipy.stats
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from emojax import metrics

SEEDS = (0, 1, 2)
LEVELS = ("nominal", "ordinal", "interval", "ratio")
TOL = 1e-6


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _ratings_with_missing(seed, raters=5, items=40, missing=0.2):
    rng = np.random.default_rng(seed)
    # Correlated raters, so alpha is far from 0 and differences would show.
    truth = rng.integers(0, 8, size=items)
    noise = rng.integers(-2, 3, size=(raters, items))
    ratings = np.clip(truth[None, :] + noise, 0, 7).astype(float)
    ratings[rng.random((raters, items)) < missing] = np.nan
    return ratings


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("level", LEVELS)
def test_krippendorff_matches_package(seed, level):
    ratings = _ratings_with_missing(seed)
    expected = krippendorff.alpha(reliability_data=ratings, level_of_measurement=level)
    got = metrics.krippendorff_alpha(ratings, level=level)
    assert abs(float(got) - expected) < TOL
    # The jittable explicit-domain route must agree as well.
    got_domain = metrics.krippendorff_alpha(ratings, level=level, values=np.arange(8.0))
    assert abs(float(got_domain) - expected) < TOL


@pytest.mark.parametrize("seed", SEEDS)
def test_krippendorff_interval_float_data(seed):
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=30)
    ratings = truth[None, :] + 0.7 * rng.normal(size=(4, 30))
    ratings[rng.random((4, 30)) < 0.25] = np.nan
    expected = krippendorff.alpha(reliability_data=ratings, level_of_measurement="interval")
    assert abs(float(metrics.krippendorff_alpha(ratings)) - expected) < TOL


@pytest.mark.parametrize("seed", SEEDS)
def test_qwk_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 8, size=120)
    b = np.clip(a + rng.integers(-3, 4, size=120), 0, 7)
    expected = cohen_kappa_score(a, b, weights="quadratic", labels=list(range(8)))
    assert abs(float(metrics.quadratic_weighted_kappa(a, b, num_levels=8)) - expected) < TOL


def test_qwk_counts_unused_levels():
    # Non-contiguous used levels: only labels=range(8) gives the right weights.
    rng = np.random.default_rng(5)
    a = rng.choice([0, 3, 7], size=80)
    b = rng.choice([0, 3, 7], size=80)
    with_labels = cohen_kappa_score(a, b, weights="quadratic", labels=list(range(8)))
    without_labels = cohen_kappa_score(a, b, weights="quadratic")
    got = float(metrics.quadratic_weighted_kappa(a, b, num_levels=8))
    assert abs(got - with_labels) < TOL
    assert abs(got - without_labels) > 1e-3


def test_qwk_degenerate_matches_sklearn_nan():
    const = np.full(10, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = cohen_kappa_score(const, const, weights="quadratic", labels=list(range(8)))
    assert np.isnan(expected)
    assert np.isnan(float(metrics.quadratic_weighted_kappa(const, const)))


@pytest.mark.parametrize("seed", SEEDS)
def test_qwk_on_quantised_predictions(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 8, size=100)
    pred = truth + rng.normal(scale=1.5, size=100)
    levels = np.asarray(metrics.to_levels(pred, 8))
    expected = cohen_kappa_score(truth, levels, weights="quadratic", labels=list(range(8)))
    assert abs(float(metrics.quadratic_weighted_kappa(truth, levels)) - expected) < TOL


@pytest.mark.parametrize("seed", SEEDS)
def test_fleiss_matches_statsmodels(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 5, size=30)
    labels = np.where(rng.random((6, 30)) < 0.6, truth[None, :], rng.integers(0, 5, (6, 30)))
    counts = np.asarray(metrics.labels_to_counts(labels, num_categories=5))
    expected = sm_fleiss_kappa(counts, method="fleiss")
    assert abs(float(metrics.fleiss_kappa(counts)) - expected) < TOL


def _icc_table(seed, targets=25, judges=4):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(targets, 1)) * 1.5
        + rng.normal(size=(1, judges))
        + rng.normal(size=(targets, judges))
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_icc_matches_pingouin(seed):
    x = _icc_table(seed)
    targets, judges = np.meshgrid(np.arange(x.shape[0]), np.arange(x.shape[1]), indexing="ij")
    long = pd.DataFrame(
        {"target": targets.ravel(), "judge": judges.ravel(), "rating": x.ravel()}
    )
    table = pingouin.intraclass_corr(long, targets="target", raters="judge", ratings="rating")
    pg = dict(zip(table["Type"], table["ICC"]))
    names = {
        "1,1": "ICC(1,1)",
        "2,1": "ICC(A,1)",
        "3,1": "ICC(C,1)",
        "1,k": "ICC(1,k)",
        "2,k": "ICC(A,k)",
        "3,k": "ICC(C,k)",
    }
    for kind, name in names.items():
        assert abs(float(metrics.icc(x, kind=kind)) - pg[name]) < TOL, kind


@pytest.mark.parametrize("seed", SEEDS)
def test_cronbach_matches_pingouin(seed):
    x = _icc_table(seed, targets=40, judges=5)
    expected, _ = pingouin.cronbach_alpha(pd.DataFrame(x))
    assert abs(float(metrics.cronbach_alpha(x)) - expected) < TOL


def test_cronbach_missing_values_listwise_and_pairwise():
    x = _icc_table(7, targets=40, judges=5)
    x[[3, 17, 30], [0, 2, 4]] = np.nan
    listwise, _ = pingouin.cronbach_alpha(pd.DataFrame(x), nan_policy="listwise")
    pairwise, _ = pingouin.cronbach_alpha(pd.DataFrame(x), nan_policy="pairwise")
    assert abs(listwise - pairwise) > 1e-4  # the policies really differ on this data
    assert abs(float(metrics.cronbach_alpha(x)) - listwise) < TOL
    complete = x[~np.isnan(x).any(axis=1)]
    assert abs(float(metrics.cronbach_alpha(complete)) - listwise) < TOL
    got_pairwise = metrics.cronbach_alpha(x, nan_policy="pairwise")
    assert abs(float(got_pairwise) - pairwise) < TOL


def _tied_scores(seed, n=80, categories=40):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 8, size=(n, categories)).astype(float)
    y = np.clip(x + rng.integers(-2, 3, size=(n, categories)), 0, 7)
    return x, y


@pytest.mark.parametrize("seed", SEEDS)
def test_pearson_spearman_match_scipy_per_category(seed):
    x, y = _tied_scores(seed)
    pr = np.asarray(metrics.pearson(x, y))
    sr = np.asarray(metrics.spearman(x, y))
    assert pr.shape == sr.shape == (40,)
    for c in range(40):
        assert abs(pr[c] - scipy.stats.pearsonr(x[:, c], y[:, c]).statistic) < TOL
        assert abs(sr[c] - scipy.stats.spearmanr(x[:, c], y[:, c]).statistic) < TOL


def test_correlations_along_other_axis():
    x, y = _tied_scores(3, n=30, categories=6)
    expected = [scipy.stats.spearmanr(x.T[:, j], y.T[:, j]).statistic for j in range(30)]
    np.testing.assert_allclose(np.asarray(metrics.spearman(x, y, axis=1)), expected, atol=TOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_kendall_tau_b_matches_scipy(seed):
    x, y = _tied_scores(seed, n=300, categories=1)
    expected = scipy.stats.kendalltau(x[:, 0], y[:, 0]).statistic
    assert abs(float(metrics.kendall_tau(x[:, 0], y[:, 0])) - expected) < TOL
    xs, ys = _tied_scores(seed, n=50, categories=4)
    per_cat = metrics.per_category(metrics.kendall_tau, xs, ys)
    for c in range(4):
        assert abs(float(per_cat[c]) - scipy.stats.kendalltau(xs[:, c], ys[:, c]).statistic) < TOL


def test_mae_rmse_match_numpy():
    x, y = _tied_scores(4)
    np.testing.assert_allclose(np.asarray(metrics.mae(x, y)), np.abs(x - y).mean(0), atol=TOL)
    np.testing.assert_allclose(
        np.asarray(metrics.rmse(x, y)), np.sqrt(((x - y) ** 2).mean(0)), atol=TOL
    )


def test_x64_fixture_is_active():
    assert metrics.pearson(np.arange(3.0), np.arange(3.0)).dtype == np.float64

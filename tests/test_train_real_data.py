"""Training on real data: the smoke preset end to end on both datasets, masks, and the evaluation."""

import itertools
import json
import os

import jax
import jax.numpy as jnp
import krippendorff
import numpy as np
import pytest
import real_files as rf
import scipy.stats
from sklearn.metrics import cohen_kappa_score

from emojax import tracking
from emojax.data import goemotions_raw
from emojax.models import get_head
from emojax.train import data as train_data
from emojax.train import evaluate_real
from emojax.train.estimator import load_estimator
from emojax.train.evaluate import MAIN_KEYS
from experiments import train_estimator


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    return {
        "emonet_face_hq": rf.write_emonet(root / "emonet"),
        "goemotions_raw": rf.write_goemotions(root / "goemotions"),
        "data_dir": str(root / "datasets"),
        "root": root,
    }


def _train(dirs, name, *extra):
    workdir = str(dirs["root"] / f"run_{name}")
    argv = ["--preset", "smoke", "--workdir", workdir, "--data", name, "--manual-dir", dirs[name],
            "--set", f"data_dir={dirs['data_dir']}", "--set", "n_bootstrap=20", *extra]  # fmt: skip
    return workdir, train_estimator.main(argv)


def _check_eval(workdir, covered):
    on_disk = json.loads(open(os.path.join(workdir, "eval.json")).read())
    for key in MAIN_KEYS:
        assert isinstance(on_disk[key], float), key
        low, high = on_disk[f"{key}_ci"]
        assert low <= high, key
    assert on_disk["covered_categories"] == covered
    assert list(on_disk["model"]["per_category"]) == covered
    losses = [r["loss"] for r in tracking.read_metrics(workdir) if "loss" in r]
    assert losses[-1] < losses[0]
    return on_disk


def test_smoke_trains_embedding_heads_on_emonet_face_hq(dirs):
    workdir, results = _train(dirs, "emonet_face_hq")
    on_disk = _check_eval(workdir, list(rf.taxonomy.CATEGORIES))
    train = json.loads(open(os.path.join(workdir, "config.json")).read())["train"]
    assert train["model"] == "embedding_heads" and train["model_config"] == {"input": "embedding", "embed_dim": rf.DIM}
    assert on_disk["kappa_qw_human_mean"] > 0.2  # the test files' raters agree
    assert set(on_disk["baselines"]) == {"single_label", "train_mean"}
    assert on_disk["model_annotators"]["gpt-4o"]["num_items"] >= 2 and "spearman_mean" in on_disk["model_annotators"]["gpt-4o"]
    assert on_disk["dataset"]["counts"]["images_without_human_rows"] == 1
    out = load_estimator(workdir)(jnp.ones((3, rf.DIM)), jnp.ones((3, rf.DIM), bool))
    assert out.shape == (3, 40) and float(out.min()) >= 0


def test_smoke_trains_text_transformer_on_goemotions_raw(dirs):
    workdir, results = _train(dirs, "goemotions_raw", "--set", "baselines=false")
    covered = [c for c, m in zip(rf.taxonomy.CATEGORIES, goemotions_raw.covered()) if m]
    on_disk = _check_eval(workdir, covered)
    assert "Pain" not in on_disk["model"]["per_category"] and len(covered) == 20
    train = json.loads(open(os.path.join(workdir, "config.json")).read())["train"]
    meta = json.loads(open(os.path.join(on_disk["dataset"]["path"], "metadata.json")).read())
    assert train["model"] == "text_transformer"
    assert train["model_config"]["vocab_size"] == meta["vocab_size"] and train["model_config"]["max_len"] == meta["max_len"]
    assert train["model_config"]["d_model"] == 32  # the smoke preset's sizes kept
    tokens = jnp.zeros((2, meta["max_len"]), jnp.int32).at[:, :3].set(5)
    assert load_estimator(workdir)(tokens, tokens != 0).shape == (2, 40)


def test_real_data_needs_a_manual_dir_and_a_model_that_reads_its_input(dirs, tmp_path):
    never = str(tmp_path / "never")
    with pytest.raises(ValueError, match="pass --manual-dir PATH"):
        train_estimator.main(["--preset", "smoke", "--workdir", never, "--data", "goemotions_raw"])
    with pytest.raises(ValueError, match="gives precomputed embeddings \\[batch, 16\\]; --model embedding_heads reads them"):
        train_estimator.main(["--preset", "smoke", "--workdir", never, "--data", "emonet_face_hq", "--model", "text_transformer",
                              "--manual-dir", dirs["emonet_face_hq"], "--set", f"data_dir={dirs['data_dir']}"])  # fmt: skip
    with pytest.raises(ValueError, match="unknown data_config keys \\['vocab'\\]"):
        train_estimator.main(["--preset", "smoke", "--workdir", never, "--data", "goemotions_raw", "--manual-dir",
                              dirs["goemotions_raw"], "--set", 'data_config={"vocab": 3}'])  # fmt: skip
    assert not os.path.exists(never)


def test_the_loss_ignores_missing_raters_and_uncovered_categories():
    ratings = np.full((2, 3, 40), -1, np.int32)
    ratings[0, :2, :20] = [[7], [0]]  # item 0: two raters, categories 0-19 covered
    ratings[1, :3, :20] = 7
    batch = {"tokens": np.ones((2, 4), np.int32), "ratings": ratings, "num_raters": np.array([2, 3], np.int32)}
    _, y = train_data.targets(batch, "mean")
    mask = train_data.target_mask(batch, "mean")
    np.testing.assert_allclose(np.asarray(y)[:, :20], [[3.5] * 20, [7.0] * 20])
    np.testing.assert_array_equal(np.asarray(mask), np.repeat([[1.0] * 20 + [0.0] * 20], 2, axis=0))
    head = get_head("regression")
    raw = jnp.zeros((2, 40, 1))
    moved = raw.at[:, 20:].set(5.0)  # outputs for uncovered categories do not enter the loss
    assert float(head.loss(raw, y, mask)) == float(head.loss(moved, y, mask))
    _, rows = train_data.targets(batch, "per_rater")
    per_rater = np.asarray(train_data.target_mask(batch, "per_rater"))
    assert rows.shape == (6, 40) and per_rater[:, 0].tolist() == [1, 1, 0, 1, 1, 1]


def test_real_evaluation_matches_scipy_sklearn_and_krippendorff_resampling_and_itself():
    rng = np.random.RandomState(0)
    n, k, c = 50, 4, 3
    rated = rng.randint(0, 8, (n, c)).astype(np.float32) + 0.3 * rng.rand(n, c).astype(np.float32)
    ratings = rng.randint(-1, 8, (n, k, c)).astype(np.int32)
    ratings[:, 0] = np.maximum(ratings[:, 0], 0)
    stats = jax.jit(evaluate_real.statistics)
    got = np.asarray(stats(rated, rated, ratings, jnp.ones(n)))
    truth = np.asarray(evaluate_real.reference(ratings))
    for j in range(c):
        a, b, ha, hb = [], [], [], []
        for i in range(n):
            present = [q for q in range(k) if ratings[i, q, j] >= 0]
            a += [int(np.round(rated[i, j]))] * len(present)
            b += [ratings[i, q, j] for q in present]
            for p, q in itertools.permutations(present, 2):
                ha.append(ratings[i, p, j])
                hb.append(ratings[i, q, j])
        alpha = krippendorff.alpha(reliability_data=np.where(ratings[:, :, j] >= 0, ratings[:, :, j], np.nan).T, level_of_measurement="interval")
        want = [
            scipy.stats.spearmanr(rated[:, j], truth[:, j])[0], scipy.stats.pearsonr(rated[:, j], truth[:, j])[0],
            np.abs(rated[:, j] - truth[:, j]).mean(), np.sqrt(np.square(rated[:, j] - truth[:, j]).mean()),
            cohen_kappa_score(a, b, weights="quadratic", labels=range(8)), cohen_kappa_score(ha, hb, weights="quadratic", labels=range(8)), alpha,
        ]  # fmt: skip
        np.testing.assert_allclose(got[:7, j], want, rtol=1e-4, atol=1e-5)
    # A resample as multiplicities equals evaluating the resampled rows (ties in ranks included).
    idx = rng.randint(0, n, n)
    w = jnp.asarray(np.bincount(idx, minlength=n), jnp.float32)
    np.testing.assert_allclose(stats(rated, rated, ratings, w), stats(rated[idx], rated[idx], ratings[idx], jnp.ones(n)), atol=1e-5)
    # GoEmotions-like 0/7 raters: pooled QWK between raters is Cohen's kappa of the binary marks.
    binary = rng.randint(0, 2, (n, k, c)).astype(np.int32) * 7
    kappa = float(stats(rated, rated, binary, jnp.ones(n))[5, 0])
    pairs = [(binary[i, p, 0] // 7, binary[i, q, 0] // 7) for i in range(n) for p, q in itertools.permutations(range(k), 2)]
    assert kappa == pytest.approx(cohen_kappa_score(*zip(*pairs)), abs=1e-5)
    # The bootstrap: reproducible from its key, and its interval brackets the estimate.
    wide = np.zeros((n, 40), np.float32)
    wide[:, :c] = rated
    full = np.full((n, k, 40), -1, np.int32)
    full[:, :, :c] = ratings
    covered = list(rf.taxonomy.CATEGORIES[:c])
    first = evaluate_real.evaluate(wide, wide, full, covered, jax.random.key(0), 30)
    assert first == evaluate_real.evaluate(wide, wide, full, covered, jax.random.key(0), 30)
    assert first["mae_mean_ci"][0] <= first["mae_mean"] <= first["mae_mean_ci"][1]
    assert first["mae_mean"] == pytest.approx(float(np.mean(got[2])))

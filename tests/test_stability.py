"""The stability study: items keep gold apart from emotion, the measures and reward models
do what they say, the smoke preset runs end to end, and the study can show either signal
winning when its parameters say so."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emojax import metrics
from emojax.studies.stability import (
    condition,
    diagnostics,
    measure,
    predictions,
    reply_pairs,
    report,
    reward_models,
    signals,
    study,
)
from emojax.world import annotators, raters
from experiments import stability as launcher

SMOKE = study.PRESETS["smoke"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stability")
    results = launcher.main(["--preset", "smoke", "--workdir", str(workdir)])
    return workdir, results


@pytest.fixture(scope="module")
def smoke_items():
    return study._items(SMOKE, SMOKE.world)


def test_every_preset_validates_and_defaults_use_eight_seeds():
    assert set(study.PRESETS) == {"smoke", "tiny", "default"}
    assert study.PRESETS["default"].seeds >= 8 and study.PRESETS["tiny"].seeds >= 8
    with pytest.raises(ValueError, match="Config.judgments"):
        study.Config(judgments=1)


def test_gold_never_moves_with_the_emotion_coupling():
    key = jax.random.key(5)
    lo = reply_pairs.sample_items(key, 64, dataclasses.replace(reply_pairs.WorldConfig(), rho=0.0))
    hi = reply_pairs.sample_items(key, 64, dataclasses.replace(reply_pairs.WorldConfig(), rho=1.0))
    assert np.array_equal(np.asarray(lo.utility), np.asarray(hi.utility))
    assert np.array_equal(np.asarray(lo.replies), np.asarray(hi.replies))
    assert not np.allclose(np.asarray(lo.e_after), np.asarray(hi.e_after))
    # The coupling knob moves the realised Spearman(e, gold) up.
    s = lambda it: float(metrics.spearman(it.e_after.reshape(-1), it.utility.reshape(-1)))  # noqa: E731
    assert s(hi) > s(lo) + 0.3


def test_features_and_readout():
    it = reply_pairs.sample_items(jax.random.key(6), 8, reply_pairs.WorldConfig())
    assert it.features.shape == (8, 2, reply_pairs.num_features())
    assert np.all(np.asarray(it.features[..., -1]) == 1.0)  # the bias feature
    x = jnp.zeros((3, 40))
    assert float(reply_pairs.readout(x)[0]) == 0.0
    from emojax import taxonomy

    v = taxonomy.valence_arousal()[:, 0]
    assert float(reply_pairs.readout(jnp.asarray(np.where(v > 0, 7.0, 0.0)))) == pytest.approx(7 * v[v > 0].sum() / np.abs(v).sum())


def test_signal_metrics_of_identical_and_of_unrelated_asks():
    x = jax.random.normal(jax.random.key(0), (300, 4))
    same = signals.signal_metrics(x, x, x)
    assert same["retest_icc"] == pytest.approx(1.0, abs=1e-5) and same["retest_agreement"] == 1.0
    y = jax.random.normal(jax.random.key(1), (300, 4))
    other = signals.signal_metrics(x, y, y)
    assert abs(float(other["retest_icc"])) < 0.1 and abs(float(other["retest_agreement"]) - 0.5) < 0.05
    # Abstentions leave their units out: the kept units alone decide.
    abstained = jnp.zeros((3, 300, 4), bool).at[:, :150].set(True)
    half = signals.signal_metrics(x, x.at[:150].set(-x[:150]), x, abstained)
    assert half["retest_agreement"] == 1.0
    assert half["retest_icc"] == pytest.approx(1.0, abs=1e-5)


def test_bradley_terry_recovers_a_linear_utility():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    w = jax.random.normal(k1, (5,))
    x = jax.random.normal(k2, (400, 2, 5))
    u = x @ w
    p = (u[:, 0] > u[:, 1]).astype(jnp.float32)
    data = reward_models.Data(x, p, jnp.ones(400))
    cfg = reward_models.RewardModelConfig(hidden=0, steps=300, learning_rate=0.05, ensemble=2)
    r, loss = reward_models.fit_predict(k3, data, x, cfg, "bt")
    assert r.shape == (2, 400, 2)
    assert float(condition.gold_accuracy(r[0], u)) > 0.95
    assert float(metrics.spearman(r[0].reshape(-1), u.reshape(-1))) > 0.95


def test_aggregations():
    r = jnp.array([[0.0, 1.0, 2.0], [0.0, 2.0, 1.0]])
    z = (r - r.mean(1, keepdims=True)) / r.std(1, keepdims=True)
    np.testing.assert_allclose(reward_models.aggregate(r, "mean"), z.mean(0), atol=1e-6)
    np.testing.assert_allclose(reward_models.aggregate(r, "worst"), z.min(0), atol=1e-6)
    np.testing.assert_allclose(reward_models.aggregate(r, "uncertainty", 2.0), z.mean(0) - 2 * z.var(0), atol=1e-6)
    with pytest.raises(KeyError, match="known"):
        reward_models.aggregate(r, "median")


def test_ece_and_seed_ci():
    logit = jnp.array([10.0, 10.0, -10.0, -10.0])
    assert float(condition.ece(logit, jnp.array([1.0, 1.0, 0.0, 0.0]), jnp.ones(4))) < 1e-3
    assert float(condition.ece(logit, jnp.array([0.0, 0.0, 1.0, 1.0]), jnp.ones(4))) > 0.99
    ci = study.seed_ci([1.0, 2.0, 3.0])
    assert ci["mean"] == 2.0 and ci["lo"] == pytest.approx(2 - 4.303 / np.sqrt(3))


def test_equal_judgments_are_enforced(smoke_items):
    train, test = smoke_items
    with pytest.raises(ValueError, match="equal judgments"):
        condition.run_condition(jax.random.key(0), train, test, seeds=2, judgments=3, annotator_cfg=SMOKE.annotators,
                                rater_cfg=raters.RaterConfig(num_raters=4), reward_model_cfg=SMOKE.reward_model)  # fmt: skip


def test_smoke_run_writes_results_figures_and_table(smoke):
    workdir, results = smoke
    for name in ("run.json", "results.json", "summary.md", "cells.png", "phase.png"):
        assert (workdir / name).stat().st_size > 0, name
    on_disk = json.loads((workdir / "results.json").read_text())
    assert set(on_disk["defaults"]["cells"]) == set(measure.CELLS)
    for cell in measure.CELLS:
        c = on_disk["defaults"]["cells"][cell]
        for name in ("signal/retest_icc", "signal/inter_judge_icc", "rm/mean/seed_spearman", "rm/mean/gold_accuracy",
                  "rm/worst/gold_accuracy", "rm/uncertainty/seed_spearman"):  # fmt: skip
            assert c[name]["n"] == SMOKE.seeds and c[name]["lo"] <= c[name]["mean"] <= c[name]["hi"], (cell, name)
    assert set(on_disk["predictions"]) == {f"P{i}" for i in range(1, 9)}
    assert all(v["held"] in (True, False) for v in on_disk["predictions"].values())  # all measured
    diag = on_disk["diagnostics"]
    assert set(diag["by_reasks"]) == {"1", "2", "4"} and set(diag["filters"]) == {"pooled", "consistency", "abstain"}
    assert diag["filters"]["consistency"]["labels_kept"]["mean"] < diag["filters"]["pooled"]["labels_kept"]["mean"]
    assert len(on_disk["phase"]) == 2 and {r["rho"] for r in on_disk["phase"]} == {0.1, 1.0}
    cal = on_disk["calibration"]
    assert set(cal["ours"]) >= {"raw_agreement", "retest_disagreement"} and cal["literature"]["raw_agreement"] == 0.726
    # The table is rebuilt from the JSON on disk alone.
    table = report.summary(on_disk)
    assert "| preference_binary |" in table and "Phase diagram" in table
    assert table == (workdir / "summary.md").read_text().rstrip("\n")


def test_the_study_can_show_either_signal_winning(smoke_items):
    """Careful raters and non-attitude-heavy annotators: emotion's reward model is the
    steadier one; noisy raters and genuine annotators: preference's is."""
    cfg = dataclasses.replace(SMOKE, num_train=SMOKE.num_train, seeds=4)
    train, test = smoke_items
    cells = measure.CELLS
    careful = dataclasses.replace(cfg.rater_config, noise_scale=0.0, inattentive_share=0.0)
    noisy = dataclasses.replace(cfg.rater_config, noise_scale=3.0)
    s1, _ = study._condition(cfg, train, test, careful, cells, shares=(0.05, 0.9, 0.05, 0.0))
    s2, _ = study._condition(cfg, train, test, noisy, cells, shares=(0.95, 0.0, 0.05, 0.0))
    e, p = "emotion_graded", "preference_binary"
    key = "signal/retest_icc"
    assert s1[e][key]["mean"] > s1[p][key]["mean"] + 0.3
    assert s2[p][key]["mean"] > s2[e][key]["mean"] + 0.3


def test_predictions_are_scored_from_results_and_flip_with_them(smoke):
    _, results = smoke
    scored = predictions.score(results)
    assert scored == results["predictions"]
    flipped = json.loads(json.dumps(results))
    cells = flipped["defaults"]["cells"]
    cells["emotion_graded"]["signal/retest_icc"] = {"mean": 0.9, "lo": 0.85, "hi": 0.95, "n": 3}
    cells["emotion_graded"]["signal/inter_judge_icc"] = {"mean": 0.9, "lo": 0.85, "hi": 0.95, "n": 3}
    cells["preference_binary"]["signal/retest_icc"] = {"mean": 0.2, "lo": 0.1, "hi": 0.3, "n": 3}
    cells["preference_binary"]["signal/inter_judge_icc"] = {"mean": 0.2, "lo": 0.1, "hi": 0.3, "n": 3}
    assert predictions.score(flipped)["P1"]["held"] is True
    cells["emotion_graded"]["signal/retest_icc"] = {"mean": 0.1, "lo": 0.0, "hi": 0.2, "n": 3}
    assert predictions.score(flipped)["P1"]["held"] is False


def test_pair_values_put_every_cell_on_one_footing():
    emo = measure.EmotionJudgments(graded=jnp.array([[[1.0, -1.0]]]), binary=jnp.array([[[1.0, 0.0]]]))
    pref = annotators.Answers(binary=jnp.array([[-1]]), graded=jnp.array([[-3]]))
    got = {c: float(measure.pair_values(c, emo, pref)[0, 0]) for c in measure.CELLS}
    assert got == {"emotion_graded": 2.0, "emotion_binary": 1.0, "preference_graded": -3.0, "preference_binary": -1.0}
    with pytest.raises(KeyError, match="known"):
        measure.pair_values("emotion_ternary", emo, pref)


def test_classify_by_consistency():
    asks = jnp.array([[[1, 1, 1]], [[1, -1, 1]], [[1, -1, 1]]])  # [r + 1, n, J]
    swapped = jnp.array([[1, 1, -1]])
    assert np.asarray(diagnostics.classify(asks[:1], swapped)).tolist() == [[0, 0, 2]]
    assert np.asarray(diagnostics.classify(asks, swapped)).tolist() == [[0, 1, 2]]


def test_non_attitude_recall_follows_coin_flips(smoke_items):
    train, test = smoke_items
    cfg = dataclasses.replace(annotators.AnnotatorConfig(), shares=(0.5, 0.5, 0.0, 0.0))
    out = diagnostics.run_diagnostics(jax.random.key(0), train, test, 2, 3, cfg, SMOKE.reward_model, (1, 2, 4))
    for r in (1, 2, 4):
        recall = float(np.mean(out["by_reasks"][str(r)]["non_attitude"]["recall"]))
        assert abs(recall - (1 - 2.0**-r)) < 0.08, (r, recall)


def _word_counting_estimator(tokens, mask):
    """A stand-in estimator: each emotion word the user says counts 3 on its category."""
    from emojax.world import vocab

    category = jnp.asarray(vocab.emotion_word_category())[tokens]  # [b, L]
    hits = jax.nn.one_hot(jnp.where(mask & (category >= 0), category, -1), 40)
    return 3.0 * jnp.sum(hits, axis=1)


def test_estimator_cells_read_fresh_renderings(smoke_items):
    train, test = smoke_items
    cells = measure.ESTIMATOR_CELLS + ("preference_binary",)
    with pytest.raises(ValueError, match="predict"):
        condition.run_condition(jax.random.key(0), train, test, seeds=2, judgments=3, annotator_cfg=SMOKE.annotators,
                                rater_cfg=SMOKE.rater_config, reward_model_cfg=SMOKE.reward_model, cells=cells)  # fmt: skip
    out = condition.run_condition(jax.random.key(0), train, test, seeds=2, judgments=3, annotator_cfg=SMOKE.annotators,
                                  rater_cfg=SMOKE.rater_config, reward_model_cfg=SMOKE.reward_model, cells=cells,
                                  predict=_word_counting_estimator,
                                  world=SMOKE.world)  # fmt: skip
    sig = out["estimator_graded"]["signal"]
    assert np.all(np.isnan(np.asarray(sig["cross_frame_icc"])))
    assert np.all(np.isfinite(np.asarray(sig["retest_icc"]))) and np.all(np.asarray(sig["retest_agreement"]) < 1.0)
    tokens = reply_pairs.utterances(jax.random.key(1), train, SMOKE.world, 3)
    assert tokens.shape[:3] == (SMOKE.num_train, 3, 3)
    assert not np.array_equal(np.asarray(tokens[:, 0]), np.asarray(tokens[:, 1]))  # each judgment its own rendering


def test_calibration_slope():
    train = jax.random.normal(jax.random.key(0), (200,)) * 3.0 + 1.0
    test_target = jax.random.normal(jax.random.key(1), (100,)) * 3.0 + 1.0
    z = (test_target - jnp.mean(train)) / jnp.std(train)
    assert float(condition.calibration_slope(z, train, test_target)) == pytest.approx(1.0, abs=1e-4)
    assert float(condition.calibration_slope(2 * z, train, test_target)) == pytest.approx(0.5, abs=1e-4)


def test_regression_cells_report_a_calibration_slope(smoke):
    _, results = smoke
    cells = results["defaults"]["cells"]
    assert np.isfinite(cells["emotion_graded"]["rm/mean/calibration_slope"]["mean"])
    assert "rm/mean/calibration_slope" not in cells["preference_binary"]


def test_the_estimator_rows_carry_the_estimators_quality(tmp_path):
    """The summary says which estimator read the estimator rows and how well it reads."""
    from emojax.studies.stability import report

    assert study._estimator_quality(None) is None and study._estimator_quality(str(tmp_path)) is None
    (tmp_path / "eval.json").write_text(json.dumps({"spearman_mean": 0.5691, "spearman_mean_ci": [0.539, 0.587]}))
    quality = study._estimator_quality(str(tmp_path))
    assert quality == {"spearman_mean": 0.5691, "ci": [0.539, 0.587]}
    line = report._estimator_line({"estimator": str(tmp_path), "estimator_spearman": quality})
    assert line[-1] == f"Estimator rows: read by {tmp_path}, mean Spearman 0.569 [0.539, 0.587] against the latent intensities on its test items."
    assert report._estimator_line({"estimator": None, "estimator_spearman": None}) == []


def test_intervals_print_to_the_precision_they_support():
    from emojax.studies.stability import report

    assert report.ci({"mean": 0.0984, "lo": 0.0841, "hi": 0.1123, "n": 8}) == "0.10 [0.08, 0.11]"
    assert report.ci({"mean": 0.3541, "lo": 0.3461, "hi": 0.3621, "n": 8}) == "0.354 [0.346, 0.362]"
    assert report.ci({"mean": 0.5, "lo": 0.1, "hi": 0.9, "n": 8}) == "0.5 [0.1, 0.9]"
    assert report.ci({"mean": 0.5, "lo": float("nan"), "hi": float("nan"), "n": 1}) == "0.500"
    assert report.ci(None) == "-"

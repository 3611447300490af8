import dataclasses
import json
import os

import numpy as np
import pytest

from emojax.data import synthetic
from emojax.studies import context_gap as study
from emojax.train import data
from emojax.train.config import PRESETS as TRAIN_PRESETS
from experiments import context_gap as launcher


# ---- simulated datasets with changed fields -------------------------------------------


def test_data_config_changes_the_simulated_world():
    cfg = dataclasses.replace(TRAIN_PRESETS["default"], data_config={"negation_rate": 0.6, "irony_rate": 0.1})
    world = data.synthetic_config(cfg)
    assert world.negation_rate == 0.6 and world.irony_rate == 0.1  # 0.1 is the default: not in the name
    assert world.name == "default-negation_rate0.6"
    assert world.items_config().language.negation_rate == 0.6
    assert world.num_train == synthetic.DEFAULT.num_train


def test_data_config_that_names_a_named_config_is_that_config():
    default = TRAIN_PRESETS["default"]
    same = dataclasses.replace(default, data_config={"negation_rate": 0.3, "irony_rate": 0.1})
    assert data.synthetic_config(same) is synthetic.DEFAULT
    both_off = dataclasses.replace(default, data_config={"negation_rate": 0.0, "irony_rate": 0.0})
    assert data.synthetic_config(both_off) is synthetic.PLAIN
    assert data.canonical(both_off) == TRAIN_PRESETS["plain"]


def test_data_config_unknown_field_is_named():
    cfg = dataclasses.replace(TRAIN_PRESETS["default"], data_config={"negation": 0.5})
    with pytest.raises(ValueError, match=r"\['negation'\] are not fields of the simulated dataset 'default'"):
        data.synthetic_config(cfg)


# ---- the scoring, on made-up points (both conclusions must be reachable) --------------


def _point(negation, irony, est, bow, spread=0.005, n=400, seed=0):
    rng = np.random.default_rng(seed + int(100 * negation) + int(1000 * irony))
    e, b = est + spread * rng.standard_normal(n), bow + spread * rng.standard_normal(n)
    return {"negation_rate": negation, "irony_rate": irony, "estimator_spearman": est, "bag_of_words_spearman": bow,
            "gap": est - bow, "gap_ci": study._ci(e - b), "samples": {"estimator": e, "bag_of_words": b}}  # fmt: skip


def _sweep(gaps):
    """Points at the default preset's rates with the estimator fixed at 0.88 minus a small
    context cost and the bag of words below it by ``gaps``."""
    rates = list(zip(study.Config().negation_rates, study.Config().irony_rates))
    return [_point(n, i, 0.89 - 0.01 * n, 0.89 - 0.01 * n - g) for (n, i), g in zip(rates, gaps)]


def test_score_holds_when_the_gap_grows_with_negation_past_the_published_rate():
    cfg = study.Config()
    points = _sweep([0.03, 0.055, 0.06, 0.08, 0.12, 0.16])
    verdict = study.score(cfg, points)
    assert {name: v["held"] for name, v in verdict.items()} == {"C1": True, "C2": True, "C3": True, "C4": True}
    assert study.crossing(cfg, points) == pytest.approx(0.6 + 0.4 * (0.10 - 0.08) / (0.12 - 0.08))
    assert study.bars(cfg, points)["met_at_defaults"] is False


def test_score_fails_when_the_estimator_does_not_read_context():
    cfg = study.Config()
    points = _sweep([0.03, 0.03, 0.03, 0.03, 0.03, 0.03])  # flat: context costs both alike
    verdict = study.score(cfg, points)
    assert verdict["C1"]["held"] is False and verdict["C2"]["held"] is False and verdict["C4"]["held"] is False
    assert study.crossing(cfg, points) is None
    assert study.bars(cfg, points)["points_meeting_bar"] == []


def test_score_fails_c4_when_the_bar_holds_at_published_rates():
    cfg = study.Config()
    points = _sweep([0.03, 0.08, 0.11, 0.13, 0.15, 0.2])
    assert study.score(cfg, points)["C4"]["held"] is False
    assert study.bars(cfg, points)["met_at_defaults"] is True


def test_points_must_pair_up():
    with pytest.raises(ValueError, match="irony_rates"):
        study.Config(negation_rates=(0.0, 0.3), irony_rates=(0.0,))
    with pytest.raises(ValueError, match="swept twice"):
        study.Config(negation_rates=(0.3, 0.3), irony_rates=(0.1, 0.1))


# ---- the smoke sweep, end to end ------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("context_gap"))
    data_dir = str(tmp_path_factory.mktemp("context_gap_data"))
    argv = ["--preset", "smoke", "--workdir", workdir, "--set", f"train.data_dir={data_dir}"]
    assert launcher.main(argv + ["--only", "1"]) is None  # one point alone, no report
    assert not os.path.exists(os.path.join(workdir, "results.json"))
    trained = os.path.join(workdir, "points", "negation1_irony0.5", "eval.json")
    stamp = os.path.getmtime(trained)
    return workdir, argv, launcher.main(argv), trained, stamp, data_dir


def test_smoke_sweep_reports_every_point(smoke_sweep):
    workdir, _, results, _, _, data_dir = smoke_sweep
    # each point trained on a dataset of its own rates (the plain point's is built once)
    built = os.listdir(os.path.join(data_dir, "emojax_synthetic"))
    assert "small-irony_rate0.5-negation_rate1.0" in built and "small-irony_rate0.0-negation_rate0.0" in built
    assert [(p["negation_rate"], p["irony_rate"]) for p in results["points"]] == [(0.0, 0.0), (1.0, 0.5)]
    assert results["points"][1]["dataset"] == "small-irony_rate0.5-negation_rate1.0"
    for p in results["points"]:
        lo, hi = p["gap_ci"]
        assert lo <= p["gap"] <= hi and np.isfinite(p["estimator_spearman"])
        assert p["gap"] == pytest.approx(p["estimator_spearman"] - p["bag_of_words_spearman"])
    with open(os.path.join(workdir, "results.json")) as f:
        assert json.load(f)["predictions"]["C1"]["held"] is None  # the smoke preset lacks its points
    assert "| 1 | 0.5 |" in open(os.path.join(workdir, "summary.md")).read()


def test_smoke_sweep_reuses_a_finished_point(smoke_sweep):
    _, _, _, trained, stamp, _ = smoke_sweep
    assert os.path.getmtime(trained) == stamp  # the report did not retrain point 1


def test_smoke_sweep_measure_matches_eval_json(smoke_sweep):
    workdir, _, results, _, _, _ = smoke_sweep
    for p in results["points"]:
        with open(os.path.join(workdir, p["dir"], "eval.json")) as f:
            saved = json.load(f)
        assert p["estimator_spearman"] == pytest.approx(saved["spearman_mean"], abs=1e-5)
        assert p["bag_of_words_spearman"] == pytest.approx(saved["baseline_bag_of_words_spearman_mean"], abs=1e-5)


def test_a_point_dir_of_another_config_is_refused(smoke_sweep, capsys):
    workdir, argv, _, _, _, data_dir = smoke_sweep
    with pytest.raises(SystemExit) as exit_:  # the launcher: the work dir is another run's
        launcher.main(argv + ["--set", "train.seed=1", "--only", "0"])
    assert exit_.value.code == 2 and "config.train.seed: 0 -> 1" in capsys.readouterr().err
    cfg = study.PRESETS["smoke"]  # the study itself: a point trained under another config
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, data_dir=data_dir, seed=1))
    with pytest.raises(ValueError, match=r"holds a run of another config \(train\.seed: 0 -> 1\)"):
        study.train_point(cfg, workdir, *cfg.points()[0])


def test_only_out_of_range_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="out of range"):
        launcher.main(["--preset", "smoke", "--workdir", str(tmp_path), "--only", "5"])

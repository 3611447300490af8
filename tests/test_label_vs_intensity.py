import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emojax import taxonomy
from emojax.studies import label_vs_intensity as study
from emojax.world import raters
from experiments import label_vs_intensity as launcher


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("lvi")
    launcher.main(["--preset", "smoke", "--workdir", str(workdir)])
    return workdir, json.loads((workdir / "results.json").read_text())


def test_every_preset_validates():
    assert set(study.PRESETS) == {"smoke", "tiny", "default"}
    for cfg in study.PRESETS.values():
        assert isinstance(cfg, study.Config)


def test_smoke_run_writes_results_and_figures(smoke):
    workdir, results = smoke
    for name in ("run.json", "results.json", "calibration.md", "summary.md", "label_vs_intensity.png", "calibration.png", "noise_knob.png"):
        assert (workdir / name).stat().st_size > 0, name
    assert [b["blend_temperature"] for b in results["blend"]] == [0.1, 1.0, 4.0]
    assert set(results["calibration"]["per_category"]) == set(taxonomy.CATEGORIES)
    for b in results["blend"] + results["idiosyncratic_blend"]:
        for key in ("label_kappa", "pooled_alpha", "pooled_icc", "mean_category_alpha"):
            ci = b[key]
            assert ci["low"] <= ci["high"] and len(ci["per_panel"]) == 2, (key, ci)
    for b in (results["blend"][0], results["blend"][-1]):
        assert set(b["per_category"]) == set(taxonomy.CATEGORIES)
        assert set(b["per_category"]["Fear"]) == {"label_kappa", "alpha", "icc"}
    entropies = [b["blend_entropy"] for b in results["blend"]]
    assert entropies == sorted(entropies)
    assert {p: type(v["held"]) for p, v in results["predictions"].items()} == {
        p: bool for p in results["predictions"]
    }
    assert len(results["predictions"]) == 7
    assert "| Elation |" in (workdir / "calibration.md").read_text()
    # Tables and figures also work from the JSON on disk (where NaN became null).
    assert "| Elation |" in study.calibration_table(results)
    assert "P7_idiosyncratic_scales_cross_at_high_blend" in study.results_table(results)
    from emojax.studies import label_vs_intensity_figures as figures

    for make in figures.FIGURES.values():
        assert make(results).axes


def test_argmax_labels_break_ties_at_random_and_mark_no_emotion():
    r = jnp.zeros((2, 3, 40), jnp.int32).at[:, 0, 5].set(4).at[:, 0, 9].set(4).at[:, 1, 7].set(2)
    picks = np.stack([np.asarray(study.argmax_labels(jax.random.key(i), r)) for i in range(40)])
    assert set(np.unique(picks[:, :, 0])) == {5, 9}
    assert np.all(picks[:, :, 1] == 7) and np.all(picks[:, :, 2] == study.NO_EMOTION)


def test_identical_raters_agree_perfectly():
    # Distinct values per item, so that no tie leaves the argmax to chance.
    one = jax.vmap(lambda key: jax.random.permutation(key, 40))(jax.random.split(jax.random.key(0), 50))
    same = jnp.repeat(one[None], 3, axis=0)
    labels = study.argmax_labels(jax.random.key(1), same)
    assert float(study.label_kappa(labels)) == pytest.approx(1.0)
    assert float(study.pooled_alpha(same)) == pytest.approx(1.0)
    assert float(study.pooled_icc(same)) == pytest.approx(1.0)


def test_the_study_can_reach_either_conclusion():
    """Calibrated raters: intensities are more reliable than the label. Raters who differ
    only in how they use the scale (bias, gain): the label, blind to that, is more reliable;
    take the scale differences away and intensities are perfect again."""
    cfg = study.Config(num_items=400, n_bootstrap=10, num_panels=2)
    key_items, key_panel = jax.random.split(jax.random.key(1))

    def measure(rater_cfg=None):
        world = study._world(cfg, temperature=0.1, rater_cfg=rater_cfg)
        out, _ = study.measure(cfg, key_items, world, key_panel, study.FORMAT_STATS)
        return {name: v["estimate"] for name, v in out.items()}

    calibrated = measure()
    assert calibrated["pooled_alpha"] > calibrated["label_kappa"]
    exact = dict(noise_scale=0.0, absent_sd=0.0, inattentive_share=0.0, anchor_strength=0.0)
    scale_use = measure(raters.RaterConfig(**exact, bias_sd=1.0, gain_sd=0.3))
    assert scale_use["label_kappa"] > scale_use["pooled_alpha"] + 0.05
    assert scale_use["label_kappa"] > scale_use["pooled_icc"] + 0.05
    identical = measure(raters.RaterConfig(**exact, bias_sd=0.0, gain_sd=0.0))
    assert identical["pooled_alpha"] == pytest.approx(1.0) and identical["pooled_alpha"] >= identical["label_kappa"]


def test_bad_study_config_names_the_field():
    with pytest.raises(ValueError, match="Config.num_items"):
        study.Config(num_items=3)
    with pytest.raises(ValueError, match="Config.blend_temperatures"):
        study.Config(blend_temperatures=(1.0, 0.0, 2.0))


def _ci(e, half=0.01):
    return {"estimate": e, "low": e - half, "high": e + half}


def _row(kappa, alpha, icc=None, cat=None):
    return {"label_kappa": _ci(kappa), "pooled_alpha": _ci(alpha), "pooled_icc": _ci(alpha if icc is None else icc),
            "mean_category_alpha": _ci(alpha if cat is None else cat)}  # fmt: skip


def test_prediction_scores_follow_the_numbers():
    """Each verdict flips when the numbers it rests on do."""
    labels_win = [_row(0.6, 0.3), _row(0.2, 0.31)]
    intensities_win = [_row(0.3, 0.5), _row(0.29, 0.52)]
    noisy_labels_win, noisy_intensities_win = _row(0.5, 0.1), _row(0.1, 0.4)
    a = study.score_predictions(labels_win, noisy_labels_win, labels_win)
    b = study.score_predictions(intensities_win, noisy_intensities_win, intensities_win)
    for name in ("P1_label_kappa_falls_with_blend", "P2_intensity_agreement_moves_less", "P4_label_at_or_above_intensity_at_low_blend",
                 "P6_idiosyncratic_scales_label_at_or_above_intensity_at_low_blend", "P7_idiosyncratic_scales_cross_at_high_blend"):
        assert a[name]["held"] != b[name]["held"], name
    assert a["P5_noisy_raters_reverse_the_headline"]["held"] and not b["P5_noisy_raters_reverse_the_headline"]["held"]
    # P5 needs every intensity measure beaten: a better ICC alone fails it.
    c = study.score_predictions(labels_win, _row(0.5, 0.1, icc=0.6), labels_win)
    assert not c["P5_noisy_raters_reverse_the_headline"]["held"]
    # P3 needs disjoint CIs.
    assert study.score_predictions(intensities_win, noisy_labels_win, intensities_win)["P3_intensity_beats_label_at_high_blend"]["held"]
    close = [_row(0.3, 0.5), _row(0.3, 0.305)]
    assert not study.score_predictions(close, noisy_labels_win, close)["P3_intensity_beats_label_at_high_blend"]["held"]

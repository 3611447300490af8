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
    for name in ("config.json", "results.json", "calibration.md", "summary.md", "label_vs_intensity.png", "calibration.png", "noise_knob.png"):
        assert (workdir / name).stat().st_size > 0, name
    assert [b["blend_temperature"] for b in results["blend"]] == [0.1, 1.0, 4.0]
    assert set(results["calibration"]["per_category"]) == set(taxonomy.CATEGORIES)
    for b in results["blend"] + results["idiosyncratic_blend"]:
        for key in ("label_kappa", "pooled_alpha", "pooled_icc", "mean_category_alpha"):
            ci = b[key]
            assert ci["low"] <= ci["estimate"] <= ci["high"], (key, ci)
    entropies = [b["blend_entropy"] for b in results["blend"]]
    assert entropies == sorted(entropies)
    assert {p: type(v["held"]) for p, v in results["predictions"].items()} == {
        p: bool for p in results["predictions"]
    }
    assert len(results["predictions"]) == 7
    assert "| Elation |" in (workdir / "calibration.md").read_text()


def test_argmax_labels_break_ties_at_random_and_mark_no_emotion():
    r = jnp.zeros((2, 3, 40), jnp.int32).at[:, 0, 5].set(4).at[:, 0, 9].set(4).at[:, 1, 7].set(2)
    picks = np.stack([np.asarray(study.argmax_labels(jax.random.key(i), r)) for i in range(40)])
    assert set(np.unique(picks[:, :, 0])) == {5, 9}
    assert np.all(picks[:, :, 1] == 7) and np.all(picks[:, :, 2] == study.NO_EMOTION)


def test_identical_raters_agree_perfectly():
    # Distinct values per item, so that no tie leaves the argmax to chance.
    one = jax.vmap(lambda k: jax.random.permutation(k, 40))(jax.random.split(jax.random.key(0), 50))
    same = jnp.repeat(one[None], 3, axis=0)
    labels = study.argmax_labels(jax.random.key(1), same)
    assert float(study.label_kappa(labels)) == pytest.approx(1.0)
    assert float(study.pooled_alpha(same)) == pytest.approx(1.0)
    assert float(study.pooled_icc(same)) == pytest.approx(1.0)


def test_the_study_can_reach_either_conclusion():
    """Calibrated raters: intensities are more reliable than the label. Careful raters with
    idiosyncratic scales and one dominant emotion: the label is at least as reliable."""
    cfg = study.Config(num_items=400, n_bootstrap=10)
    key = jax.random.key(1)
    calibrated = study.compare_formats(
        cfg, key, study._world(cfg, temperature=0.1), raters.sample_panel(key, cfg.world.raters)
    )
    idio_cfg = cfg.idiosyncratic_raters
    careful = study.compare_formats(
        cfg, key, study._world(cfg, temperature=0.1, rater_cfg=idio_cfg), raters.sample_panel(key, idio_cfg)
    )
    est = lambda d, k: d[k]["estimate"]  # noqa: E731
    assert est(calibrated, "pooled_alpha") > est(calibrated, "label_kappa")
    assert est(careful, "label_kappa") >= est(careful, "pooled_alpha")


def test_bad_study_config_names_the_field():
    with pytest.raises(ValueError, match="Config.num_items"):
        study.Config(num_items=3)
    with pytest.raises(ValueError, match="Config.blend_temperatures"):
        study.Config(blend_temperatures=(1.0, 0.0, 2.0))

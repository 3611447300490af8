import dataclasses
import glob
import json
import os
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emojax import tracking
from emojax.models import get_head
from emojax import checkpoint
from emojax.train import loop
from emojax.train.config import PRESETS, TrainConfig
from emojax.train.estimator import load_estimator, run
from experiments import train_estimator


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="session")
def smoke_cfg(data_dir):
    return dataclasses.replace(PRESETS["smoke"], data_dir=data_dir)


@pytest.fixture(scope="session")
def smoke_run(smoke_cfg, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("smoke"))
    return workdir, run(smoke_cfg, workdir, progress=False)


def test_every_preset_validates():
    assert {"smoke", "tiny", "default"} <= set(PRESETS)
    with pytest.raises(ValueError, match="TrainConfig.target"):
        TrainConfig(target="median")
    with pytest.raises(ValueError, match="TrainConfig.head"):
        TrainConfig(head="poisson")


def test_eval_json_has_the_figures(smoke_run):
    workdir, results = smoke_run
    on_disk = json.loads(open(os.path.join(workdir, "eval.json")).read())
    for key in ("spearman_mean", "pearson_mean", "mae_mean", "rmse_mean", "kappa_qw_model_mean", "kappa_qw_human_mean", "alpha_human_mean"):
        assert isinstance(on_disk[key], float), key
        low, high = on_disk[f"{key}_ci"]
        assert low <= high
    assert set(on_disk["model"]["per_category"]) >= {"Amusement", "Jealousy & Envy"}
    assert set(on_disk["baselines"]) == {"bag_of_words", "single_label"}
    assert on_disk["kappa_qw_human_mean"] > 0.2  # raters agree; the smoke model barely trained


def _final_state(workdir, cfg):
    built = loop.init(cfg)
    state, meta = checkpoint.restore(checkpoint.manager(workdir, cfg.keep_checkpoints), built.state)
    return state, meta


def test_stop_and_resume_equals_an_uninterrupted_run(smoke_cfg, tmp_path):
    cfg = dataclasses.replace(smoke_cfg, baselines=False)
    whole, parts = str(tmp_path / "whole"), str(tmp_path / "parts")
    assert run(cfg, whole, progress=False) is not None
    assert run(cfg, parts, stop_after_steps=cfg.steps // 2, progress=False) is None
    _, meta = _final_state(parts, cfg)
    assert meta["step"] == cfg.steps // 2 and meta["data_position"] == cfg.steps // 2
    assert run(cfg, parts, progress=False) is not None
    a, meta_a = _final_state(whole, cfg)
    b, meta_b = _final_state(parts, cfg)
    assert meta_a["step"] == meta_b["step"] == cfg.steps
    key_free = lambda x: jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x  # noqa: E731
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert np.array_equal(np.asarray(key_free(x)), np.asarray(key_free(y)))
    rows = tracking.read_metrics(parts)
    assert rows[-1]["step"] == cfg.steps


def test_same_seed_same_result(smoke_cfg, smoke_run, tmp_path):
    workdir, _ = smoke_run
    again = str(tmp_path / "again")
    run(dataclasses.replace(smoke_cfg), again, progress=False)
    for x, y in zip(jax.tree.leaves(_final_state(workdir, smoke_cfg)[0]), jax.tree.leaves(_final_state(again, smoke_cfg)[0])):
        if not jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            assert np.array_equal(np.asarray(x), np.asarray(y))


def test_load_estimator_is_a_pure_jittable_function(smoke_run):
    workdir, _ = smoke_run
    predict = load_estimator(workdir)
    tokens = jnp.ones((3, 64), jnp.int32).at[:, 10:].set(0)
    out = jax.jit(predict)(tokens, tokens != 0)
    assert out.shape == (3, 40) and float(out.min()) >= 0 and float(out.max()) <= 7
    np.testing.assert_allclose(out, predict(tokens, tokens != 0), atol=1e-5)
    scanned = jax.lax.map(lambda t: predict(t[None], t[None] != 0)[0], tokens)
    np.testing.assert_allclose(scanned, out, atol=1e-5)


def test_an_architecture_registered_outside_emojax_trains(smoke_cfg, tmp_path, monkeypatch):
    pkg = tmp_path / "outside_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(textwrap.dedent('''
        import dataclasses
        import jax.numpy as jnp
        from flax import nnx
        from emojax.models import registry

        @registry.register_architecture("outside_mean_embed")
        class MeanEmbed(nnx.Module):
            @dataclasses.dataclass(frozen=True)
            class Config:
                dim: int = 16

            def __init__(self, cfg, outputs_per_category, *, rngs):
                self.outputs = outputs_per_category
                self.embed = nnx.Embed(300, cfg.dim, rngs=rngs)
                self.out = nnx.Linear(cfg.dim, 40 * outputs_per_category, rngs=rngs)

            def __call__(self, tokens, mask, *, deterministic=True):
                w = mask.astype(jnp.float32)[..., None]
                pooled = jnp.sum(self.embed(tokens) * w, -2) / jnp.maximum(jnp.sum(w, -2), 1.0)
                return self.out(pooled).reshape(tokens.shape[0], 40, self.outputs)
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    workdir = str(tmp_path / "run")
    results = train_estimator.main([
        "--preset", "smoke", "--workdir", workdir, "--model", "outside_pkg.nets:MeanEmbed",
        "--set", f"data_dir={smoke_cfg.data_dir}", "--set", "baselines=false",
    ])  # fmt: skip
    assert results is not None and np.isfinite(results["spearman_mean"])
    cfg = json.loads(open(os.path.join(workdir, "config.json")).read())
    assert cfg["architecture"] == "outside_pkg.nets:MeanEmbed" and cfg["train"]["model"] == "outside_pkg.nets:MeanEmbed"
    assert load_estimator(workdir)(jnp.ones((2, 64), jnp.int32), jnp.ones((2, 64), bool)).shape == (2, 40)


def test_unknown_model_names_the_choices(tmp_path):
    never = str(tmp_path / "never")
    with pytest.raises(ValueError, match="unknown model 'transformerz'.*text_transformer"):
        train_estimator.main(["--preset", "smoke", "--workdir", never, "--model", "transformerz"])
    with pytest.raises(ValueError, match="cannot import module 'no_such_pkg.mod'"):
        train_estimator.main(["--preset", "smoke", "--workdir", never, "--model", "no_such_pkg.mod:Net"])
    with pytest.raises(ValueError, match="model_config: TextTransformer.Config has no fields \\['width'\\]"):
        train_estimator.main(["--preset", "smoke", "--workdir", never, "--set", 'model_config={"width": 3}'])
    assert not os.path.exists(never)


def test_tracker_writes_an_offline_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    with tracking.Tracker(str(tmp_path), {"lr": 0.1}, project="emojax-test") as t:
        t.log(1, {"loss": 2.0, "eval/spearman_mean": 0.5})
        t.log(2, {"loss": 1.0})
    assert json.loads((tmp_path / "config.json").read_text()) == {"lr": 0.1}
    assert [r["step"] for r in tracking.read_metrics(str(tmp_path))] == [1, 2]
    (run_file,) = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "run-*.wandb"))
    # wandb-core may still be flushing the file when finish() returns on a loaded machine.
    deadline = time.monotonic() + 30
    while len(history := tracking.wandb_offline_history(run_file)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [h["loss"] for h in history] == [2.0, 1.0]
    assert history[0]["eval/spearman_mean"] == 0.5


def test_heads_are_bounded_and_ordinal_probabilities_ordered():
    raw = jax.random.normal(jax.random.key(0), (5, 40, 7)) * 5
    ordinal = get_head("ordinal")
    pred = ordinal.predict(raw)
    assert float(pred.min()) >= 0 and float(pred.max()) <= 7
    from emojax.models.heads import _cumulative_logits

    assert bool(jnp.all(jnp.diff(_cumulative_logits(raw), axis=-1) <= 0))
    # The ordinal loss on integer targets is the exact negative log-likelihood: it is lowest
    # at the raw outputs that put all probability on the target level.
    target = jnp.full((1, 40), 3.0)
    good = jnp.zeros((1, 40, 7)).at[..., 0].set(3.5 - 0.0).at[..., 1:].set(0.0)
    assert float(ordinal.loss(good, target, jnp.ones(40))) < float(ordinal.loss(-good, target, jnp.ones(40)))
    single = get_head("single_label").predict(jax.random.normal(jax.random.key(1), (4, 40, 2)))
    assert bool(jnp.all(jnp.sum(single > 0, axis=-1) <= 1))
    masked = get_head("regression").loss(jnp.zeros((2, 40, 1)), jnp.full((2, 40), 7.0), jnp.zeros(40).at[0].set(1))
    assert float(masked) == pytest.approx(3.5**2)


def test_embedding_heads_trains_on_the_world_embedding(smoke_cfg, tmp_path):
    cfg = dataclasses.replace(smoke_cfg, model="embedding_heads", model_config={"embed_dim": 256}, baselines=False)
    results = run(cfg, str(tmp_path), progress=False)
    rows = tracking.read_metrics(str(tmp_path))
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses[-1] < losses[0]
    assert np.isfinite(results["spearman_mean"])


def test_target_modes():
    from emojax.train.data import targets

    ratings = jnp.arange(2 * 3 * 40).reshape(2, 3, 40) % 8
    tokens = jnp.ones((2, 5), jnp.int32)
    _, mean = targets({"tokens": tokens, "ratings": ratings}, "mean")
    np.testing.assert_allclose(mean, ratings.mean(1))
    t, rows = targets({"tokens": tokens, "ratings": ratings}, "per_rater")
    assert t.shape == (6, 5) and rows.shape == (6, 40)
    np.testing.assert_array_equal(rows[3], ratings[1, 0])
    _, one = targets({"tokens": tokens, "ratings": ratings}, "rater:2")
    np.testing.assert_array_equal(one, ratings[:, 2])
    with pytest.raises(ValueError, match="only 3 raters"):
        targets({"tokens": tokens, "ratings": ratings}, "rater:3")

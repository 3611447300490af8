"""Train an estimator, evaluate it and its baselines, and load it back as a pure function.

``run(cfg, workdir)`` trains (resuming from the work dir's checkpoints if any), then writes
``eval.json``: the estimator's figures against the latent intensities and the raters, the
baselines' figures (bag of words, single-label head), CIs and per-category values.
``load_estimator(workdir)`` returns ``predict(tokens, mask) -> [batch, 40]``, a pure
function that later code calls inside ``jit``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable

import jax
from flax import nnx

from emojax import checkpoint
from emojax import config as config_lib
from emojax import workdir as workdir_lib
from emojax.models import get_head
from emojax.models.registry import describe, get_architecture
from emojax.tracking import Tracker
from emojax.train import baselines, data, evaluate, loop
from emojax.train.config import TrainConfig



def check(cfg: TrainConfig) -> None:
    """Fail on a bad model, ``model_config`` or real dataset before the work dir is touched.

    A real dataset is built here (into its data dir, atomically; :func:`run` reuses the
    build) so that its sizes can be checked against the model."""
    if data.is_real(cfg):
        from emojax.train import real

        get_architecture(cfg.model)
        loop.resolve_model(real.resolve(cfg, data.real_dataset(cfg).metadata))
    else:
        loop.resolve_model(cfg)


def run(cfg: TrainConfig, workdir: str, *, stop_after_steps: int | None = None, progress: bool = True) -> dict | None:
    """Train and evaluate; returns the ``eval.json`` contents (None if stopped early)."""
    if data.is_real(cfg):  # downloaded data: no latent truth, raters vary per item
        from emojax.train import real

        return real.run(cfg, workdir, stop_after_steps=stop_after_steps, progress=progress)
    loop.resolve_model(cfg)  # a bad model name or model_config fails here, before any I/O
    train_src, test_src = data.sources(cfg)
    test = data.read_all(test_src)
    record = {"train": dataclasses.asdict(cfg), "architecture": describe(get_architecture(cfg.model))}
    with Tracker(workdir, record) as tracker:

        def on_eval(step, built, _tracker):
            pred = evaluate.predict_all(loop.make_predict(built.graphdef, built.state, built.head), test["tokens"])
            return evaluate.quick(pred, test["intensities"])

        built, reached = loop.fit(
            cfg, train_src, workdir, tracker=tracker, stop_after_steps=stop_after_steps, on_eval=on_eval, progress=progress
        )
        if reached < cfg.steps:
            return None
        key = jax.random.key(cfg.seed)
        model_eval = _evaluate(built, test, jax.random.fold_in(key, 0), cfg.n_bootstrap)
        results = {name: model_eval[name] for name in evaluate.MAIN_KEYS}
        results |= {f"{name}_ci": model_eval[f"{name}_ci"] for name in evaluate.MAIN_KEYS}
        results["model"] = model_eval
        results["config"] = record
        if cfg.baselines:
            results["baselines"] = _baselines(cfg, train_src, test, key, progress)
            for name, b in results["baselines"].items():
                results[f"baseline_{name}_spearman_mean"] = b["spearman_mean"]
        tracker.summary({name: results[name] for name in evaluate.MAIN_KEYS})
    config_lib.write_json(os.path.join(workdir, "eval.json"), results)
    return results


def _evaluate(built: loop.Built, test: dict, key, n_bootstrap: int) -> dict:
    """``evaluate.evaluate`` of a trained model on the test split, on both scales."""
    pred, rated = (
        evaluate.predict_all(loop.make_predict(built.graphdef, built.state, built.head, scale), test["tokens"])
        for scale in ("latent", "ratings")
    )
    return evaluate.evaluate(pred, test["intensities"], test["ratings"], key, n_bootstrap, rated=rated)


def _baselines(cfg: TrainConfig, train_src, test: dict, key, progress: bool) -> dict:
    """The bag-of-words ridge (read out like the estimator when it has a rater link) and the
    single-label head on the same architecture."""
    pred, rated = bag_of_words(cfg, train_src, test)
    out = {"bag_of_words": evaluate.evaluate(pred, test["intensities"], test["ratings"], jax.random.fold_in(key, 1), cfg.n_bootstrap, rated=rated)}
    single, _ = loop.fit(
        cfg, train_src, None, head_name="single_label", steps=cfg.baseline_steps or cfg.steps, tag="single_label/", progress=progress
    )
    out["single_label"] = _evaluate(single, test, jax.random.fold_in(key, 2), cfg.n_bootstrap)
    return out


def bag_of_words(cfg: TrainConfig, train_src, test: dict) -> tuple:
    """The bag-of-words ridge fitted on ``cfg``'s training targets, read out like the
    estimator when it has a rater link: its (latent-scale, raters'-scale) predictions on
    ``test``."""
    train = data.read_all(train_src)
    tokens, y = baselines.targets_numpy(train["tokens"], train["ratings"], cfg.target)
    bow = baselines.fit_bow(tokens, y, link=loop.uses_link(cfg, get_head(cfg.head)))
    return bow(test["tokens"])


def train_or_reuse(cfg: TrainConfig, workdir: str, *, progress: bool = True) -> str:
    """Train ``cfg`` into ``workdir``, resume it there, or reuse it when finished; returns
    ``workdir``. Never a run of another config: results would carry the wrong label.

    Raises:
      WorkdirError: ``workdir`` holds a run of another config.
    """
    if os.path.exists(os.path.join(workdir, "config.json")):
        found = {"train": dataclasses.asdict(load_config(workdir))}
        workdir_lib.require_same(workdir, found, {"train": dataclasses.asdict(cfg)})
    if not os.path.exists(os.path.join(workdir, "eval.json")):
        run(cfg, workdir, progress=progress)
    return workdir


def load_config(workdir: str) -> TrainConfig:
    with open(os.path.join(workdir, "config.json")) as f:
        return TrainConfig.from_dict(json.load(f)["train"])


def load_estimator(workdir: str, step: int | None = None, scale: str = "latent") -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The trained estimator of ``workdir`` as a pure ``predict(tokens, mask) -> [batch, 40]``.

    ``scale="latent"`` (default) gives the intensities the text expresses, absent as 0;
    ``"ratings"`` what a rater would say (:mod:`emojax.models.link`). Only parameters are
    kept (no optimizer state). The function closes over them, so it can be called inside
    ``jit``, ``vmap`` and ``lax.scan``.
    """
    cfg = load_config(workdir)
    built = loop.init(cfg)
    restored = checkpoint.restore(checkpoint.manager(workdir, cfg.keep_checkpoints), built.state, step)
    if restored is None:
        raise FileNotFoundError(f"{workdir}: no checkpoint to load (train first)")
    model, _ = nnx.merge(built.graphdef, restored[0])
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    read = loop.reader(built.head, scale)

    def predict(tokens: jax.Array, mask: jax.Array) -> jax.Array:
        m = nnx.merge(graphdef, params, rest)
        return read(m(tokens, mask, deterministic=True))

    model_cfg = loop.resolve_model(cfg)[1]
    # What a caller checks its inputs against: the vocabulary the estimator was trained on
    # and the longest input it reads (None where the architecture has no such limit).
    predict.vocab_size = getattr(model_cfg, "vocab_size", None)
    predict.max_len = getattr(model_cfg, "max_len", None)
    predict.data = cfg.data
    predict.workdir = workdir
    return predict


def load_or_train(spec: str, workdir: str | None, field: str = "estimator") -> tuple[Callable | None, str | None]:
    """``(predict, where)`` for an estimator named by ``spec``: a trained estimator's work
    dir (loaded), a preset of :data:`emojax.train.config.PRESETS` (trained into
    ``workdir/estimator``, or reused from there), or ``""`` (``(None, None)``). ``field``
    names the config field in errors."""
    from emojax import progress
    from emojax.train import config as train_config

    if not spec:
        return None, None
    if os.path.isdir(spec):
        with progress.phase(f"loading the estimator in {spec}"):
            return load_estimator(spec), spec
    if spec not in train_config.PRESETS:
        raise ValueError(f"{field} must be a trained estimator's work dir or one of "
                         f"{sorted(train_config.PRESETS)}, got {spec!r}")  # fmt: skip
    if workdir is None:
        raise ValueError(f"run: an estimator preset ({field}={spec!r}) needs a workdir to train it in")
    where = os.path.join(workdir, "estimator")
    train_or_reuse(dataclasses.replace(train_config.PRESETS[spec], baselines=False), where)
    with progress.phase(f"loading the estimator in {where}"):
        return load_estimator(where), where


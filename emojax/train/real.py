"""Train an estimator on a real dataset (EmoNet-Face HQ, GoEmotions raw) and evaluate it.

    python -m experiments.train_estimator --preset smoke --workdir DIR \\
        --data emonet_face_hq --manual-dir ~/data/emonet-face-hq
    python -m experiments.train_estimator --preset tiny --workdir DIR \\
        --data goemotions_raw --manual-dir ~/data/goemotions

The same loop, heads, rater link and checkpoints as the simulated data
(:mod:`emojax.train.estimator`); what differs is what the data give:

* the input: precomputed image embeddings train ``embedding_heads`` (``input="embedding"``,
  ``embed_dim`` from the data), token ids train ``text_transformer`` (``vocab_size`` and
  ``max_len`` from the dataset's tokenizer); :func:`resolve` fills these in and refuses an
  architecture that cannot read the input;
* the targets: raters vary per item and GoEmotions covers 20 of the 40 categories, so the
  loss is masked where no rater rated (:func:`emojax.train.data.target_mask`);
* the reference: no latent truth, so ``eval.json`` scores the test items against their
  human raters (:mod:`emojax.train.evaluate_real`), over the covered categories only.

``eval.json`` has the estimator issue's keys (``spearman_mean`` ... ``alpha_human_mean``,
each with ``_ci``), ``model`` (all figures, per category), ``covered_categories``,
``dataset`` (path, split sizes, bad-row counts), ``baselines`` (the single-label head on
the same architecture; for text the bag of words; a constant at the training mean), and for
EmoNet-Face HQ ``model_annotators``: the model rows of ``hq.csv`` scored the same way.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np
from flax import nnx

from emojax import config as config_lib
from emojax.models.registry import describe, get_architecture
from emojax.tracking import Tracker
from emojax.train import data, evaluate, evaluate_real, loop
from emojax.train.config import ARCHITECTURE, TrainConfig
from emojax.world import language


_READS = {"embedding_heads": "embedding", "text_transformer": "tokens", "bag_of_words": "tokens", "hf_encoder": "tokens"}


def resolve(cfg: TrainConfig, meta: dict) -> TrainConfig:
    """``cfg`` with the architecture's input sizes taken from the dataset's metadata.

    Raises ``ValueError`` for a built-in architecture that cannot read the data's input, or a
    ``model_config`` size that does not fit (a larger ``vocab_size`` / ``max_len`` is fine).
    An architecture from outside emojax is left for the user to size.
    """
    name = getattr(get_architecture(cfg.model), "registry_name", None)
    if name not in _READS:
        return cfg
    want = meta["input"]
    if _READS[name] != want:
        what = f"precomputed embeddings [batch, {meta.get('embed_dim')}]" if want == "embedding" else "token ids"
        raise ValueError(f"--data {cfg.data} gives {what}; --model {ARCHITECTURE[cfg.data]} reads them, {cfg.model} does not")
    if name == "embedding_heads":
        sizes = {"input": "embedding", "embed_dim": int(meta["embed_dim"])}
    elif name == "text_transformer":
        sizes = {"vocab_size": int(meta["vocab_size"]), "max_len": int(meta["max_len"])}
    elif name == "hf_encoder":  # the checkpoint's own ids: the dataset's shift comes off
        sizes = {"vocab_size": int(meta["vocab_size"]), "token_id_offset": int(meta.get("token_id_offset", 0))}
    else:
        sizes = {"vocab_size": int(meta["vocab_size"])}
    mc = dict(cfg.model_config)
    for name, v in sizes.items():
        if name in mc and not (mc[name] == v or (name in ("vocab_size", "max_len") and isinstance(mc[name], int) and mc[name] > v)):
            raise ValueError(f"model_config.{name}={mc[name]!r} does not fit --data {cfg.data}, which needs {v!r}")
        mc.setdefault(name, v)
    return dataclasses.replace(cfg, model_config=mc)


def run(cfg: TrainConfig, workdir: str, *, stop_after_steps: int | None = None, progress: bool = True) -> dict | None:
    """Train on ``cfg.data`` (built from ``cfg.manual_dir``) and evaluate; ``eval.json`` contents."""
    get_architecture(cfg.model)  # a bad model name fails before any I/O
    built_data = data.real_dataset(cfg)
    meta = built_data.metadata
    cfg = resolve(cfg, meta)
    loop.resolve_model(cfg)
    train_src = built_data.source(f"train[:{cfg.max_train_examples}]" if cfg.max_train_examples else "train")
    if cfg.max_train_examples and len(train_src) < cfg.max_train_examples:
        raise ValueError(f"max_train_examples={cfg.max_train_examples} but {cfg.data} has {len(train_src)} training items")
    test = data.read_all(built_data.source("test"))
    inputs = data.model_inputs(test)
    covered = list(meta["covered_categories"])
    dataset = {
        "name": cfg.data, "path": built_data.path, "split_sizes": meta["split_sizes"],
        "bad_rows": meta["bad_rows"], "counts": meta["counts"], "max_raters": meta["max_raters"],
    }  # fmt: skip
    record = {"train": dataclasses.asdict(cfg), "architecture": describe(get_architecture(cfg.model)), "dataset": dataset}
    with Tracker(workdir, record) as tracker:
        predictors: dict = {}

        def on_eval(step, built, _tracker):
            rated, _ = _predict(built, inputs, predictors)
            return evaluate_real.quick(rated, test["ratings"], covered)

        built, reached = loop.fit(
            cfg, train_src, workdir, tracker=tracker, stop_after_steps=stop_after_steps, on_eval=on_eval, progress=progress
        )
        if reached < cfg.steps:
            return None
        key = jax.random.key(cfg.seed)
        model_eval = _evaluate(built, inputs, test["ratings"], covered, jax.random.fold_in(key, 0), cfg.n_bootstrap, predictors)
        results = {name: model_eval[name] for name in evaluate.MAIN_KEYS}
        results |= {f"{name}_ci": model_eval[f"{name}_ci"] for name in evaluate.MAIN_KEYS}
        results["model"] = model_eval
        results["covered_categories"] = covered
        results["dataset"] = dataset
        results["config"] = record
        if cfg.baselines:
            results["baselines"] = _baselines(cfg, meta, train_src, inputs, test["ratings"], covered, key, progress)
            for name, b in results["baselines"].items():
                results[f"baseline_{name}_spearman_mean"] = b["spearman_mean"]
        if "model_ratings" in test and test["model_ratings"].shape[1]:
            results["model_annotators"] = _annotators(meta["model_annotators"], test, covered)
        tracker.summary({name: results[name] for name in evaluate.MAIN_KEYS})
    config_lib.write_json(os.path.join(workdir, "eval.json"), results)
    return results


def _predict(built: loop.Built, inputs: np.ndarray, cache: dict | None = None, batch_size: int = 256):
    """(raters'-scale, latent) predictions [N, 40], in fixed-size batches (the last padded).

    One jitted function of the state per (graph, head), kept in ``cache``: the state is an
    argument, so evaluating again after more steps does not compile again.
    """
    cache = {} if cache is None else cache
    key = (built.graphdef, built.head.name)
    if key not in cache:
        graphdef, head = built.graphdef, built.head

        @jax.jit
        def predict(state, x, mask):
            model, _ = nnx.merge(graphdef, state)
            raw = model(x, mask, deterministic=True)
            return head.ratings(raw), head.predict(raw)

        cache[key] = predict
    predict = cache[key]
    rated, latent = [], []
    for i in range(0, len(inputs), batch_size):
        chunk = inputs[i : i + batch_size]
        n = len(chunk)
        if n < batch_size:
            chunk = np.concatenate([chunk, np.zeros((batch_size - n,) + chunk.shape[1:], chunk.dtype)])
        r, lat = predict(built.state, chunk, language.mask(chunk))
        rated.append(np.asarray(r)[:n])
        latent.append(np.asarray(lat)[:n])
    return np.concatenate(rated), np.concatenate(latent)


def _evaluate(built: loop.Built, inputs, ratings, covered, key, n_bootstrap: int, cache: dict | None = None) -> dict:
    rated, latent = _predict(built, inputs, cache)
    return evaluate_real.evaluate(rated, latent, ratings, covered, key, n_bootstrap)


def _baselines(cfg: TrainConfig, meta: dict, train_src, inputs, ratings, covered, key, progress: bool) -> dict:
    """The single-label head on the same architecture; the bag of words (text); the training mean."""
    steps = cfg.baseline_steps or cfg.steps
    out = {}
    single, _ = loop.fit(cfg, train_src, None, head_name="single_label", steps=steps, tag="single_label/", progress=progress)
    out["single_label"] = _evaluate(single, inputs, ratings, covered, jax.random.fold_in(key, 2), cfg.n_bootstrap)
    if meta["input"] == "tokens":
        bow_cfg = dataclasses.replace(cfg, model="bag_of_words", model_config={"vocab_size": int(meta["vocab_size"])})
        bow, _ = loop.fit(bow_cfg, train_src, None, steps=steps, tag="bag_of_words/", progress=progress)
        out["bag_of_words"] = _evaluate(bow, inputs, ratings, covered, jax.random.fold_in(key, 1), cfg.n_bootstrap)
    train = data.read_all(train_src)
    mean = np.asarray(data.targets(train, "mean")[1]).mean(axis=0)
    const = np.broadcast_to(mean[None, :], (len(ratings), mean.shape[0]))
    out["train_mean"] = evaluate_real.evaluate(const, const, ratings, covered, key, 0, with_ci=False)
    return out


def _annotators(names: list[str], test: dict, covered: list[str]) -> dict:
    """Each model annotator of ``hq.csv`` scored like the estimator, on the test images it rated (no CIs)."""
    out = {}
    for m, name in enumerate(names):
        rated = test["model_ratings"][:, m, 0] >= 0
        if rated.sum() < 2:
            out[name] = {"num_items": int(rated.sum())}
            continue
        values = test["model_ratings"][rated, m]
        out[name] = evaluate_real.evaluate(values, values, test["ratings"][rated], covered, jax.random.key(0), 0, with_ci=False)
    return out

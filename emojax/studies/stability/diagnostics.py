"""Telling response types apart by consistency, and training on what the diagnostic keeps.

Why: the survey literature's remedy for non-attitudes and constructed preferences is to
ask again under equivalent conditions and keep what holds (``findings.md`` section 1).
This module measures how well that works when the truth is known:

* classify each annotation (annotator x item) from ``r`` identical re-asks (same order,
  same wording) and one frame swap: ``non_attitude`` if the identical asks disagree;
  ``constructed`` if they agree but the swapped frame gives the other answer; ``genuine``
  otherwise. Measurement artifacts have no class of their own: they are consistent answers
  to another question, and the study reports where they end up;
* precision and recall of each class against the simulator's types, beside chance (a
  classifier that assigns the same class shares at random has precision equal to the
  class's prevalence and recall equal to the share it assigns);
* reward models (Bradley-Terry on binary preferences) trained on pooled labels, on the
  labels the diagnostic calls genuine (``consistency``, from 2 re-asks and a swap), and on
  the labels of an ask with "no preference" offered, abstentions dropped (``abstain``).

One function of (key, items), vmapped over seeds like :mod:`.condition`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from emojax.studies.stability import condition, reward_models
from emojax.studies.stability.reply_pairs import Items
from emojax.world import annotators

__all__ = ["CLASSES", "FILTERS", "classify", "run_diagnostics"]

CLASSES = ("genuine", "non_attitude", "constructed")
FILTERS = ("pooled", "consistency", "abstain")
_TRUE = {"genuine": annotators.GENUINE, "non_attitude": annotators.NON_ATTITUDE, "constructed": annotators.CONSTRUCTED}


def classify(asks: jax.Array, swapped: jax.Array) -> jax.Array:
    """``[n, J]`` class index (order of :data:`CLASSES`) from identical asks ``[r + 1, n, J]``
    and the swapped-frame answer ``[n, J]``."""
    consistent = jnp.all(asks == asks[:1], axis=0)
    moved = swapped != asks[0]
    return jnp.where(~consistent, 1, jnp.where(moved, 2, 0)).astype(jnp.int32)


def _scores(pred: jax.Array, types: jax.Array) -> dict[str, Any]:
    out = {}
    for i, name in enumerate(CLASSES):
        truth = types == _TRUE[name]
        said = pred == i
        hit = jnp.sum(said & truth)
        out[name] = {"precision": hit / jnp.maximum(jnp.sum(said), 1), "recall": hit / jnp.maximum(jnp.sum(truth), 1),
                     "prevalence": jnp.mean(truth), "assigned": jnp.mean(said)}  # fmt: skip
    artifact = types == annotators.ARTIFACT
    out["artifact_classified_as"] = {
        name: jnp.sum(artifact & (pred == i)) / jnp.maximum(jnp.sum(artifact), 1) for i, name in enumerate(CLASSES)
    }
    return out


def run_diagnostics(key: jax.Array, train: Items, test: Items, seeds: int, judgments: int,
                    acfg: annotators.AnnotatorConfig, rm_cfg: reward_models.RewardModelConfig,
                    reasks: tuple[int, ...] = (1, 2, 4), filter_reasks: int = 2) -> dict[str, Any]:  # fmt: skip
    """Per-seed classification scores at each number of re-asks, and per-filter reward-model
    gold accuracy and held-out rewards (``[S, n_test, 2]``)."""
    if filter_reasks not in reasks:
        raise ValueError(f"run_diagnostics: filter_reasks={filter_reasks} must be one of reasks={reasks}")
    return _run(key, train, test, acfg, rm_cfg, seeds=seeds, judgments=judgments, reasks=tuple(reasks),
                filter_reasks=filter_reasks)  # fmt: skip


@functools.partial(jax.jit, static_argnames=("seeds", "judgments", "reasks", "filter_reasks"))
def _run(key, train, test, acfg, rm_cfg, *, seeds, judgments, reasks, filter_reasks):
    n = train.need.shape[0]
    r_max = max(reasks)

    def one(key):
        ks = jax.random.split(key, 6)
        resp = annotators.sample_respondents(ks[0], n, judgments, acfg)
        frame = annotators.random_frame(ks[1], n, judgments)
        asks = jnp.stack([annotators.ask(kk, resp, train.pair, frame, acfg).binary
                          for kk in jax.random.split(ks[2], r_max + 1)])  # fmt: skip
        swapped = annotators.ask(ks[3], resp, train.pair, annotators.swap(frame), acfg).binary
        out = {"by_reasks": {str(r): _scores(classify(asks[: r + 1], swapped), resp.types) for r in reasks}}
        keep = classify(asks[: filter_reasks + 1], swapped) == 0
        first = annotators.Answers(asks[0], asks[0])
        offered = annotators.ask(ks[4], resp, train.pair, frame, acfg, abstain=True)
        sets = {"pooled": (first, None), "consistency": (first, keep), "abstain": (offered, None)}
        out["filters"] = {}
        for (name, (answers, mask)), kk in zip(sets.items(), jax.random.split(ks[5], len(sets))):
            data, loss = condition.training_data("preference_binary", train, None, answers, acfg.scale_points, mask)
            rewards, _ = reward_models.fit_predict(kk, data, test.features, rm_cfg, loss)
            r = reward_models.aggregate(rewards, "mean")
            kept = jnp.sum(data.weight) / n
            out["filters"][name] = {"gold_accuracy": condition.gold_accuracy(r, test.utility), "rewards": r,
                                    "items_kept": kept,
                                    "labels_kept": jnp.mean((answers.binary != annotators.ABSTAIN) &
                                                            (True if mask is None else mask))}  # fmt: skip
        return out

    return jax.vmap(one)(jax.random.split(key, seeds))

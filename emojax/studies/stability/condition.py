"""One condition of the study, all seeds in one program: measure, check the signals, train
and score the reward models of every cell.

Why one function: the headline table and every point of the phase diagram are the same
computation under different world, annotator and rater settings. :func:`run_condition`
takes the items (training pairs and held-out pairs, fixed across seeds, so that rewards of
different seeds score the same replies), draws each seed's judges and judgments (a seed is
a fresh measurement: new annotators, new raters, new asks, new reward-model inits), and
returns per-seed arrays. Seeds are ``jax.vmap``-ed; nothing here leaves the device until
the end. The one exception is the estimator: its reads of the users' utterances run
before the program, seed by seed (:func:`read_estimator`), because a network vmapped over
every seed holds every seed's activations at once (over 10 GB at the default preset).

Per cell and seed it returns the signal metrics of :mod:`.signals` and, per aggregation of
the reward-model ensemble, ``gold_accuracy`` (held-out pairs whose gold utilities differ:
the share ranked as gold ranks them, ties in reward count half), ``ece`` (Bradley-Terry
cells: expected calibration error of ``sigmoid(r_A - r_B)`` against "A has the higher gold
utility", 10 equal-width bins), ``calibration_slope`` (graded emotion cells, regressions:
:func:`calibration_slope` against a fresh measurement of the held-out replies) and the held-out rewards themselves, from which the study
computes seed-to-seed Spearman and Kendall.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from emojax import progress
from emojax.studies.stability import measure, reward_models, signals
from emojax.studies.stability.reply_pairs import Items, WorldConfig
from emojax.world import annotators, raters

__all__ = ["EstimatorReadings", "Measurement", "calibration_slope", "ece", "gold_accuracy", "read_estimator", "run_condition",
           "training_data"]


class Measurement(NamedTuple):
    """One seed's three asks of both signals on the training items."""

    pref: tuple[annotators.Answers, annotators.Answers, annotators.Answers]  # ask, re-ask, swap
    emo: tuple[measure.EmotionJudgments, measure.EmotionJudgments, measure.EmotionJudgments]
    respondents: annotators.Respondents
    panel: raters.RaterPanel


class EstimatorReadings(NamedTuple):
    """The estimator's reads in one condition, stacked over seeds: two asks of the training
    items, and one of the held-out items (``estimator_graded``'s calibration slope)."""

    asks: tuple[measure.EmotionJudgments, measure.EmotionJudgments]
    held: measure.EmotionJudgments | None


def _seed_keys(key: jax.Array, cells: tuple[str, ...]) -> tuple[jax.Array, jax.Array, dict[str, jax.Array]]:
    """One seed's keys: its measurement, the estimator's asks, and one per cell. Both the
    compiled program and :func:`read_estimator` derive them here, so the estimator reads
    what it would have read inside the program."""
    key_measure, key_rm, key_est = jax.random.split(key, 3)
    return key_measure, key_est, dict(zip(cells, jax.random.split(key_rm, len(cells))))


_read = jax.jit(measure.read_emotion, static_argnames=("predict", "judgments"))


def read_estimator(key: jax.Array, train: Items, test: Items, predict, world: WorldConfig, *, seeds: int,
                   judgments: int, cells: tuple[str, ...]) -> EstimatorReadings:  # fmt: skip
    """The estimator's reads for :func:`run_condition` with the same ``key`` and ``cells``,
    one seed at a time (peak memory: one chunk of renderings, not one per seed)."""
    per_seed = []
    with progress.phase("the estimator reads the users' utterances", seeds, unit="seeds") as bar:
        for key_seed in jax.random.split(key, seeds):
            _, key_est, cell_keys = _seed_keys(key_seed, cells)
            asks = tuple(_read(k, train, predict, world, judgments) for k in jax.random.split(key_est, 2))
            held = _read(jax.random.fold_in(cell_keys["estimator_graded"], 1), test, predict, world, judgments) \
                if "estimator_graded" in cells else None  # fmt: skip
            per_seed.append(jax.block_until_ready(EstimatorReadings(asks, held)))
            bar.update()
    return jax.tree.map(lambda *x: jnp.stack(x), *per_seed)


def measure_seed(key: jax.Array, items: Items, judgments: int, acfg: annotators.AnnotatorConfig,
                 rcfg: raters.RaterConfig, reask_new_order: bool, shares: jax.Array | None = None) -> Measurement:  # fmt: skip
    """Ask, re-ask and frame-swapped ask of J annotators and J raters on every item.

    A re-ask keeps the judges and the wording; ``reask_new_order`` draws the pair order anew
    (a later session), else the order is repeated exactly. Raters keep their first item on
    a re-ask and get another one under the swap.
    """
    ks = jax.random.split(key, 10)
    n = items.need.shape[0]
    resp = annotators.sample_respondents(ks[0], n, judgments, acfg, shares)
    frame = annotators.random_frame(ks[1], n, judgments)
    reframe = annotators.random_frame(ks[2], n, judgments) if reask_new_order else frame
    pref = (measure.ask_preference(ks[3], items, resp, frame, acfg), measure.ask_preference(ks[4], items, resp, reframe, acfg),
            measure.ask_preference(ks[5], items, resp, annotators.swap(frame), acfg))  # fmt: skip
    panel = raters.sample_panel(ks[6], rcfg)
    first, other = jax.random.randint(ks[7], (2, rcfg.num_raters), 0, 3 * n)
    emo = tuple(measure.rate_emotion(key, items, panel, rcfg, f) for key, f in zip(jax.random.split(ks[8], 3), (first, first, other)))
    return Measurement(pref, emo, resp, panel)


def training_data(cell: str, items: Items, emo: measure.EmotionJudgments, pref: annotators.Answers,
                  scale_points: int, keep: jax.Array | None = None) -> tuple[reward_models.Data, str]:  # fmt: skip
    """The reward-model data of ``cell`` from one ask, and its loss.

    ``keep`` ``[n, J]`` drops individual judgments (filtered training sets); abstentions are
    always dropped.
    """
    if cell.startswith("preference"):
        given = pref.binary != annotators.ABSTAIN
        keep = given if keep is None else given & keep
        if cell == "preference_binary":
            p = (pref.binary > 0).astype(jnp.float32)
        else:
            p = (pref.graded.astype(jnp.float32) + scale_points) / (2 * scale_points)
        kept = keep.astype(jnp.float32)
        count = jnp.sum(kept, axis=1)
        target = jnp.sum(p * kept, axis=1) / jnp.maximum(count, 1)
        return reward_models.Data(items.features, target, (count > 0).astype(jnp.float32)), "bt"
    values = emo.graded if cell.endswith("graded") else emo.binary  # [n, J, 2]
    kept = jnp.ones(values.shape[:2]) if keep is None else keep.astype(jnp.float32)
    target = jnp.sum(values * kept[..., None], axis=1) / jnp.maximum(jnp.sum(kept, axis=1), 1)[:, None]  # [n, 2]
    weight = jnp.broadcast_to((jnp.sum(kept, axis=1) > 0).astype(jnp.float32)[:, None], target.shape)
    x = items.features.reshape(-1, items.features.shape[-1])
    if cell.endswith("graded"):
        target = (target - jnp.mean(target)) / jnp.maximum(jnp.std(target), 1e-6)
        return reward_models.Data(x, target.reshape(-1), weight.reshape(-1)), "regression"
    return reward_models.Data(x, target.reshape(-1), weight.reshape(-1)), "logistic"


def gold_accuracy(reward: jax.Array, utility: jax.Array) -> jax.Array:
    """Share of pairs ``[n, 2]`` with different gold utilities that ``reward`` orders as gold
    does (equal rewards count half)."""
    du = utility[:, 0] - utility[:, 1]
    dr = reward[:, 0] - reward[:, 1]
    hit = jnp.where(dr == 0, 0.5, (jnp.sign(dr) == jnp.sign(du)).astype(jnp.float32))
    w = (du != 0).astype(jnp.float32)
    return jnp.sum(hit * w) / jnp.maximum(jnp.sum(w), 1)


def ece(logit: jax.Array, outcome: jax.Array, weight: jax.Array, bins: int = 10) -> jax.Array:
    """Expected calibration error of probabilities ``sigmoid(logit)`` for 0/1 ``outcome``."""
    p = jax.nn.sigmoid(logit)
    b = jnp.minimum((p * bins).astype(jnp.int32), bins - 1)
    onehot = jax.nn.one_hot(b, bins) * weight[:, None]
    count = jnp.sum(onehot, axis=0)
    gap = jnp.abs(jnp.sum(onehot * p[:, None], axis=0) - jnp.sum(onehot * outcome[:, None], axis=0))
    return jnp.sum(gap) / jnp.maximum(jnp.sum(count), 1)


def calibration_slope(pred: jax.Array, train_target: jax.Array, test_target: jax.Array) -> jax.Array:
    """Calibration slope of a regression reward model: the least-squares slope of the
    held-out measured target on the prediction, with the held-out target standardised by
    the *training* target's mean and sd (the scale the model was fit on). 1: calibrated;
    below 1: predictions too spread out (overfit); above 1: too timid."""
    y = (test_target - jnp.mean(train_target)) / jnp.maximum(jnp.std(train_target), 1e-6)
    p = pred - jnp.mean(pred)
    return jnp.sum(p * (y - jnp.mean(y))) / jnp.maximum(jnp.sum(p * p), 1e-12)


def _score(rewards: jax.Array, loss: str, test: Items, rm_cfg: reward_models.RewardModelConfig) -> dict[str, Any]:
    """Metrics of one cell's ensemble rewards ``[M, n_test, 2]``."""
    du = test.utility[:, 0] - test.utility[:, 1]
    out = {}
    for how in reward_models.AGGREGATIONS:
        r = reward_models.aggregate(rewards, how, rm_cfg.uncertainty_lambda)
        out[how] = {"gold_accuracy": gold_accuracy(r, test.utility), "rewards": r}
    raw = jnp.mean(rewards, axis=0)
    out["mean"]["ece"] = ece(raw[:, 0] - raw[:, 1], (du > 0).astype(jnp.float32), (du != 0).astype(jnp.float32)) \
        if loss == "bt" else jnp.nan  # fmt: skip
    return out


def run_condition(key: jax.Array, train: Items, test: Items, *, seeds: int, judgments: int,
                  annotator_cfg: annotators.AnnotatorConfig, rater_cfg: raters.RaterConfig,
                  reward_model_cfg: reward_models.RewardModelConfig, reask_new_order: bool = True,
                  cells: tuple[str, ...] = measure.CELLS, shares=None, predict=None,
                  world: WorldConfig | None = None) -> dict[str, Any]:  # fmt: skip
    """Per-seed results ``{cell: {"signal": {metric: [S]}, "rm": {aggregation: {...}}}}``
    (rewards ``[S, n_test, 2]``), for ``seeds`` fresh measurements of the same items.

    Compiled once per shape and per static setting (float settings of the world, the
    annotators and the raters are traced, so a sweep over them reuses the program; so is
    ``shares``, the annotators' mixture, which overrides ``annotator_cfg.shares``).

    ``predict`` (a trained estimator, :func:`emojax.train.estimator.load_estimator`) and
    ``world`` (to render the users' utterances) are needed for
    :data:`~emojax.studies.stability.measure.ESTIMATOR_CELLS`; an estimator has no frame,
    so their cross-frame metrics are NaN."""
    if rater_cfg.num_raters != judgments:
        raise ValueError(f"run_condition: raters.num_raters={rater_cfg.num_raters} must equal judgments={judgments} "
                         "(equal judgments per item for both signals)")  # fmt: skip
    unknown = set(cells) - set(measure.CELLS + measure.ESTIMATOR_CELLS)
    if unknown:
        raise KeyError(f"run_condition: unknown cells {sorted(unknown)}; known: {measure.CELLS + measure.ESTIMATOR_CELLS}")
    if set(cells) & set(measure.ESTIMATOR_CELLS) and (predict is None or world is None):
        raise ValueError("run_condition: estimator cells need predict (a trained estimator) and world")
    shares = jnp.asarray(annotator_cfg.shares if shares is None else shares, jnp.float32)
    cells = tuple(cells)
    readings = read_estimator(key, train, test, predict, world, seeds=seeds, judgments=judgments, cells=cells) \
        if set(cells) & set(measure.ESTIMATOR_CELLS) else None  # fmt: skip
    return _run(key, train, test, annotator_cfg, rater_cfg, reward_model_cfg, shares, readings, seeds=seeds,
                judgments=judgments, reask_new_order=reask_new_order, cells=cells)  # fmt: skip


@functools.partial(jax.jit, static_argnames=("seeds", "judgments", "reask_new_order", "cells"))
def _run(key, train, test, acfg, rcfg, rm_cfg, shares, readings, *, seeds, judgments, reask_new_order, cells):
    def one(key, readings):
        key_measure, _, cell_keys = _seed_keys(key, cells)
        m = measure_seed(key_measure, train, judgments, acfg, rcfg, reask_new_order, shares)
        if readings is not None:
            est = [*readings.asks, readings.asks[1]]  # no frame to swap: the "swap" is the re-ask, reported as NaN
        out = {}
        for c, kc in cell_keys.items():
            emo = est if c.startswith("estimator") else m.emo
            values = [measure.pair_values(c, e, p) for e, p in zip(emo, m.pref)]
            abstained = jnp.stack([p.binary == annotators.ABSTAIN for p in m.pref]) if c.startswith("preference") \
                else None  # fmt: skip
            data, loss = training_data(c, train, emo[0], m.pref[0], acfg.scale_points)
            rewards, final_loss = reward_models.fit_predict(kc, data, test.features, rm_cfg, loss)
            sig = signals.signal_metrics(*values, abstained)
            if c.startswith("estimator"):
                sig = {name: (jnp.full_like(v, jnp.nan) if name.startswith("cross_frame") else v) for name, v in sig.items()}
            out[c] = {"signal": sig, "rm": _score(rewards, loss, test, rm_cfg), "final_loss": jnp.mean(final_loss)}
            if c.endswith("graded") and not c.startswith("preference"):  # a regression: its calibration slope
                key_test = jax.random.fold_in(kc, 1)
                held = readings.held if c.startswith("estimator") else measure.rate_emotion(key_test, test, m.panel, rcfg)
                train_target = jnp.mean(emo[0].graded, axis=1).reshape(-1)
                out[c]["rm"]["mean"]["calibration_slope"] = calibration_slope(
                    jnp.mean(rewards, axis=0).reshape(-1), train_target, jnp.mean(held.graded, axis=1).reshape(-1))
        return out

    return jax.vmap(one)(jax.random.split(key, seeds), readings)

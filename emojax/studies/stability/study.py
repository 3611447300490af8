"""The stability study, part one: preference labels versus emotion scores.

    python -m experiments.stability --preset smoke|tiny|default --workdir DIR [--set world.rho=0.3]

Why: the seed's question (``../shared/seed/inquiring-line.txt``) is why, and when, a
user's emotional response is a steadier training signal than a preference label. This
study asks it of a simulated world where every assumption is a parameter: the annotators'
response types (:mod:`emojax.world.annotators`, calibrated to the survey and RLHF
figures), the emotion raters' noise (:mod:`emojax.world.raters`, from EmoNet-Voice's level
to face-like agreement) and ``rho``, how far the user's emotion follows what is good for
them (:mod:`.reply_pairs`). :func:`run`

1. draws training and held-out items (pairs of replies to simulated users), and reports the
   realised Spearman between emotion response and gold utility for every ``rho`` swept;
2. runs the defaults (:func:`.condition.run_condition`): every cell of the 2x2
   {emotion, preference} x {binary, graded} at equal judgments per item, over ``seeds``
   fresh measurements; signal stability (test-retest, ICC(2,1), cross-frame), reward-model
   stability (seed-to-seed Spearman and Kendall of held-out rewards), gold accuracy and
   calibration, per ensemble aggregation, each with a 95% t-interval over seeds;
3. compares signals by the paired seed difference (a win when its 95% CI excludes 0,
   otherwise a tie): within the binary column, within the graded column, and graded
   emotion against binary preference (each signal as it is used in practice);
4. sweeps the phase diagram (preference mixture x rater noise x rho) for graded emotion
   against binary preference (``PhaseConfig.ensemble`` members per reward model);
5. classifies annotations by consistency across re-asks and a frame swap against the
   simulator's types, and trains reward models on pooled, consistency-filtered and
   abstain-filtered labels (:mod:`.diagnostics`);
6. scores the predictions committed in ``docs/predictions/stability.md``.

The predictions were written before any of this code ran; nothing here reads them.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from emojax import config, metrics, progress
from emojax.studies.tables import seed_ci
from emojax.studies.stability import condition, diagnostics, measure, predictions, reply_pairs, reward_models
from emojax.studies.stability.comparisons import ACCURACY, AS_USED, COMPARISONS, STABILITY
from emojax.world import annotators, raters

__all__ = ["Config", "PRESETS", "PhaseConfig", "run", "seed_ci"]

# What the literature reports (``../shared/reference/findings.md``), shown beside ours.
LITERATURE = {
    "raw_agreement": 0.726,  # InstructGPT labelers, +/- 1.5 (arXiv 2203.02155)
    "retest_disagreement": 0.25,  # Abercrombie et al. (arXiv 2301.10684), four NLP tasks
    "stable_share_range": [0.19, 0.59],  # latent-class re-analysis of Converse's panels
    "voice_cronbach_alpha": 0.138,  # EmoNet-Voice raters
    "face_interval_alpha_best": 0.6,  # about EmoNet-Face HQ's best categories (third-party)
}
CALIBRATION_TOLERANCE = 0.03  # the "within 3 points"

@dataclasses.dataclass(frozen=True)
class PhaseConfig:
    """The phase diagram's axes (every combination is run).

    Attributes:
      genuine_shares, non_attitude_shares: the preference mixture; the artifact share stays
        at the default and constructed answers take the rest (combinations that leave less
        than 0 are skipped).
      noise_scales: emotion raters' ``noise_scale``. On the users' states of this study the
        default raters (1.0) reach a mean per-category interval alpha of about 0.22-0.25;
        2.0 gives about 0.11-0.13 (EmoNet-Voice's raters: Cronbach's alpha 0.138), 0.2 about
        0.5-0.6 and 0.1 about 0.6-0.7 (EmoNet-Face HQ's best categories: about 0.6); the
        range is over panels and item sets. The realised alphas are in the results.
      rhos: coupling of emotion to gold utility.
      ensemble: reward-model members per cell at each phase point (the diagram reads the
        members' mean; fewer members keep the sweep's cost down).
    """

    genuine_shares: tuple[float, ...] = (0.2, 0.45, 0.7)
    non_attitude_shares: tuple[float, ...] = (0.05, 0.2)
    noise_scales: tuple[float, ...] = (2.0, 1.0, 0.2, 0.1)
    rhos: tuple[float, ...] = (0.1, 0.7, 1.0)
    ensemble: int = 1


@dataclasses.dataclass(frozen=True)
class Config:
    """The study's settings.

    Attributes:
      num_train, num_test: pairs to train reward models on, and held-out pairs to score.
      judgments: judgments per item for both signals (J annotators, J raters).
      seeds: fresh measurements (and reward-model inits) per condition (>= 8 for the CIs).
      world, annotators, raters, reward_model: the parts' settings (the raters'
        ``num_raters`` is set to ``judgments``).
      reask_new_order: a re-ask is a later session that shows the pair in a new order.
      reasks: identical re-asks the diagnostic is scored at.
      estimator: the estimator that reads the users' utterances (the
        :data:`~.measure.ESTIMATOR_CELLS` rows): a path to a trained estimator's work dir
        (``python -m experiments.train_estimator``), an estimator preset name (``smoke``,
        ``tiny``, ...) trained into ``WORKDIR/estimator`` on first use and reused after, or
        "" to leave the estimator out.
      phase: the phase diagram (None: skip it).
      seed: root seed.
    """

    num_train: int = 1500
    num_test: int = 500
    judgments: int = 4
    seeds: int = 8
    world: reply_pairs.WorldConfig = reply_pairs.WorldConfig()
    annotators: annotators.AnnotatorConfig = annotators.AnnotatorConfig()
    raters: raters.RaterConfig = raters.RaterConfig()
    reward_model: reward_models.RewardModelConfig = reward_models.RewardModelConfig()
    reask_new_order: bool = True
    reasks: tuple[int, ...] = (1, 2, 4)
    estimator: str = "tiny"
    phase: PhaseConfig | None = PhaseConfig()
    seed: int = 0

    def __post_init__(self):
        config.require(self, "num_train", lambda v: v >= 10, ">= 10")
        config.require(self, "num_test", lambda v: v >= 10, ">= 10")
        config.require(self, "judgments", lambda v: v >= 2, ">= 2 (agreement needs two judges)")
        config.require(self, "seeds", lambda v: v >= 2, ">= 2 (seed-to-seed stability needs two)")

    @property
    def rater_config(self) -> raters.RaterConfig:
        return dataclasses.replace(self.raters, num_raters=self.judgments)


PRESETS: dict[str, Config] = {
    "smoke": Config(num_train=120, num_test=60, judgments=3, seeds=3, estimator="",
                    reward_model=reward_models.RewardModelConfig(steps=60, ensemble=2, hidden=8),
                    phase=PhaseConfig(genuine_shares=(0.7,), non_attitude_shares=(0.05,), noise_scales=(2.0,),
                                      rhos=(0.1, 1.0))),
    # A first look without the estimator row (training one would take most of the budget).
    "tiny": Config(num_train=600, num_test=300, seeds=8, estimator="",
                   reward_model=reward_models.RewardModelConfig(steps=200),
                   phase=PhaseConfig(genuine_shares=(0.2, 0.7), non_attitude_shares=(0.05, 0.2),
                                     noise_scales=(2.0, 0.2), rhos=(0.1, 1.0))),
    "default": Config(),
}  # fmt: skip


def _seed_pairs(rewards: np.ndarray, fn) -> np.ndarray:
    """``fn`` between consecutive seeds' rewards ``[S, ...]`` (seed s with s+1, cyclic)."""
    flat = rewards.reshape(rewards.shape[0], -1)
    return np.array([float(fn(jnp.asarray(flat[s]), jnp.asarray(flat[(s + 1) % len(flat)]))) for s in range(len(flat))])


def _summarise_cell(out: dict[str, Any], with_kendall: bool) -> tuple[dict, dict]:
    """CIs of one cell, and its per-seed arrays for paired comparisons."""
    per_seed = {f"signal/{name}": np.asarray(v) for name, v in out["signal"].items()}
    for how, r in out["rm"].items():
        rewards = np.asarray(r["rewards"])
        per_seed[f"rm/{how}/gold_accuracy"] = np.asarray(r["gold_accuracy"])
        per_seed[f"rm/{how}/seed_spearman"] = _seed_pairs(rewards, metrics.spearman)
        if with_kendall and how == "mean":
            per_seed[f"rm/{how}/seed_kendall"] = _seed_pairs(rewards, metrics.kendall_tau)
        for extra in ("ece", "calibration_slope"):
            if extra in r:
                per_seed[f"rm/{how}/{extra}"] = np.asarray(r[extra])
    return {name: seed_ci(v) for name, v in per_seed.items()}, per_seed


def _paired(a: np.ndarray, b: np.ndarray, higher_is_better: bool = True) -> dict[str, Any]:
    """Paired seed difference a - b, its CI, and the verdict: 'first', 'second' or 'tie'."""
    ci = seed_ci(np.asarray(a) - np.asarray(b))
    sign = 1 if higher_is_better else -1
    if np.isfinite(ci["lo"]) and sign * ci["lo"] > 0 and sign * ci["hi"] > 0:
        win = "first"
    elif np.isfinite(ci["lo"]) and sign * ci["lo"] < 0 and sign * ci["hi"] < 0:
        win = "second"
    else:
        win = "tie"
    return {"difference": ci, "winner": win}


def _compare(per_seed: dict[str, dict[str, np.ndarray]], pairs=COMPARISONS) -> dict[str, Any]:
    out = {}
    for name, (a, b) in pairs.items():
        if a in per_seed and b in per_seed:
            out[name] = {"first": a, "second": b,
                         "stability": _paired(per_seed[a][STABILITY], per_seed[b][STABILITY]),
                         "gold_accuracy": _paired(per_seed[a][ACCURACY], per_seed[b][ACCURACY])}  # fmt: skip
    return out


def _items(cfg: Config, world: reply_pairs.WorldConfig):
    key = jax.random.fold_in(jax.random.key(cfg.seed), 1)
    return reply_pairs.split(reply_pairs.sample_items(key, cfg.num_train + cfg.num_test, world), cfg.num_train)


def _condition(cfg: Config, train, test, rcfg, cells, shares=None, with_kendall=True, rm_cfg=None, predict=None):
    key = jax.random.fold_in(jax.random.key(cfg.seed), 2)
    out = condition.run_condition(key, train, test, seeds=cfg.seeds, judgments=cfg.judgments,
                                  annotator_cfg=cfg.annotators, rater_cfg=rcfg,
                                  reward_model_cfg=rm_cfg or cfg.reward_model, reask_new_order=cfg.reask_new_order,
                                  cells=cells, shares=shares, predict=predict, world=cfg.world)
    out = jax.device_get(out)
    summary, per_seed = {}, {}
    for c in cells:
        summary[c], per_seed[c] = _summarise_cell(out[c], with_kendall)
    return summary, per_seed


def _diagnostics(cfg: Config, train, test) -> dict[str, Any]:
    key = jax.random.fold_in(jax.random.key(cfg.seed), 3)
    out = jax.device_get(diagnostics.run_diagnostics(key, train, test, cfg.seeds, cfg.judgments, cfg.annotators,
                                                     cfg.reward_model, cfg.reasks))  # fmt: skip
    by = {r: {cls: {name: seed_ci(v) for name, v in scores.items()} for cls, scores in d.items() if cls in diagnostics.CLASSES}
          for r, d in out["by_reasks"].items()}  # fmt: skip
    for r, d in out["by_reasks"].items():
        by[r]["artifact_classified_as"] = {name: seed_ci(v) for name, v in d["artifact_classified_as"].items()}
    per_seed = {}
    filters = {}
    for name, f in out["filters"].items():
        per_seed[name] = {ACCURACY: np.asarray(f["gold_accuracy"]), STABILITY: _seed_pairs(np.asarray(f["rewards"]),
                                                                                           metrics.spearman)}  # fmt: skip
        filters[name] = {"gold_accuracy": seed_ci(f["gold_accuracy"]), "seed_spearman": seed_ci(per_seed[name][STABILITY]),
                         "items_kept": seed_ci(f["items_kept"]), "labels_kept": seed_ci(f["labels_kept"])}  # fmt: skip
    pairs = {"consistency vs pooled": ("consistency", "pooled"), "abstain vs pooled": ("abstain", "pooled"),
             "consistency vs abstain": ("consistency", "abstain")}  # fmt: skip
    return {"by_reasks": by, "filters": filters, "comparisons": _compare(per_seed, pairs)}


def _calibration(cfg: Config, train, summary) -> dict[str, Any]:
    resp = annotators.sample_respondents(jax.random.key(cfg.seed), train.need.shape[0], cfg.judgments, cfg.annotators)
    stable = np.asarray(resp.shares[:, annotators.GENUINE] + resp.shares[:, annotators.ARTIFACT])
    pb = summary["preference_binary"]
    ours = {
        "raw_agreement": pb["signal/raw_agreement"]["mean"],
        "retest_disagreement": 1.0 - pb["signal/retest_agreement"]["mean"],
        "stable_share_p5_p95": [float(np.percentile(stable, 5)), float(np.percentile(stable, 95))],
    }
    checks = {name: abs(ours[name] - LITERATURE[name]) <= CALIBRATION_TOLERANCE for name in ("raw_agreement", "retest_disagreement")}
    return {"ours": ours, "literature": LITERATURE, "within_3_points": checks}


def _rater_alpha(cfg: Config, train, noise_scale: float) -> float:
    """Mean per-category interval alpha of the raters on the users' states (categories
    where nobody rated anything are left out)."""
    rcfg = dataclasses.replace(cfg.rater_config, noise_scale=noise_scale)
    panel = raters.sample_panel(jax.random.key(cfg.seed + 11), rcfg)
    states = jnp.concatenate([train.state_before, train.state_after[:, 0], train.state_after[:, 1]])
    ratings = raters.rate(jax.random.key(cfg.seed + 12), states, panel, rcfg)  # [K, m, 40]
    alphas = [float(metrics.krippendorff_alpha(np.asarray(ratings[:, :, c], np.float64), "interval"))
              for c in range(ratings.shape[-1]) if np.any(np.asarray(ratings[:, :, c]) > 0)]  # fmt: skip
    alphas = [a for a in alphas if np.isfinite(a)]
    return float(np.mean(alphas)) if alphas else float("nan")


def _spearman_e_gold(it: reply_pairs.Items) -> float:
    return float(metrics.spearman(it.e_after.reshape(-1), it.utility.reshape(-1)))


def _phase(cfg: Config) -> list[dict[str, Any]]:
    ph = cfg.phase
    cells = COMPARISONS[AS_USED]
    rm_cfg = dataclasses.replace(cfg.reward_model, ensemble=ph.ensemble)
    art = cfg.annotators.shares[annotators.ARTIFACT]
    mixtures = [(g, n) for g, n in itertools.product(ph.genuine_shares, ph.non_attitude_shares)
                if 1.0 - g - n - art >= -1e-9]  # fmt: skip
    rows = []
    total = len(ph.rhos) * len(mixtures) * len(ph.noise_scales)
    with progress.phase("phase diagram", total, unit="conditions") as bar:
        for rho in ph.rhos:
            train, test = _items(cfg, dataclasses.replace(cfg.world, rho=rho))
            for g, n in mixtures:
                shares = (g, n, max(1.0 - g - n - art, 0.0), art)
                for ns in ph.noise_scales:
                    rcfg = dataclasses.replace(cfg.rater_config, noise_scale=ns)
                    summary, per_seed = _condition(cfg, train, test, rcfg, cells, shares, False, rm_cfg)
                    rows.append({
                        "rho": rho, "genuine_share": g, "non_attitude_share": n, "noise_scale": ns,
                        "spearman_e_gold": _spearman_e_gold(train),
                        "cells": {name: {m: summary[name][m] for m in (STABILITY, ACCURACY)} for name in cells},
                        "comparisons": _compare(per_seed, {AS_USED: COMPARISONS[AS_USED]}),
                    })  # fmt: skip
                    bar.update()
    return rows


def load_or_train_estimator(cfg: Config, workdir: str | None):
    """``(predict, where)`` for ``cfg.estimator`` (see :class:`Config`), or ``(None, None)``."""
    from emojax.train import estimator as est

    return est.load_or_train(cfg.estimator, workdir, field="Config.estimator")


def _estimator_quality(where: str | None) -> dict[str, Any] | None:
    """The estimator's mean Spearman against the latent intensities (and its CI), from its
    ``eval.json``; None without an estimator or an evaluation."""
    path = os.path.join(where, "eval.json") if where else None
    if path is None or not os.path.exists(path):
        return None
    with open(path) as f:
        ev = json.load(f)
    return {"spearman_mean": ev["spearman_mean"], "ci": ev["spearman_mean_ci"]}


def run(cfg: Config, workdir: str | None = None) -> dict[str, Any]:
    """Run the study; returns the JSON-ready results (see the module docstring). ``workdir``
    holds the estimator when ``cfg.estimator`` is a preset name."""
    t0 = time.perf_counter()
    predict, estimator_dir = load_or_train_estimator(cfg, workdir)
    t_est = time.perf_counter() - t0
    with progress.phase("default condition (compiles the measurement program first)", 1) as bar:
        train, test = _items(cfg, cfg.world)
        cells = measure.CELLS + (measure.ESTIMATOR_CELLS if predict is not None else ())
        summary, per_seed = _condition(cfg, train, test, cfg.rater_config, cells, predict=predict)
        bar.update()
    results: dict[str, Any] = {
        "defaults": {"cells": summary, "comparisons": _compare(per_seed)},
        "calibration": _calibration(cfg, train, summary),
        "spearman_e_gold": {str(cfg.world.rho): _spearman_e_gold(train)},
        # How much one reply moves what an emotion measurement can see: the sd over training
        # pairs of the read-out difference between the true states after reply A and B (0-7).
        "reaction_readout_sd": float(jnp.std(reply_pairs.readout(train.state_after[:, 0]) -
                                             reply_pairs.readout(train.state_after[:, 1]))),
        "estimator": estimator_dir,
        "estimator_spearman": _estimator_quality(estimator_dir),
        "seconds": {"estimator": round(t_est, 1), "defaults": round(time.perf_counter() - t0 - t_est, 1)},
    }
    t1 = time.perf_counter()
    noise = sorted(set((cfg.raters.noise_scale,) + (cfg.phase.noise_scales if cfg.phase else ())))
    results["rater_alpha"] = {str(ns): _rater_alpha(cfg, train, ns) for ns in noise}
    if cfg.phase is not None:
        rows = _phase(cfg)
        results["phase"] = rows
        for row in rows:
            results["spearman_e_gold"][str(row["rho"])] = row["spearman_e_gold"]
    results["seconds"]["phase"] = round(time.perf_counter() - t1, 1)
    t2 = time.perf_counter()
    with progress.phase("diagnostics", 1) as bar:
        results["diagnostics"] = _diagnostics(cfg, train, test)
        bar.update()
    results["seconds"]["diagnostics"] = round(time.perf_counter() - t2, 1)
    results["predictions"] = predictions.score(results)
    results["seconds"]["total"] = round(time.perf_counter() - t0, 1)
    return results

"""EmoNet's argument, simulated: do raters agree more on intensities than on one label?

Launch::

    python -m experiments.label_vs_intensity --preset default --workdir runs/label_vs_intensity

EmoNet argues for estimating the intensity of 40 co-present emotions instead of assigning
one label, because emotions come in blends. This study puts that to a test it could fail.
K simulated raters rate items built at several blend-entropy levels; from the *same*
ratings we read the single label each rater would give (the argmax, ties broken at random,
"no emotion" when every rating is 0) and the intensities. Both formats thus face the same
perception noise, biases, inattention and framing. We compare

* label agreement: Fleiss' kappa on the argmax label (41 classes);
* intensity agreement: interval Krippendorff alpha and ICC(2,1) pooled over item x category
  units, and the mean of per-category interval alphas;

each with 1,000-resample bootstrap CIs over items, against blend entropy, for the calibrated
raters and for careful raters with idiosyncratic scale use (a condition where labels can
win: the argmax ignores how a rater uses the scale, absolute agreement does not). The same
run calibrates the raters against EmoNet's reported agreement and sweeps the noise knob.
The predictions in ``docs/predictions/label_vs_intensity.md`` were committed first; the
results score each one.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from emojax import config, metrics, progress, taxonomy
from emojax.studies import tables
from emojax.world import affect, items, raters

NO_EMOTION = taxonomy.NUM_CATEGORIES  # the 41st label: every rating was 0

# What EmoNet reports (../shared/reference/emonet.md), shown beside our calibration.
EMONET_REFERENCE = {
    "voice_cronbach_alpha_overall": 0.138,
    "voice_cronbach_alpha_overall_ci": [0.124, 0.152],
    "voice_cronbach_alpha_per_emotion_range": [-0.127, 0.272],
    "face_hq_alpha_third_party": {"Elation": 0.58, "Interest": 0.0, "Concentration": 0.0, "Contemplation": 0.0},
    "note": "face figures are a third-party re-analysis, not verified; voice figures are Cronbach's alpha",
}


@dataclasses.dataclass(frozen=True)
class Config:
    """The study's settings.

    Attributes:
      num_items: items per condition (EmoNet-Face HQ has 2,500 images).
      blend_temperatures: blend-entropy levels (emotion construction's softmax temperature).
      noise_scales: values of the rater-noise knob for the calibration sweep.
      noisy_scale: a high rater-noise setting where the prediction P5 is checked.
      idiosyncratic_raters: careful raters with idiosyncratic scale use (few false alarms,
        strong bias and gain differences), the condition of predictions P6 and P7.
      n_bootstrap: bootstrap resamples per CI.
      num_panels: independent rater panels (each rating its own items); CIs resample panels
        and items, so they include the luck of which raters were drawn.
      world: the simulated world (raters included) at the calibrated defaults.
      seed: root seed.
    """

    num_items: int = 2500
    blend_temperatures: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
    noise_scales: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
    noisy_scale: float = 3.0
    idiosyncratic_raters: raters.RaterConfig = raters.RaterConfig(absent_sd=0.1, bias_sd=1.5, gain_sd=0.5)
    n_bootstrap: int = 1000
    num_panels: int = 4
    world: items.ItemsConfig = items.ItemsConfig()
    seed: int = 0

    def __post_init__(self):
        config.require(self, "num_items", lambda v: v >= 20, ">= 20")
        config.require(self, "n_bootstrap", lambda v: v >= 10, ">= 10")
        config.int_at_least(self, 1, "num_panels")
        config.require(self, "blend_temperatures", lambda v: len(v) >= 3 and min(v) > 0, "at least 3 values, all > 0")
        config.require(self, "noise_scales", lambda v: len(v) >= 2 and min(v) >= 0, "at least 2 values, all >= 0")
        config.require(self, "noisy_scale", lambda v: v >= 0, ">= 0")


PRESETS = {
    "smoke": Config(num_items=150, blend_temperatures=(0.1, 1.0, 4.0), noise_scales=(0.0, 1.0, 4.0), n_bootstrap=100, num_panels=2),
    "tiny": Config(num_items=600, blend_temperatures=(0.1, 0.5, 1.0, 4.0), noise_scales=(0.0, 0.25, 0.5, 1.0, 2.0, 4.0), n_bootstrap=300, num_panels=3),
    "default": Config(),
}  # fmt: skip


# ---- statistics on ratings [K, N, 40]; module-level so each compiles once per shape ----


def argmax_labels(key: jax.Array, ratings: jax.Array) -> jax.Array:
    """[K, N] the single label each rater gives: their top category (random among ties),
    or NO_EMOTION when they rated every category 0."""
    jitter = 0.5 * jax.random.uniform(key, ratings.shape)
    top = jnp.argmax(ratings + jitter, axis=-1)
    return jnp.where(jnp.max(ratings, axis=-1) > 0, top, NO_EMOTION)


def label_kappa(labels: jax.Array) -> jax.Array:
    """Fleiss' kappa on [K, N] labels over the 41 classes."""
    return metrics.fleiss_kappa(metrics.labels_to_counts(labels, NO_EMOTION + 1))


def pooled_alpha(ratings: jax.Array) -> jax.Array:
    """Interval alpha with every (item, category) pair as one unit."""
    k = ratings.shape[0]
    return metrics.krippendorff_alpha(ratings.reshape(k, -1).astype(jnp.float32))


def pooled_icc(ratings: jax.Array) -> jax.Array:
    """ICC(2,1) (absolute agreement) with every (item, category) pair as one target."""
    k = ratings.shape[0]
    return metrics.icc2_1(ratings.reshape(k, -1).T.astype(jnp.float32))


def category_alpha(ratings: jax.Array) -> jax.Array:
    """[40] interval alpha of each category (NaN where no rater ever used it)."""
    return jax.vmap(metrics.krippendorff_alpha, in_axes=2)(ratings.astype(jnp.float32))


def mean_category_alpha(ratings: jax.Array) -> jax.Array:
    return jnp.nanmean(category_alpha(ratings))


_HE = taxonomy.group_mask(*taxonomy.HIGH_ENERGY_GROUPS)
_LE = taxonomy.group_mask(*taxonomy.LOW_ENERGY_GROUPS)


def category_icc(ratings: jax.Array) -> jax.Array:
    """[40] ICC(2,1) of each category."""
    return jax.vmap(lambda r: metrics.icc2_1(r.T.astype(jnp.float32)), in_axes=2)(ratings)


def category_cronbach(ratings: jax.Array) -> jax.Array:
    """[40] Cronbach's alpha of each category, raters as items (EmoNet-Voice's statistic)."""
    return jax.vmap(lambda r: metrics.cronbach_alpha(r.T.astype(jnp.float32)), in_axes=2)(ratings)


def label_kappa_per_category(labels: jax.Array) -> jax.Array:
    """[40] Fleiss' kappa of "is the label category c?" (a yes/no question per category)."""
    k = labels.shape[0]
    counts = metrics.labels_to_counts(labels, NO_EMOTION + 1)[:, : taxonomy.NUM_CATEGORIES]

    def one(n):
        return metrics.fleiss_kappa(jnp.stack([n, k - n], axis=-1))

    return jax.vmap(one, in_axes=1)(counts)


def energy_gap(ratings: jax.Array) -> jax.Array:
    """Mean alpha of the High-Energy groups minus that of the Low-Energy groups."""
    a = category_alpha(ratings)
    return jnp.nanmean(jnp.where(_HE, a, jnp.nan)) - jnp.nanmean(jnp.where(_LE, a, jnp.nan))


def _world(
    cfg: Config, temperature: float | None = None, noise: float | None = None, rater_cfg: raters.RaterConfig | None = None
) -> items.ItemsConfig:
    """The study's world with a blend level, a noise level or other raters swapped in."""
    w = cfg.world if rater_cfg is None else dataclasses.replace(cfg.world, raters=rater_cfg)
    if temperature is not None:
        w = dataclasses.replace(w, affect=dataclasses.replace(w.affect, blend_temperature=temperature))
    if noise is not None:
        w = dataclasses.replace(w, raters=dataclasses.replace(w.raters, noise_scale=noise))
    return w


# ---- two-level bootstrap: raters (panels) and items ----


def _samples(stat, data, key, n) -> tuple[np.ndarray, np.ndarray]:
    est, samples = metrics.bootstrap_samples(stat, data, key, n_resamples=n, axis=1, batch_size=50)
    return np.asarray(est, dtype=float), np.asarray(samples, dtype=float)


def _pool(per_panel: list[tuple[np.ndarray, np.ndarray]], key: jax.Array, level: float = 0.95) -> dict:
    """Estimate and CI over panels *and* items: each resample draws panels with replacement,
    and within each drawn panel that panel's own item resample."""
    est = np.stack([e for e, _ in per_panel])  # [P, ...]
    samples = np.stack([b for _, b in per_panel])  # [P, R, ...]
    p, r = samples.shape[:2]
    which = np.asarray(jax.random.randint(key, (r, p), 0, p))
    tail = 100 * (1 - level) / 2
    with warnings.catch_warnings():  # a category no rater used is NaN in every resample
        warnings.simplefilter("ignore", RuntimeWarning)
        combined = np.nanmean(samples[which, np.arange(r)[:, None]], axis=1)  # [R, ...]
        low, high = np.nanpercentile(combined, [tail, 100 - tail], axis=0)
        estimate = np.nanmean(est, axis=0)
    return {
        "estimate": estimate.tolist(), "low": low.tolist(), "high": high.tolist(),
        "per_panel": est.tolist(),
    }  # fmt: skip


# Statistics of (labels [K, N], ratings [K, N, 40]); items on axis 1 of both.
FORMAT_STATS = {
    "label_kappa": lambda labels, ratings: label_kappa(labels),
    "pooled_alpha": lambda labels, ratings: pooled_alpha(ratings),
    "pooled_icc": lambda labels, ratings: pooled_icc(ratings),
    "mean_category_alpha": lambda labels, ratings: mean_category_alpha(ratings),
}
PER_CATEGORY_STATS = {
    "label_kappa": lambda labels, ratings: label_kappa_per_category(labels),
    "alpha": lambda labels, ratings: category_alpha(ratings),
    "icc": lambda labels, ratings: category_icc(ratings),
}
CALIBRATION_STATS = {
    "category_alpha": lambda labels, ratings: category_alpha(ratings),
    "energy_gap": lambda labels, ratings: energy_gap(ratings),
}


def measure(
    cfg: Config, key: jax.Array, world: items.ItemsConfig, panel_key: jax.Array, stats: dict
) -> tuple[dict, dict]:
    """Statistics of one world setting over ``cfg.num_panels`` panels, pooled with CIs.

    Panel ``p`` is drawn from ``fold_in(panel_key, p)`` (so two settings given the same
    ``panel_key`` and rater parameters share their raters) and rates its own items, drawn
    from ``fold_in(key, p)`` (so two settings given the same ``key`` and affect/language
    share their items).
    """
    per_stat: dict[str, list] = {name: [] for name in stats}
    entropy, active = [], []
    for p in range(cfg.num_panels):
        key_items, key_labels, key_boot = jax.random.split(jax.random.fold_in(key, p), 3)
        panel = raters.sample_panel(jax.random.fold_in(panel_key, p), world.raters)
        it = items.sample_items(key_items, cfg.num_items, world, panel=panel)
        labels = argmax_labels(key_labels, it.ratings)
        entropy.append(float(jnp.mean(affect.blend_entropy(it.intensities))))
        active.append(float(jnp.mean(jnp.sum(it.intensities > 0, axis=-1))))
        for i, (name, fn) in enumerate(stats.items()):
            per_stat[name].append(_samples(fn, (labels, it.ratings), jax.random.fold_in(key_boot, i), cfg.n_bootstrap))
    key_pool = jax.random.fold_in(key, 10_000)
    pooled = {name: _pool(v, jax.random.fold_in(key_pool, i)) for i, (name, v) in enumerate(per_stat.items())}
    return pooled, {"blend_entropy": float(np.mean(entropy)), "active_categories": float(np.mean(active))}


def compare_formats(
    cfg: Config, key: jax.Array, world: items.ItemsConfig, panel_key: jax.Array, per_category: bool = True
) -> dict:
    """Label vs intensity agreement, overall and (if asked) per category, with CIs."""
    # One pass over panels and items; per-category statistics come after the overall ones.
    extra = {f"category/{name}": fn for name, fn in PER_CATEGORY_STATS.items()} if per_category else {}
    pooled, info = measure(cfg, key, world, panel_key, {**FORMAT_STATS, **extra})
    overall = {name: pooled[name] for name in FORMAT_STATS}
    if not per_category:
        return {**info, **overall}
    per_cat = {name: pooled[f"category/{name}"] for name in PER_CATEGORY_STATS}
    per_category = {
        c: {name: {name: v[name][i] for name in ("estimate", "low", "high")} for name, v in per_cat.items()}
        for i, c in enumerate(taxonomy.CATEGORIES)
    }
    return {**info, **overall, "per_category": per_category}


def calibrate(cfg: Config, key: jax.Array, panel_key: jax.Array) -> dict:
    """Per-category alpha of the default raters, group means, and the energy gap."""
    cronbach = {"cronbach": lambda labels, ratings: category_cronbach(ratings)}
    pooled, _ = measure(cfg, key, cfg.world, panel_key, {**CALIBRATION_STATS, **cronbach})
    cron = {"cronbach": pooled["cronbach"]}
    per_cat = pooled["category_alpha"]
    est = np.asarray(per_cat["estimate"], dtype=float)
    groups = {g: float(np.nanmean(est[taxonomy.group_mask(g)])) for g in taxonomy.GROUP_NAMES}
    return {
        "per_category": {
            c: {"alpha": per_cat["estimate"][i], "low": per_cat["low"][i], "high": per_cat["high"][i],
                "cronbach": cron["cronbach"]["estimate"][i],
                "group": taxonomy.GROUP_OF[c], "arousal": float(taxonomy.VALENCE_AROUSAL[c][1])}
            for i, c in enumerate(taxonomy.CATEGORIES)
        },
        "mean_alpha": float(np.nanmean(est)),
        "min_alpha": float(np.nanmin(est)),
        "max_alpha": float(np.nanmax(est)),
        "n_below_0.2": int(np.sum(est < 0.2)),
        "n_above_0.5": int(np.sum(est > 0.5)),
        "group_mean_alpha": groups,
        "high_minus_low_energy": pooled["energy_gap"],
        "mean_cronbach_alpha": float(np.nanmean(cron["cronbach"]["estimate"])),
        "emonet_reference": EMONET_REFERENCE,
    }  # fmt: skip


def sweep_noise(cfg: Config, key: jax.Array, panel_key: jax.Array) -> list[dict]:
    """Mean per-category alpha (with CI) at each rater-noise setting, same raters and items."""
    stat = {"mean_category_alpha": FORMAT_STATS["mean_category_alpha"]}
    return [
        {"noise_scale": s, **measure(cfg, key, _world(cfg, noise=s), panel_key, stat)[0]}
        for s in cfg.noise_scales
    ]


def score_predictions(blend: list[dict], noisy: dict, idio: list[dict]) -> dict:
    """Each committed prediction (docs/predictions/label_vs_intensity.md), held or failed,
    with the numbers it rests on. ``noisy`` shares items and raters with ``blend[0]``."""
    lo, hi = blend[0], blend[-1]
    est = lambda d, name: d[name]["estimate"]  # noqa: E731
    intensity = ("pooled_alpha", "pooled_icc", "mean_category_alpha")
    d_kappa = abs(est(hi, "label_kappa") - est(lo, "label_kappa"))
    d_alpha = abs(est(hi, "pooled_alpha") - est(lo, "pooled_alpha"))
    d_icc = abs(est(hi, "pooled_icc") - est(lo, "pooled_icc"))
    drop = {name: est(lo, name) - est(noisy, name) for name in ("label_kappa", *intensity)}
    i_lo, i_hi = idio[0], idio[-1]
    return {
        "P1_label_kappa_falls_with_blend": {
            "held": bool(lo["label_kappa"]["low"] > hi["label_kappa"]["high"]),
            "lowest": lo["label_kappa"], "highest": hi["label_kappa"],
        },
        "P2_intensity_agreement_moves_less": {
            "held": bool(d_alpha < d_kappa and d_icc < d_kappa),
            "change_label_kappa": d_kappa, "change_pooled_alpha": d_alpha, "change_pooled_icc": d_icc,
        },
        "P3_intensity_beats_label_at_high_blend": {
            "held": bool(hi["pooled_alpha"]["low"] > hi["label_kappa"]["high"]),
            "pooled_alpha": hi["pooled_alpha"], "label_kappa": hi["label_kappa"],
        },
        "P4_label_at_or_above_intensity_at_low_blend": {
            "held": bool(est(lo, "label_kappa") >= est(lo, "mean_category_alpha")),
            "label_kappa": lo["label_kappa"], "mean_category_alpha": lo["mean_category_alpha"],
        },
        "P5_noisy_raters_reverse_the_headline": {
            "held": bool(
                all(drop[name] > drop["label_kappa"] for name in intensity)
                and all(est(noisy, "label_kappa") > est(noisy, name) for name in intensity)
            ),
            "drop": drop, "noisy": {name: noisy[name] for name in ("label_kappa", *intensity)},
        },
        "P6_idiosyncratic_scales_label_at_or_above_intensity_at_low_blend": {
            "held": bool(est(i_lo, "label_kappa") >= max(est(i_lo, "pooled_alpha"), est(i_lo, "pooled_icc"))),
            "label_kappa": i_lo["label_kappa"], "pooled_alpha": i_lo["pooled_alpha"], "pooled_icc": i_lo["pooled_icc"],
        },
        "P7_idiosyncratic_scales_cross_at_high_blend": {
            "held": bool(
                i_lo["label_kappa"]["low"] > i_hi["label_kappa"]["high"]
                and est(i_lo, "label_kappa") >= est(i_lo, "pooled_alpha")
                and est(i_hi, "pooled_alpha") > est(i_hi, "label_kappa")
            ),
            "label_kappa_lowest": i_lo["label_kappa"], "pooled_alpha_lowest": i_lo["pooled_alpha"],
            "label_kappa_highest": i_hi["label_kappa"], "pooled_alpha_highest": i_hi["pooled_alpha"],
        },
    }  # fmt: skip


def run(cfg: Config, workdir: str | None = None) -> dict[str, Any]:
    """Runs the whole study; returns the JSON-ready results.

    ``workdir`` is accepted so that every study has the shape ``run(cfg, workdir)``; this
    one computes everything in memory and keeps nothing there (its launcher writes the
    files)."""
    del workdir
    root = jax.random.key(cfg.seed)
    key_panel, key_idio_panel, key_cal, key_noise, key_blend, key_idio = jax.random.split(root, 6)
    temps = sorted(cfg.blend_temperatures)
    blend, idio = [], []
    with progress.phase("blend levels, plain and idiosyncratic raters", len(temps), unit="levels") as bar:
        for i, t in enumerate(temps):
            ends = i in (0, len(temps) - 1)  # per-category figures at the lowest and highest blend
            row = compare_formats(cfg, jax.random.fold_in(key_blend, i), _world(cfg, temperature=t), key_panel, per_category=ends)
            blend.append({"blend_temperature": t, **row})
            world = _world(cfg, temperature=t, rater_cfg=cfg.idiosyncratic_raters)
            idio.append({"blend_temperature": t, **compare_formats(cfg, jax.random.fold_in(key_idio, i), world, key_idio_panel, per_category=False)})
            bar.update()
    with progress.phase("noisy raters, the noise knob, calibration", 3) as bar:
        # The noisy condition: the lowest blend level's items and raters, noisier perception.
        noisy, info = measure(cfg, jax.random.fold_in(key_blend, 0), _world(cfg, temperature=temps[0], noise=cfg.noisy_scale), key_panel, FORMAT_STATS)
        noisy = {"noise_scale": cfg.noisy_scale, "blend_temperature": temps[0], **info, **noisy}
        bar.update()
        knob = sweep_noise(cfg, key_noise, key_panel)
        knob_means = [point["mean_category_alpha"]["estimate"] for point in knob]
        bar.update()
        cal = calibrate(cfg, key_cal, key_panel)
        bar.update()
    return {
        "config": config.to_dict(cfg),
        "calibration": cal,
        "calibration_checks": {
            "at_least_5_below_0.2": cal["n_below_0.2"] >= 5,
            "at_least_5_above_0.5": cal["n_above_0.5"] >= 5,
            "high_energy_above_low_energy_ci_excludes_0": cal["high_minus_low_energy"]["low"] > 0,
            "knob_reaches_0.14_or_less": min(knob_means) <= 0.14,
            "knob_reaches_0.6_or_more": max(knob_means) >= 0.6,
        },
        "noise_knob": knob,
        "blend": blend,
        "noisy_low_blend": noisy,
        "idiosyncratic_blend": idio,
        "predictions": score_predictions(blend, noisy, idio),
    }


def calibration_table(results: dict) -> str:
    """A Markdown table: simulated per-category alpha beside EmoNet's reported figures."""
    ref = results["calibration"]["emonet_reference"]
    face = ref["face_hq_alpha_third_party"]
    lo, hi = ref["voice_cronbach_alpha_per_emotion_range"]
    rows = [
        "| category | group | simulated interval alpha [95% CI] | simulated Cronbach | EmoNet |",
        "|---|---|---|---|---|",
    ]
    num = lambda x: float("nan") if x is None else float(x)  # noqa: E731  (NaN is stored as null)
    for c, v in sorted(results["calibration"]["per_category"].items(), key=lambda kv: -np.nan_to_num(num(kv[1]["alpha"]), nan=-9)):
        paper = f"face alpha {face[c]:.2f} (3rd party)" if c in face else f"voice Cronbach range {lo:.3f} to {hi:.3f}"
        rows.append(
            f"| {c} | {v['group']} | {tables.interval(v['alpha'], v['low'], v['high'])} "
            f"| {num(v['cronbach']):.2f} | {paper} |"
        )
    cal = results["calibration"]
    rows.append(
        f"| **mean** | | {cal['mean_alpha']:.2f} | {cal['mean_cronbach_alpha']:.2f} "
        f"| voice Cronbach {ref['voice_cronbach_alpha_overall']} overall |"
    )
    return "\n".join(rows)


def results_table(results: dict) -> str:
    """Markdown: agreement per blend level for both rater conditions, and the verdicts."""
    f = lambda ci: tables.interval(ci["estimate"], ci["low"], ci["high"])  # noqa: E731
    rows = []
    for key, title in (("blend", "calibrated raters"), ("idiosyncratic_blend", "careful raters, idiosyncratic scales")):
        rows += [f"**{title}**", "", "| T | blend entropy | label kappa | pooled alpha | pooled ICC(2,1) | mean category alpha |",
                 "|---|---|---|---|---|---|"]
        for b in results[key]:
            rows.append(
                f"| {b['blend_temperature']:g} | {b['blend_entropy']:.2f} | {f(b['label_kappa'])} | {f(b['pooled_alpha'])} "
                f"| {f(b['pooled_icc'])} | {f(b['mean_category_alpha'])} |"
            )
        rows.append("")
    n = results["noisy_low_blend"]
    rows += [f"**noisy raters** (noise_scale {n['noise_scale']:g}, T {n['blend_temperature']:g}): label kappa "
             f"{f(n['label_kappa'])}, pooled alpha {f(n['pooled_alpha'])}, mean category alpha {f(n['mean_category_alpha'])}", ""]
    rows += ["| prediction | verdict |", "|---|---|"]
    rows += [f"| {name} | {'held' if v['held'] else 'failed'} |" for name, v in results["predictions"].items()]
    return "\n".join(rows)

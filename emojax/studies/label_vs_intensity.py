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
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from emojax import config, metrics, taxonomy
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
      world: the simulated world (raters included) at the calibrated defaults.
      seed: root seed.
    """

    num_items: int = 2500
    blend_temperatures: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
    noise_scales: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
    noisy_scale: float = 3.0
    idiosyncratic_raters: raters.RaterConfig = raters.RaterConfig(absent_sd=0.1, bias_sd=1.5, gain_sd=0.5)
    n_bootstrap: int = 1000
    world: items.ItemsConfig = items.ItemsConfig()
    seed: int = 0

    def __post_init__(self):
        config.require(self, "num_items", lambda v: v >= 20, ">= 20")
        config.require(self, "n_bootstrap", lambda v: v >= 10, ">= 10")
        config.require(self, "blend_temperatures", lambda v: len(v) >= 3 and min(v) > 0, "at least 3 values, all > 0")
        config.require(self, "noise_scales", lambda v: len(v) >= 2 and min(v) >= 0, "at least 2 values, all >= 0")
        config.require(self, "noisy_scale", lambda v: v >= 0, ">= 0")


PRESETS = {
    "smoke": Config(num_items=150, blend_temperatures=(0.1, 1.0, 4.0), noise_scales=(0.0, 1.0, 4.0), n_bootstrap=100),
    "tiny": Config(num_items=600, blend_temperatures=(0.1, 0.5, 1.0, 4.0), noise_scales=(0.0, 0.25, 0.5, 1.0, 2.0, 4.0), n_bootstrap=300),
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


def energy_gap(ratings: jax.Array) -> jax.Array:
    """Mean alpha of the High-Energy groups minus that of the Low-Energy groups."""
    a = category_alpha(ratings)
    return jnp.nanmean(jnp.where(_HE, a, jnp.nan)) - jnp.nanmean(jnp.where(_LE, a, jnp.nan))


def _ci(stat, data, key, n, batch=50) -> dict:
    ci = metrics.bootstrap_ci(stat, data, key, n_resamples=n, axis=1, batch_size=batch)
    return {"estimate": np.asarray(ci.estimate).tolist(), "low": np.asarray(ci.low).tolist(), "high": np.asarray(ci.high).tolist()}


# ---- the study ----


def _world(
    cfg: Config, temperature: float | None = None, noise: float | None = None, rater_cfg: raters.RaterConfig | None = None
) -> items.ItemsConfig:
    w = cfg.world if rater_cfg is None else dataclasses.replace(cfg.world, raters=rater_cfg)
    if temperature is not None:
        w = dataclasses.replace(w, affect=dataclasses.replace(w.affect, blend_temperature=temperature))
    if noise is not None:
        w = dataclasses.replace(w, raters=dataclasses.replace(w.raters, noise_scale=noise))
    return w


def compare_formats(cfg: Config, key: jax.Array, world: items.ItemsConfig, panel) -> dict:
    """Label vs intensity agreement, with CIs, for one world setting."""
    k_items, k_labels, k_boot = jax.random.split(key, 3)
    it = items.sample_items(k_items, cfg.num_items, world, panel=panel)
    labels = argmax_labels(k_labels, it.ratings)
    kb = jax.random.split(k_boot, 4)
    return {
        "blend_entropy": float(jnp.mean(affect.blend_entropy(it.intensities))),
        "active_categories": float(jnp.mean(jnp.sum(it.intensities > 0, axis=-1))),
        "label_kappa": _ci(label_kappa, labels, kb[0], cfg.n_bootstrap),
        "pooled_alpha": _ci(pooled_alpha, it.ratings, kb[1], cfg.n_bootstrap),
        "pooled_icc": _ci(pooled_icc, it.ratings, kb[2], cfg.n_bootstrap),
        "mean_category_alpha": _ci(mean_category_alpha, it.ratings, kb[3], cfg.n_bootstrap),
    }


def calibrate(cfg: Config, key: jax.Array, panel) -> dict:
    """Per-category alpha of the default raters, group means, and the energy gap."""
    k_items, k_cat, k_gap = jax.random.split(key, 3)
    it = items.sample_items(k_items, cfg.num_items, cfg.world, panel=panel)
    per_cat = _ci(category_alpha, it.ratings, k_cat, cfg.n_bootstrap)
    est = np.asarray(per_cat["estimate"], dtype=float)
    groups = {}
    for g in taxonomy.GROUP_NAMES:
        m = taxonomy.group_mask(g)
        groups[g] = float(np.nanmean(est[m]))
    return {
        "per_category": {
            c: {"alpha": per_cat["estimate"][i], "low": per_cat["low"][i], "high": per_cat["high"][i],
                "group": taxonomy.GROUP_OF[c], "arousal": float(taxonomy.VALENCE_AROUSAL[c][1])}
            for i, c in enumerate(taxonomy.CATEGORIES)
        },
        "mean_alpha": float(np.nanmean(est)),
        "min_alpha": float(np.nanmin(est)),
        "max_alpha": float(np.nanmax(est)),
        "n_below_0.2": int(np.sum(est < 0.2)),
        "n_above_0.5": int(np.sum(est > 0.5)),
        "group_mean_alpha": groups,
        "high_minus_low_energy": _ci(energy_gap, it.ratings, k_gap, cfg.n_bootstrap),
        "mean_cronbach_alpha": float(np.nanmean([
            float(metrics.cronbach_alpha(np.asarray(it.ratings[:, :, c]).T.astype(float)))
            if np.asarray(it.ratings[:, :, c]).std() > 0 else np.nan
            for c in range(taxonomy.NUM_CATEGORIES)
        ])),
        "emonet_reference": EMONET_REFERENCE,
    }  # fmt: skip


def sweep_noise(cfg: Config, key: jax.Array, panel) -> list[dict]:
    """Mean per-category alpha (with CI) at each rater-noise setting."""
    out = []
    for i, s in enumerate(cfg.noise_scales):
        k_items, k_boot = jax.random.split(jax.random.fold_in(key, i))
        it = items.sample_items(k_items, cfg.num_items, _world(cfg, noise=s), panel=panel)
        out.append({"noise_scale": s, "mean_category_alpha": _ci(mean_category_alpha, it.ratings, k_boot, cfg.n_bootstrap)})
    return out


def score_predictions(blend: list[dict], noisy: dict, quiet_low: dict, idio: list[dict]) -> dict:
    """Each committed prediction, held or failed, with the numbers it rests on."""
    lo, hi = blend[0], blend[-1]
    est = lambda d, k: d[k]["estimate"]  # noqa: E731
    d_kappa = abs(est(hi, "label_kappa") - est(lo, "label_kappa"))
    d_alpha = abs(est(hi, "pooled_alpha") - est(lo, "pooled_alpha"))
    d_icc = abs(est(hi, "pooled_icc") - est(lo, "pooled_icc"))
    drop_kappa = est(quiet_low, "label_kappa") - est(noisy, "label_kappa")
    drop_alpha = est(quiet_low, "mean_category_alpha") - est(noisy, "mean_category_alpha")
    return {
        "P1_label_kappa_falls_with_blend": {
            "held": bool(lo["label_kappa"]["low"] > hi["label_kappa"]["high"] and est(lo, "label_kappa") > est(hi, "label_kappa")),
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
                drop_alpha > drop_kappa
                and est(noisy, "label_kappa") > est(noisy, "pooled_alpha")
                and est(noisy, "label_kappa") > est(noisy, "mean_category_alpha")
            ),
            "drop_label_kappa": drop_kappa, "drop_mean_category_alpha": drop_alpha, "noisy": noisy,
        },
        "P6_idiosyncratic_scales_label_at_or_above_intensity_at_low_blend": {
            "held": bool(
                est(idio[0], "label_kappa") >= est(idio[0], "pooled_alpha")
                and est(idio[0], "label_kappa") >= est(idio[0], "pooled_icc")
            ),
            "label_kappa": idio[0]["label_kappa"], "pooled_alpha": idio[0]["pooled_alpha"],
            "pooled_icc": idio[0]["pooled_icc"],
        },
        "P7_idiosyncratic_scales_cross_at_high_blend": {
            "held": bool(
                est(idio[0], "label_kappa") > est(idio[-1], "label_kappa")
                and est(idio[-1], "pooled_alpha") > est(idio[-1], "label_kappa")
            ),
            "label_kappa_lowest": idio[0]["label_kappa"], "label_kappa_highest": idio[-1]["label_kappa"],
            "pooled_alpha_highest": idio[-1]["pooled_alpha"],
        },
    }  # fmt: skip


def run(cfg: Config) -> dict[str, Any]:
    """Runs the whole study; returns the JSON-ready results."""
    root = jax.random.key(cfg.seed)
    k_panel, k_cal, k_noise, k_blend, k_noisy, k_idio = jax.random.split(root, 6)
    panel = raters.sample_panel(k_panel, cfg.world.raters)  # the same raters throughout
    idio_panel = raters.sample_panel(k_panel, cfg.idiosyncratic_raters)
    temps = sorted(cfg.blend_temperatures)
    blend, idio = [], []
    for i, t in enumerate(temps):
        row = compare_formats(cfg, jax.random.fold_in(k_blend, i), _world(cfg, temperature=t), panel)
        blend.append({"blend_temperature": t, **row})
        world = _world(cfg, temperature=t, rater_cfg=cfg.idiosyncratic_raters)
        row = compare_formats(cfg, jax.random.fold_in(k_idio, i), world, idio_panel)
        idio.append({"blend_temperature": t, **row})
    t_low = temps[0]
    noisy = compare_formats(cfg, k_noisy, _world(cfg, temperature=t_low, noise=cfg.noisy_scale), panel)
    noisy["noise_scale"] = cfg.noisy_scale
    noisy["blend_temperature"] = t_low
    knob = sweep_noise(cfg, k_noise, panel)
    knob_means = [k["mean_category_alpha"]["estimate"] for k in knob]
    cal = calibrate(cfg, k_cal, panel)
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
        "predictions": score_predictions(blend, noisy, blend[0], idio),
    }


def calibration_table(results: dict) -> str:
    """A Markdown table: simulated per-category alpha beside EmoNet's reported figures."""
    ref = results["calibration"]["emonet_reference"]
    face = ref["face_hq_alpha_third_party"]
    lo, hi = ref["voice_cronbach_alpha_per_emotion_range"]
    rows = ["| category | group | simulated alpha [95% CI] | EmoNet |", "|---|---|---|---|"]
    for c, v in sorted(results["calibration"]["per_category"].items(), key=lambda kv: -np.nan_to_num(kv[1]["alpha"], nan=-9)):
        paper = f"face {face[c]:.2f} (3rd party)" if c in face else f"voice range {lo:.3f} to {hi:.3f}"
        rows.append(f"| {c} | {v['group']} | {v['alpha']:.2f} [{v['low']:.2f}, {v['high']:.2f}] | {paper} |")
    cal = results["calibration"]
    rows.append(
        f"| **mean** | | {cal['mean_alpha']:.2f} (Cronbach {cal['mean_cronbach_alpha']:.2f}) "
        f"| voice Cronbach {ref['voice_cronbach_alpha_overall']} overall |"
    )
    return "\n".join(rows)


def results_table(results: dict) -> str:
    """Markdown: agreement per blend level for both rater conditions, and the verdicts."""
    f = lambda ci: f"{ci['estimate']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]"  # noqa: E731
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
    rows += [f"| {k} | {'held' if v['held'] else 'failed'} |" for k, v in results["predictions"].items()]
    return "\n".join(rows)

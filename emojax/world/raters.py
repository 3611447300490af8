"""Imperfect emotion raters: K people rating each item on the 0-7 scale, per category.

A rating is what a rater perceives, rounded onto the scale:

    perceived = gain_r * latent + bias_r + anchor_r + noise
    noise     ~ N(0, (s * d_k)^2 * (absent_sd^2 + latent / 7)),  s = noise_scale * base_sd
    rating    = 0 if perceived < zero_floor else clip(round(perceived), 0, 7)

* per-category difficulty ``d_k = exp(-arousal_slope * arousal_k)``: high-arousal categories
  are easier to judge, as EmoNet reports for voice and face; subtle (low-arousal) ones are
  ambiguous both in whether they are there and in how much;
* noise grows with the intensity perceived (Weber-like): raters disagree more about *how
  much* of a present emotion there is than about an absent one; ``absent_sd`` sets the
  false-alarm noise on an absent category relative to a present one;
* per-rater scale use: an additive bias and a multiplicative gain, fixed for a rater;
* framing: a rater anchors the scale on the first item shown (a contrast effect: after an
  intense first item everything else looks weaker), so changing the order changes ratings;
* inattention: on each ask, with the rater's own probability, the ratings belong to another
  item (an answer unrelated to what was shown: the rating analogue of a non-attitude);
* a re-ask keeps the rater (bias, gain, propensity) and draws noise and attention anew.

``noise_scale`` is the single knob the studies sweep to move agreement from EmoNet-Voice's
level (Cronbach's alpha 0.138) to well above EmoNet-Face's best categories.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from emojax import config, taxonomy


@config.pytree_config
class RaterConfig:
    """Parameters of a rater panel; the defaults are the calibrated ones (see the README).

    Attributes:
      num_raters: raters per item (EmoNet-Face HQ has about 4).
      noise_scale: global multiplier of perception noise; the agreement knob.
      base_sd: perception noise sd (0-7 units) of a full-intensity emotion of arousal 0
        at noise_scale 1.
      arousal_slope: how much easier high-arousal categories are to rate.
      absent_sd: noise on an absent category, relative to one at full intensity.
      zero_floor: perceived intensities below this are rated 0 (raters default to "absent").
      bias_sd: sd of each rater's additive scale offset.
      gain_sd: sd of the log of each rater's scale gain.
      inattentive_share: mean probability that one ask is answered without attending.
      anchor_strength: scale shift after an extreme first item (contrast effect), in
        scale points for a first item at 7 (and the opposite sign for one at 0).
    """

    num_raters: int = 4
    noise_scale: float = 1.0
    base_sd: float = 4.5
    arousal_slope: float = 1.6
    absent_sd: float = 0.3
    zero_floor: float = 1.0
    bias_sd: float = 0.4
    gain_sd: float = 0.15
    inattentive_share: float = 0.1
    anchor_strength: float = 0.5

    def __post_init__(self):
        config.int_at_least(self, 2, "num_raters", note="to measure agreement")
        config.non_negative(self, "noise_scale", "base_sd", "absent_sd", "bias_sd", "gain_sd", "zero_floor", "anchor_strength")
        config.require(self, "inattentive_share", lambda v: 0.0 <= v < 1.0, "in [0, 1)")


class RaterPanel(NamedTuple):
    """What stays fixed about each of K raters across asks."""

    bias: jax.Array  # [K]
    gain: jax.Array  # [K]
    inattention: jax.Array  # [K] probability of an unattended ask


def sample_panel(key: jax.Array, cfg: RaterConfig) -> RaterPanel:
    key_b, key_g, key_i = jax.random.split(key, 3)
    k = cfg.num_raters
    bias = cfg.bias_sd * jax.random.normal(key_b, (k,))
    gain = jnp.exp(cfg.gain_sd * jax.random.normal(key_g, (k,)))
    # Beta with mean inattentive_share and concentration 10: raters differ in diligence.
    s = jnp.asarray(cfg.inattentive_share, jnp.float32)
    draw = jax.random.beta(key_i, 10 * jnp.maximum(s, 1e-6), 10 * (1 - s), (k,))
    inattention = jnp.where(s > 0, draw, 0.0)
    return RaterPanel(bias, gain, inattention)


def category_difficulty(cfg: RaterConfig) -> jax.Array:
    """[40] relative noise of judging a present emotion of each category."""
    arousal = jnp.asarray(taxonomy.valence_arousal()[:, 1])
    return jnp.exp(-cfg.arousal_slope * arousal)


def rate(
    key: jax.Array,
    latent: jax.Array,
    panel: RaterPanel,
    cfg: RaterConfig,
    first_item: jax.Array | None = None,
) -> jax.Array:
    """Integer ratings [K, items, 40] of ``latent`` intensities [items, 40].

    Args:
      key: this ask's randomness (noise, attention, and the first item if not given).
      latent: true intensities on [0, 7].
      panel: the raters, from :func:`sample_panel`.
      cfg: the panel's configuration.
      first_item: [K] index of the item each rater saw first (the frame). Random if None.
    """
    _check_inputs(latent, panel, cfg)
    n = latent.shape[0]
    key_noise, key_att, key_other, key_first = jax.random.split(key, 4)
    if first_item is None:
        first_item = jax.random.randint(key_first, (cfg.num_raters,), 0, n)
    anchor = jnp.max(latent[first_item], axis=-1)  # [K]
    mid = taxonomy.MAX_INTENSITY / 2
    shift = panel.bias - cfg.anchor_strength * (anchor - mid) / mid  # [K]

    attends = ~jax.random.bernoulli(key_att, panel.inattention[:, None], (cfg.num_raters, n))
    other = jax.random.randint(key_other, (cfg.num_raters, n), 0, n)
    seen = jnp.where(attends[..., None], latent[None, :, :], latent[other])
    d = category_difficulty(cfg)[None, None, :]
    sd = cfg.noise_scale * cfg.base_sd * d * jnp.sqrt(cfg.absent_sd**2 + seen / taxonomy.MAX_INTENSITY)
    noise = sd * jax.random.normal(key_noise, (cfg.num_raters, n, taxonomy.NUM_CATEGORIES))
    perceived = panel.gain[:, None, None] * seen + shift[:, None, None] + noise
    levels = jnp.clip(jnp.round(perceived), 0, taxonomy.NUM_LEVELS - 1)
    return jnp.where(perceived < cfg.zero_floor, 0, levels).astype(jnp.int32)


def _check_inputs(latent, panel: RaterPanel, cfg: RaterConfig) -> None:
    if latent.ndim != 2 or latent.shape[-1] != taxonomy.NUM_CATEGORIES:
        raise ValueError(f"rate: latent must be [items, 40], got shape {latent.shape}")
    if panel.bias.shape != (cfg.num_raters,):
        raise ValueError(f"rate: the panel has {panel.bias.shape[0]} raters but cfg.num_raters={cfg.num_raters}")
    if not isinstance(latent, jax.core.Tracer):
        bad = ~jnp.isfinite(latent) | (latent < 0) | (latent > taxonomy.MAX_INTENSITY)
        if bool(jnp.any(bad)):
            i, c = (int(v) for v in jnp.argwhere(bad)[0])
            raise ValueError(
                f"rate: latent intensities must be finite and in [0, 7]; latent[{i}, {c}] "
                f"({taxonomy.CATEGORIES[c]}) = {float(latent[i, c])}"
            )

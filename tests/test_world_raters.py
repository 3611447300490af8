import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emojax import metrics
from emojax.world import items, raters


@pytest.fixture(scope="module")
def world():
    it = items.sample_items(jax.random.key(3), 600, items.ItemsConfig())
    return it


def test_ratings_are_integer_levels(world):
    r = np.asarray(world.ratings)
    assert r.shape == (4, 600, 40) and r.dtype == np.int32
    assert r.min() >= 0 and r.max() <= 7


def test_perfect_raters_read_the_latent_scale(world):
    cfg = raters.RaterConfig(noise_scale=0.0, bias_sd=0.0, gain_sd=0.0, inattentive_share=0.0, anchor_strength=0.0)
    panel = raters.sample_panel(jax.random.key(0), cfg)
    r = np.asarray(raters.rate(jax.random.key(1), world.intensities, panel, cfg))
    x = np.asarray(world.intensities)
    expected = np.where(x < cfg.zero_floor, 0, np.clip(np.round(x), 0, 7))
    for i in range(cfg.num_raters):
        np.testing.assert_array_equal(r[i], expected)


def test_reask_redraws_noise_but_keeps_the_rater(world):
    cfg = raters.RaterConfig()
    panel = raters.sample_panel(jax.random.key(0), cfg)
    frame = jnp.zeros((cfg.num_raters,), jnp.int32)  # same first item: no framing change
    first = np.asarray(raters.rate(jax.random.key(1), world.intensities, panel, cfg, first_item=frame))
    again = np.asarray(raters.rate(jax.random.key(2), world.intensities, panel, cfg, first_item=frame))
    assert (first != again).mean() > 0.02
    # Same rater, new noise: each rater's mean level (their scale use) stays put.
    means_1, means_2 = first.mean((1, 2)), again.mean((1, 2))
    assert np.abs(means_1 - means_2).max() < 0.05 < np.ptp(means_1)
    np.testing.assert_array_equal(
        first, np.asarray(raters.rate(jax.random.key(1), world.intensities, panel, cfg, first_item=frame))
    )


def test_framing_the_first_item_shifts_the_scale(world):
    cfg = raters.RaterConfig(noise_scale=0.0, inattentive_share=0.0, anchor_strength=1.0)
    panel = raters.sample_panel(jax.random.key(0), cfg)
    x = world.intensities
    strong = jnp.full((4,), int(jnp.argmax(x.max(-1))))
    weak = jnp.full((4,), int(jnp.argmin(x.max(-1))))
    after_strong = raters.rate(jax.random.key(1), x, panel, cfg, first_item=strong)
    after_weak = raters.rate(jax.random.key(1), x, panel, cfg, first_item=weak)
    assert float(after_strong.mean()) < float(after_weak.mean())


def test_inattentive_share_is_the_share_of_unrelated_answers(world):
    cfg = raters.RaterConfig(noise_scale=0.0, bias_sd=0.0, gain_sd=0.0, anchor_strength=0.0, inattentive_share=0.3, num_raters=50)
    panel = raters.sample_panel(jax.random.key(0), cfg)
    r = np.asarray(raters.rate(jax.random.key(1), world.intensities, panel, cfg))
    x = np.asarray(world.intensities)
    exact = np.where(x < 1.0, 0, np.round(x))
    unrelated = (r != exact[None]).any(-1).mean()
    assert 0.2 < unrelated < 0.32  # a few unrelated picks happen to equal the item's own


def test_noise_knob_moves_agreement(world):
    def mean_alpha(scale):
        cfg = raters.RaterConfig(noise_scale=scale)
        panel = raters.sample_panel(jax.random.key(0), cfg)
        r = raters.rate(jax.random.key(1), world.intensities, panel, cfg).astype(jnp.float32)
        return float(jnp.nanmean(jax.vmap(metrics.krippendorff_alpha, in_axes=2)(r)))

    assert mean_alpha(0.25) > 0.6 > mean_alpha(1.0) > 0.14 > mean_alpha(4.0)


@pytest.mark.parametrize(
    "kwargs, field",
    [({"num_raters": 1}, "num_raters"), ({"noise_scale": -1.0}, "noise_scale"),
     ({"inattentive_share": 1.0}, "inattentive_share"), ({"bias_sd": -0.1}, "bias_sd")],
)  # fmt: skip
def test_rater_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"RaterConfig.{field}"):
        raters.RaterConfig(**kwargs)


def test_sample_items_rejects_empty():
    with pytest.raises(ValueError, match="n must be >= 1"):
        items.sample_items(jax.random.key(0), 0, items.ItemsConfig())


def test_same_key_same_items():
    cfg = dataclasses.replace(items.ItemsConfig(), raters=raters.RaterConfig(num_raters=3))
    a = items.sample_items(jax.random.key(5), 40, cfg)
    b = items.sample_items(jax.random.key(5), 40, cfg)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)

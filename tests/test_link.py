"""The rater link: identity at initialisation, and absent read as 0 despite false alarms."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from emojax.models import get_head
from emojax.models.link import Linked

HEAD = get_head("regression")
# Raters' mean 1.6 when a category is absent (word 0) and 3.4 when present (word 1).
TOKENS = jnp.array([[0]] * 30 + [[1]] * 10)
TARGETS = jnp.where(TOKENS == 0, 1.6, 3.4) * jnp.ones((1, 40))
BOTH = jnp.array([[0], [1]])


class _Lookup(nnx.Module):
    """raw [B, 40, 1]: a learned value per (word, category), the text being one word."""

    def __init__(self, rngs: nnx.Rngs):
        self.table = nnx.Param(0.01 * jax.random.normal(rngs.params(), (2, 40)))

    def __call__(self, tokens, mask, *, deterministic=True):
        return self.table[...][tokens[:, 0]][..., None]


class _Scaled(_Lookup):
    """A link with a free scale too: rating = offset + exp(log_scale) * intensity."""

    def __init__(self, rngs: nnx.Rngs):
        super().__init__(rngs)
        self.offset = nnx.Param(jnp.zeros((40,)))
        self.log_scale = nnx.Param(jnp.zeros((40,)))

    def loss(self, prior):
        value = HEAD.value(super().__call__(TOKENS, None))
        rating = self.offset[...][None, :] + jnp.exp(self.log_scale[...])[None, :] * value
        return jnp.mean(jnp.square(rating - TARGETS)) + prior * jnp.mean(value)


def _train(model, loss_fn, steps):
    opt = nnx.Optimizer(model, optax.adam(0.05), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt):
        opt.update(model, nnx.grad(loss_fn)(model))

    for _ in range(steps):
        step(model, opt)
    return HEAD.predict(model(BOTH, jnp.ones((2, 1))))


def _fit(model, prior, steps=600):
    def loss_fn(m):
        raw = m(TOKENS, jnp.ones(TOKENS.shape))
        return HEAD.loss(raw, TARGETS, jnp.ones(40)) + prior * jnp.mean(HEAD.value(raw))

    return _train(model, loss_fn, steps)


def test_link_starts_as_the_identity():
    raw = Linked(_Lookup(nnx.Rngs(0)))(BOTH, jnp.ones((2, 1)))
    assert raw.shape == (2, 40, 2)
    np.testing.assert_allclose(HEAD.ratings(raw), HEAD.value(raw), rtol=1e-6)


def test_false_alarms_go_to_the_offset_and_absent_reads_zero():
    """Without the link the model reports the false-alarm level as an intensity; with it
    (and the absent prior), absent is 0 and present keeps the raters' gap of 1.8."""
    plain = _fit(_Lookup(nnx.Rngs(0)), prior=0.0)
    assert float(jnp.min(plain[0])) > 1.4
    model = Linked(_Lookup(nnx.Rngs(0)))
    linked = _fit(model, prior=0.1, steps=1500)
    np.testing.assert_array_equal(linked[0], 0.0)
    np.testing.assert_allclose(linked[1], 1.8, atol=0.1)  # biased by about prior / 2
    np.testing.assert_allclose(model.offset[...], 1.6, atol=0.1)


def test_a_free_scale_is_not_identifiable_under_the_prior():
    """Growing the scale shrinks every intensity at no cost in fit: present goes to 0 too."""
    model = _Scaled(nnx.Rngs(0))
    out = _train(model, lambda m: m.loss(0.1), steps=3000)
    np.testing.assert_array_equal(out, 0.0)
    assert float(jnp.min(model.log_scale[...])) > 1.0

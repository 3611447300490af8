"""The rater link: what an estimator's intensities look like on the raters' scale.

The estimator learns from ratings, but its answer is meant to be the intensity the text
expresses. The two differ systematically where raters are unsure: on subtle (low-arousal)
categories the calibrated raters of the simulated world, like EmoNet's, give an absent
emotion a mean rating well above 0 (false alarms: about 1.7 for an absent Fatigue, against
3.3 for a present one), so a model that returns the raters' mean never says "absent" there.

The link is the smallest measurement model that separates the two: per category,

    expected rating = offset_k + exp(log_scale_k) * intensity,   intensity in [0, 7],

two constants per category learned with the network from the ratings alone (no latent
value is ever seen). The regression head fits the link's output to the ratings and reports
the intensity. The fit alone cannot tell a larger offset from larger intensities on every
item (both explain the ratings equally well), so training adds a small L1 penalty on the
intensities (``TrainConfig.absent_prior``): the prior that most of the 40 categories are
absent from any one item, as EmoNet's annotations show. Among equally good fits it picks
the one that puts the raters' false-alarm level in the offset and reads absent as 0.

Figures: ``python -m experiments.train_estimator --preset default`` against
``--set rater_link=false`` (see the README's estimator table).

Implementation: :class:`Linked` wraps any registered architecture and appends the two
constants to its raw outputs ``[batch, 40, k]`` as channels ``k`` and ``k + 1`` (see
:data:`emojax.models.heads.LINK_CHANNELS`), so heads stay pure functions of ``raw`` and
architectures know nothing of the link. At initialisation the link is the identity
(offset 0, scale 1).
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from emojax import taxonomy


class Linked(nnx.Module):
    """``net`` followed by a per-category rater link (see the module docstring)."""

    def __init__(self, net: nnx.Module):
        self.net = net
        self.offset = nnx.Param(jnp.zeros((taxonomy.NUM_CATEGORIES,), jnp.float32))
        self.log_scale = nnx.Param(jnp.zeros((taxonomy.NUM_CATEGORIES,), jnp.float32))

    def __call__(self, tokens, mask, *, deterministic: bool = True):
        raw = self.net(tokens, mask, deterministic=deterministic)
        link = jnp.stack([self.offset[...], self.log_scale[...]], axis=-1).astype(raw.dtype)  # [40, 2]
        return jnp.concatenate([raw, jnp.broadcast_to(link, raw.shape[:-1] + link.shape[-1:])], axis=-1)

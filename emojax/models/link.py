"""The rater link: what an estimator's intensities look like on the raters' scale.

The estimator learns from ratings, but its answer is meant to be the intensity the text
expresses. The two differ systematically where raters are unsure: on subtle (low-arousal)
categories the calibrated raters of the simulated world, like EmoNet's, give an absent
emotion a mean rating well above 0 (false alarms; in the default dataset's training split
the raters' mean is 1.6 for an absent Fatigue against 3.4 for a present one), so a model
that returns the raters' mean never says "absent" there.

The link is the smallest measurement model that separates the two: per category,

    expected rating = offset_k + intensity,   intensity in [0, 7],

one constant per category learned with the network from the ratings alone (no latent value
is ever seen). The regression head fits the link's output to the ratings and reports the
intensity, in the raters' units. The fit alone cannot tell a larger offset from larger
intensities on every item (both explain the ratings equally well), so training adds a
small L1 penalty on the intensities (``TrainConfig.absent_prior``): the prior that most of
the 40 categories are absent from any one item, as EmoNet's annotations show. Among equally
good fits it picks the one that puts the raters' false-alarm level in the offset and reads
absent as 0. (A free per-category scale as well, ``offset + scale * intensity``, is not
identifiable under that prior: growing the scale shrinks every intensity at no cost in fit,
and training drives present emotions to 0 too; ``tests/test_link.py`` shows both.)

Figures: ``python -m experiments.train_estimator --preset default`` against
``--set rater_link=false`` (see the README's estimator table).

Initialisation: the offsets start at the per-category median of the training targets
(:func:`initial_offsets`), the same prior read from the data: most items lack any given
category, so the median item's rating is the raters' level for an absent one (0 for the
categories raters agree on). Starting from 0 instead, the offsets must travel up to 1.6
scale points at Adam's pace (about the learning rate per step), and with the default
preset's schedule the subtlest categories never arrive: Fatigue's absent items were never
read as 0.

Implementation: :class:`Linked` wraps any registered architecture and appends the offsets
to its raw outputs ``[batch, 40, outputs]`` as one more channel (see
:data:`emojax.models.heads.LINK_CHANNELS`), so heads stay pure functions of ``raw`` and
architectures know nothing of the link.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx

from emojax import taxonomy


def initial_offsets(targets) -> np.ndarray:
    """[40] starting offsets: the per-category median of training targets [items, 40]."""
    targets = np.asarray(targets, np.float32)
    if targets.ndim != 2 or targets.shape[-1] != taxonomy.NUM_CATEGORIES or not len(targets):
        raise ValueError(f"initial_offsets: targets must be [items, 40] with items >= 1, got shape {targets.shape}")
    return np.median(targets, axis=0)


class Linked(nnx.Module):
    """``net`` followed by a per-category rater link (see the module docstring).

    ``offset``: the starting offsets [40] (default 0: the link starts as the identity).
    """

    def __init__(self, net: nnx.Module, offset=None):
        self.net = net
        start = np.zeros(taxonomy.NUM_CATEGORIES, np.float32) if offset is None else np.asarray(offset, np.float32)
        if start.shape != (taxonomy.NUM_CATEGORIES,):
            raise ValueError(f"Linked: offset must have shape [40], got {start.shape}")
        self.offset = nnx.Param(jnp.asarray(start))

    def __call__(self, tokens, mask, *, deterministic: bool = True):
        raw = self.net(tokens, mask, deterministic=deterministic)
        offset = jnp.broadcast_to(self.offset[...].astype(raw.dtype)[:, None], raw.shape[:-1] + (1,))
        return jnp.concatenate([raw, offset], axis=-1)

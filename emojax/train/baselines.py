"""The bag-of-words baseline: ridge regression from word counts to the 40 targets.

It reads which words occur and nothing about their order, so it is exactly the "word
lookup" the simulated language is built to defeat (negation, irony, other people's
feelings). The gap between it and a contextual estimator measures how much of the task
needs context; with negation and irony switched off the gap should close.

So that the gap measures context and nothing else, the baseline reads its answer out the
way the estimator does (:mod:`emojax.models.link`): its fit is on the raters' scale, and
its intensities are that fit minus a per-category offset, the median of its own fitted
values over the training items (the same prior: most items lack any given category, so the
median item's value is the raters' level for an absent one), with under half a level
reported as absent.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from emojax import taxonomy
from emojax.models.heads import absent_as_zero
from emojax.train import data
from emojax.world import vocab


def counts(tokens: np.ndarray) -> np.ndarray:
    """[N, VOCAB] word counts, padding excluded."""
    out = np.zeros((len(tokens), vocab.VOCAB_SIZE), np.float32)
    rows = np.repeat(np.arange(len(tokens)), tokens.shape[1])
    np.add.at(out, (rows, tokens.reshape(-1)), 1.0)
    out[:, vocab.PAD_ID] = 0.0
    return out


def fit_bow(tokens: np.ndarray, targets: np.ndarray, l2: float = 1.0, link: bool = True):
    """Closed-form ridge fit; returns ``predict(tokens) -> (intensities, ratings)``, each
    [N, 40] on [0, 7]: the raters'-scale fit, and the intensities read from it (minus the
    offsets when ``link``, see the module docstring; under half a level reported as 0)."""
    x = np.concatenate([counts(tokens), np.ones((len(tokens), 1), np.float32)], axis=1).astype(np.float64)
    reg = l2 * np.eye(x.shape[1])
    reg[-1, -1] = 0.0  # do not shrink the intercept
    w = np.linalg.solve(x.T @ x + reg, x.T @ targets.astype(np.float64))

    def rated(new_tokens: np.ndarray) -> np.ndarray:
        xn = np.concatenate([counts(new_tokens), np.ones((len(new_tokens), 1), np.float32)], axis=1)
        return np.clip(xn @ w, 0.0, taxonomy.MAX_INTENSITY).astype(np.float32)

    offset = np.median(rated(tokens), axis=0) if link else np.zeros(targets.shape[-1], np.float32)

    def predict(new_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = rated(new_tokens)
        return np.asarray(absent_as_zero(np.maximum(r - offset, 0.0))), r

    return predict


def targets_numpy(tokens: np.ndarray, ratings: np.ndarray, target: str) -> tuple[np.ndarray, np.ndarray]:
    """The same target modes as training (:func:`emojax.train.data.targets`), in numpy."""
    t, y = data.targets({"tokens": jnp.asarray(tokens), "ratings": jnp.asarray(ratings)}, target)
    return np.asarray(t), np.asarray(y)

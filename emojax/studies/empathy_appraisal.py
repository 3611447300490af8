"""Does the user's 40-dim response tell what a reply did, beyond the change in ``e``?

Each held-out user reads one reply that performs exactly one act (one of the world's eight,
drawn uniformly, rendered by :func:`emojax.world.acts.render_reply` from a candidate
reply's plan), and the study records the change of the 40-dim state and of ``e``. A linear
discriminant (pooled covariance, equal priors), fitted on half the users, names the act
from the 40-dim change, or from the change in ``e`` alone, for the other half. Accuracy is
averaged over ``repeats`` independent draws; intervals are 95% t-intervals over repeats,
the difference paired by repeat. Chance is 1/8.

At ``appraisal_specificity`` 0 the 40-dim state is rebuilt from ``e`` alone, so it should
tell nothing more than ``e``; at the default, the appraisal of :mod:`emojax.world.appraisal`
adds act-specific categories, and it should.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import numpy as np

from emojax.studies.tables import seed_ci
from emojax.world import acts as acts_lib
from emojax.world import behaviour
from emojax.world import conversation as conv

__all__ = ["decodability", "linear_discriminant_accuracy", "single_act_changes"]


@functools.partial(jax.jit, static_argnames="n")
def single_act_changes(key: jax.Array, n: int, cfg: conv.ConversationConfig):
    """``n`` fresh users each read a one-act reply: ``(act [n], d_state [n, 40], d_e [n])``."""
    key_users, key_plan, key_act, key_say, key_step = jax.random.split(key, 5)
    chat, _ = conv.reset(conv.profiles(key_users, n), cfg)
    act = jax.random.randint(key_act, (n,), 0, acts_lib.NUM_ACTS)

    def reply(kp, ks, u, truth, a):
        plan = behaviour.sample_plan(kp, u, truth, behaviour.BehaviourConfig())
        plan = plan._replace(acts=jax.nn.one_hot(a, acts_lib.NUM_ACTS) > 0)
        return acts_lib.render_reply(ks, plan, behaviour.REPLY_LEN)

    replies = jax.vmap(reply)(jax.random.split(key_plan, n), jax.random.split(key_say, n), chat.user, chat.truth, act)
    new, _, _ = conv.step(key_step, chat, replies, cfg)
    return act, new.user.state - chat.user.state, new.user.e - chat.user.e


def linear_discriminant_accuracy(x_train, y_train, x_test, y_test, classes: int, ridge: float = 1e-3) -> float:
    """Test accuracy of a linear discriminant (class means, pooled covariance plus
    ``ridge`` times its mean variance on the diagonal, equal priors)."""
    x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    x_train = x_train.reshape(len(x_train), -1)
    x_test = x_test.reshape(len(x_test), -1)
    means = np.stack([x_train[y_train == c].mean(0) if np.any(y_train == c) else np.full(x_train.shape[1], np.inf)
                      for c in range(classes)])  # fmt: skip
    centred = x_train - means[y_train]
    cov = centred.T @ centred / max(len(x_train) - classes, 1)
    cov += ridge * max(float(np.mean(np.diag(cov))), 1e-12) * np.eye(cov.shape[0])
    w = np.linalg.solve(cov, np.where(np.isfinite(means), means, 0.0).T)  # [d, classes]
    bias = -0.5 * np.sum(np.where(np.isfinite(means), means, 0.0) * w.T, axis=1)
    bias = np.where(np.isfinite(means).all(1), bias, -np.inf)
    pred = np.argmax(x_test @ w + bias, axis=1)
    return float(np.mean(pred == np.asarray(y_test)))


def decodability(key: jax.Array, cfg: conv.ConversationConfig, specificities=(0.0, None), n: int = 2000,
                 repeats: int = 8) -> dict[str, Any]:  # fmt: skip
    """Act decodability from the 40-dim change and from the change in ``e`` alone, at each
    specificity (None: ``cfg``'s own)."""
    out = {"chance": 1.0 / acts_lib.NUM_ACTS, "users_per_repeat": n, "repeats": repeats, "by_specificity": []}
    for spec in specificities:
        c = cfg if spec is None else dataclasses.replace(cfg, appraisal_specificity=float(spec))
        from_state, from_e = [], []
        for r in range(repeats):
            act, d_state, d_e = jax.device_get(single_act_changes(jax.random.fold_in(key, r), n, c))
            act = np.asarray(act)
            half = n // 2
            from_state.append(linear_discriminant_accuracy(d_state[:half], act[:half], d_state[half:], act[half:],
                                                           acts_lib.NUM_ACTS))  # fmt: skip
            from_e.append(linear_discriminant_accuracy(d_e[:half], act[:half], d_e[half:], act[half:],
                                                       acts_lib.NUM_ACTS))  # fmt: skip
        ci = lambda v: (lambda s: {"mean": s["mean"], "ci": [s["lo"], s["hi"]]})(seed_ci(v))  # noqa: E731
        out["by_specificity"].append({
            "appraisal_specificity": c.appraisal_specificity, "from_40_dim_change": ci(from_state),
            "from_e_change": ci(from_e), "difference": ci(np.subtract(from_state, from_e)),
        })  # fmt: skip
    return out

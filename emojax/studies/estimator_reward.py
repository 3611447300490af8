"""The ``estimator_emotion(path=DIR[, read=final|trajectory])`` reward factory: a trained
estimator loaded from its work dir (:func:`emojax.train.estimator.load_estimator`) as the
reward of :func:`emojax.rl.conversation_rewards.estimator_reward`.

It lives here, above both ``train`` and ``rl``, because loading is training code's and the
``rl`` layer never imports ``train``; importing this module registers the name (the
launchers and :mod:`emojax.studies.empathy` do).
"""

from __future__ import annotations

from emojax.rl import conversation_rewards, rewards
from emojax.train.estimator import load_estimator

__all__ = ["estimator_emotion"]


@rewards.register_reward_factory("estimator_emotion")
def estimator_emotion(settings: dict, task=None) -> rewards.Reward:
    """``estimator_emotion(path=DIR[, read=final|trajectory])``: the estimator trained in
    ``DIR`` reading the user's words (see the module docstring)."""
    del task
    path = settings.get("path")
    if not path:
        raise ValueError("reward 'estimator_emotion' needs an estimator: estimator_emotion(path=DIR), DIR a trained "
                         "estimator's work dir (python -m experiments.train_estimator --workdir DIR)")  # fmt: skip
    unknown = set(settings) - {"path", "read"}
    if unknown:
        raise ValueError(f"reward 'estimator_emotion': unknown settings {sorted(unknown)} (path, read)")
    return conversation_rewards.estimator_reward(load_estimator(str(path)), str(settings.get("read", "final")))

"""RLVER in the world, part two: GRPO on the simulated user's emotion, held-out evaluation.

Each GRPO row trains the engine's starting policy in conversations with the training users
(:data:`emojax.world.conversation.TRAIN`: ``e`` from 30, at most 8 replies) with one reward:
``user_emotion`` (RLVER's ``max(e_T / 100, 0)``, the simulator's own report) or
``estimator_emotion`` (the trained estimator reading what the user says,
:mod:`emojax.rl.conversation_rewards`). All seeds run in one program
(:func:`emojax.rl.learner.make_train`); after every chunk the seeds' policies converse with
the held-out users at RLVER's evaluation settings, and the outcome (score, success,
failure) and the gold per dialogue (need met, grounding, accuracy, false agreement,
compliments, premature solutions) are recorded per seed. The ``base`` row is the same
evaluation of the seeds' starting policies.

Every seed's evaluation uses the same conversation keys at every step (common random
numbers), so a curve's steps differ by the policy, not by the draw. Rows resume from their
checkpoints, and a finished row (its evaluations reach the last step) is reused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from emojax import config, progress
from emojax.rl import learner as learner_lib
from emojax.rl import loop, multiturn
from emojax.rl.environments import Environment

__all__ = ["FIGURES", "evaluator", "train_row"]

# What each held-out evaluation records, per seed (means over the held-out conversations).
FIGURES = ("score", "success", "failure", "turns", "need_met", "grounding", "accuracy", "false_agreement",
           "compliments", "premature_solutions")  # fmt: skip


def evaluator(run: learner_lib.Learner, env: Environment, held_out: jax.Array, repeats: int,
              key: jax.Array) -> Callable[[Any], dict[str, np.ndarray]]:  # fmt: skip
    """``evaluate(params) -> {figure: [S]}``: every seed's policy (``params`` with a leading
    seed axis) in ``repeats`` conversations with each held-out profile, with the same keys
    at every call (seed ``s`` uses ``fold_in(key, s)``)."""
    profiles = jax.numpy.tile(held_out, repeats)
    num_seeds = run.config.num_seeds
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(jax.numpy.arange(num_seeds))
    play = jax.jit(jax.vmap(lambda p, k: multiturn.play(run.graphdef, p, k, env, profiles, run.sampler_config)))

    def evaluate(params) -> dict[str, np.ndarray]:
        out = jax.device_get(play(params, keys))
        return {name: np.mean(np.asarray(out[name], np.float64), axis=1) for name in FIGURES}

    return evaluate


def _stacked_params(run: learner_lib.Learner, state: learner_lib.TrainState, num_seeds: int):
    """The state's policy parameters with a leading seed axis (one seed's state has none)."""
    params = run.policy_params(state)
    return params if num_seeds > 1 else jax.tree.map(lambda x: x[None], params)


def _read(path: str) -> dict:
    if not os.path.exists(path):
        return {"steps": [], "figures": {name: [] for name in FIGURES}}
    with open(path) as f:
        try:
            curve = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not the JSON this study writes (line {err.lineno}: {err.msg}); delete it to "
                             "evaluate the row again") from None  # fmt: skip
    missing = {"steps", "figures"} - set(curve)
    if missing:
        raise ValueError(f"{path}: missing the fields {sorted(missing)}; delete it to evaluate the row again")
    return curve


def train_row(name: str, run: learner_lib.Learner, evaluate: Callable, workdir: str) -> dict:
    """Train (or resume, or reuse) one GRPO row, ``run`` (a learner on an environment), in
    ``workdir``; returns its evaluations ``{"steps": [K], "figures": {figure: [K][S]}}``
    (step 0: the starting policies). ``evaluations.json`` is rewritten, atomically, after
    every chunk."""
    cfg, env = run.config, run.task
    path = os.path.join(workdir, "evaluations.json")
    curve = _read(path)
    if curve["steps"] and curve["steps"][-1] == cfg.steps:
        return curve
    os.makedirs(workdir, exist_ok=True)

    def record(step: int, state) -> dict[str, float]:
        if step in curve["steps"]:
            return {}
        with progress.phase(f"{name}: held-out evaluation at step {step}"):
            figures = evaluate(_stacked_params(run, state, cfg.num_seeds))
        curve["steps"].append(step)
        for fig, values in figures.items():
            curve["figures"][fig].append([float(v) for v in values])
        config.write_json(path, curve)
        return {f"eval/{fig}": float(np.mean(v)) for fig, v in figures.items()}

    if not curve["steps"]:
        record(0, loop.initial_state(run))
    result = loop.train(cfg, workdir, env, learner=run, on_chunk=record, decode=env.decode)
    record(result.step, result.state)  # a chunk whose evaluation was lost to an interruption
    return curve

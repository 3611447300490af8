"""GRPO on tasks with a known optimum: does the engine reach it, on every seed?

    python -m experiments.grpo_tasks --preset smoke|tiny|default --workdir DIR \\
        [--set task=need_reply] [--set reverse.grpo.learning_rate=3e-3] [--set reverse.task.length=8] \\
        [--set need_reply.grpo.seeds=0,1,2,3] [--set devices=2]

Why: a task whose optimum and random-policy rewards are exact turns "GRPO learns" into a
number, the normalised score ``(R - R_random) / (R_opt - R_random)``: 0 is the uniform
policy, 1 the optimum. :func:`run` trains all seeds in one program
(:func:`emojax.rl.loop.train`: checkpoints, ``metrics.jsonl``, ``completions.jsonl``
decoded to text), reads the reward curves back from ``metrics.jsonl`` (so a resumed run
reports every step) and scores them against the task's bounds. :mod:`.grpo_tasks_figures`
draws them.

One :class:`Config` holds the whole study: which task runs, and for each task its config
and the GRPO run tuned for it (:class:`TaskSetup`), so ``--preset tiny --set
task=need_reply`` runs need_reply's tuned ``tiny``.

The reward of a step is the mean default task reward of its ``num_prompts x group_size``
completions on fresh prompts, sampled at the run's temperature (TRL's ``reward``). The
*final* score averages the last :func:`final_window` steps, per seed and for the seeds'
mean. The bounds are the task's own (:meth:`~emojax.rl.tasks.Task.optimum_reward` and
:meth:`~emojax.rl.tasks.Task.random_policy_reward`), estimated on ``bound_prompts``
prompts drawn with a key of their own; the random policy's standard error is reported
beside it.

Example (a notebook)::

    import dataclasses
    from emojax.studies import grpo_tasks, grpo_tasks_figures
    cfg = dataclasses.replace(grpo_tasks.PRESETS["tiny"], task="need_reply")
    results = grpo_tasks.run(cfg, "/tmp/grpo_need_reply")
    grpo_tasks_figures.reward_figure(results)
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from emojax import config as config_lib
from emojax import tracking
from emojax.rl import learner as learner_lib
from emojax.rl import loop, sharding, tasks
from emojax.rl import policy as policy_lib
from emojax.rl.config import PRESETS as GRPO_PRESETS
from emojax.rl.config import GRPOConfig
from emojax.rl.tasks import need_reply, reverse

__all__ = ["PRESETS", "TARGET", "TASKS", "Config", "TaskSetup", "bounds", "data_mesh", "decoder", "final_window",
           "presets", "run", "task_config"]

TASKS = ("reverse", "need_reply")
TARGET = 0.9  # the bar for the tiny preset: normalised mean reward >= 0.9
BOUND_KEY = 20_240_401  # bounds use their own prompts, never the runs' keys

# Per task and preset: changes to the GRPO presets (RL settings and model sizes only) and to
# the task's config. How each was found, and what the variants scored: docs/grpo_tasks.md.
_RECIPE = {"advantage_scale": "batch", "warmup_steps": 10, "checkpoint_every": 50}
_LATE_DECAY = {"entropy_schedule": "linear", "entropy_decay_steps": 400}  # explore, then sharpen
_GRPO_CHANGES: dict[str, dict[str, dict[str, Any]]] = {
    "reverse": {
        "smoke": {},
        "tiny": {**_RECIPE, **_LATE_DECAY, "policy": dataclasses.replace(policy_lib.PRESETS["2x64"], num_heads=8,
                                                                         num_kv_heads=8),
                 "num_prompts": 16, "group_size": 8, "learning_rate": 1.2e-3, "entropy_coef": 0.1, "steps": 2000},
        "default": {**_RECIPE, "policy": policy_lib.PRESETS["2x64"], "num_prompts": 16, "group_size": 8,
                    "learning_rate": 1e-3, "entropy_coef": 0.1, "steps": 3000, "micro_batches": 1,
                    "lr_schedule": "constant"},
    },
    "need_reply": {
        "smoke": {},
        "tiny": {**_RECIPE, **_LATE_DECAY, "policy": dataclasses.replace(policy_lib.PRESETS["2x64"], mlp_dim=128),
                 "num_prompts": 16, "group_size": 8, "learning_rate": 2e-3, "entropy_coef": 0.01, "steps": 1400},
        "default": {**_RECIPE, "policy": dataclasses.replace(policy_lib.PRESETS["2x64"], mlp_dim=128),
                    "num_prompts": 16, "group_size": 8, "learning_rate": 2e-3, "entropy_coef": 0.01, "steps": 2000,
                    "micro_batches": 1, "lr_schedule": "constant"},
    },
}  # fmt: skip
_TASK_CHANGES: dict[str, dict[str, dict[str, Any]]] = {
    "reverse": {"smoke": {}, "tiny": {"length": 6, "max_new_tokens": 7}, "default": {}},
    "need_reply": {"smoke": {}, "tiny": {"pointers": True}, "default": {"pointers": True}},
}


def _check_task(name: str) -> None:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known: {TASKS}")


def presets(task_name: str) -> dict[str, GRPOConfig]:
    """The GRPO presets (``smoke``, ``tiny``, ``default``) tuned for ``task_name``."""
    _check_task(task_name)
    return {name: cfg.replace(**_GRPO_CHANGES[task_name][name]) for name, cfg in GRPO_PRESETS.items()}


def task_config(task_name: str, preset: str = "default"):
    """The task's config for ``preset`` (``tasks.CONFIGS[task_name]`` with the preset's changes)."""
    _check_task(task_name)
    return tasks.CONFIGS[task_name](**_TASK_CHANGES[task_name][preset])


@dataclasses.dataclass(frozen=True)
class TaskSetup:
    """One task's config (``ReverseConfig``, ``NeedReplyConfig``) and the GRPO run tuned for
    it (its ``seeds`` are the seeds the study trains, all in one program)."""

    task: Any
    grpo: GRPOConfig


def _setup(task_name: str, preset: str) -> TaskSetup:
    return TaskSetup(task=task_config(task_name, preset), grpo=presets(task_name)[preset])


@dataclasses.dataclass(frozen=True)
class Config:
    """The study's whole configuration.

    Attributes:
      task: which task runs (one of :data:`TASKS`).
      reverse, need_reply: each task's config and its tuned GRPO run; only ``task``'s is
        used, and the results record it.
      bound_prompts: held-out prompts for :func:`bounds`.
      devices: split each step's batch over the first ``devices`` devices (a one-axis
        ``("data",)`` mesh, :func:`data_mesh`); on a CPU, the cores become devices with
        ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` set before Python starts.
      fsdp, tensor: of those devices, split the weights and optimizer moments over ``fsdp``
        (and the batch too) and the heads and MLP columns over ``tensor``
        (:mod:`emojax.rl.sharding`); 1 and 1: plain data parallelism.
    """

    task: str = "reverse"
    reverse: TaskSetup = dataclasses.field(default_factory=lambda: _setup("reverse", "default"))
    need_reply: TaskSetup = dataclasses.field(default_factory=lambda: _setup("need_reply", "default"))
    bound_prompts: int = 2048
    devices: int = 1
    fsdp: int = 1
    tensor: int = 1

    def __post_init__(self):
        config_lib.require(self, "task", lambda v: v in TASKS, f"one of {TASKS}")
        config_lib.require(self, "bound_prompts", lambda v: v >= 2, ">= 2")
        # devices a multiple of fsdp * tensor is checked when the mesh is made (data_mesh), so
        # that --set devices=4 --set fsdp=2 and --set fsdp=2 --set devices=4 both work.
        config_lib.int_at_least(self, 1, "devices", "fsdp", "tensor")

    @property
    def setup(self) -> TaskSetup:
        """The chosen task's config and GRPO run."""
        return getattr(self, self.task)


def _preset(name: str, seeds: tuple[int, ...], bound_prompts: int) -> Config:
    setups = {t: _setup(t, name) for t in TASKS}
    setups = {t: dataclasses.replace(s, grpo=s.grpo.replace(seeds=seeds)) for t, s in setups.items()}
    return Config(**setups, bound_prompts=bound_prompts)


# ``smoke`` is what the tests run (2 seeds); ``tiny`` and ``default`` train 4 seeds in one program.
PRESETS: dict[str, Config] = {
    "smoke": _preset("smoke", (0, 1), 256),
    "tiny": _preset("tiny", (0, 1, 2, 3), 2048),
    "default": _preset("default", (0, 1, 2, 3), 2048),
}


def data_mesh(devices: int, fsdp: int = 1, tensor: int = 1) -> jax.sharding.Mesh | None:
    """The run's mesh (:func:`emojax.rl.sharding.make_mesh`): None for one device, a one-axis
    ``("data",)`` mesh, or ``("data", "fsdp", "tensor")`` when ``fsdp`` or ``tensor`` > 1."""
    return sharding.make_mesh(devices, fsdp, tensor)


def _symbol(t: int) -> str:
    if t == reverse.END:
        return "<end>"
    if t == reverse.SEP:
        return "|"
    if t == reverse.PAD:
        return ""
    i = t - reverse.FIRST_SYMBOL
    return chr(ord("a") + i) if i < 26 else f"<{i}>"


def decoder(task_name: str) -> Callable[[np.ndarray], str]:
    """Token ids -> readable text: world words for ``need_reply``, its act frames written
    out in words (:func:`need_reply.decode`), symbols ``a, b, ...`` with ``|`` the
    separator for ``reverse``."""
    _check_task(task_name)
    if task_name == "need_reply":
        return need_reply.decode
    return lambda tokens: "".join(_symbol(int(t)) for t in np.asarray(tokens).reshape(-1))


def final_window(steps: int) -> int:
    """How many last steps the final score averages: a tenth of the run, at least 1."""
    return max(1, steps // 10)


def bounds(task: tasks.Task, num_prompts: int = 2048, repeats: int = 8, reward_fn=None) -> dict[str, float]:
    """The task's optimum and random-policy mean rewards on ``num_prompts`` prompts drawn
    with their own key (:data:`BOUND_KEY`).

    The random policy is drawn ``repeats`` times (one completion per prompt each time);
    ``random_reward_se`` is the standard error of their mean.
    """
    key_prompts, key_opt, key_rand = jax.random.split(jax.random.key(BOUND_KEY), 3)
    prompts = task.sample_prompts(key_prompts, num_prompts)
    optimum = float(task.optimum_reward(key_opt, prompts, reward_fn))
    draws = np.array([float(task.random_policy_reward(key, prompts, reward_fn))
                      for key in jax.random.split(key_rand, repeats)])  # fmt: skip
    se = float(np.std(draws, ddof=1) / np.sqrt(repeats)) if repeats > 1 else float("nan")
    return {"optimum_reward": optimum, "random_reward": float(np.mean(draws)), "random_reward_se": se,
            "bound_prompts": num_prompts, "random_repeats": repeats}


def _curves(workdir: str, cfg: GRPOConfig) -> np.ndarray:
    """``[steps, seeds]`` rewards from ``metrics.jsonl`` (the last row of each step wins,
    so a chunk logged again after a crash counts once)."""
    rows = {row["step"]: row for row in tracking.read_metrics(workdir) if row["step"] <= cfg.steps}
    missing = sorted(set(range(1, cfg.steps + 1)) - set(rows))
    if missing:
        raise RuntimeError(f"{workdir}/metrics.jsonl lacks steps {missing[:5]}...; did the run finish?")
    names = [f"seeds/{s}/reward" for s in cfg.seeds] if cfg.num_seeds > 1 else ["reward"]
    return np.array([[np.nan if rows[t][n] is None else rows[t][n] for n in names] for t in range(1, cfg.steps + 1)])


def _normalised(reward, lo: float, hi: float):
    return (np.asarray(reward) - lo) / (hi - lo)


def _per_seed(cfg: GRPOConfig, columns) -> dict[str, Any]:
    """``{"per_seed": {seed: values}, "mean": values}`` of a ``[..., seeds]`` array, as
    JSON-ready lists (or floats)."""
    columns = np.asarray(columns, np.float64)
    per_seed = {str(s): columns[..., j].tolist() for j, s in enumerate(cfg.seeds)}
    return {"per_seed": per_seed, "mean": np.mean(columns, axis=-1).tolist()}


def _first_step_at(curve: np.ndarray, target: float, window: int) -> int | None:
    """The first step whose trailing ``window``-step mean reaches ``target`` (None: never)."""
    smooth = np.convolve(curve, np.ones(window) / window, mode="valid")
    hit = np.flatnonzero(smooth >= target)
    return int(hit[0] + window) if hit.size else None


def verdict(preset: str, results: dict[str, Any]) -> str:
    """How to read the final normalised reward: a smoke run checks plumbing only."""
    if preset == "smoke":
        return f"smoke: plumbing only, the reward is not expected to reach the target {results['target']}"
    reached = "reached" if results["reached"] else "not reached"
    return f"target {results['target']} {reached}"


def run(cfg: Config, workdir: str, *, compiler_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Train ``cfg.task`` with its GRPO run for every seed in one program, score it and
    return the results (the launcher writes them to ``results.json``).

    Args:
      cfg: the study (e.g. ``PRESETS["tiny"]``).
      workdir: checkpoints, ``config.json``, ``metrics.jsonl``, ``completions.jsonl``. A
        work dir with checkpoints resumes.
      compiler_options: XLA options for the learner (tests lower the optimisation level).

    Returns:
      A JSON-ready dict: ``reward`` and ``normalised`` curves (``per_seed`` and ``mean``,
      one value per step of ``steps``), ``optimum_reward``, ``random_reward`` (and its
      ``random_reward_se``), ``final`` (the last :func:`final_window` steps: their
      ``reward`` and ``normalised`` per seed and mean, ``steps`` averaged), ``reached``
      (final normalised mean >= :data:`TARGET`), ``steps_to_target``, ``seconds``,
      ``traces`` (compiles of the chunk), ``config`` (the GRPO run) and ``task_config``.
    """
    start = time.perf_counter()
    task_name, task_cfg, grpo = cfg.task, cfg.setup.task, cfg.setup.grpo
    mesh = data_mesh(cfg.devices, cfg.fsdp, cfg.tensor)
    task = tasks.make_task(task_name, task_cfg)
    os.makedirs(workdir, exist_ok=True)

    t0 = time.perf_counter()
    learner = learner_lib.make_train(grpo, task, compiler_options=dict(compiler_options or {}) or None, mesh=mesh)
    result = loop.train(grpo, workdir, task, learner=learner, decode=decoder(task_name))
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    # The learner's reward (the task's default unless grpo.reward says otherwise): the
    # curves and their bounds measure the same thing.
    b = bounds(task, cfg.bound_prompts, reward_fn=jax.jit(learner.reward_fn))
    bounds_s = time.perf_counter() - t0

    lo, hi = b["random_reward"], b["optimum_reward"]
    reward = _curves(workdir, grpo)  # [steps, seeds]
    window = final_window(grpo.steps)
    final_reward = np.mean(reward[-window:], axis=0)  # [seeds]
    mean_curve = np.mean(reward, axis=1)
    results = {
        "task": task_name, "seeds": list(grpo.seeds), "steps": grpo.steps,
        **b,
        "reward": _per_seed(grpo, reward),
        "normalised": _per_seed(grpo, _normalised(reward, lo, hi)),
        "final": {
            "steps": [grpo.steps - window + 1, grpo.steps],
            "reward": _per_seed(grpo, final_reward),
            "normalised": {**_per_seed(grpo, _normalised(final_reward, lo, hi)),
                           "mean": float(_normalised(np.mean(final_reward), lo, hi))},
        },
        "target": TARGET,
        "steps_to_target": _first_step_at(_normalised(mean_curve, lo, hi), TARGET, window),
        "traces": dict(learner.traces),
        "trained_steps_this_call": int(result.history["reward"].shape[0]) if result.history else 0,
        "config": config_lib.to_dict(grpo),
        "task_config": config_lib.to_dict(task_cfg),
    }  # fmt: skip
    results["reached"] = bool(results["final"]["normalised"]["mean"] >= TARGET)
    if "step_time" in result.history:  # the first chunk's steps carry its compile time
        step_time = result.history["step_time"][:, 0]
        results["compile_and_first_chunk_s"] = float(step_time[0] * grpo.checkpoint_every)
        results["step_time_s_median"] = float(np.median(step_time))
    results["seconds"] = {"train": round(train_s, 1), "bounds": round(bounds_s, 1),
                          "total": round(time.perf_counter() - start, 1)}  # fmt: skip
    return results


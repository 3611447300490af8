"""GRPO on tasks with a known optimum: does the engine reach it, on every seed?

    python -m experiments.grpo_tasks --task reverse|need_reply --preset smoke|tiny|default \\
        --workdir DIR --seeds 4 [--set learning_rate=3e-3] [--set task.length=8]

Why: a task whose optimum and random-policy rewards are exact turns "GRPO learns" into a
number, the normalised score ``(R - R_random) / (R_opt - R_random)``: 0 is the uniform
policy, 1 the optimum. :func:`run` trains all seeds in one program
(:func:`emojax.rl.loop.train`: checkpoints, ``metrics.jsonl``, ``completions.jsonl``
decoded to text), reads the reward curves back from ``metrics.jsonl`` (so a resumed run
reports every step), scores them against the task's bounds and writes
``results.json``. :mod:`.grpo_tasks_figures` draws them.

The reward of a step is the mean default task reward of its ``num_prompts x group_size``
completions on fresh prompts, sampled at the run's temperature (TRL's ``reward``). The
*final* score averages the last :func:`final_window` steps, per seed and for the seeds'
mean. The bounds are the task's own (:meth:`~emojax.rl.tasks.Task.optimum_reward` and
:meth:`~emojax.rl.tasks.Task.random_policy_reward`), estimated on ``bound_prompts``
prompts drawn with a key of their own; the random policy's standard error is reported
beside it.

Example (a notebook)::

    from emojax.studies import grpo_tasks, grpo_tasks_figures
    cfg = grpo_tasks.presets("reverse")["tiny"]
    results = grpo_tasks.run("reverse", cfg, "/tmp/grpo_reverse", seeds=4)
    grpo_tasks_figures.reward_figure(results)
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from emojax import config as config_lib
from emojax import tracking
from emojax.rl import learner as learner_lib
from emojax.rl import loop, tasks
from emojax.rl import policy as policy_lib
from emojax.rl.config import PRESETS as GRPO_PRESETS
from emojax.rl.config import GRPOConfig
from emojax.rl.tasks import need_reply, reverse

__all__ = ["TARGET", "TASKS", "bounds", "decoder", "final_window", "presets", "run", "task_config"]

TASKS = ("reverse", "need_reply")
TARGET = 0.9  # the bar for the tiny preset: normalised mean reward >= 0.9
BOUND_KEY = 20_240_401  # bounds use their own prompts, never the runs' keys

# Per task and preset: changes to :data:`emojax.rl.config.PRESETS` (RL settings and model
# sizes only) and to the task's config (its default otherwise). Measured with 4 seeds,
# ``taskset -c 0`` (one CPU core, the other one busy: load 2-3), wall time of the whole
# command, compile included:
#
# * reverse (6 symbols over 10, the smallest instance, never easier). Without an
#   entropy bonus the policy collapses onto a few symbols before it learns to route (one
#   seed: ~0.3 normalised after 1,200 steps). With 0.1 constant, lr 1e-3, 4 heads:
#   0.871 after 1,500 steps (155 s); the same with the bonus held and then decayed to 0
#   over the last 400 steps: 0.878 (147 s); decayed from the first step: 0.81 (the policy
#   sharpens before it has learnt). lr 2e-3: 0.840; lr 1.5e-3 and 8 heads: 0.862;
#   rope_theta 100: 0.828; group advantage scaling: 0.864; 8 prompts a step for 2,600
#   steps: 0.847; mu = 2 (1,000 steps): 0.792 in 194 s. 8 heads of width 8 (lr 1e-3, late
#   decay): 0.9005 after 1,500 steps but in 181 s (a step costs 0.105 s against 0.082 s),
#   so 1,400 steps: 0.895 in 165 s (seeds 0.876, 0.861, 0.995, 0.848); 1,450 steps:
#   0.899 in 173 s (0.888, 0.863, 0.996, 0.847); a bonus of 0.15: 0.865; mlp_dim 128
#   (0.082 s a step) for 1,500 steps: 0.850 in 146 s. ``tiny`` is that with lr 1.2e-3
#   for 1,400 steps: ``python -m experiments.grpo_tasks --task reverse --preset tiny
#   --seeds 4``: 0.9545 in 165 s (seeds 0.956, 0.875, 0.997, 0.990; 0.102 s a step,
#   load ~2). On seeds 4-7 (``study.run`` with ``seeds=[4, 5, 6, 7]``) it scores 0.831
#   (0.854, 0.848, 0.785, 0.835; 163 s) and lr 1e-3 0.864 (0.870, 0.902, 0.852, 0.832;
#   172 s): over the 8 seeds lr 1.2e-3 averages 0.893, lr 1e-3 0.880, within the seed
#   noise. Seeds differ by up to 0.15 (a seed that finds the positional solution ends
#   near 1.0, the others near 0.85), so 4 seeds' mean moves by up to ~0.1 with the seeds
#   drawn: at 1,400 steps the bar held on its command (seeds 0-3), not for every
#   4 seeds. A seed that has not found the positional solution sits near 0.84 (one of the
#   six positions wrong) until it does; more steps find it, more prompts a step do not (on
#   seeds 4-7, one core: 2,000 steps 0.911 in 232 s; 32 prompts for 1,000 steps 0.862; 8
#   prompts for 3,000 steps 0.921, but 0.823 on seeds 0-3; rope_theta 100: 0.829;
#   reverse_exact weighted 1: 0.848). ``tiny`` is therefore 2,000 steps, run on the two
#   cores as two devices (each step's batch split over them: 0.069 s a step against
#   0.084 on one device, both cores free): ``XLA_FLAGS=--xla_force_host_platform_device_count=2
#   python -m experiments.grpo_tasks --task reverse --preset tiny --seeds 4 --devices 2``:
#   0.975 in 2 min 42 s wall (seeds 0.995, 0.968, 0.999, 0.937); seeds 4-7 the same way
#   (``run(..., seeds=[4, 5, 6, 7], mesh=...)``): 0.994 in 149 s (0.984, 0.997, 1.000,
#   0.997).
# * need_reply: not at the bar. Word level (``task.frames=false``, 8 tokens): the
#   policy must assemble five-token act phrases before copying a prompt word matters;
#   16 prompts a step, lr 2e-3, bonus 0.01: 0.42 after 500 steps (113 s); 8 prompts a step
#   for 1,600 steps: 0.536 with the late decay (168 s); lr 5e-3: 0.34; group advantage
#   scaling: 0.50; bonus 0.03: 0.55; ``tiny`` (1,400 steps): 0.541 in 153 s (seeds
#   0.602, 0.578, 0.356, 0.628). With act frames (the default, 5 tokens: ``<reflect>
#   sad``, ``<inform> coffee is good``) the policy picks the right frame for the need
#   within ~300 steps and then plateaus: it never learns to copy the slot word from the
#   prompt (it writes one fixed emotion word, a subject the prompt did not name; for
#   ``information`` it rarely gets past ``in fact <subject>``). Before need_act required
#   that no act serve another need: ``tiny`` 0.648 in 127 s (0.630, 0.666, 0.621, 0.675);
#   half credit for a near miss at a copied slot (kept): 0.652; 8 heads and bonus 0.03:
#   0.649 in 162 s. With it (a shotgun reply meets no need; the best need-blind reply now
#   scores 0.36, was 0.70: need_reply's docstring): ``python -m experiments.grpo_tasks
#   --task need_reply --preset tiny --seeds 4``: 0.635 in 130 s (seeds 0.590, 0.667,
#   0.627, 0.657; 0.069 s a step, load ~2); 2,400 steps: 0.642 in 195 s (0.628, 0.651,
#   0.654, 0.634): no copy emerges with more steps; 16 prompts a step for 1,000 steps:
#   0.669 in 178 s (0.674, 0.676, 0.674, 0.653; 0.146 s a step). The need phrase
#   repeating the slot word the user said (``honestly , i just feel <their first
#   feeling> .``, ``am i right about <subject> ?``: the copy at a fixed place, the
#   prompt's last but one token; not kept): 0.655 in 124 s (0.650, 0.681, 0.647, 0.640);
#   that and 16 completions a prompt with bonus 0.03: 0.662 in 189 s (0.660, 0.668,
#   0.627, 0.692; 0.112 s a step). So the right frame with a fixed slot word (about 1.0 of
#   1.6: 0.64) is where every variant stops; the copy is the missing third.
#   Diagnosis (scratch scripts, not kept): the same policy trained *supervised* on the
#   optimal replies (adam 2e-3, 64 prompts a step) learns the copy, slowly: 0.68 after
#   400 steps, 0.92 after 900, 0.96 after 1,200 (greedy 0.99); d_model 128 gets 0.91 by
#   step 500, ``init_std`` 0.1 0.92 by step 200, 8 heads, 3 layers or rope_theta 100 do
#   not help. So the architecture can copy; GRPO does not find it. Probing trained
#   policies (``tiny`` with init_std 0.1; the logged completions of ``tiny`` agree): for
#   ``be_heard`` each seed writes one emotion word (``confused``, ``embarrassed``: right
#   only when the user said it), for ``information`` one subject and ``<eos>`` (``in fact
#   meditation``): ``is <value>`` is never sampled, so the statement, and with it the
#   copy's reward, is never found. Tried on ``tiny`` (normalised, seeds 0-3 unless
#   said): init_std 0.1: 0.672 in 124 s, but 0.633 on seeds 4-7 (``tiny`` itself 0.632
#   there, 135 s); that and bonus 0.05: 0.662; bonus 0.1 (seeds 0-1): 0.594; temperature
#   1.5 (seeds 0-1): 0.664; lr 5e-3: 0.353; 16 prompts of 4: 0.658; d_model 128, mlp 256,
#   1,000 steps: 0.584 in 177 s; DAPO dynamic sampling (oversample 4, seeds 0-1): no
#   copy either. Shaping (with init_std 0.1; not kept): no near-miss credit: 0.632; near
#   misses graded by valence/arousal distance to a said feeling, the feeling slot worth
#   half the pattern (seeds 0-1): 0.652; words after a near-missed subject counted in
#   full (``is <value>`` then worth +0.2; seeds 0-1): the same scores (``is`` is never
#   sampled); the echo prompt above (seeds 0-1): 0.662.
#   Slot pointers (``task.pointers``, need_reply's docstring: ``<said_feeling>``,
#   ``<their_claim>`` filled in from the prompt; the need must still be read and the act
#   chosen and filled). On the two cores as two devices (both free): 8 prompts a step:
#   0.933 in 82 s (seeds 0.966, 0.961, 0.984, 0.822: seed 3 reached 0.996 and then fell
#   during the entropy decay), seeds 4-7 0.933 (one seed stuck at 0.80 with one need
#   unmet); 2,400 steps (seeds 4-7): 0.832 (a seed at 1.0 fell to 0.59); cosine lr:
#   0.931; that and bonus 0.03: 0.858. 16 prompts a step (each need drawn twice as often:
#   no seed is left with a need unmet): ``XLA_FLAGS=--xla_force_host_platform_device_count=2
#   python -m experiments.grpo_tasks --task need_reply --preset tiny --seeds 4 --devices
#   2``: 0.972 in 2 min 17 s wall (0.969, 0.983, 0.982, 0.953); seeds 4-7: 0.948 in 137 s
#   (0.952, 0.936, 0.951, 0.953). Without pointers (``--set task.pointers=false``) the
#   copy is still not found.
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
    k_prompts, k_opt, k_rand = jax.random.split(jax.random.key(BOUND_KEY), 3)
    prompts = task.sample_prompts(k_prompts, num_prompts)
    optimum = float(task.optimum_reward(k_opt, prompts, reward_fn))
    draws = np.array([float(task.random_policy_reward(k, prompts, reward_fn))
                      for k in jax.random.split(k_rand, repeats)])  # fmt: skip
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


def run(
    task_name: str,
    cfg: GRPOConfig,
    workdir: str,
    seeds: int | Sequence[int] | None = None,
    *,
    task_cfg=None,
    preset: str | None = None,
    bound_prompts: int | None = None,
    compiler_options: Mapping[str, Any] | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` on ``task_name`` for every seed in one program, score it, write
    ``workdir/results.json`` and return the same dict.

    Args:
      cfg: the GRPO run (e.g. ``presets(task_name)["tiny"]``).
      workdir: checkpoints, ``config.json``, ``metrics.jsonl``, ``completions.jsonl``,
        ``results.json``. A work dir with checkpoints resumes.
      seeds: ``N`` runs seeds ``0..N-1``; a sequence names them; None keeps ``cfg.seeds``.
      task_cfg: the task's config (default :func:`task_config` of ``preset``).
      preset: recorded in the results; picks the task's config when ``task_cfg`` is None.
      bound_prompts: held-out prompts for :func:`bounds` (default 256 for ``smoke``, else
        2048).
      compiler_options: XLA options for the learner (tests lower the optimisation level).
      mesh: a one-axis ``("data",)`` mesh to split each step's batch over (e.g. the two
        cores of a CPU as two devices: :func:`emojax.rl.learner.make_train`).

    Returns:
      A JSON-ready dict: ``reward`` and ``normalised`` curves (``per_seed`` and ``mean``,
      one value per step of ``steps``), ``optimum_reward``, ``random_reward`` (and its
      ``random_reward_se``), ``final`` (the last :func:`final_window` steps: their
      ``reward`` and ``normalised`` per seed and mean, ``steps`` averaged), ``reached``
      (final normalised mean >= :data:`TARGET`), ``steps_to_target``, ``seconds``,
      ``traces`` (compiles of the chunk), ``config`` and ``task_config``.
    """
    start = time.perf_counter()
    if seeds is not None:
        cfg = cfg.replace(seeds=tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds))
    task_cfg = task_cfg if task_cfg is not None else task_config(task_name, preset or "default")
    task = tasks.make_task(task_name, task_cfg)
    os.makedirs(workdir, exist_ok=True)

    t0 = time.perf_counter()
    learner = learner_lib.make_train(cfg, task, compiler_options=dict(compiler_options or {}) or None, mesh=mesh)
    result = loop.train(cfg, workdir, task, learner=learner, decode=decoder(task_name))
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    # The learner's reward (the task's default unless cfg.reward says otherwise): the
    # curves and their bounds measure the same thing.
    bound_prompts = bound_prompts or (256 if preset == "smoke" else 2048)
    b = bounds(task, bound_prompts, reward_fn=jax.jit(learner.reward_fn))
    bounds_s = time.perf_counter() - t0

    lo, hi = b["random_reward"], b["optimum_reward"]
    reward = _curves(workdir, cfg)  # [steps, seeds]
    window = final_window(cfg.steps)
    final_reward = np.mean(reward[-window:], axis=0)  # [seeds]
    mean_curve = np.mean(reward, axis=1)
    results = {
        "task": task_name, "preset": preset, "seeds": list(cfg.seeds), "steps": cfg.steps,
        **b,
        "reward": _per_seed(cfg, reward),
        "normalised": _per_seed(cfg, _normalised(reward, lo, hi)),
        "final": {
            "steps": [cfg.steps - window + 1, cfg.steps],
            "reward": _per_seed(cfg, final_reward),
            "normalised": {**_per_seed(cfg, _normalised(final_reward, lo, hi)),
                           "mean": float(_normalised(np.mean(final_reward), lo, hi))},
        },
        "target": TARGET,
        "steps_to_target": _first_step_at(_normalised(mean_curve, lo, hi), TARGET, window),
        "traces": dict(learner.traces),
        "trained_steps_this_call": int(result.history["reward"].shape[0]) if result.history else 0,
        "config": config_lib.to_dict(cfg),
        "task_config": config_lib.to_dict(task_cfg),
    }  # fmt: skip
    results["reached"] = bool(results["final"]["normalised"]["mean"] >= TARGET)
    if "step_time" in result.history:  # the first chunk's steps carry its compile time
        step_time = result.history["step_time"][:, 0]
        results["compile_and_first_chunk_s"] = float(step_time[0] * cfg.checkpoint_every)
        results["step_time_s_median"] = float(np.median(step_time))
    results["seconds"] = {"train": round(train_s, 1), "bounds": round(bounds_s, 1),
                          "total": round(time.perf_counter() - start, 1)}  # fmt: skip
    config_lib.write_json(os.path.join(workdir, "results.json"), results)
    return results


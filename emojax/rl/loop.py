"""The host loop of a GRPO run: chunks in, checkpoints, logs and rollbacks between them.

Everything that computes is compiled (:func:`emojax.rl.learner.make_train`); this loop
only does what a host must: save an Orbax checkpoint after every chunk (and one at step
0), resume from the latest one, write TRL-named metrics through the project's
:class:`~emojax.tracking.Tracker` (``metrics.jsonl``, W&B), write sample completions as
readable text (``completions.jsonl``; a W&B table when W&B is on), and roll a run back.

Rollback. A non-finite loss or gradient skips an update inside the program. When a
seed's run reaches ``max_bad_steps`` consecutive steps with a skipped update during a
chunk (the streak may have begun in the chunk before; 0 turns rollback off), the chunk
is discarded: the state returns to the last checkpoint, and the seeds that
went bad get a fresh key (``fold_in`` of their key and their rollback count), so they do
not replay the same samples. Seeds run in lockstep, so the others replay the chunk
exactly. ``rollbacks`` survives the rollback; so do the bad seeds' ``skipped_updates``.
After ``max_rollbacks`` rollbacks of one seed the loop raises.

Resume. The state holds the run's key and step, and step ``t`` draws from
``fold_in(key, t)``, so a run stopped after a chunk and resumed gives parameters equal to
an uninterrupted run's, bit for bit (tested).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from emojax import checkpoint, interrupt, progress
from emojax import config as config_lib
from emojax import tracking
from emojax.rl.config import GRPOConfig
from emojax.rl.learner import Learner, TrainState, make_train, seed_keys

__all__ = ["HOST_FIELDS", "TrainResult", "advance", "initial_state", "rollback", "train"]

# Config fields only the host reads: a learner built with other values still fits.
HOST_FIELDS = ("max_bad_steps", "max_rollbacks", "keep_checkpoints")
ROLLBACK_SALT = 0x5EED


class TrainResult(NamedTuple):
    """What :func:`train` returns.

    Attributes:
      state: the final state (a leading seed axis when there are several seeds).
      history: metric name -> ``[steps run by this call, seeds]`` array.
      step: the step reached.
    """

    state: TrainState
    history: dict[str, np.ndarray]
    step: int


def _host(x) -> np.ndarray:
    """A (replicated) array on the host, also when it spans several processes."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        x = x.addressable_data(0)
    return np.asarray(x)


def _stacked(learner: Learner) -> bool:
    return learner.config.num_seeds > 1


def initial_state(learner: Learner) -> TrainState:
    """The state at step 0: one per seed, stacked when there are several."""
    keys = seed_keys(learner.config)
    return learner.init_seeds(keys) if _stacked(learner) else learner.init(keys[0])


def _run(learner: Learner, state: TrainState) -> tuple[TrainState, dict[str, Any]]:
    """One chunk; metrics as host arrays ``[seeds, steps, ...]``."""
    if _stacked(learner):
        state, metrics = learner.run_chunk_seeds(state)
        return state, jax.tree.map(_host, metrics)
    state, metrics = learner.run_chunk(state)
    return state, jax.tree.map(lambda x: _host(x)[None], metrics)


def rollback(learner: Learner, mngr, state: TrainState, bad: np.ndarray) -> TrainState:
    """The last checkpoint, with a fresh key and one more rollback for seeds in ``bad``.

    Args:
      state: the state that went bad (its counters are carried over).
      bad: ``[seeds]`` bool.
    """
    restored, _ = checkpoint.restore(mngr, state)
    bad = jnp.asarray(bad if _stacked(learner) else bad[0])
    rollbacks = state.rollbacks + bad.astype(jnp.int32)
    fresh_key = lambda key, n: jax.random.fold_in(jax.random.fold_in(key, ROLLBACK_SALT), n)  # noqa: E731
    fresh = (jax.vmap(fresh_key) if _stacked(learner) else fresh_key)(restored.key, rollbacks)
    pick = lambda new, old: jnp.where(bad.reshape(bad.shape + (1,) * (new.ndim - bad.ndim)), new, old)  # noqa: E731
    return restored._replace(
        key=pick(fresh, restored.key), rollbacks=rollbacks,
        skipped_updates=pick(state.skipped_updates, restored.skipped_updates),
        bad_streak=jnp.zeros_like(restored.bad_streak))  # fmt: skip


def advance(learner: Learner, mngr, state: TrainState, max_bad_steps: int):
    """Run one chunk; roll back instead if a seed had ``max_bad_steps`` bad steps in a row.

    Returns:
      ``(state, metrics, bad)``: ``bad`` is the ``[seeds]`` mask of seeds that went bad;
      if any did, ``state`` is the rolled-back state and ``metrics`` those of the
      discarded chunk.
    """
    state, metrics = _run(learner, state)
    bad = np.zeros(metrics["bad_streak"].shape[0], bool)
    if max_bad_steps > 0:
        bad = np.max(metrics["bad_streak"], axis=1) >= max_bad_steps
    if bad.any():
        state = rollback(learner, mngr, state, bad)
    return state, metrics, bad


def _check_learner(cfg: GRPOConfig, learner: Learner) -> None:
    host = {name: getattr(learner.config, name) for name in HOST_FIELDS}
    if dataclasses.replace(cfg, **host) != learner.config:
        raise ValueError("the learner was built from another config (only "
                         f"{HOST_FIELDS} may differ); build it with make_train(cfg, task)")


def _rows(cfg: GRPOConfig, metrics: dict[str, np.ndarray], start: int, step_time: float):
    """One log row per step: means over seeds, counters summed, per-seed rewards."""
    num_steps = metrics["reward"].shape[1]  # [seeds, steps]
    for i in range(num_steps):
        row = {}
        for name, v in metrics.items():
            if name == "samples":
                continue
            col = v[:, i].astype(np.float64)
            if name in ("skipped_updates", "rollbacks"):
                row[name] = float(np.sum(col))
            elif name == "bad_streak":
                row[name] = float(np.max(col))
            else:
                row[name] = float(np.mean(col))
        if cfg.num_seeds > 1:
            row.update({f"seeds/{s}/reward": float(metrics["reward"][j, i]) for j, s in enumerate(cfg.seeds)})
        row["step_time"] = step_time
        yield start + i + 1, row


def _token_text(tokens: np.ndarray) -> str:
    return " ".join(str(int(t)) for t in tokens)


def _completions(cfg: GRPOConfig, samples, step: int, decode: Callable) -> list[dict]:
    """Readable rows from the chunk's last step: ``samples`` leaves ``[seeds, steps, logged, ...]``."""
    last = jax.tree.map(lambda x: np.asarray(x)[:, -1], samples)  # [seeds, logged, ...]
    out = []
    for j, seed in enumerate(cfg.seeds):
        for r in range(last.reward.shape[1]):
            reward = float(last.reward[j, r])
            out.append({
                "step": step, "seed": seed,
                "prompt": decode(last.prompt_tokens[j, r][last.prompt_mask[j, r]]),
                "completion": decode(last.completion_tokens[j, r][last.completion_mask[j, r]]),
                "reward": reward if np.isfinite(reward) else None,
            })  # fmt: skip
    return out


def _write_completions(workdir: str, rows: list[dict]) -> None:
    with open(os.path.join(workdir, "completions.jsonl"), "a") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    if tracking.wandb_mode() != "disabled":
        import wandb

        if wandb.run is not None:
            columns = ["step", "seed", "prompt", "completion", "reward"]
            table = wandb.Table(columns=columns, data=[[row[c] for c in columns] for row in rows])
            wandb.run.log({"completions": table}, step=rows[0]["step"])


def train(
    cfg: GRPOConfig,
    workdir: str,
    task: Any,
    *,
    learner: Learner | None = None,
    reward_fn=None,
    mesh=None,
    resume: bool = True,
    stop_after_steps: int | None = None,
    decode: Callable[[np.ndarray], str] | None = None,
    tracker: tracking.Tracker | None = None,
    on_chunk: Callable[[int, TrainState], dict[str, float] | None] | None = None,
) -> TrainResult:
    """Run (or resume) ``cfg.steps`` steps of GRPO on ``task``, checkpointing in ``workdir``.

    Args:
      cfg: the run; ``cfg.seeds`` run together in one program.
      workdir: checkpoints, ``config.json``, ``metrics.jsonl``, ``completions.jsonl``.
      task: see :func:`~emojax.rl.learner.make_train`.
      learner: reuse compiled functions (its config may differ from ``cfg`` only in
        :data:`HOST_FIELDS`); built from ``cfg``, ``task``, ``reward_fn`` and ``mesh``
        otherwise.
      resume: continue from the latest checkpoint in ``workdir`` if there is one.
      stop_after_steps: stop (after saving) once this step is reached; a multiple of
        ``checkpoint_every``.
      decode: token ids -> text for ``completions.jsonl``; default the task's ``decode``
        if it has one, else the ids.
      tracker: log here instead of a new :class:`~emojax.tracking.Tracker` on ``workdir``.
      on_chunk: called as ``on_chunk(step, state)`` after each chunk's checkpoint (a
        held-out evaluation, say); a dict it returns is logged at ``step``.
    """
    learner = learner or make_train(cfg, task, reward_fn=reward_fn, mesh=mesh)
    _check_learner(cfg, learner)
    chunk = cfg.checkpoint_every
    end = cfg.steps if stop_after_steps is None else min(cfg.steps, stop_after_steps)
    if end % chunk:
        raise ValueError(f"stop_after_steps={stop_after_steps} is not a multiple of checkpoint_every={chunk}")
    decode = decode or getattr(task, "decode", None) or _token_text
    primary = jax.process_index() == 0
    mngr = checkpoint.manager(workdir, cfg.keep_checkpoints)
    if not resume and mngr.latest_step() is not None:
        raise ValueError(f"{workdir} holds checkpoints; resume, or start in an empty work dir")
    state = initial_state(learner)
    restored = checkpoint.restore(mngr, state) if resume else None
    if restored is None:
        step = 0
        checkpoint.save(mngr, 0, state, {"step": 0, "seeds": list(cfg.seeds)})
    else:
        state, meta = restored
        step = int(meta["step"])
    own_tracker = tracker is None and primary
    if own_tracker:
        run_config = {**config_lib.to_dict(cfg), "task": getattr(task, "name", type(task).__name__)}
        tracker = tracking.Tracker(workdir, run_config, project="emojax-grpo")
    if tracker is not None:
        tracker.rewind(step)  # rows logged after the checkpoint are logged again
    if step and primary:
        print(f"[{progress.label()}] GRPO: resuming from step {step} of {cfg.steps}", flush=True)
    history: dict[str, list] = {}
    try:
        with progress.phase(cfg.algorithm.upper(), cfg.steps, unit="steps", initial=step, enabled=primary) as bar, \
                interrupt.deferred():  # fmt: skip
            while step < end:
                traces = sum(learner.traces.values())
                t0 = time.perf_counter()
                state, metrics, bad = advance(learner, mngr, state, cfg.max_bad_steps)
                seconds = time.perf_counter() - t0
                if bad.any():
                    worst = int(np.max(_host(state.rollbacks)))
                    if worst > cfg.max_rollbacks:
                        raise RuntimeError(f"a seed needed {worst} rollbacks (max_rollbacks={cfg.max_rollbacks}); "
                                           f"bad streaks at steps {step + 1}..{step + chunk}: giving up")
                    seeds = [s for s, b in zip(cfg.seeds, bad, strict=True) if b]
                    logging.warning("%s: seeds %s skipped %d updates in a row within steps %d..%d; rolled back to "
                                    "step %d with a fresh key", cfg.algorithm.upper(), seeds, cfg.max_bad_steps,
                                    step + 1, step + chunk, step)  # fmt: skip
                    continue
                if sum(learner.traces.values()) > traces and tracker is not None:
                    tracker.summary({"compile_and_first_chunk_s": seconds})
                if tracker is not None:
                    for s, row in _rows(cfg, metrics, step, seconds / chunk):
                        tracker.log(s, row)
                for name, value in metrics.items():
                    if name != "samples":
                        history.setdefault(name, []).append(value.T)
                history.setdefault("step_time", []).append(np.full((chunk, cfg.num_seeds), seconds / chunk))
                step += chunk
                checkpoint.save(mngr, step, state, {"step": step, "seeds": list(cfg.seeds)})
                if on_chunk is not None and (extra := on_chunk(step, state)) and tracker is not None:
                    tracker.log(step, extra)
                if primary and cfg.log_completions:
                    _write_completions(workdir, _completions(cfg, metrics["samples"], step, decode))
                bar.update(chunk, reward=float(np.mean(metrics["reward"][:, -1])))
                if (signum := interrupt.requested()) is not None and step < end:
                    raise interrupt.Interrupted(signum, step, workdir)
        if tracker is not None and history:
            tracker.summary({name: float(np.mean(values[-1][-1])) for name, values in history.items()})
    finally:
        if own_tracker:
            tracker.close()
    return TrainResult(state, {name: np.concatenate(v) for name, v in history.items()}, step)

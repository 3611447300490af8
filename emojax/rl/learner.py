"""``make_train``: a whole GRPO run as pure, compiled functions (PureJaxRL's shape).

Why: GRPO libraries run the loop from the host, one seed at a time. Here one *step*
(rollout, rewards, advantages, ``mu`` updates) is a pure function of a
:class:`TrainState`, ``checkpoint_every`` steps are one ``lax.scan`` compiled once, and
seeds are a leading axis of the state, run by ``jax.vmap``, ``lax.map`` or both
(``seed_strategy``). The host (:mod:`emojax.rl.loop`) only checkpoints, logs and rolls
back between chunks.

Keys. The state holds the run's key; step ``t`` uses ``fold_in(key, t)``. So a run
restored from a checkpoint at step ``t`` continues bit for bit, and a rollback changes
the future only by changing the key.

Sharding. With a ``mesh`` (axes among ``data``, ``fsdp``, ``tensor``), every ``[B, ...]``
array of the rollout is split by rows over ``data`` and ``fsdp``, and the state is placed
by :mod:`emojax.rl.sharding`'s rules: replicated on a data-only mesh; weights and their
optimizer moments split over ``fsdp`` (their model dimension) and ``tensor`` (heads and
MLP columns) otherwise. XLA adds the collectives, so the step is the single-device code.
The same code runs over several processes (:func:`jax.distributed.initialize`) with a mesh
over all their devices.

Example::

    from emojax.rl import learner, tasks
    from emojax.rl.config import PRESETS
    cfg = PRESETS["smoke"].replace(seeds=(0, 1, 2, 3))
    run = learner.make_train(cfg, tasks.make_task("reverse"))
    state = run.init(jax.random.key(0))
    state, metrics = run.run_chunk(state)            # metrics[name]: [checkpoint_every]
    seeds = run.init_seeds(learner.seed_keys(cfg))   # leading axis: seeds
    seeds, metrics = run.run_chunk_seeds(seeds)      # metrics[name]: [seeds, steps]

:func:`emojax.rl.loop.train` wraps these in the host loop.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import NamedSharding, SingleDeviceSharding
from jax.sharding import PartitionSpec as P

from emojax import config
from emojax.rl import algorithms, lora, multiturn, policy, rewards, sampler, sharding
from emojax.rl.config import GRPOConfig
from emojax.rl.environments import Environment
from emojax.rl.rollout import make_rollout
from emojax.rl.rollout_conversation import make_conversation_rollout
from emojax.rl.update import last_learning_rate, make_optimizer

__all__ = ["Learner", "TrainState", "make_train", "policy_config", "raw_key", "seed_keys"]


class TrainState(NamedTuple):
    """Everything a run needs to continue exactly; a pytree Orbax saves as is.

    Attributes:
      params: the policy's parameters (``nnx.State``); with LoRA (``policy.lora_rank > 0``),
        its adapters only (:mod:`emojax.rl.lora`; :meth:`Learner.policy_params` gives the whole).
      opt_state: optax state (its step count drives the learning-rate schedule).
      critic: what the algorithm trains beside the policy (PPO's value head), or None.
      ref_params: the frozen initial policy when ``beta > 0``, else None; with LoRA, the
        frozen base weights always (the reference is the base with its adapters off, so no
        copy is kept).
      key: raw ``uint32`` key data of the run; step ``t`` uses ``fold_in(key, t)``.
      step: rollout steps done.
      num_tokens: prompt and completion tokens generated so far (TRL's ``num_tokens``;
        int32, so it wraps past 2**31).
      skipped_updates: updates skipped for a non-finite loss or gradient.
      rollbacks: times the host restored the last checkpoint with a fresh key.
      bad_streak: consecutive steps with a skipped update.
    """

    params: nnx.State
    opt_state: Any
    critic: Any
    ref_params: nnx.State | None
    key: jax.Array
    step: jax.Array
    num_tokens: jax.Array
    skipped_updates: jax.Array
    rollbacks: jax.Array
    bad_streak: jax.Array


class Learner(NamedTuple):
    """The compiled pieces of a run (see the module doc).

    Attributes:
      config, task, policy_config, graphdef, sampler_config, reward_fn, mesh: what the
        run was built from (``policy_config`` has the task's vocabulary).
      init: ``init(key) -> TrainState`` (jitted).
      init_seeds: ``init_seeds(keys [S, ...]) -> TrainState`` with a leading seed axis.
      step: the pure, unjitted ``step(state) -> (state, metrics)``.
      run_chunk: ``run_chunk(state) -> (state, metrics [K])``, ``checkpoint_every``
        steps in one ``lax.scan``; the input state's buffers are donated. States and
        metrics sit on one explicit placement (the first local device, or the mesh's
        rules, metrics replicated), whatever placement the input had.
      run_chunk_seeds: the same over a leading seed axis, by ``seed_strategy``;
        metrics ``[S, K]``.
      traces: how many times each of ``run_chunk``/``run_chunk_seeds`` was traced (the
        tests assert once per shape).
      rollout: the pure ``rollout(params, key) -> (Batch, metrics, Samples)`` that
        ``step`` calls (:func:`emojax.rl.rollout.make_rollout`).
      update: the pure ``update(params, opt_state, ref_params, batch, critic) -> (params,
        opt_state, metrics, skipped, critic)`` that ``step`` calls (the algorithm's,
        :mod:`emojax.rl.algorithms`). These two let a benchmark time the parts
        of the very step the run compiles.
    """

    config: GRPOConfig
    task: Any
    policy_config: policy.PolicyConfig
    graphdef: nnx.GraphDef
    sampler_config: sampler.SamplerConfig
    reward_fn: rewards.RewardFn
    mesh: jax.sharding.Mesh | None
    init: Callable[[jax.Array], TrainState]
    init_seeds: Callable[[jax.Array], TrainState]
    step: Callable[[TrainState], tuple[TrainState, dict]]
    run_chunk: Callable[[TrainState], tuple[TrainState, dict]]
    run_chunk_seeds: Callable[[TrainState], tuple[TrainState, dict]]
    traces: collections.Counter
    rollout: Callable[..., Any] | None = None
    update: Callable[..., Any] | None = None

    def policy_params(self, state: TrainState) -> nnx.State:
        """The whole policy's state of ``state`` (the adapters on their base with LoRA), as
        :func:`emojax.rl.policy.apply` and the sampler take it; works on a seed axis too."""
        return lora.combine(self.policy_config, state.params, state.ref_params)


# XLA:CPU's default on this stack (jax 0.10) hands dots and some element-wise and reduce
# fusions to the YNNPACK library; for the GRPO step that was 3-12% slower than XLA's own
# emitters on one core (a fused output projection + log-softmax reduction ran at a third
# of the speed of the two apart), so the learner turns those library fusions off on CPU.
CPU_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


def raw_key(key: jax.Array) -> jax.Array:
    """``uint32`` key data of a typed or raw PRNG key (what a checkpoint can store)."""
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    return jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key


def seed_keys(cfg: GRPOConfig) -> jax.Array:
    """``[S, 2]`` raw keys, one per ``cfg.seeds``."""
    return jnp.stack([raw_key(jax.random.key(s)) for s in cfg.seeds])


def policy_config(cfg: GRPOConfig, task: Any) -> policy.PolicyConfig:
    """The policy a run of ``cfg`` on ``task`` trains (its vocabulary from the task if
    ``cfg.vocab_from_task``)."""
    if cfg.vocab_from_task:
        return dataclasses.replace(cfg.policy, vocab_size=int(task.vocab_size))
    if cfg.policy.vocab_size < task.vocab_size:
        raise ValueError(f"policy.vocab_size {cfg.policy.vocab_size} < the task's vocabulary {task.vocab_size}")
    return cfg.policy


def _seed_runner(cfg: GRPOConfig, chunk: Callable) -> Callable:
    if cfg.seed_strategy == "vmap":
        return jax.vmap(chunk)
    batch = None if cfg.seed_strategy == "map" else min(cfg.vmap_seeds, cfg.num_seeds)
    return lambda states: jax.lax.map(chunk, states, batch_size=batch)


def make_train(
    cfg: GRPOConfig,
    task: Any,
    *,
    reward_fn: rewards.RewardFn | None = None,
    mesh: jax.sharding.Mesh | None = None,
    compiler_options: dict[str, Any] | None = None,
    profiles: jax.Array | None = None,
    initial_params: nnx.State | None = None,
) -> Learner:
    """The functions of a GRPO run on ``task`` (see :class:`Learner`).

    Args:
      cfg: the run's config; its values are compiled in.
      task: an :class:`emojax.rl.tasks.Task`, or any object with ``vocab_size``,
        ``end_token``, ``pad_token``, ``max_new_tokens``, ``sample_prompts`` and
        ``observe`` (and ``reward``, the default ``(name, weight)`` pairs, unless
        ``reward_fn`` is given); or an :class:`~emojax.rl.environments.Environment`, whose
        conversations are the rollouts (:mod:`emojax.rl.rollout_conversation`).
      reward_fn: ``obs -> (total [B], components)``; default
        :func:`emojax.rl.rewards.make_reward` of ``cfg.reward`` and the task's default.
      mesh: a mesh whose axes are among ``("data", "fsdp", "tensor")``
        (:mod:`emojax.rl.sharding`); None: one device.
      compiler_options: XLA options for every compiled function (default on CPU:
        :data:`CPU_COMPILER_OPTIONS`; options given replace them), e.g.
        ``{"xla_backend_optimization_level": 0}``, which halves XLA:CPU's compile time
        (what the tests use; keep the default for timed runs).
      profiles: an environment's training profiles ``[n]`` (default: 500 from
        ``fold_in(key(0), 0)``, RLVER's count; held-out ones come from ``fold_in(key, 1)``).
      initial_params: the policy every seed starts from (e.g. pre-trained,
        :mod:`emojax.rl.sft`, or a loaded checkpoint; without adapters: a LoRA run puts
        fresh ones on it, per seed); default: a fresh initialisation per seed.
    """
    pcfg = policy_config(cfg, task)
    n_new = cfg.max_new_tokens or int(task.max_new_tokens)
    scfg = sampler.SamplerConfig(max_new_tokens=n_new, temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
                                 end_token=int(task.end_token), pad_token=int(task.pad_token),
                                 think_tokens=cfg.think_tokens)  # fmt: skip
    if cfg.think_tokens and not isinstance(task, Environment):
        raise ValueError(f"GRPOConfig.think_tokens={cfg.think_tokens}: think mode is for conversations "
                         f"(an Environment); {getattr(task, 'name', task)!r} is a single-turn task")  # fmt: skip
    if reward_fn is None:
        reward_fn = rewards.make_reward(cfg.reward, default=tuple(task.reward), max_length=n_new,
                                        group_size=cfg.group_size, task=task)
    graphdef = policy.graphdef_of(pcfg)
    if initial_params is not None:  # the base: a LoRA run puts fresh adapters on it
        like = jax.eval_shape(lambda k: policy.init(lora.base_config(pcfg), k)[1], jax.random.key(0))
        shapes = lambda tree: jax.tree.map(lambda x: (tuple(x.shape), str(x.dtype)), tree)  # noqa: E731
        if jax.tree.structure(like) != jax.tree.structure(initial_params) or shapes(like) != shapes(initial_params):
            raise ValueError("make_train: initial_params are not parameters of this run's policy "
                             f"({config.to_dict(pcfg)}; with LoRA, of its base, without adapters)")  # fmt: skip
    tx = make_optimizer(cfg)
    algorithm = algorithms.make_algorithm(cfg.algorithm)
    # Every state lives on one explicit placement, so that a state from init, from a chunk
    # or from a checkpoint (Orbax commits what it restores) all hit the same executable.
    constrain = lambda tree: tree  # noqa: E731
    if mesh is not None:
        sharding.check_mesh(mesh)
        split = math.prod(mesh.shape[a] for a in sharding.batch_axes(mesh))
        for rows in (cfg.sampled_prompts * cfg.group_size, cfg.batch_size // cfg.micro_batches):
            if rows % split:
                raise ValueError(f"{rows} rows (batch or micro-batch) do not split over {split} devices "
                                 f"(the mesh's {sharding.batch_axes(mesh)} axes)")  # fmt: skip
        data = sharding.batch_sharding(mesh)
        constrain = lambda tree: jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, data), tree)  # noqa: E731
    if isinstance(task, Environment):
        if profiles is None:
            profiles = task.profiles(jax.random.fold_in(jax.random.key(0), 0), 500)
        rollout = make_conversation_rollout(cfg, graphdef, task, reward_fn, scfg, profiles, constrain)
        opening = task.turn_len
        length = multiturn.transcript_len(opening, task, scfg.turn_tokens)
        update = algorithm.make_update(cfg, graphdef, tx, length - opening,
                                       max_completion_length=task.max_turns * scfg.turn_tokens)  # fmt: skip
    else:
        rollout = make_rollout(cfg, graphdef, task, reward_fn, scfg, constrain)
        update = algorithm.make_update(cfg, graphdef, tx, n_new)

    def init(key: jax.Array) -> TrainState:
        key_params, key_run = jax.random.split(raw_key(key))
        if initial_params is None:
            params = policy.init(pcfg, key_params)[1]
        else:
            params = jax.tree.map(jnp.array, initial_params)
            params = lora.attach(pcfg, params, key_params) if pcfg.lora_rank else params
        params, ref = lora.start(pcfg, params, reference=cfg.beta > 0)
        zero = jnp.zeros((), jnp.int32)
        opt_state, critic = algorithm.init(tx, pcfg, params)
        return TrainState(params, opt_state, critic, ref, key_run, zero, zero, zero, zero, zero)

    def step(state: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
        batch, metrics, samples = rollout(lora.combine(pcfg, state.params, state.ref_params),
                                          jax.random.fold_in(state.key, state.step))  # fmt: skip
        params, opt_state, update_metrics, skipped, critic = update(state.params, state.opt_state, state.ref_params,
                                                                    batch, state.critic)  # fmt: skip
        bad_streak = jnp.where(skipped > 0, state.bad_streak + 1, 0)
        state = state._replace(
            params=params, opt_state=opt_state, critic=critic, step=state.step + 1,
            num_tokens=state.num_tokens + metrics.pop("num_tokens"),
            skipped_updates=state.skipped_updates + skipped, bad_streak=bad_streak)  # fmt: skip
        metrics.update(update_metrics)
        metrics.update(
            num_tokens=state.num_tokens, skipped_updates=state.skipped_updates, bad_streak=bad_streak,
            rollbacks=state.rollbacks, learning_rate=last_learning_rate(cfg, opt_state), samples=samples)  # fmt: skip
        return state, metrics

    traces = collections.Counter()

    def chunk(state: TrainState):
        return jax.lax.scan(lambda s, _: step(s), state, None, length=cfg.checkpoint_every)

    def run_chunk(state):
        traces["run_chunk"] += 1
        return chunk(state)

    def run_chunk_seeds(states):
        traces["run_chunk_seeds"] += 1
        return _seed_runner(cfg, chunk)(states)

    if compiler_options is None and jax.local_devices()[0].platform == "cpu":
        compiler_options = dict(CPU_COMPILER_OPTIONS)
    if mesh is None:
        one = SingleDeviceSharding(jax.local_devices()[0])
        placed = placed_seeds = metrics_placed = one
    else:  # by the partition rules of emojax.rl.sharding (all replicated on a data-only mesh)
        placed = sharding.shardings(mesh, jax.eval_shape(init, jax.ShapeDtypeStruct((2,), jnp.uint32)))
        placed_seeds = jax.tree.map(lambda s: NamedSharding(mesh, P(None, *s.spec)), placed)  # the seed axis whole
        metrics_placed = NamedSharding(mesh, P())
    kw = {"compiler_options": compiler_options}
    chunk_kw = {"donate_argnums": 0, **kw}
    return Learner(
        config=cfg, task=task, policy_config=pcfg, graphdef=graphdef, sampler_config=scfg, reward_fn=reward_fn,
        mesh=mesh, init=jax.jit(init, out_shardings=placed, **kw),
        init_seeds=jax.jit(jax.vmap(init), out_shardings=placed_seeds, **kw), step=step,
        run_chunk=jax.jit(run_chunk, in_shardings=(placed,), out_shardings=(placed, metrics_placed), **chunk_kw),
        run_chunk_seeds=jax.jit(run_chunk_seeds, in_shardings=(placed_seeds,),
                                out_shardings=(placed_seeds, metrics_placed), **chunk_kw),
        traces=traces, rollout=rollout, update=update,
    )  # fmt: skip

"""``experiments.bench dialogue``: a GRPO step over whole conversations, compiled as one
program, against the same step with the conversation stepped on the host.

What is compared, on one thread and the same shapes (the 2x64 policy, the ``empathy``
environment at its training settings: 8 turns, replies of ``N`` tokens, 8 groups of 4):

* ``compiled``: :func:`emojax.rl.learner.make_train`'s step, rollout and update in one
  jitted program; the conversation is a ``lax.scan`` over turns with one KV cache
  (:func:`emojax.rl.multiturn.converse`).
* ``host``: what TRL's environment factory and verl's interaction loop do. Each turn the
  policy's sampling is one jitted call (:func:`emojax.rl.sampler.sample` on the whole
  history so far: a fresh prefill every turn, as ``generate`` re-reads the prompt), the
  environment's step is another, and Python carries the history between them; then the
  same jitted update. Every history length is compiled during warm-up, so the timed calls
  measure dispatch and recomputation, not compilation.
* ``update``: the update alone. Both steps run it, so ``(host rollout + update) /
  update`` bounds the whole step's ratio, whatever the compiled rollout costs.
* ``seeds``: 16 seeds of the compiled step in one program (``run_chunk_seeds``) against the
  same 16 run one after another (``run_chunk`` each).

The matmul peak is measured in the same run (start and end), as the other benchmarks do.
"""

from __future__ import annotations

import dataclasses
import resource

import jax
import jax.numpy as jnp
import numpy as np

from emojax import config
from emojax.bench import timing

__all__ = ["conversation_learner", "main", "run_dialogue", "timed"]


def conversation_learner(quick: bool, seeds: int = 1, strategy: str = "map"):
    from emojax.rl import environments, learner
    from emojax.rl import policy as policy_lib
    from emojax.rl.config import GRPOConfig
    from emojax.world import conversation

    turns = 2 if quick else 8
    env = environments.make_environment("empathy", dataclasses.replace(conversation.TRAIN, max_turns=turns))
    pcfg = policy_lib.PRESETS["smoke" if quick else "2x64"]
    cfg = GRPOConfig(policy=pcfg, num_prompts=2 if quick else 8, group_size=4, max_new_tokens=8, loss_type="dapo",
                     advantage_eps=1e-6, steps=1, checkpoint_every=1, seeds=tuple(range(seeds)),
                     seed_strategy=strategy, log_completions=1)  # fmt: skip
    profiles = env.profiles(jax.random.key(0), 64)
    return env, cfg, learner.make_train(cfg, env, profiles=profiles), profiles


def _options() -> dict | None:
    """The learner's XLA options on this platform."""
    from emojax.rl.learner import CPU_COMPILER_OPTIONS

    return CPU_COMPILER_OPTIONS if jax.local_devices()[0].platform == "cpu" else None


def _host_step(run, env, profiles):
    """The host-stepped ``(step, rollout)``: per turn a jitted sample of the whole history
    and a jitted environment step, Python between them; then (``step``) the learner's own
    jitted update."""
    from emojax.rl import advantages as adv_lib
    from emojax.rl import multiturn, sampler
    from emojax.rl.rollout import Batch

    jit = lambda fn: jax.jit(fn, compiler_options=_options())  # noqa: E731  (as the learner compiles)
    cfg, scfg = run.config, run.sampler_config
    g, groups, n = cfg.group_size, cfg.num_prompts, scfg.max_new_tokens
    sample = jit(lambda params, key, tokens, mask: sampler.sample(run.graphdef, params, key, tokens, mask, scfg))
    env_step = jit(env.step)
    reset = jit(env.reset)
    update = jit(run.update)
    reward = jit(lambda obs: run.reward_fn(obs)[0])
    advantages = jit(lambda total: adv_lib.group_advantages(
        total.reshape(groups, g), std_ddof=cfg.std_ddof, eps=cfg.advantage_eps).advantages.reshape(-1))

    def rollout(state):
        key = jax.random.fold_in(state.key, state.step)
        key_pick, key_talk = jax.random.split(key)
        pick = jax.random.choice(key_pick, profiles.shape[0], (groups,), replace=False)
        env_state, opening = reset(profiles[jnp.repeat(pick, g)])
        tokens, mask = opening, opening != env.pad_token
        policy_pieces, done = [], np.zeros(tokens.shape[0], bool)
        turns, truncated = np.zeros(tokens.shape[0], np.int32), np.zeros((tokens.shape[0], env.max_turns), bool)
        for t in range(env.max_turns):
            key_policy, key_env = jax.random.split(jax.random.fold_in(key_talk, t))
            out = sample(run.policy_params(state), key_policy, tokens, mask)
            reply = jnp.where(out.completion_mask, out.tokens[:, -n:], env.pad_token)
            live = jnp.asarray(~done)
            reply = jnp.where(live[:, None], reply, env.pad_token)
            env_state, said, ended = env_step(key_env, env_state, reply)
            said = jnp.where(live[:, None], said, env.pad_token)
            wrote = reply != env.pad_token
            turns += np.asarray(live)
            truncated[:, t] = np.asarray(live & ~out.ended)
            policy_pieces += [wrote & live[:, None], jnp.zeros(said.shape, bool)]
            tokens = jnp.concatenate([tokens, reply, said], axis=1)
            mask = jnp.concatenate([mask, wrote & live[:, None], said != env.pad_token], axis=1)
            done = done | np.asarray(ended)
        transcript = multiturn.Transcript(tokens, mask, jnp.concatenate([jnp.zeros_like(opening, bool), *policy_pieces],
                                                                        axis=1),
                                          jnp.zeros(tokens.shape), jnp.asarray(turns), jnp.asarray(truncated))  # fmt: skip
        obs = multiturn.observe(env, transcript, env_state, opening.shape[1], n)
        total = reward(obs)
        return Batch(tokens, mask, obs.completion_mask, advantages(total), obs.truncated, total)

    def step(state):
        params, opt_state, _, _, critic = update(state.params, state.opt_state, state.ref_params, rollout(state),
                                                 state.critic)  # fmt: skip
        return state._replace(params=params, opt_state=opt_state, critic=critic, step=state.step + 1)

    return step, rollout


def timed(fn, calls: int) -> dict:
    """Median and minimum wall seconds, first-call seconds and median CPU seconds of
    ``calls`` calls of ``fn`` after one warm-up call (:func:`emojax.bench.timing.time_calls`)."""
    cpu: list[float] = []
    times, first = timing.time_calls(fn, calls, cpu=cpu)
    return {"median_s": float(np.median(times)), "min_s": float(np.min(times)), "first_call_s": first,
            "cpu_median_s": float(np.median(cpu)), "calls": calls}  # fmt: skip


def run_dialogue(quick: bool = False, calls: int = 5, seeds: int = 16, log=print) -> dict:
    """Every entry of the benchmark (see the module docstring) as a JSON-ready dict."""
    from emojax.rl import loop

    matmul_n = 256 if quick else 2048
    log(f"[bench] matmul peak ({matmul_n}^3 fp32)")
    start = timing.matmul_peak(matmul_n)
    env, cfg, run, profiles = conversation_learner(quick)
    host, host_rollout = _host_step(run, env, profiles)
    holder = {"c": run.init(jax.random.key(0)), "h": run.init(jax.random.key(0))}  # run_chunk donates its input
    compiled_rollout = jax.jit(run.rollout)
    fixed = run.init(jax.random.key(1))

    def call_compiled():
        holder["c"] = jax.block_until_ready(run.run_chunk(holder["c"])[0])

    def call_host():
        holder["h"] = jax.block_until_ready(host(holder["h"]))

    log("[bench] compiled conversations (the rollout alone)")
    rollout_compiled = timed(lambda: jax.block_until_ready(compiled_rollout(run.policy_params(fixed), fixed.key)), calls)
    log("[bench] host-stepped conversations (the rollout alone)")
    rollout_host = timed(lambda: jax.block_until_ready(host_rollout(fixed)), calls)
    log("[bench] the update alone (the same in both steps)")
    batch = compiled_rollout(run.policy_params(fixed), fixed.key)[0]
    update = jax.jit(run.update, compiler_options=_options())  # as both steps compile it
    update_alone = timed(lambda: jax.block_until_ready(update(fixed.params, fixed.opt_state, fixed.ref_params, batch,
                                                              fixed.critic)),
                         calls)  # fmt: skip
    log("[bench] compiled conversation step")
    entry_compiled = timed(call_compiled, calls)
    log("[bench] host-stepped conversation step")
    entry_host = timed(call_host, calls)

    n_seeds = 2 if quick else seeds
    _, cfg_s, run_s, _ = conversation_learner(quick, seeds=n_seeds)
    states = loop.initial_state(run_s)
    singles = [run.init(jax.random.key(s)) for s in range(n_seeds)]
    many = {"s": states, "singles": singles}

    def call_seeds():
        many["s"] = jax.block_until_ready(run_s.run_chunk_seeds(many["s"])[0])

    def call_sequential():
        many["singles"] = [jax.block_until_ready(run.run_chunk(s)[0]) for s in many["singles"]]

    log(f"[bench] {n_seeds} seeds in one program")
    entry_seeds = timed(call_seeds, max(2, calls // 2))
    log(f"[bench] {n_seeds} seeds one after another")
    entry_sequential = timed(call_sequential, max(2, calls // 2))
    end = timing.matmul_peak(matmul_n)
    length = run.task.turn_len + env.max_turns * (cfg.max_new_tokens + env.turn_len)
    result = {
        "environment": timing.environment(),
        "shapes": {"policy": config.to_dict(run.policy_config), "conversations": cfg.batch_size, "turns": env.max_turns,
                   "reply_tokens": cfg.max_new_tokens, "user_turn_tokens": env.turn_len, "transcript_tokens": length},
        "compiled": entry_compiled, "host": entry_host,
        "compiled_over_host": entry_host["median_s"] / entry_compiled["median_s"],
        "rollout": {"compiled": rollout_compiled, "host": rollout_host,
                    "compiled_over_host": rollout_host["median_s"] / rollout_compiled["median_s"]},
        # Both steps run this same update, so no rollout, however fast, makes the compiled
        # step more than (host rollout + update) / update times faster.
        "update": {**update_alone, "real_tokens_share": float(np.mean(np.asarray(batch.mask))),
                   "bound_compiled_over_host": (rollout_host["median_s"] + update_alone["median_s"])
                   / update_alone["median_s"]},
        "seeds": {"count": n_seeds, "strategy": cfg_s.seed_strategy, "one_program": entry_seeds,
                  "sequential": entry_sequential,
                  "sequential_over_one_program": entry_sequential["median_s"] / entry_seeds["median_s"]},
        "matmul_peak": {"start": start, "end": end,
                        "peak_gflop_per_s": max(start["peak_gflop_per_s"], end["peak_gflop_per_s"])},
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "quick": quick,
    }  # fmt: skip
    result["targets"] = {
        "compiled step >= 3x host-stepped": result["compiled_over_host"] >= 3.0,
        "compiled conversations >= 3x host-stepped": result["rollout"]["compiled_over_host"] >= 3.0,
        f"{n_seeds} seeds in one program no slower than sequential": result["seeds"]["sequential_over_one_program"]
        >= 1.0,
    }
    return result


def table(result: dict) -> str:
    s = result["seeds"]
    return "\n".join([
        f"matmul peak {result['matmul_peak']['peak_gflop_per_s']:.1f} GFLOP/s; shapes {result['shapes']}",
        f"compiled step {result['compiled']['median_s'] * 1e3:.0f} ms, host-stepped "
        f"{result['host']['median_s'] * 1e3:.0f} ms: {result['compiled_over_host']:.2f}x",
        f"the conversations alone (rollout): compiled {result['rollout']['compiled']['median_s'] * 1e3:.0f} ms, "
        f"host-stepped {result['rollout']['host']['median_s'] * 1e3:.0f} ms: "
        f"{result['rollout']['compiled_over_host']:.2f}x",
        f"the update alone {result['update']['median_s'] * 1e3:.0f} ms ({result['update']['real_tokens_share']:.0%} of "
        f"its transcript slots are real tokens): the whole step can be at most "
        f"{result['update']['bound_compiled_over_host']:.2f}x the host-stepped one",
        f"{s['count']} seeds in one program {s['one_program']['median_s']:.2f} s, one after another "
        f"{s['sequential']['median_s']:.2f} s: {s['sequential_over_one_program']:.2f}x",
        *(f"{'met' if ok else 'NOT met'}: {name}" for name, ok in result["targets"].items()),
    ])  # fmt: skip


def main(args) -> dict:
    result = run_dialogue(quick=args.quick, calls=args.calls, seeds=args.seeds)
    config.write_json(args.out, result)
    print(table(result))
    return result

"""A prepared GPU check of the GRPO engine (issue 4, item 9); launcher :mod:`experiments.gpu_check`.

What it measures, on JAX's default device, parts in the order 1, 2, 3; each records its own
wall time (mostly compilation: three programs a part), and a part that would start after
``budget_s`` seconds (240) is skipped and listed under ``skipped``, so the command ends in
time even on a slow card. ``only`` runs the parts whose names start with one of the given
prefixes (the matmul peak always runs):

1. ``matmul_peak``: the best ``[n, n] @ [n, n]`` (n = 8192) in float32 at
   ``Precision.HIGHEST`` (true fp32), float32 at the default precision (TF32 on NVIDIA
   cards that have it) and bfloat16, GFLOP/s. The fp32 HIGHEST figure is the peak the
   update's utilisation is read against (the engine trains in float32).
2. ``configs``: the benchmark step of :mod:`emojax.bench.grpo` (the learner's
   ``run_chunk``, ``rollout`` and ``update``) for the CPU benchmark's shapes (2x64 and
   4x256, 4 prompts x 8 completions x 32 tokens) and at larger sizes: ``8x512`` (8 layers,
   width 512, 8 heads, MLP 2048, vocabulary 32,000) and ``12x768`` (12 layers, width 768,
   12 heads, MLP 3072, vocabulary 32,000) on 16 prompts x 8 completions x 64 tokens after
   64-token prompts. Each entry has ``update_gflop_per_s`` and ``update_fraction_of_peak``.
3. ``seeds_scaling``: the 2x64 step for 1, 4, 16 and 64 seeds in one program (vmap),
   step time and seed-steps per second.
4. ``large``: real model shapes with random weights in bfloat16 compute (float32 master
   weights, loss and log-probs): Qwen2.5-0.5B (hidden 896, 24 layers, 14 heads, 2 key/value
   heads, MLP 4864, vocabulary 151,936, tied) and Qwen2.5-1.5B (1536, 28, 12, 2, 8960),
   16 prompts x 8 completions x 64 tokens after 64-token prompts. Only the whole step is
   compiled and timed (one program a size): step time, generated tokens per second, model
   FLOPs per step (:func:`emojax.bench.flops.grpo_step_flops`) and their utilisation of
   the measured bf16 matmul peak, and the device's peak memory so far (sizes run smallest
   first, so it is each size's own peak). The 1.5B shape runs last, after ``dialogue``.
5. ``dialogue``: the GRPO step over whole conversations of :mod:`emojax.bench.dialogue`
   (the 2x64 policy, the ``empathy`` environment, 8 turns, 8 groups of 4) for 1 and 64
   seeds in one program (vmap): step time and seed-steps per second.

A part that raises is recorded under ``errors`` (its label, the exception and the end of
its traceback) and the next part runs: one device call must not be lost to one part.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import traceback
from typing import Any

import jax
import jax.numpy as jnp

from emojax import config
from emojax.bench import grpo as gb
from emojax.bench import timing
from emojax.rl import policy


def device_peak(n: int, repeats: int = 5) -> dict:
    """Best-of-``repeats`` GFLOP/s of an ``[n, n]`` matmul: fp32 HIGHEST, fp32 default, bf16."""
    out = {"n": n}
    for name, dtype, precision in (("fp32_highest", jnp.float32, jax.lax.Precision.HIGHEST),
                                   ("fp32_default", jnp.float32, None), ("bf16", jnp.bfloat16, None)):
        a = jax.random.normal(jax.random.key(1), (n, n), dtype)
        b = jax.random.normal(jax.random.key(2), (n, n), dtype)
        f = jax.jit(lambda x, y, p=precision: jnp.matmul(x, y, precision=p))
        f(a, b).block_until_ready()
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            f(a, b).block_until_ready()
            best = min(best, time.perf_counter() - t0)
        out[f"{name}_gflop_per_s"] = 2 * n**3 / best / 1e9
    return out


QWEN = {
    "qwen2.5-0.5b": policy.PolicyConfig(vocab_size=151_936, d_model=896, num_layers=24, num_heads=14, num_kv_heads=2,
                                        mlp_dim=4864, rope_theta=1e6, dtype="bfloat16"),
    "qwen2.5-1.5b": policy.PolicyConfig(vocab_size=151_936, d_model=1536, num_layers=28, num_heads=12, num_kv_heads=2,
                                        mlp_dim=8960, rope_theta=1e6, dtype="bfloat16"),
}


def device_memory() -> dict:
    """The device's allocator figures (bytes in use, peak so far), where it reports them."""
    stats = jax.local_devices()[0].memory_stats() or {}
    return {k: int(stats[k]) for k in ("bytes_in_use", "peak_bytes_in_use", "bytes_limit") if k in stats}


def bench_step(pcfg: policy.PolicyConfig, shape: "gb.Shape", *, chunk: int, calls: int, peak_bf16: float,
               options: dict | None) -> dict:
    """Time the learner's whole step (``run_chunk``, ``chunk`` steps a call) for one size:
    the one program a run executes, so one compile."""
    from emojax.bench import flops
    from emojax.rl import learner as learner_lib

    cfg = gb.grpo_config(pcfg, shape, chunk=chunk)
    task, reward = gb.bench_task(pcfg.vocab_size, shape)
    run = learner_lib.make_train(cfg, task, reward_fn=reward, compiler_options=options)
    box = {"state": run.init(jax.random.key(0))}

    def step():
        box["state"], box["metrics"] = jax.block_until_ready(run.run_chunk(box["state"]))

    times, first = timing.time_calls(step, calls, warmup=1)
    loss = box["metrics"]["loss"]
    step_s = float(sorted(times)[len(times) // 2]) / chunk
    count = flops.grpo_step_flops(pcfg, num_prompts=shape.num_prompts, group_size=shape.group_size,
                                  prompt_len=shape.prompt_len, new_tokens=shape.new_tokens)
    tokens = shape.num_prompts * shape.group_size * shape.new_tokens
    return {
        "step_s_median": step_s, "step_s": [t / chunk for t in times], "first_call_s": first,
        "steps_per_call": chunk, "calls_timed": calls,
        "params": int(sum(x.size for x in jax.tree.leaves(box["state"].params))),
        "generated_tokens_per_s": tokens / step_s,
        "step_flops": count["step"], "rollout_flops": count["rollout"], "update_flops": count["update"],
        "model_gflop_per_s": count["step"] / step_s / 1e9,
        "mfu_vs_bf16_peak": count["step"] / step_s / 1e9 / peak_bf16,
        "loss_finite": bool(jax.numpy.all(jax.numpy.isfinite(loss))),
        "device_memory": device_memory(),
        "config": {"policy_config": dataclasses.asdict(pcfg), "prompt_len": shape.prompt_len,
                   "new_tokens": shape.new_tokens, "num_prompts": shape.num_prompts, "group_size": shape.group_size},
    }  # fmt: skip


def run(*, dry_run: bool = False, budget_s: float = 240.0, only: tuple[str, ...] = (), log=print,
        after_part=lambda result: None) -> dict[str, Any]:
    """Every part of the check (see the module doc) as a JSON-ready dict; ``after_part(result)``
    is called after each part (the launcher writes the JSON then, so a killed run keeps what
    it measured)."""
    # XLA inlines one copy of the threefry hash per random draw; on GPU the initialisation of
    # the 12x768 policy then took 3 min 20 s to compile (H200, 2026-11-27). JAX's kernel
    # lowering of threefry draws the same bits and compiles in seconds.
    jax.config.update("jax_threefry_gpu_kernel_lowering", True)

    start = time.perf_counter()
    result: dict[str, Any] = {"dry_run": dry_run, "argv": list(sys.argv), "devices": [str(d) for d in jax.devices()],
                              "backend": jax.default_backend(), "jax": jax.__version__, "skipped": []}
    if dry_run:
        tiny = policy.PolicyConfig(vocab_size=32, d_model=16, num_layers=1, num_heads=2, num_kv_heads=2, mlp_dim=32)
        small = gb.Shape(prompt_len=4, new_tokens=4, num_prompts=2, group_size=2)
        configs = {"2x64": (tiny, small), "4x256": (dataclasses.replace(tiny, num_layers=2), small)}
        large = {name: dataclasses.replace(tiny, num_kv_heads=1, dtype="bfloat16", rope_theta=1e6)
                 for name in QWEN}  # fmt: skip
        large_shape = small
        seeds_list, n, chunk, calls = (1, 2), 256, 2, 1
        options = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False} \
            if jax.default_backend() == "cpu" else None
    else:
        big = gb.Shape(prompt_len=64, new_tokens=64, num_prompts=16, group_size=8)
        configs = {
            "2x64": (policy.PRESETS["2x64"], gb.Shape()),
            "4x256": (policy.PRESETS["4x256"], gb.Shape()),
            "8x512": (policy.PolicyConfig(vocab_size=32_000, d_model=512, num_layers=8, num_heads=8, num_kv_heads=8,
                                          mlp_dim=2048), big),
            "12x768": (policy.PolicyConfig(vocab_size=32_000, d_model=768, num_layers=12, num_heads=12,
                                           num_kv_heads=12, mlp_dim=3072), big),
        }
        large, large_shape = QWEN, big
        seeds_list, n, chunk, calls = (1, 4, 16, 64), 8192, 4, 3
        options = None

    t0 = time.perf_counter()
    log(f"[gpu_check] matmul peak ({n}^3)")
    result["matmul_peak"] = {**device_peak(n), "wall_s": time.perf_counter() - t0}
    peak = result["matmul_peak"]["fp32_highest_gflop_per_s"]
    result["environment"] = timing.environment()

    result["configs"], result["seeds_scaling"] = {}, {}

    def bench_config(name, chunk=chunk, calls=calls):
        pcfg, shape = configs[name]
        log(f"[gpu_check] {name}")
        t0 = time.perf_counter()
        entry = gb.bench_emojax(name, pcfg, shape=shape, chunk=chunk, calls=calls, peak=peak, compiler_options=options)
        entry["wall_s"] = time.perf_counter() - t0
        result["configs"][name] = entry

    def bench_seeds(s):
        log(f"[gpu_check] 2x64 x {s} seeds")
        t0 = time.perf_counter()
        pcfg, shape = configs["2x64"]
        e = gb.bench_emojax("2x64", pcfg, shape=shape, seeds=s, seed_strategy="vmap", chunk=chunk, calls=calls,
                            peak=peak, compiler_options=options)
        result["seeds_scaling"][str(s)] = {
            "step_s_median": e["step_s_median"], "seed_steps_per_s": s / e["step_s_median"],
            "update_gflop_per_s": e["update_gflop_per_s"], "update_fraction_of_peak": e["update_fraction_of_peak"],
            "first_call_s": e["first_call_s"], "wall_s": time.perf_counter() - t0,
        }  # fmt: skip

    # Every size (the larger ones run 2 steps a call, 2 calls: their compile dominates), then
    # seeds scaling; each part starts only while the budget allows.
    small = ("2x64", "4x256")
    parts = [(f"configs.{name}", lambda name=name: bench_config(name) if name in small else
              bench_config(name, chunk=min(chunk, 2), calls=min(calls, 2))) for name in configs]
    parts += [(f"seeds_scaling.{s}", lambda s=s: bench_seeds(s)) for s in seeds_list]
    result["dialogue"] = {}

    def bench_dialogue(s):
        from emojax.bench import dialogue
        from emojax.rl import loop

        log(f"[gpu_check] dialogue x {s} seeds")
        t0 = time.perf_counter()
        run_s = dialogue.conversation_learner(dry_run, seeds=s, strategy="vmap")[2]
        holder = {"state": loop.initial_state(run_s)}
        chunk_fn = run_s.run_chunk_seeds if s > 1 else run_s.run_chunk

        def call():
            holder["state"] = jax.block_until_ready(chunk_fn(holder["state"])[0])

        e = dialogue.timed(call, max(2, calls // 2))
        result["dialogue"][str(s)] = {**e, "seed_steps_per_s": s / e["median_s"], "wall_s": time.perf_counter() - t0}

    result["large"] = {}

    def bench_large(name):
        log(f"[gpu_check] {name} (bfloat16)")
        t0 = time.perf_counter()
        entry = bench_step(large[name], large_shape, chunk=1, calls=max(2, calls), options=options,
                           peak_bf16=result["matmul_peak"]["bf16_gflop_per_s"])
        result["large"][name] = {**entry, "wall_s": time.perf_counter() - t0}

    # The smaller real shape, then the conversations, then the larger shape (the first to go
    # when the budget runs out).
    first, *rest = large
    parts += [(f"large.{first}", lambda: bench_large(first))]
    parts += [(f"dialogue.{s}", lambda s=s: bench_dialogue(s)) for s in ((1, 2) if dry_run else (1, 64))]
    parts += [(f"large.{name}", lambda name=name: bench_large(name)) for name in rest]
    result["errors"] = {}
    for label, part in parts:
        if only and not label.startswith(only):
            continue
        if time.perf_counter() - start > budget_s:
            result["skipped"].append(label)
            continue
        try:
            part()
        except Exception as err:  # noqa: BLE001 - recorded, and the next part runs
            log(f"[gpu_check] {label} failed: {err!r}")
            result["errors"][label] = {"error": repr(err)[:2000], "traceback": traceback.format_exc()[-4000:]}
        after_part(result)
    result["wall_s"] = time.perf_counter() - start
    return result


def table(result: dict) -> str:
    mp = result["matmul_peak"]
    lines = [f"devices {result['devices']}; matmul {mp['n']}^3: fp32 HIGHEST {mp['fp32_highest_gflop_per_s']:.0f}, "
             f"fp32 default {mp['fp32_default_gflop_per_s']:.0f}, bf16 {mp['bf16_gflop_per_s']:.0f} GFLOP/s",
             f"{'config':<10} {'step ms':>9} {'sample ms':>9} {'update ms':>9} {'upd GF/s':>9} {'%fp32':>6} {'tok/s':>9}"]
    for name, e in result["configs"].items():
        lines.append(f"{name:<10} {1e3 * e['step_s_median']:>9.2f} {1e3 * e['sample_s_median']:>9.2f} "
                     f"{1e3 * e['update_s_median']:>9.2f} {e['update_gflop_per_s']:>9.1f} "
                     f"{100 * e['update_fraction_of_peak']:>6.1f} {e['generated_tokens_per_s']:>9.0f}")
    for s, e in result["seeds_scaling"].items():
        lines.append(f"seeds {s:>3}: step {1e3 * e['step_s_median']:.2f} ms, {e['seed_steps_per_s']:.1f} seed-steps/s")
    for name, e in result.get("large", {}).items():
        mem = e["device_memory"].get("peak_bytes_in_use")
        lines.append(f"{name}: step {1e3 * e['step_s_median']:.1f} ms, {e['generated_tokens_per_s']:.0f} tok/s, "
                     f"{e['model_gflop_per_s']:.0f} GFLOP/s = {100 * e['mfu_vs_bf16_peak']:.1f}% of bf16 peak"
                     + (f", peak memory {mem / 2**30:.1f} GiB" if mem else ""))
    for s, e in result.get("dialogue", {}).items():
        lines.append(f"dialogue, seeds {s:>3}: step {1e3 * e['median_s']:.1f} ms, {e['seed_steps_per_s']:.1f} seed-steps/s")
    for label, e in result.get("errors", {}).items():
        lines.append(f"FAILED {label}: {e['error'][:200]}")
    if result["skipped"]:
        lines.append(f"skipped (time budget): {result['skipped']}")
    lines.append(f"wall {result['wall_s']:.0f} s")
    return "\n".join(lines)


def main(args) -> dict:
    """Run the check for parsed ``experiments.gpu_check`` arguments, writing the JSON after every part."""
    only = tuple(p for p in args.only.split(",") if p)
    result = run(dry_run=args.dry_run, budget_s=args.budget_s, only=only,
                 after_part=lambda partial: config.write_json(args.out, partial))
    config.write_json(args.out, result)
    print(table(result))
    print(f"[gpu_check] -> {args.out}")
    return result

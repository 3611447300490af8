"""Timing on one core: the environment, the matmul peak, per-step times and their summary."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")


def environment() -> dict:
    """Where the numbers come from: CPU, affinity, thread settings, versions, load."""
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model == "unknown":
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        affinity = None
    return {
        "cpu_model": model,
        "cpu_simd_flags": [f for f in SIMD_FLAGS if f in flags],
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "jax": jax.__version__,
        "jax_devices": [str(d) for d in jax.devices()],
        "torch": torch_version(),
        "python": platform.python_version(),
        "loadavg": list(os.getloadavg()),
    }


def torch_version() -> str:
    try:
        import torch
    except ImportError:
        return "not installed"
    return torch.__version__


def matmul_peak(n: int = 2048, repeats: int = 10) -> dict:
    """Best time of a jitted fp32 ``[n, n] @ [n, n]`` after warm-up, as GFLOP/s (2 n^3 FLOPs)."""
    a = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(2), (n, n), jnp.float32)
    f = jax.jit(jnp.matmul)
    for _ in range(2):
        f(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a, b).block_until_ready()
        times.append(time.perf_counter() - t0)
    best, median = min(times), float(np.median(times))
    return {
        "n": n,
        "repeats": repeats,
        "best_ms": 1e3 * best,
        "median_ms": 1e3 * median,
        "peak_gflop_per_s": 2 * n**3 / best / 1e9,
        "median_gflop_per_s": 2 * n**3 / median / 1e9,
    }


@dataclasses.dataclass
class Timing:
    """Per-step seconds after warm-up, the first call (compilation), page faults per step."""

    times: list[float]
    first_call_s: float
    minor_faults_per_step: float


def time_calls(fn: Callable[[], Any], calls: int, warmup: int = 2, cpu: list | None = None) -> tuple[list[float], float]:
    """(per-call wall seconds, first-call seconds) of ``fn`` (which blocks); the per-call
    CPU seconds of this process are appended to ``cpu`` (on a shared machine, wall time
    also counts the time other processes held the core)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    for _ in range(warmup - 1):
        fn()
    times = []
    for _ in range(calls):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.process_time() - c0)
    return times, first


def _minor_faults() -> int:
    try:
        import resource
    except ImportError:  # not Unix
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_steps(step: Callable[[], Any], *, min_time: float, min_steps: int, warmup: int = 3) -> Timing:
    """Call ``step`` (which must block until done) to warm up, then time it call by call,
    for at least ``min_steps`` calls and ``min_time`` seconds."""
    t0 = time.perf_counter()
    step()  # compiles
    first = time.perf_counter() - t0
    for _ in range(warmup - 1):
        step()
    times: list[float] = []
    faults = _minor_faults()
    start = time.perf_counter()
    while len(times) < min_steps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return Timing(times, first, (_minor_faults() - faults) / len(times))


def summarize(timing: Timing, batch_size: int, flops: dict, peak: float) -> dict:
    """A configuration's entry: throughput, FLOP rate and fraction of ``peak`` (GFLOP/s).

    ``examples_per_s`` is ``batch_size / median step time``; ``flops`` holds per-example
    counts (see :mod:`emojax.bench.flops`): ``train`` gives ``flops_per_example`` and
    ``gflop_per_s``; ``needed``, where given, the ``*_needed`` twins.
    """
    t = np.asarray(timing.times)
    median = float(np.median(t))
    out = {
        "batch_size": batch_size,
        "examples_per_s": batch_size / median,
        "examples_per_s_mean": batch_size * len(t) / float(np.sum(t)),
        "step_ms_median": 1e3 * median,
        "step_ms_p90": 1e3 * float(np.percentile(t, 90)),
        "step_ms_min": 1e3 * float(np.min(t)),
        "steps_timed": len(t),
        "first_call_s": timing.first_call_s,
        "minor_page_faults_per_step": timing.minor_faults_per_step,
        "flops_per_example": flops["train"],
        "flops_per_example_forward": flops["forward"],
        "gflop_per_s": flops["train"] * batch_size / median / 1e9,
        "peak_gflop_per_s": peak,
    }
    if "needed" in flops:
        out["flops_per_example_needed"] = flops["needed"]
        out["gflop_per_s_needed"] = flops["needed"] * batch_size / median / 1e9
    return rescale(out, peak)


def rescale(entry: dict, peak: float) -> dict:
    """Set ``entry``'s peak and the fractions of it (in place; returns ``entry``)."""
    entry["peak_gflop_per_s"] = peak
    entry["fraction_of_peak"] = entry["gflop_per_s"] / peak
    if "gflop_per_s_needed" in entry:
        entry["fraction_of_peak_needed"] = entry["gflop_per_s_needed"] / peak
    return entry


def in_fresh_process(fn: Callable[..., Any], *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)`` in a newly spawned interpreter (same environment variables,
    hence ``XLA_FLAGS``, and same CPU affinity); ``fn`` and its arguments must pickle."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def in_this_process(fn: Callable[..., Any], *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)`` here: :func:`in_fresh_process`'s stand-in when not isolating."""
    return fn(*args, **kwargs)

"""Strict test settings, applied before JAX is imported anywhere.

* four fake CPU devices, so sharding code is exercised without an accelerator;
* XLA:CPU's fastest compiles (no backend optimisation, no fusion emitters): the same
  results up to float rounding, run more slowly, compiled in about half the time;
* rank promotion raises, so silent broadcasting bugs fail loudly;
* W&B is disabled, so no test reaches the network;
* JAX's persistent compilation cache (locked, shared by the workers), so repeated runs skip
  recompiles.
"""

import os

# XLA:CPU's cheapest compiles (tests are mostly compile time: this halves the notebooks');
# flags the caller sets come after, so they win.
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
os.environ["XLA_FLAGS"] = (
    FAST_COMPILE + " " + os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
from emojax import compile_cache  # noqa: E402

compile_cache.enable(min_compile_secs=0.5)  # locked: the two workers share it


@pytest.fixture(scope="session")
def key():
    return jax.random.key(0)

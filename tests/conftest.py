"""Strict test settings, applied before JAX is imported anywhere.

* four fake CPU devices, so sharding code is exercised without an accelerator;
* rank promotion raises, so silent broadcasting bugs fail loudly;
* W&B is disabled, so no test reaches the network;
* JAX's persistent compilation cache, so repeated CI runs skip recompiles.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update(
    "jax_compilation_cache_dir",
    os.environ.get("EMOJAX_JAX_CACHE", os.path.expanduser("~/.cache/emojax/jax")),
)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture(scope="session")
def key():
    return jax.random.key(0)

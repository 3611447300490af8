"""The GRPO learner: one compile, learning, resume, skipped and rolled-back steps,
sharding, seeds, TRL metric names, two processes through ``jax.distributed``.

Compile time is what these tests cost, so they share one program: a toy task (reward =
the fraction of completion slots holding a target token; NaN, i.e. unscorable, when the
completion starts with a "bad" token), a one-layer policy, ``beta > 0`` (a reference
policy), ``mu = 2``, two micro-batches and dynamic sampling (twice the groups sampled),
compiled at XLA:CPU's lowest optimisation level. Rollback limits are host settings, so
they change without recompiling. Only sharding, the seed strategies and the two-process
run compile programs of their own.

Run as ``python tests/test_rl_learner.py --child RANK PORT OUT`` this file is one of the
two processes of the ``jax.distributed`` test.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import signal
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from emojax import compile_cache, interrupt, tracking
from emojax.rl import learner as learner_lib
from emojax.rl import loop, policy, sharding
from emojax.rl import update as update_lib
from emojax.rl.config import PRESETS, GRPOConfig
from emojax.rl.observation import Observation
from emojax.rl.rewards import register_reward
from emojax.rl.tasks.base import Task
from emojax import checkpoint

VOCAB, END, PAD, TARGET, BAD = 8, 1, 0, 5, 7
FAST = {"xla_backend_optimization_level": 0}  # halves XLA:CPU compile time


@register_reward("toy_target")
def toy_target(obs: Observation) -> jax.Array:
    """Fraction of the N completion slots holding TARGET; NaN if the reply starts with BAD."""
    hits = (obs.completion_tokens == TARGET) & obs.completion_mask
    frac = jnp.mean(hits.astype(jnp.float32), axis=-1)
    return jnp.where(obs.completion_tokens[:, 0] == BAD, jnp.nan, frac)


def _sample_prompts(key, n):
    tokens = jax.random.randint(key, (n, 3), 2, VOCAB, jnp.int32)
    return tokens, jnp.ones(tokens.shape, bool), {}


def _observe(prompt_tokens, prompt_mask, state, completion, completion_mask, truncated):
    del state
    return Observation(prompt_tokens, prompt_mask, completion, completion_mask, truncated)


TOY = Task(name="toy", vocab_size=VOCAB, end_token=END, pad_token=PAD, prompt_len=3, max_new_tokens=4,
           reward=(("toy_target", 1.0),), sample_prompts=_sample_prompts, observe=_observe, gold=None,
           optimal_completion=None)  # fmt: skip

CFG = PRESETS["smoke"].replace(
    policy=dataclasses.replace(policy.PRESETS["smoke"], num_layers=1), num_prompts=4, group_size=4, beta=0.01,
    mu=2, micro_batches=2, dynamic_sampling=True, oversample=2, learning_rate=1e-2, steps=4, checkpoint_every=2,
    log_completions=2)  # fmt: skip


@functools.cache
def _learner(mesh=None, **changes) -> learner_lib.Learner:
    return learner_lib.make_train(CFG.replace(**changes), TOY, mesh=mesh, compiler_options=FAST)


def _params(state, *, comparable: bool = False) -> list[np.ndarray]:
    """The parameters as NumPy arrays. ``comparable`` leaves out the key-projection bias:
    its exact gradient is 0 (it adds the same ``q . b`` to every score of a query, which
    the softmax ignores), so Adam's first steps on it are float noise divided by itself,
    and two programs that sum in a different order move it differently."""
    flat = jax.tree_util.tree_leaves_with_path(state.params)
    host = lambda x: np.asarray(x if x.is_fully_addressable else x.addressable_data(0))  # noqa: E731
    return [host(x) for path, x in flat if not (comparable and "k_proj" in jax.tree_util.keystr(path)
                                                      and "bias" in jax.tree_util.keystr(path))]


def _compiles(jitted) -> int:
    """Executables a jitted function holds. (Its trace count can stay 1 while it compiles
    again for inputs placed differently, which is why this, not only ``traces``.)"""
    return jitted._cache_size()


def _assert_close(a, b, rtol=1e-5):
    """Each tensor within ``rtol`` of the other, relative to its norm."""
    for x, y in zip(a, b, strict=True):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        assert x.shape == y.shape
        assert np.linalg.norm(x - y) <= rtol * np.linalg.norm(y), np.linalg.norm(x - y) / np.linalg.norm(y)


def test_config_presets_and_validation():
    for cfg in PRESETS.values():
        assert cfg.steps % cfg.checkpoint_every == 0
    with pytest.raises(ValueError, match="micro_batches"):
        GRPOConfig(num_prompts=3, group_size=3, micro_batches=2)
    with pytest.raises(ValueError, match="seed_strategy"):
        GRPOConfig(seed_strategy="pmap")


def test_entropy_schedule_holds_then_decays_the_bonus_to_zero():
    base = GRPOConfig(entropy_coef=0.1, steps=200, checkpoint_every=20, mu=2)  # 400 updates
    at = lambda cfg, *counts: [float(update_lib.entropy_schedule(cfg)(c)) for c in counts]  # noqa: E731
    np.testing.assert_allclose(at(base, 0, 200, 400), [0.1, 0.1, 0.1])  # the default: constant
    linear = base.replace(entropy_schedule="linear")
    np.testing.assert_allclose(at(linear, 0, 200, 399, 400, 500), [0.1, 0.05, 0.1 / 400, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(at(linear.replace(entropy_decay_steps=10_000), 0, 200, 400), [0.1, 0.05, 0.0],
                               atol=1e-9)  # more than the run has: all of it
    np.testing.assert_allclose(at(base.replace(entropy_schedule="cosine"), 0, 200, 400), [0.1, 0.05, 0.0], atol=1e-9)
    np.testing.assert_allclose(at(linear.replace(entropy_decay_steps=100), 0, 299, 300, 350, 400),
                               [0.1, 0.1, 0.1, 0.05, 0.0], atol=1e-9)  # held, then the last 100
    with pytest.raises(ValueError, match="entropy_schedule"):
        GRPOConfig(entropy_schedule="exponential")
    with pytest.raises(ValueError, match="entropy_decay_steps"):
        GRPOConfig(entropy_decay_steps=-1)
    # In the compiled update: each step's coefficient (4 updates, the last 3 decaying) and
    # the loss it gave (one micro-batch: loss - policy_loss is -coef * the mean entropy).
    lrn = _learner(entropy_coef=0.1, entropy_schedule="linear", entropy_decay_steps=3, mu=1, micro_batches=1,
                   dynamic_sampling=False)
    state = lrn.init(jax.random.key(0))
    coefs, gap, entropy = [], [], []
    for _ in range(CFG.steps // CFG.checkpoint_every):
        state, metrics = lrn.run_chunk(state)
        coefs.extend(np.asarray(metrics["entropy_coef"]))
        gap.extend(np.asarray(metrics["loss"]) - np.asarray(metrics["policy_loss"]))
        entropy.extend(np.asarray(metrics["entropy"]))
    np.testing.assert_allclose(coefs, [0.1, 0.1, 0.2 / 3, 0.1 / 3], rtol=1e-6)
    np.testing.assert_allclose(gap, -np.array(coefs) * np.array(entropy), rtol=1e-4, atol=1e-7)
    assert min(entropy) > 0.1  # the bonus was not zero by accident


def test_chunk_compiles_once_and_reward_goes_up():
    lrn = _learner()
    state = lrn.init(jax.random.key(0))
    rewards, invalid = [], []
    for _ in range(15):  # 30 steps
        state, metrics = lrn.run_chunk(state)
        rewards.extend(np.asarray(metrics["reward"]))
        invalid.extend(np.asarray(metrics["rewards/num_invalid"]))
    assert lrn.traces["run_chunk"] == 1 and _compiles(lrn.run_chunk) == 1
    assert int(state.step) == 30 and int(state.skipped_updates) == 0
    first, last = np.mean(rewards[:4]), np.mean(rewards[-4:])
    assert last > first + 0.3, (first, last)
    # Unscorable (NaN) rewards were met and left out, and no NaN reached the parameters.
    assert sum(invalid) > 0
    assert all(np.isfinite(x).all() for x in _params(state))


def test_ppo_learns_with_its_value_head():
    """PPO, a registry entry on the same engine (dynamic sampling, mu = 2, two micro-batches,
    KL): the reward rises, and the value head moves from zero to the level of the returns."""
    lrn = _learner(algorithm="ppo", learning_rate=3e-3)
    state = lrn.init(jax.random.key(0))
    assert not np.asarray(state.critic["kernel"]).any()
    rewards, values, returns = [], [], []
    for _ in range(15):  # 30 steps
        state, metrics = lrn.run_chunk(state)
        rewards.extend(np.asarray(metrics["reward"]))
        values.extend(np.asarray(metrics["value/mean"]))
        returns.extend(np.asarray(metrics["returns/mean"]))
        assert np.isfinite(np.asarray(metrics["value_loss"])).all()
    assert int(state.skipped_updates) == 0 and np.asarray(state.critic["kernel"]).any()
    assert np.mean(rewards[-4:]) > np.mean(rewards[:4]) + 0.3, (rewards[:4], rewards[-4:])
    trained = np.array(returns) > 0  # dynamic sampling leaves a step without a varied group empty
    values, returns = np.array(values)[trained], np.array(returns)[trained]
    assert values[0] == 0 and returns[0] > 0.05
    assert values[-5:].mean() > 0.7 and np.abs(values[-5:] - returns[-5:]).mean() < 0.15, (values, returns)


def test_ppo_micro_batches_add_up_to_the_whole_batch():
    """The value loss and the policy loss are divided by whole-batch counts, so two
    micro-batches give the update one batch gives."""
    one, two = (_learner(algorithm="ppo", micro_batches=m, mu=1, dynamic_sampling=False) for m in (1, 2))
    state = one.init(jax.random.key(1))
    batch, _, _ = jax.jit(one.rollout)(state.params, jax.random.key(2))
    outs = [jax.jit(lrn.update)(state.params, state.opt_state, state.ref_params, batch, state.critic)
            for lrn in (one, two)]  # fmt: skip
    _assert_close(_params(state._replace(params=outs[1][0]), comparable=True),
                  _params(state._replace(params=outs[0][0]), comparable=True), rtol=1e-4)
    _assert_close(jax.tree.leaves(outs[1][4]), jax.tree.leaves(outs[0][4]), rtol=1e-4)
    np.testing.assert_allclose(outs[1][2]["value_loss"], outs[0][2]["value_loss"], rtol=1e-5)


def test_nan_loss_skips_the_update_and_counts_it():
    lrn = _learner()
    state = lrn.init(jax.random.key(1))
    before = _params(state)
    # A corrupted reference policy makes the KL term, hence the loss, NaN.
    state = state._replace(ref_params=jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), state.ref_params))
    state, metrics = lrn.run_chunk(state)
    assert int(state.skipped_updates) == CFG.checkpoint_every * CFG.mu
    np.testing.assert_array_equal(np.asarray(metrics["bad_streak"]), [1, 2])
    assert np.isnan(np.asarray(metrics["loss"])).all()
    for x, y in zip(_params(state), before, strict=True):
        np.testing.assert_array_equal(x, y)  # skipped: not a single bit moved
    assert lrn.traces["run_chunk"] == 1


def test_rollback_restores_the_last_checkpoint_with_a_fresh_key(tmp_path):
    lrn = _learner()
    done = loop.train(CFG, str(tmp_path), TOY, learner=lrn, stop_after_steps=2)
    mngr = checkpoint.manager(str(tmp_path), CFG.keep_checkpoints)
    saved_key, saved_params = np.asarray(done.state.key), _params(done.state)
    poisoned = done.state._replace(params=jax.tree.map(lambda x: x * jnp.nan, done.state.params))
    state, metrics, bad = loop.advance(lrn, mngr, poisoned, max_bad_steps=2)  # donates `poisoned`
    assert bad.tolist() == [True] and np.asarray(metrics["skipped_updates"])[0, -1] == 4
    assert int(state.rollbacks) == 1 and int(state.step) == 2 and int(state.skipped_updates) == 4
    assert not np.array_equal(np.asarray(state.key), saved_key)
    for x, y in zip(_params(state), saved_params, strict=True):
        np.testing.assert_array_equal(x, y)
    state, metrics, bad = loop.advance(lrn, mngr, state, max_bad_steps=2)  # healthy again
    assert not bad.any() and int(state.step) == 4 and np.asarray(metrics["skipped_updates"])[0, -1] == 4
    assert all(np.isfinite(x).all() for x in _params(state))
    # Always bad: the loop gives up after max_rollbacks.
    with pytest.raises(RuntimeError, match="rollbacks"):
        loop.train(CFG.replace(max_bad_steps=1, max_rollbacks=1), str(tmp_path / "nan"), TOY,
                   learner=_poisoned_learner())


@functools.cache
def _poisoned_learner():
    """The shared program with an initial state whose reference policy is NaN."""
    lrn = _learner()

    def init(key):
        state = lrn.init(key)
        return state._replace(ref_params=jax.tree.map(lambda x: x * jnp.nan, state.ref_params))

    return lrn._replace(init=init)


def test_resume_equals_an_uninterrupted_run_and_logs_trl_names(tmp_path):
    lrn = _learner()
    whole = loop.train(CFG, str(tmp_path / "whole"), TOY, learner=lrn)
    half = loop.train(CFG, str(tmp_path / "half"), TOY, learner=lrn, stop_after_steps=2)
    assert half.step == 2
    resumed = loop.train(CFG, str(tmp_path / "half"), TOY, learner=lrn)
    assert resumed.step == 4 and resumed.history["reward"].shape == (2, 1)
    for x, y in zip(_params(resumed.state), _params(whole.state), strict=True):
        np.testing.assert_array_equal(x, y)
    # States from init, from a chunk and from a checkpoint all ran one executable.
    assert lrn.traces["run_chunk"] == 1 and _compiles(lrn.run_chunk) == 1

    rows = tracking.read_metrics(str(tmp_path / "half"))
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    names = {"reward", "reward_std", "frac_reward_zero_std", "rewards/toy_target/mean", "rewards/toy_target/std",
             "kl", "entropy", "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean",
             "clip_ratio/low_min", "clip_ratio/high_max", "completions/mean_length", "completions/clipped_ratio",
             "step_time", "num_tokens", "skipped_updates", "rollbacks", "loss", "grad_norm", "learning_rate",
             "dynamic_sampling/dropped_groups", "dynamic_sampling/short_groups", "rewards/num_invalid"}  # fmt: skip
    assert names <= set(rows[-1]), names - set(rows[-1])
    assert rows[-1]["num_tokens"] > rows[0]["num_tokens"] > 0
    with open(tmp_path / "half" / "completions.jsonl") as f:
        shown = [json.loads(line) for line in f]
    assert len(shown) == 2 * CFG.log_completions and {"prompt", "completion", "reward"} <= set(shown[0])
    assert json.loads((tmp_path / "half" / "config.json").read_text())["task"] == "toy"


def test_sigint_stops_at_a_chunk_boundary_saved_and_the_rerun_equals_an_uninterrupted_run(tmp_path):
    """Ctrl-C inside a chunk: the chunk finishes, is saved, and the loop stops; a hard kill
    after a row was logged but before its checkpoint leaves a row the rerun replaces."""
    lrn = _learner()
    whole = loop.train(CFG, str(tmp_path / "whole"), TOY, learner=lrn)
    calls = [0]

    def run_chunk(state):
        calls[0] += 1
        if calls[0] == 1:
            interrupt._handler(signal.SIGINT, None)  # what the signal does mid-chunk
        return lrn.run_chunk(state)

    with pytest.raises(interrupt.Interrupted) as stop:
        loop.train(CFG, str(tmp_path / "cut"), TOY, learner=lrn._replace(run_chunk=run_chunk))
    assert stop.value.step == CFG.checkpoint_every and calls[0] == 1 and interrupt.requested() is None
    with open(tmp_path / "cut" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": CFG.checkpoint_every + 1, "reward": -9.0}) + "\n")
    resumed = loop.train(CFG, str(tmp_path / "cut"), TOY, learner=lrn)
    for x, y in zip(_params(resumed.state), _params(whole.state), strict=True):
        np.testing.assert_array_equal(x, y)
    rows = tracking.read_metrics(str(tmp_path / "cut"))
    assert [r["step"] for r in rows] == list(range(1, CFG.steps + 1)) and -9.0 not in [r["reward"] for r in rows]


def test_sharded_batch_matches_one_device():
    devices = jax.devices()
    assert len(devices) == 4, "conftest provides four CPU devices"
    mesh = Mesh(np.array(devices), ("data",))
    one, four = _learner(), _learner(mesh=mesh)
    s1, m1 = one.run_chunk(one.init(jax.random.key(3)))
    s4, m4 = four.run_chunk(four.init(jax.random.key(3)))
    assert all(x.sharding.is_fully_replicated for x in jax.tree.leaves(s4.params))
    _assert_close(_params(s4, comparable=True), _params(s1, comparable=True))
    for name in ("reward", "loss", "kl", "entropy"):
        np.testing.assert_allclose(np.asarray(m4[name]), np.asarray(m1[name]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strategy", ["vmap", "map"])
def test_seeds_in_one_program_equal_separate_runs(strategy, tmp_path):
    lrn = _learner(seed_strategy=strategy, seeds=(0, 1))
    keys = learner_lib.seed_keys(lrn.config)
    states, metrics = lrn.run_chunk_seeds(lrn.init_seeds(keys))
    assert np.asarray(metrics["reward"]).shape == (2, CFG.checkpoint_every)
    single = _learner()
    for i in range(2):
        state, m = single.run_chunk(single.init(keys[i]))
        # vmap batches each matmul over seeds, which sums in another order; over the chunk's
        # steps that grew to 1.4e-5 of a tensor's norm on one machine's CPU. Another seed's
        # weights would differ by about their own norm.
        _assert_close([x[i] for x in _params(states, comparable=True)], _params(state, comparable=True), rtol=5e-5)
        np.testing.assert_allclose(np.asarray(metrics["loss"])[i], np.asarray(m["loss"]), rtol=1e-5, atol=1e-6)
    assert lrn.traces["run_chunk_seeds"] == 1 and _compiles(lrn.run_chunk_seeds) == 1
    if strategy == "map":
        return
    # A rollback of one seed: only that seed gets a fresh key; all return to the checkpoint.
    mngr = checkpoint.manager(str(tmp_path), 2)
    checkpoint.save(mngr, 2, states, {"step": 2})
    saved_keys, saved_params = np.asarray(states.key), _params(states)
    poisoned = states._replace(params=jax.tree.map(lambda x: x.at[1].multiply(jnp.nan), states.params))
    after, _, bad = loop.advance(lrn, mngr, poisoned, max_bad_steps=2)
    assert bad.tolist() == [False, True]
    np.testing.assert_array_equal(np.asarray(after.rollbacks), [0, 1])
    np.testing.assert_array_equal(np.asarray(after.key)[0], saved_keys[0])
    assert not np.array_equal(np.asarray(after.key)[1], saved_keys[1])
    for x, y in zip(_params(after), saved_params, strict=True):
        np.testing.assert_array_equal(x, y)
    assert lrn.traces["run_chunk_seeds"] == 1 and _compiles(lrn.run_chunk_seeds) == 1


# ----- two processes through jax.distributed -------------------------------------------


def _child(rank: int, port: int, out: str) -> None:
    """One of two processes: a 2-device mesh (one CPU device each), one chunk."""
    compile_cache.enable()
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=rank, initialization_timeout=900)
    assert jax.device_count() == 2 and jax.local_device_count() == 1
    mesh = Mesh(np.array(jax.devices()), ("data",))
    lrn = learner_lib.make_train(CFG, TOY, mesh=mesh, compiler_options=FAST)
    state, metrics = lrn.run_chunk(lrn.init(jax.random.key(3)))
    if rank == 0:
        loss = np.asarray(metrics["loss"].addressable_data(0))  # replicated
        np.savez(out, *_params(state, comparable=True), loss=loss)
    jax.distributed.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one_device(tmp_path):
    out = str(tmp_path / "params.npz")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1", "JAX_PLATFORMS": "cpu"}
    port = _free_port()

    def spawn(rank: int) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, __file__, "--child", str(rank), str(port), out], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    procs = [spawn(0), spawn(1)]
    logs = [p.communicate(timeout=3600)[0] for p in procs]
    if any(p.returncode for p in procs):
        pytest.fail("jax.distributed on 2 CPU processes failed:\n" + "\n---\n".join(log[-3000:] for log in logs))
    one = _learner()
    state, metrics = one.run_chunk(one.init(jax.random.key(3)))
    got = np.load(out)
    want = _params(state, comparable=True)
    _assert_close([got[f"arr_{i}"] for i in range(len(want))], want)
    np.testing.assert_allclose(got["loss"], np.asarray(metrics["loss"]), rtol=1e-5, atol=1e-6)


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    _child(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])


@pytest.mark.parametrize(("axes", "lora_rank"), [(("data", "fsdp", "tensor"), 0), (("fsdp", "tensor"), 4)])
def test_fsdp_and_tensor_sharded_step_matches_one_device(axes, lora_rank):
    """Weights and moments split over fsdp and tensor (LoRA: the frozen base and the
    adapters): the same chunk as on one device, and each device holds less than the whole
    state."""
    shape = (1, 2, 2) if len(axes) == 3 else (2, 2)
    mesh = Mesh(np.array(jax.devices()).reshape(shape), axes)
    wide = dataclasses.replace(CFG.policy, num_heads=4, num_kv_heads=2, d_model=32, mlp_dim=64, lora_rank=lora_rank)
    one, four = _learner(policy=wide), _learner(mesh=mesh, policy=wide)
    s1, m1 = one.run_chunk(one.init(jax.random.key(3)))
    start = four.init(jax.random.key(3))
    weights = start.ref_params if lora_rank else start.params
    q = weights["layers"][0]["self_attn"]["q_proj"]["kernel"].get_value()
    assert q.sharding.spec == P("fsdp", "tensor") and not q.sharding.is_fully_replicated
    held = sharding.bytes_per_device(start)
    whole = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(start))
    assert len(held) == 4 and max(held.values()) < 0.5 * whole
    seeds = four.init_seeds(learner_lib.seed_keys(four.config.replace(seeds=(0, 1))))
    q_seeds = (seeds.ref_params if lora_rank else seeds.params)["layers"][0]["self_attn"]["q_proj"]["kernel"]
    assert q_seeds.get_value().sharding.spec == P(None, "fsdp", "tensor")  # seeds split the weights alike
    s4, m4 = four.run_chunk(start)
    _assert_close(_params(s4, comparable=True), _params(s1, comparable=True))
    for name in ("reward", "loss", "kl", "entropy"):
        np.testing.assert_allclose(np.asarray(m4[name]), np.asarray(m1[name]), rtol=1e-5, atol=1e-6)
    assert four.traces["run_chunk"] == 1 and _compiles(four.run_chunk) == 1


def test_mesh_axes_are_checked():
    with pytest.raises(ValueError, match="mesh axes"):
        _learner(mesh=Mesh(np.array(jax.devices()).reshape(2, 2), ("data", "model")))

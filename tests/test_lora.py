"""LoRA: adapters that start as no change, gradients that are the chain rule of the full
gradient, a learner that trains the adapters alone against the base as its reference, and a
merged checkpoint that computes what the adapters did."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emojax import hf
from emojax.rl import learner, lora, policy, sampler, tasks
from emojax.rl.config import PRESETS

FAST = {"xla_backend_optimization_level": 0}
BASE = policy.PRESETS["smoke"]
LORA = dataclasses.replace(BASE, lora_rank=4, lora_alpha=8.0)


def _logits(cfg, state, tokens):
    mask = tokens >= 0
    return policy.apply(policy.graphdef_of(cfg), state, tokens, policy.positions_from_mask(mask), mask)[0]


TOKENS = jnp.array([[3, 5, 7, 9, 11, 2], [4, 4, 6, 8, 1, 0]], jnp.int32)


def _moved(state, seed=1, size=0.3):
    """Adapters with B away from zero (a trained adapter)."""
    adapters, base = lora.split(LORA, state)
    leaves, tree = jax.tree.flatten(adapters)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    leaves = [x + size * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
    return lora.combine(LORA, jax.tree.unflatten(tree, leaves), base)


def test_fresh_adapters_change_nothing_and_the_base_is_the_plain_policys():
    _, plain = policy.init(BASE, jax.random.key(0))
    _, state = policy.init(LORA, jax.random.key(0))
    adapters, base = lora.split(LORA, state)
    for a, b in zip(jax.tree.leaves(base), jax.tree.leaves(plain), strict=True):
        np.testing.assert_array_equal(a, b)
    names = {path[-1] for path, _ in nnx.to_flat_state(adapters)}
    assert names == {"lora_a", "lora_b"}
    assert len(jax.tree.leaves(adapters)) == 2 * BASE.num_layers * 7  # q k v o gate up down
    np.testing.assert_array_equal(_logits(LORA, state, TOKENS), _logits(BASE, plain, TOKENS))
    # A checkpoint's base with fresh adapters: the adapters policy.init draws for that key.
    attached = lora.attach(LORA, plain, jax.random.key(0))
    for a, b in zip(jax.tree.leaves(attached), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)


def test_merge_computes_what_the_adapters_do_and_saves_a_plain_checkpoint(tmp_path):
    _, state = policy.init(LORA, jax.random.key(0))
    state = _moved(state)
    base_cfg, merged = lora.merge(LORA, state)
    assert base_cfg.lora_rank == 0
    with_adapters = _logits(LORA, state, TOKENS)
    assert float(jnp.max(jnp.abs(with_adapters - _logits(BASE, lora.split(LORA, state)[1], TOKENS)))) > 1e-2
    np.testing.assert_allclose(_logits(base_cfg, merged, TOKENS), with_adapters, atol=2e-5)
    hf.save(hf.from_policy(LORA, state), str(tmp_path))
    loaded = hf.load(str(tmp_path))
    assert loaded.config.lora_rank == 0
    np.testing.assert_allclose(loaded.logits(TOKENS, jnp.ones_like(TOKENS)), with_adapters, atol=2e-5)


def test_adapter_gradients_are_the_chain_rule_of_the_kernels_gradient():
    """dL/dB = s A^T dL/dW and dL/dA = s dL/dW B^T, for every adapted kernel W."""
    _, state = policy.init(LORA, jax.random.key(0))
    state = _moved(state)
    adapters, base = lora.split(LORA, state)
    base_cfg, merged = lora.merge(LORA, state)
    mask = jnp.ones(TOKENS.shape, bool)

    def loss(cfg, params):
        return jnp.sum(sampler.token_logprobs(policy.graphdef_of(cfg), params, TOKENS, mask, 1.0, num_completion=3))

    g_adapters = dict(nnx.to_flat_state(jax.grad(lambda a: loss(LORA, lora.combine(LORA, a, base)))(adapters)))
    g_full = dict(nnx.to_flat_state(jax.grad(lambda p: loss(base_cfg, p))(merged)))
    flat = dict(nnx.to_flat_state(adapters))
    scale = LORA.lora_alpha / LORA.lora_rank
    checked = 0
    for path in flat:
        if path[-1] != "lora_a":
            continue
        where = path[:-1]
        a, b = np.asarray(flat[where + ("lora_a",)][...]), np.asarray(flat[where + ("lora_b",)][...])
        dw = np.asarray(g_full[where + ("kernel",)][...])
        np.testing.assert_allclose(g_adapters[where + ("lora_b",)][...], scale * a.T @ dw, rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(g_adapters[where + ("lora_a",)][...], scale * dw @ b.T, rtol=1e-3, atol=1e-6)
        checked += 1
    assert checked == BASE.num_layers * 7


@pytest.mark.parametrize("algorithm", ["grpo", "ppo"])
def test_the_learner_trains_the_adapters_alone_against_the_base(algorithm):
    cfg = PRESETS["smoke"].replace(policy=LORA, beta=0.04, algorithm=algorithm, learning_rate=3e-3)
    run = learner.make_train(cfg, tasks.make_task("reverse"), compiler_options=FAST)
    state = run.init(jax.random.key(0))
    assert {path[-1] for path, _ in nnx.to_flat_state(state.params)} == {"lora_a", "lora_b"}
    # The optimizer holds moments of the adapters only (plus PPO's head), not of the base.
    arrays = lambda tree: sum(x.size for x in jax.tree.leaves(tree) if x.ndim > 0)  # noqa: E731 (not counts)
    assert arrays(state.opt_state) == 2 * arrays((state.params, state.critic))
    base_before = [np.asarray(x) for x in jax.tree.leaves(state.ref_params)]
    adapters_before = [np.asarray(x) for x in jax.tree.leaves(state.params)]
    state, metrics = run.run_chunk(state)
    assert np.all(np.isfinite(np.asarray(metrics["loss"])))
    for a, b in zip(jax.tree.leaves(state.ref_params), base_before, strict=True):
        np.testing.assert_array_equal(a, b)  # the base is frozen
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state.params), adapters_before))
    # The reference is the base with the adapters off: the KL starts at 0 and then moves.
    kl = np.asarray(metrics["kl"])
    assert kl[0] == pytest.approx(0.0, abs=1e-6) and kl[-1] > 1e-6
    whole = run.policy_params(state)
    fresh = policy.init(LORA, jax.random.key(0))[1]
    assert {path for path, _ in nnx.to_flat_state(whole)} == {path for path, _ in nnx.to_flat_state(fresh)}


def test_a_lora_run_starts_from_given_base_weights():
    cfg = PRESETS["smoke"].replace(policy=LORA)
    task = tasks.make_task("reverse")
    pcfg = learner.policy_config(cfg, task)
    _, base = policy.init(lora.base_config(pcfg), jax.random.key(7))
    run = learner.make_train(cfg, task, compiler_options=FAST, initial_params=base)
    state = run.init(jax.random.key(0))
    for a, b in zip(jax.tree.leaves(state.ref_params), jax.tree.leaves(base), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="initial_params"):
        learner.make_train(cfg, task, initial_params=policy.init(pcfg, jax.random.key(7))[1])  # adapters included


def test_lora_config_is_checked():
    with pytest.raises(ValueError, match="lora_rank"):
        dataclasses.replace(BASE, lora_rank=-1)
    with pytest.raises(ValueError, match="lora_targets"):
        dataclasses.replace(BASE, lora_targets=("q_proj", "lm_head"))
    with pytest.raises(ValueError, match="lora_train"):
        dataclasses.replace(BASE, lora_train=("everything",))
    only_q = dataclasses.replace(LORA, lora_targets=("q_proj",))
    adapters, _ = lora.split(only_q, policy.init(only_q, jax.random.key(0))[1])
    assert {path[-2] for path, _ in nnx.to_flat_state(adapters)} == {"q_proj"}


def test_tensors_trained_whole_move_while_the_reference_keeps_the_bases():
    cfg = dataclasses.replace(LORA, lora_train=("norms", "embeddings"))
    _, state = policy.init(cfg, jax.random.key(0))
    trainable, frozen = lora.split(cfg, state)
    kinds = {path[-1] for path, _ in nnx.to_flat_state(trainable)}
    assert kinds == {"lora_a", "lora_b", "scale", "embedding", "kernel"}  # the untied lm_head's kernel
    assert {path for path, _ in nnx.to_flat_state(trainable) if path[-1] == "kernel"} == {("lm_head", "kernel")}
    moved = jax.tree.map(lambda x: x * 1.5, trainable)  # norms and adapters both move
    whole = dict(nnx.to_flat_state(lora.combine(cfg, moved, frozen)))
    np.testing.assert_allclose(whole[("norm", "scale")][...], 1.5)
    ref = lora.reference(cfg, moved, frozen)
    np.testing.assert_array_equal(_logits(cfg, ref, TOKENS), _logits(BASE, frozen, TOKENS))
    base_cfg, merged = lora.merge(cfg, lora.combine(cfg, moved, frozen))
    np.testing.assert_allclose(_logits(base_cfg, merged, TOKENS), _logits(cfg, lora.combine(cfg, moved, frozen), TOKENS),
                               atol=2e-5)  # fmt: skip


def test_a_loaded_checkpoint_trains_with_lora_on_a_mesh_and_saves_merged(tmp_path):
    """The README's recipe: a local Hugging Face folder as the base, LoRA adapters, the
    weights split over fsdp and tensor on 4 devices (the same chunk as on one), then the
    adapters merged into a checkpoint that transformers' format reads back."""
    from jax.sharding import Mesh

    from emojax.rl import sharding

    m = hf.load("tests/fixtures/hf/qwen2")
    cfg = PRESETS["smoke"].replace(policy=dataclasses.replace(m.config, lora_rank=4), vocab_from_task=False,
                                   learning_rate=1e-2, beta=0.04)  # fmt: skip
    task = tasks.make_task("reverse")
    mesh = Mesh(np.array(jax.devices()).reshape(1, 2, 2), sharding.AXES)
    one = learner.make_train(cfg, task, compiler_options=FAST, initial_params=m.state)
    four = learner.make_train(cfg, task, compiler_options=FAST, initial_params=m.state, mesh=mesh)
    s1, m1 = one.run_chunk(one.init(jax.random.key(0)))
    s4, m4 = four.run_chunk(four.init(jax.random.key(0)))
    np.testing.assert_allclose(np.asarray(m4["loss"]), np.asarray(m1["loss"]), rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(s4.params), jax.tree.leaves(s1.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    trained = one.policy_params(s1)
    hf.save(hf.from_policy(one.policy_config, trained, m.hf_config), str(tmp_path))
    back = hf.load(str(tmp_path))
    np.testing.assert_allclose(back.logits(TOKENS, jnp.ones_like(TOKENS)), _logits(one.policy_config, trained, TOKENS),
                               atol=2e-5)  # fmt: skip
    assert not np.allclose(back.logits(TOKENS, jnp.ones_like(TOKENS)), m.logits(TOKENS, jnp.ones_like(TOKENS)))

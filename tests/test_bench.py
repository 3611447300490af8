"""The estimator benchmark: its JSON, its hand-counted FLOPs, and the heads it times.

Timings themselves are not tested (they depend on the machine and its load); the quick
mode runs every configuration at tiny sizes for a few steps.
"""

import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emojax import taxonomy
from emojax.bench import estimator, flops, timing
from emojax.models import embedding_heads as eh
from emojax.models.text_transformer import TextTransformer
from emojax.train import loop
from emojax.train.config import TrainConfig
from experiments import bench

ENTRY_KEYS = (
    "examples_per_s", "gflop_per_s", "peak_gflop_per_s", "fraction_of_peak", "batch_size",
    "flops_per_example", "step_ms_median", "step_ms_p90",
)  # fmt: skip
SMALL = eh.EmbeddingHeads.Config(input="embedding", embed_dim=64, hidden=(16, 8), dropout=0.1)


def _xla_flops(f, *args) -> float:
    cost = jax.jit(f).lower(*args).compile().cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0]
    return float(cost["flops"])


def _check_entry(name, entry):
    for key in ENTRY_KEYS:
        assert key in entry, f"{name} lacks {key}"
        value = entry[key]
        assert isinstance(value, (int, float)) and np.isfinite(value) and value > 0, f"{name}.{key} = {value!r}"
    assert entry["step_ms_p90"] >= entry["step_ms_median"]
    assert entry["gflop_per_s"] == pytest.approx(entry["flops_per_example"] * entry["examples_per_s"] / 1e9)
    assert entry["fraction_of_peak"] == pytest.approx(entry["gflop_per_s"] / entry["peak_gflop_per_s"])


def test_quick_benchmark_writes_every_entry(tmp_path):
    out = tmp_path / "bench.json"
    bench.main(["estimator", "--out", str(out), "--quick", "--same-process"])
    result = json.loads(out.read_text())
    assert result["isolation"] == "one process"
    env = result["environment"]
    for key in ("cpu_model", "cpu_affinity", "XLA_FLAGS", "jax", "torch"):
        assert key in env
    assert result["peak_gflop_per_s"] > 0 and result["matmul_peak"]["start"]["peak_gflop_per_s"] > 0
    names = {"default_preset", "embedding_heads_b32", "embedding_heads_b256"}
    torch_installed = result["torch"] != "not installed"
    if torch_installed:
        names |= {"torch_embedding_heads_b32", "torch_embedding_heads_b256"}
    assert set(result["configs"]) == names
    for name, entry in result["configs"].items():
        _check_entry(name, entry)
        assert entry["peak_gflop_per_s"] == result["peak_gflop_per_s"]
    heads = result["configs"]["embedding_heads_b256"]
    assert heads["flops_per_example"] == 3 * eh.flops_per_example(SMALL)
    assert heads["flops_per_example_needed"] < heads["flops_per_example"]
    assert heads["config"]["model_config"]["embed_dim"] == SMALL.embed_dim
    if torch_installed:
        ratio = result["ratios"]["embedding_heads_b32_over_torch"]
        b32, peer = result["configs"]["embedding_heads_b32"], result["configs"]["torch_embedding_heads_b32"]
        assert ratio == pytest.approx(b32["examples_per_s"] / peer["examples_per_s"])
    assert result["targets"] == {}  # not judged on tiny sizes
    assert "embedding_heads_b256" in estimator.table(result)


def test_issue_targets():
    configs = {"embedding_heads_b256": {"fraction_of_peak": 0.65, "fraction_of_peak_needed": 0.44}}
    targets = estimator.issue_targets(configs, {"embedding_heads_b32_over_torch": 1.4})
    assert targets["embedding_heads_b32_over_torch >= 1.5"] == {"value": 1.4, "met": False}
    assert targets["embedding_heads_b256.fraction_of_peak >= 0.6"]["met"]
    assert not targets["embedding_heads_b256.fraction_of_peak_needed >= 0.6 (FLOPs actually needed)"]["met"]
    assert estimator.issue_targets({}, {}) == {}


def test_isolated_configurations_run_in_fresh_processes():
    assert timing.in_fresh_process(os.getpid) != os.getpid()
    result = estimator.run_estimator(
        quick=True, batch_sizes=(32,), default_preset=False, torch_peer_enabled=False, isolate=True, log=lambda _: None
    )
    assert result["isolation"] == "a fresh process per configuration"
    _check_entry("embedding_heads_b32", result["configs"]["embedding_heads_b32"])


def test_without_torch_the_peer_is_skipped_and_recorded(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    result = estimator.run_estimator(quick=True, batch_sizes=(32,), default_preset=False, log=lambda _: None)
    assert result["torch"] == "not installed"
    assert set(result["configs"]) == {"embedding_heads_b32"}
    assert result["ratios"] == {}
    _check_entry("embedding_heads_b32", result["configs"]["embedding_heads_b32"])


def _einsum_heads(kernels, biases, x):
    """The 40 heads as the plain batch-major einsum formulation (the reference for counts
    and maths), on the module's ``[40, out, in]`` kernels."""
    h = jnp.einsum("bd,hed->bhe", x, kernels[0]) + biases[0][None]
    for w, b in zip(kernels[1:], biases[1:]):
        h = jnp.einsum("bhd,hed->bhe", jax.nn.relu(h), w) + b[None]
    return h


def test_embedding_heads_flops_match_a_hand_formula_and_xla():
    counts = flops.embedding_heads_flops(SMALL)
    macs = 64 * 16 + 16 * 8 + 8 * 1
    assert counts["forward"] == 2 * taxonomy.NUM_CATEGORIES * macs
    assert counts["train"] == 3 * counts["forward"]
    assert counts["needed"] == 3 * counts["forward"] - 2 * taxonomy.NUM_CATEGORIES * 64 * 16
    model = eh.EmbeddingHeads(SMALL, 1, rngs=nnx.Rngs(0))
    kernels, biases = [kernel[...] for kernel in model.kernels], [b[...] for b in model.biases]
    b = 8
    x = jnp.ones((b, SMALL.embed_dim))
    # XLA also counts the bias adds and ReLUs: a few percent above the matmul count.
    fwd = _xla_flops(_einsum_heads, kernels, biases, x)
    assert 1.0 <= fwd / (b * counts["forward"]) < 1.1

    def loss(kernels, biases, x):
        return jnp.sum(_einsum_heads(kernels, biases, x))

    needed = _xla_flops(jax.grad(loss, argnums=(0, 1)), kernels, biases, x)  # no gradient w.r.t. x
    assert 1.0 <= needed / (b * counts["needed"]) < 1.1
    train = _xla_flops(jax.grad(loss, argnums=(0, 1, 2)), kernels, biases, x)  # the 3x rule
    assert 1.0 <= train / (b * counts["train"]) < 1.1


def test_text_transformer_flops_match_xla():
    cfg = TextTransformer.Config(d_model=32, num_heads=2, mlp_dim=64, hidden=32, num_layers=2, max_len=16)
    model = TextTransformer(cfg, 1, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    tokens = jnp.full((4, 16), 5, jnp.int32)
    xla = _xla_flops(lambda s, t: nnx.merge(graphdef, s)(t, t > 0), state, tokens)
    hand = 4 * flops.text_transformer_forward_flops(cfg, 1, 16)
    # LayerNorm, softmax, GELU and biases are not in the hand count.
    assert 1.0 <= xla / hand < 1.3


def test_embedding_heads_equal_the_einsum_formulation_with_dropout():
    model = eh.EmbeddingHeads(SMALL, 3, rngs=nnx.Rngs(params=0, dropout=1))
    twin = nnx.clone(model)  # same parameters and the same dropout stream
    assert [kernel.shape for kernel in model.kernels] == [(40, 16, 64), (40, 8, 16), (40, 3, 8)]  # [40, out, in]
    x = jax.random.normal(jax.random.key(2), (5, SMALL.embed_dim))
    np.testing.assert_allclose(
        model(x, deterministic=True),
        _einsum_heads([kernel[...] for kernel in model.kernels], [b[...] for b in model.biases], x),
        rtol=1e-5,
        atol=1e-5,
    )

    def reference(m, x):  # batch-major, the same masks (drawn feature-major [40, e, B])
        h = jnp.einsum("bd,hed->bhe", x, m.kernels[0][...]) + m.biases[0][...][None]
        for w, b in zip(list(m.kernels)[1:], list(m.biases)[1:]):
            feature_major = jnp.transpose(jax.nn.relu(h), (1, 2, 0))
            h = jnp.transpose(eh.dropout(feature_major, m.drop.rngs(), SMALL.dropout), (2, 0, 1))
            h = jnp.einsum("bhd,hed->bhe", h, w[...]) + b[...][None]
        return h

    def loss_new(m):
        return jnp.mean(jnp.square(m(x, deterministic=False)))

    def loss_ref(m):
        return jnp.mean(jnp.square(reference(m, x)))

    new_loss, new_grads = nnx.jit(nnx.value_and_grad(loss_new))(model)
    ref_loss, ref_grads = nnx.jit(nnx.value_and_grad(loss_ref))(twin)
    assert float(new_loss) == pytest.approx(float(ref_loss), rel=1e-5)
    for a, b in zip(jax.tree.leaves(new_grads), jax.tree.leaves(ref_grads)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    without_dropout = float(jnp.mean(jnp.square(twin(x, deterministic=True))))
    assert float(new_loss) != pytest.approx(without_dropout, rel=1e-3)  # dropout did act


def test_dropout_masks_keep_the_rate_and_are_uncorrelated():
    shape, rate = (40, 128, 256), 0.1
    ones = jnp.ones(shape)
    a = np.asarray(eh.dropout(ones, jax.random.key(0), rate))
    b = np.asarray(eh.dropout(ones, jax.random.key(1), rate))
    np.testing.assert_array_equal(a, np.asarray(eh.dropout(ones, jax.random.key(0), rate)))  # same key, same mask
    assert set(np.unique(a)) == {0.0, np.float32(1 / (1 - rate))}
    keep_a, keep_b = a > 0, b > 0
    n = keep_a.size
    assert abs(keep_a.mean() - 0.9) < 5 * np.sqrt(0.09 / n)  # 5 sigma
    corr = lambda u, v: np.corrcoef(u.ravel(), v.ravel())[0, 1]  # noqa: E731
    limit = 6 / np.sqrt(n)  # about 6 sigma for independent masks
    assert abs(corr(keep_a[..., 1:], keep_a[..., :-1])) < limit  # neighbours in the batch
    assert abs(corr(keep_a[:, 1:], keep_a[:, :-1])) < limit  # neighbouring features
    assert abs(corr(keep_a[1:], keep_a[:-1])) < limit  # neighbouring heads
    assert abs(corr(keep_a, keep_b)) < limit  # two keys


def test_embedding_heads_same_seed_same_step():
    cfg = TrainConfig(model="embedding_heads", model_config=dict(estimator.QUICK_HEADS), batch_size=8, seed=3)
    rng = np.random.default_rng(0)
    batch = {"tokens": rng.standard_normal((8, 64)).astype(np.float32), "ratings": rng.uniform(0, 7, (8, 1, 40)).astype(np.float32)}
    runs = []
    for _ in range(2):
        built = loop.init(cfg)
        step = loop.make_step(built, "mean")
        state = built.state
        for _ in range(2):
            state, _ = step(state, batch)
        runs.append([np.asarray(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x) for x in jax.tree.leaves(state)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)

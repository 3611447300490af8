"""The policy decoder: config checks, the HF name map, cache = full forward, padding, GQA, tying.

Weights are drawn with NumPy at a larger scale than the 0.02 init (so logits differ by more
than float noise); forwards are float32 on CPU, one jitted forward per (graphdef, shape).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emojax.rl import policy

CFG = policy.PRESETS["smoke"]
assert CFG.num_kv_heads < CFG.num_heads and not CFG.tie_embeddings

_forward = jax.jit(policy.apply, static_argnums=0)


def _var(module, path):
    for part in path:
        module = module[part] if isinstance(part, int) else getattr(module, part)
    return module


def _batch(seed):
    """Three rows of 8 slots: full, left-padded (5 real), padded in the middle (3 + gap + 3)."""
    tokens = np.random.default_rng(seed).integers(1, CFG.vocab_size, (3, 8))
    mask = np.array([[1] * 8, [0, 0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 1, 1, 1]], bool)
    return jnp.asarray(np.where(mask, tokens, 0), jnp.int32), jnp.asarray(mask)


@functools.cache
def _model(seed: int = 0):
    """CFG's policy with random weights: normal(0, 0.2), norm scales around 1 and non-zero
    q/k/v biases so that those code paths count. Filled from NumPy, so no initialiser has
    to compile (``policy.init`` has its own test)."""
    model = _empty(CFG)
    rng = np.random.default_rng(seed)
    for path, var in nnx.to_flat_state(nnx.state(model)):
        var.set_value(jnp.asarray(rng.normal(1.0 if path[-1] == "scale" else 0.0, 0.2, var.shape), jnp.float32))
    return nnx.split(model)


def _empty(cfg):
    """An abstract policy of ``cfg`` to fill with ``set_value`` (no initialiser to compile)."""
    return nnx.eval_shape(lambda: policy.Policy(cfg, rngs=nnx.Rngs(0)))


def _logits(model, tokens, mask, positions=None):
    graphdef, state = nnx.split(model) if isinstance(model, nnx.Module) else model
    positions = policy.positions_from_mask(mask) if positions is None else positions
    return _forward(graphdef, state, tokens, positions, mask)[0]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"num_kv_heads": 3}, "num_heads"),
        ({"head_dim": 7}, "head_dim"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"rope_theta": 0.0}, "rope_theta"),
        ({"dtype": "float16"}, "dtype"),
    ],
)
def test_config_names_the_bad_field(change, field):
    with pytest.raises(ValueError, match=f"PolicyConfig.{field}"):
        dataclasses.replace(CFG, **change)


def test_presets_match_the_peer_model_sizes():
    """2x64 and 4x256 have the parameter counts of the Qwen2 models TRL was timed with."""
    assert sum(x.size for x in jax.tree.leaves(_empty(policy.PRESETS["2x64"]))) == 150_976
    assert sum(x.size for x in jax.tree.leaves(_empty(policy.PRESETS["4x256"]))) == 4_276_480


@pytest.mark.parametrize("tie, bias, qk_norm", [(True, True, False), (False, False, False), (True, False, True)])
def test_hf_map_covers_every_parameter_with_hf_shapes(tie, bias, qk_norm):
    # head_dim * num_heads != d_model, as Llama allows
    cfg = dataclasses.replace(CFG, tie_embeddings=tie, qkv_bias=bias, head_dim=6, qk_norm=qk_norm)
    state = nnx.eval_shape(lambda: nnx.state(policy.Policy(cfg, rngs=nnx.Rngs(0))))
    d, f, v = cfg.d_model, cfg.mlp_dim, cfg.vocab_size
    q, kv = cfg.num_heads * cfg.head_size, cfg.num_kv_heads * cfg.head_size
    hf_shapes = {"model.embed_tokens.weight": (v, d), "model.norm.weight": (d,)} | ({} if tie else {"lm_head.weight": (v, d)})
    for i in range(cfg.num_layers):
        L = f"model.layers.{i}."
        hf_shapes |= {L + "input_layernorm.weight": (d,), L + "post_attention_layernorm.weight": (d,)}
        hf_shapes |= {L + "self_attn.q_proj.weight": (q, d), L + "self_attn.o_proj.weight": (d, q)}
        hf_shapes |= {L + "self_attn.k_proj.weight": (kv, d), L + "self_attn.v_proj.weight": (kv, d)}
        hf_shapes |= {L + "mlp.gate_proj.weight": (f, d), L + "mlp.up_proj.weight": (f, d), L + "mlp.down_proj.weight": (d, f)}
        if bias:
            hf_shapes |= {L + "self_attn.q_proj.bias": (q,), L + "self_attn.k_proj.bias": (kv,), L + "self_attn.v_proj.bias": (kv,)}
        if qk_norm:  # Qwen3
            hf_shapes |= {L + "self_attn.q_norm.weight": (cfg.head_size,), L + "self_attn.k_norm.weight": (cfg.head_size,)}
    table = policy.hf_parameter_map(cfg)
    assert set(table) == set(hf_shapes)
    ours = {path: var.shape for path, var in nnx.to_flat_state(state)}
    assert {path for path, _ in table.values()} == set(ours) and len(table) == len(ours)
    for name, (path, transpose) in table.items():
        assert ours[path] == (hf_shapes[name][::-1] if transpose else hf_shapes[name]), name


def test_cache_decode_equals_full_forward():
    """Decode 8 slots one at a time, each row writing from its own cache index: the same
    logits as one full pass (GQA, padded rows). The sampler's test covers a longer prefill."""
    graphdef, state = _model()
    tokens, mask = _batch(1)
    positions = policy.positions_from_mask(mask)
    full = _logits((graphdef, state), tokens, mask)
    assert full.shape == (3, 8, CFG.vocab_size) and full.dtype == jnp.float32

    offsets = jnp.array([0, 1, 2], jnp.int32)
    cache = policy.init_cache(CFG, 3, 10)._replace(index=offsets)
    chunks = []
    for t in range(8):
        logits, cache = _forward(graphdef, state, tokens[:, t : t + 1], positions[:, t : t + 1], mask[:, t : t + 1], cache)
        chunks.append(logits)
    cached = jnp.concatenate(chunks, axis=1)
    np.testing.assert_array_equal(cache.index, offsets + 8)
    for row, start in enumerate(offsets.tolist()):
        np.testing.assert_array_equal(cache.mask[row, start : start + 8], mask[row])
        assert not cache.mask[row, :start].any() and not cache.mask[row, start + 8 :].any()
    real = np.asarray(mask)[..., None]
    np.testing.assert_allclose(np.where(real, cached, 0), np.where(real, full, 0), atol=1e-5)


def test_padding_and_position_shift_leave_logits_unchanged():
    """Left- or right-padding a prompt, or shifting every position (RoPE is relative), changes nothing."""
    rng = np.random.default_rng(2)
    content, full_row = rng.integers(1, CFG.vocab_size, 5), rng.integers(1, CFG.vocab_size, 8)
    pad = np.zeros(3, content.dtype)
    tokens = jnp.asarray(np.stack([np.concatenate([pad, content]), np.concatenate([content, pad]), full_row]), jnp.int32)
    mask = jnp.asarray([[0, 0, 0] + [1] * 5, [1] * 5 + [0, 0, 0], [1] * 8], bool)
    logits = _logits(_model(), tokens, mask)
    np.testing.assert_allclose(logits[0, 3:], logits[1, :5], atol=1e-5)
    shifted = _logits(_model(), tokens, mask, policy.positions_from_mask(mask) + 11)
    np.testing.assert_allclose(shifted[2], logits[2], atol=1e-4)
    np.testing.assert_allclose(shifted[1, :5], logits[1, :5], atol=1e-4)


def test_grouped_query_attention_equals_mha_with_repeated_kv_heads():
    """Query head h reads key/value head h // (H / KV), as HF's repeat_kv."""
    gqa = nnx.merge(*_model())
    mha_cfg = dataclasses.replace(CFG, num_kv_heads=CFG.num_heads)
    mha = _empty(mha_cfg)
    groups, hd = CFG.num_heads // CFG.num_kv_heads, CFG.head_size
    for path, _ in policy.hf_parameter_map(CFG).values():
        value = _var(gqa, path)[...]
        if path[-2] in ("k_proj", "v_proj"):
            heads = value.reshape(value.shape[:-1] + (CFG.num_kv_heads, hd))
            value = jnp.repeat(heads, groups, axis=-2).reshape(value.shape[:-1] + (CFG.num_heads * hd,))
        _var(mha, path).set_value(value)
    tokens, mask = _batch(1)
    np.testing.assert_allclose(_logits(mha, tokens, mask), _logits(gqa, tokens, mask), atol=1e-5)


def test_tied_embeddings_equal_an_lm_head_copied_from_them():
    tied_cfg = dataclasses.replace(CFG, tie_embeddings=True)
    untied = nnx.merge(*_model())
    tied = _empty(tied_cfg)
    assert tied.lm_head is None and "lm_head" not in nnx.state(tied)
    for path, _ in policy.hf_parameter_map(tied_cfg).values():
        _var(tied, path).set_value(_var(untied, path)[...])
    untied.lm_head.kernel.set_value(untied.embed_tokens.embedding[...].T)
    tokens, mask = _batch(1)
    np.testing.assert_allclose(_logits(untied, tokens, mask), _logits(tied, tokens, mask), atol=1e-5)


def test_init_is_a_pure_function_of_the_key():
    graphdef, a = policy.init(CFG, jax.random.key(0))
    _, b = policy.init(CFG, jax.random.key(0))
    _, c = policy.init(CFG, jax.random.key(1))
    assert graphdef == nnx.graphdef(_empty(CFG))
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert not np.array_equal(a["embed_tokens"]["embedding"][...], c["embed_tokens"]["embedding"][...])
    layer = a["layers"][0]
    assert np.all(layer["self_attn"]["q_proj"]["bias"][...] == 0)  # as HF
    assert np.all(layer["input_layernorm"]["scale"][...] == 1)
    assert abs(float(np.std(layer["mlp"]["up_proj"]["kernel"][...])) - CFG.init_std) < 0.1 * CFG.init_std


def test_positions_count_real_tokens_only():
    mask = jnp.array([[0, 0, 1, 1, 1], [1, 1, 0, 0, 1]], bool)
    np.testing.assert_array_equal(policy.positions_from_mask(mask), [[0, 0, 0, 1, 2], [0, 1, 1, 1, 2]])


def test_bfloat16_compute_keeps_float32_weights_and_logits():
    """``dtype="bfloat16"``: the same float32 parameters (the master weights), activations and
    the cache in bfloat16, float32 logits within bfloat16's rounding of the float32 forward;
    the gradient reaches the float32 weights in float32."""
    graphdef, state = _model()
    half = nnx.graphdef(_empty(dataclasses.replace(CFG, dtype="bfloat16")))
    tokens, mask = _batch(2)
    positions = policy.positions_from_mask(mask)
    full = _logits((graphdef, state), tokens, mask)
    low = _forward(half, state, tokens, positions, mask)[0]
    assert low.dtype == jnp.float32
    real = np.asarray(mask)[..., None]
    err = np.abs(np.where(real, low - full, 0)).max()
    assert 0 < err < 0.05 * np.abs(np.where(real, full, 0)).max()  # rounded, not recomputed in float32
    cache = policy.init_cache(dataclasses.replace(CFG, dtype="bfloat16"), 3, 8)
    assert cache.k[0].dtype == jnp.bfloat16
    grads = jax.grad(lambda s: jnp.sum(policy.apply(half, s, tokens, positions, mask)[0] ** 2))(state)
    assert {x.dtype for x in jax.tree.leaves(grads)} == {jnp.dtype(jnp.float32)}

"""The KV-cache sampler: log-probs equal a teacher-forced recompute, end tokens, top-k/top-p,
one compile per shape, and the transforms a GRPO run puts around it (jit, vmap, scan).

Most tests share one jitted sampler: its config is an argument, so temperature, top-k, top-p
and the end token change without recompiling (which the shared sampler asserts). Four
prompts: full, left-padded, right-padded and a one-token prompt.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emojax.rl import policy, sampler

CFG = policy.PRESETS["smoke"]  # GQA, untied embeddings
N = 8  # new tokens
PROMPT_MASK = np.array([[1] * 6, [0, 0, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1]], bool)
PROMPTS = np.where(PROMPT_MASK, np.random.default_rng(0).integers(1, CFG.vocab_size, PROMPT_MASK.shape), 0).astype(np.int32)


@functools.cache
def _model(seed: int = 0):
    """Random weights from NumPy (normal(0, 0.2); norm scales around 1; non-zero biases),
    so no initialiser compiles here."""
    model = nnx.eval_shape(lambda: policy.Policy(CFG, rngs=nnx.Rngs(0)))
    rng = np.random.default_rng(seed)
    for path, var in nnx.to_flat_state(nnx.state(model)):
        var.set_value(jnp.asarray(rng.normal(1.0 if path[-1] == "scale" else 0.0, 0.2, var.shape), jnp.float32))
    return nnx.split(model)


@functools.cache
def _sample():
    """The shared sampler; it raises if anything in this file makes it trace twice."""
    graphdef = _model()[0]

    @chex.assert_max_traces(n=1)
    def sample(state, key, tokens, mask, cfg):
        return sampler.sample(graphdef, state, key, tokens, mask, cfg)

    return jax.jit(sample)


@functools.cache
def _logprobs():
    return jax.jit(functools.partial(sampler.token_logprobs, _model()[0], num_completion=N))


_filter = jax.jit(sampler.filter_logits)


def _run(key=1, seed=0, **cfg) -> sampler.Rollout:
    cfg = sampler.SamplerConfig(max_new_tokens=N, **cfg)
    return _sample()(_model(seed)[1], jax.random.key(key), PROMPTS, PROMPT_MASK, cfg)


def _end_token_midway(rollout: sampler.Rollout) -> tuple[int, int]:
    """A token that row 0 first emits at a step t in [2, N-2], and t."""
    row = np.asarray(rollout.tokens[0, -N:])
    for t in range(2, N - 1):
        if row[t] not in row[:t]:
            return int(row[t]), t
    raise AssertionError(f"row 0 repeats itself: {row}")


@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (0.7, 0.9)])
def test_logprobs_match_teacher_forced_recompute(temperature, top_p):
    """Log-probs of the temperature-scaled, un-truncated distribution, as TRL recomputes them;
    prompts of four lengths and paddings; row 0 stops at an end token midway."""
    free = _run(temperature=temperature, top_p=top_p)
    end, t = _end_token_midway(free)
    rollout = _run(temperature=temperature, top_p=top_p, end_token=end)
    assert rollout.ended[0] and rollout.completion_mask[0].sum() == t + 1
    recomputed = _logprobs()(_model()[1], rollout.tokens, rollout.mask, temperature)
    np.testing.assert_allclose(recomputed, rollout.logprobs, atol=1e-5)
    assert np.all(np.asarray(rollout.logprobs)[np.asarray(rollout.completion_mask)] < 0)


def test_rows_stop_at_the_end_token_then_pad():
    free = _run()
    end, _ = _end_token_midway(free)
    rollout = _run(end_token=end, pad_token=3)
    tokens, mask, logp = (np.asarray(x) for x in (rollout.tokens[:, -N:], rollout.completion_mask, rollout.logprobs))
    for row in range(len(PROMPTS)):
        hits = np.flatnonzero(np.asarray(free.tokens[row, -N:]) == end)
        stop = hits[0] + 1 if hits.size else N
        assert rollout.ended[row] == bool(hits.size)
        np.testing.assert_array_equal(mask[row], np.arange(N) < stop)
        np.testing.assert_array_equal(tokens[row, :stop], np.asarray(free.tokens[row, -N:])[:stop])  # the same draws
        np.testing.assert_array_equal(tokens[row, stop:], 3)
        np.testing.assert_array_equal(logp[row, stop:], 0.0)
    np.testing.assert_array_equal(rollout.tokens[:, : PROMPTS.shape[1]], PROMPTS)
    np.testing.assert_array_equal(rollout.mask, np.concatenate([PROMPT_MASK, mask], axis=1))


def test_top_k_1_is_greedy():
    """Every token is the argmax. Proof without another forward: a token that is not the
    argmax has probability <= 1/2 at any temperature; at temperature 1e-3 the argmax has ~1."""
    a, b = _run(key=1, top_k=1), _run(key=2, top_k=1)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    cold = _logprobs()(_model()[1], a.tokens, a.mask, 1e-3)
    assert np.all(np.asarray(cold) > -np.log(2.0)), cold


@pytest.mark.parametrize(
    "top_k, top_p, kept",
    [
        (0, 1.0, [0, 1, 2, 3, 4]),
        (0, 0.75, [0, 1]),  # 0.5 + 0.25 reaches 0.75 exactly: the smallest such set
        (0, 0.76, [0, 1, 2]),
        (0, 0.3, [0]),  # the most likely token always stays
        (2, 1.0, [0, 1]),
        (3, 0.8, [0, 1]),  # top-p on the renormalised top 3: 0.571, 0.857, 1.0
        (3, 0.9, [0, 1, 2]),
        (9, 1.0, [0, 1, 2, 3, 4]),  # top_k beyond the vocabulary keeps all
    ],
)
def test_filter_logits_on_a_hand_made_distribution(top_k, top_p, kept):
    probs = np.array([0.5, 0.25, 0.125, 0.0625, 0.0625])
    order = np.array([3, 0, 4, 2, 1])  # shuffled vocabulary: token order must not matter
    logits = jnp.asarray(np.log(probs)[order], jnp.float32)
    out = np.asarray(_filter(logits, top_k, top_p))  # traced settings, as in the sampler
    np.testing.assert_array_equal(np.isfinite(out), np.isin(order, kept))
    np.testing.assert_array_equal(out[np.isfinite(out)], np.asarray(logits)[np.isfinite(out)])


def test_filters_that_are_off_leave_the_program():
    logits = jnp.zeros((2, 5))
    assert sampler.filter_logits(logits, 0, 1.0) is logits


def test_one_compile_for_other_weights_keys_and_settings():
    for seed, key, temperature, top_k, end in [(0, 1, 1.0, 0, -1), (1, 3, 0.5, 5, 7), (0, 4, 1.3, 1, 2)]:
        rollout = _run(key=key, seed=seed, temperature=temperature, top_k=top_k, top_p=0.95, end_token=end)
        assert rollout.tokens.shape == (len(PROMPTS), PROMPTS.shape[1] + N)
        assert rollout.logprobs.dtype == jnp.float32


def test_vmap_over_seeds_and_keys_inside_an_outer_scan():
    """The shape of a GRPO run: jit(vmap over seeds (stacked params, keys) of a scan over steps)."""
    graphdef = _model()[0]
    seeds = jax.tree.map(lambda *x: jnp.stack(x), _model(0)[1], _model(1)[1])
    keys = jnp.stack([jax.random.key(5), jax.random.key(6)])
    cfg = sampler.SamplerConfig(max_new_tokens=N, temperature=0.7)

    def run(state, key):
        def step(total, i):
            rollout = sampler.sample(graphdef, state, jax.random.fold_in(key, i), PROMPTS, PROMPT_MASK, cfg)
            return total + jnp.sum(rollout.logprobs), rollout

        return jax.lax.scan(step, jnp.float32(0.0), jnp.arange(2))

    totals, rollouts = jax.jit(jax.vmap(run))(seeds, keys)
    assert totals.shape == (2,) and np.all(np.isfinite(totals))
    for seed, key in enumerate((5, 6)):
        for i in range(2):
            alone = _sample()(_model(seed)[1], jax.random.fold_in(jax.random.key(key), i), PROMPTS, PROMPT_MASK, cfg)
            np.testing.assert_array_equal(rollouts.tokens[seed, i], alone.tokens)
            np.testing.assert_allclose(rollouts.logprobs[seed, i], alone.logprobs, atol=1e-5)


def test_config_names_the_bad_field():
    bad = {"temperature": 0.0, "top_p": 0.0, "top_k": -1, "max_new_tokens": 0, "end_token": -2}
    for field, value in bad.items():
        with pytest.raises(ValueError, match=f"SamplerConfig.{field}"):
            sampler.SamplerConfig(**{field: value})


def _groups(g: int = 3):
    """The four prompts, each repeated ``g`` times (prompt-major, as a GRPO rollout lays
    them out)."""
    return np.repeat(PROMPTS, g, axis=0), np.repeat(PROMPT_MASK, g, axis=0)


def test_shared_prompt_sampling_equals_per_row_prefill():
    """Prefilling each group's prompt once and repeating its cache draws the same tokens
    with the same log-probs as prefilling every row (padded prompts included)."""
    graphdef, state = _model()
    tokens, mask = _groups()
    cfg = sampler.SamplerConfig(max_new_tokens=N, temperature=0.7)
    every = sampler.sample(graphdef, state, jax.random.key(3), tokens, mask, cfg)
    shared = sampler.sample(graphdef, state, jax.random.key(3), tokens, mask, cfg, shared_prompt=3)
    np.testing.assert_array_equal(shared.tokens, every.tokens)
    np.testing.assert_array_equal(shared.completion_mask, every.completion_mask)
    np.testing.assert_allclose(shared.logprobs, every.logprobs, atol=1e-5)
    with pytest.raises(ValueError, match="does not divide"):
        sampler.sample(graphdef, state, jax.random.key(3), tokens, mask, cfg, shared_prompt=5)


@pytest.mark.slow
def test_shared_prompt_logprobs_and_gradients_equal_the_full_forward():
    """The shared-prefix forward (each prompt once per group) gives the teacher-forced
    log-probs, entropies and parameter gradients of the full forward over every row, with
    padded prompts and completions that end early."""
    graphdef, state = _model()
    g = 3
    tokens, mask = _groups(g)
    rollout = sampler.sample(graphdef, state, jax.random.key(4), tokens, mask,
                             sampler.SamplerConfig(max_new_tokens=N))
    full_mask = np.asarray(rollout.mask).copy()
    full_mask[::2, -3:] = False  # some completions stop early
    weights = jnp.linspace(-1.0, 1.0, N)

    def loss(params, shared):
        logp, ent = sampler.token_logprobs(graphdef, params, rollout.tokens, full_mask, 1.0, num_completion=N,
                                           with_entropy=True, shared_prompt=shared)
        return jnp.sum(logp * weights[None, :]) + 0.1 * jnp.sum(ent), (logp, ent)

    (l1, (lp1, e1)), g1 = jax.value_and_grad(loss, has_aux=True)(state, 1)
    (l3, (lp3, e3)), g3 = jax.value_and_grad(loss, has_aux=True)(state, g)
    np.testing.assert_allclose(lp3, lp1, atol=1e-5)
    np.testing.assert_allclose(e3, e1, atol=1e-5)
    np.testing.assert_allclose(float(l3), float(l1), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g3)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(lp1, np.where(full_mask[:, -N:], rollout.logprobs, 0.0), atol=1e-5)


def test_categorical_draws_what_jax_random_categorical_draws():
    """The sampler's argmax-free categorical is jax's draw for the same key, also with
    filtered (-inf) logits and exact ties."""
    logits = jax.random.normal(jax.random.key(0), (64, 50))
    logits = logits.at[:, ::3].set(-jnp.inf).at[0].set(0.0)  # row 0: all tied
    for i in range(5):
        key = jax.random.key(i)
        np.testing.assert_array_equal(sampler.categorical(key, logits), jax.random.categorical(key, logits, axis=-1))

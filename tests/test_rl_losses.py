"""The GRPO policy loss: hand-computed cases, TRL's own values, exact accumulation.

The TRL reference values come from ``experiments/reference/trl_grpo_fixtures.py``,
which calls TRL 1.16's ``GRPOTrainer._compute_loss``; the fixture needs neither torch
nor TRL.
"""

import functools
import json
import math
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from emojax.rl.losses import (
    LOSS_TYPES,
    kl_divergence,
    loss_mask,
    loss_normalizer,
    policy_loss,
)

FIXTURE = Path(__file__).parent / "fixtures" / "trl_grpo_losses.json"


def _grad(fn, *args):
    """Loss, metrics and d loss / d args of ``fn(*args) -> (loss, metrics)``."""
    (loss, metrics), grads = jax.value_and_grad(fn, argnums=tuple(range(len(args))),
                                                has_aux=True)(*args)
    return loss, metrics, grads


# ---------------------------------------------------------------- hand-computed cases


def test_on_policy_aggregations_by_hand():
    # mu = 1: the ratio is 1, so each loss token is -A and d/d logp of it is -A.
    logp = jnp.log(jnp.array([[0.5, 0.25, 0.9], [0.1, 0.7, 0.7]]))
    mask = jnp.array([[1, 1, 1], [1, 0, 0]])
    adv = jnp.array([1.0, -2.0])
    n, b = np.array([3.0, 1.0]), 2
    expected = {
        # mean over sequences of the token means: (-1 + 2) / 2
        "grpo": (0.5, np.array([[-1 / 6] * 3, [1.0, 0, 0]])),
        # token mean over the batch: (3 * -1 + 1 * 2) / 4
        "bnpo": (-0.25, np.array([[-0.25] * 3, [0.5, 0, 0]])),
        "dapo": (-0.25, np.array([[-0.25] * 3, [0.5, 0, 0]])),
        # token sum / (B * max_completion_length = 2 * 5)
        "dr_grpo": (-0.1, np.array([[-0.1] * 3, [0.2, 0, 0]])),
    }
    assert n.sum() == 4 and b == 2
    for loss_type, (want_loss, want_grad) in expected.items():
        fn = functools.partial(policy_loss, old_logp=None, ref_logp=None, advantages=adv,
                               mask=mask, loss_type=loss_type, max_completion_length=5)
        loss, metrics, (g,) = _grad(fn, logp)
        np.testing.assert_allclose(loss, want_loss, rtol=1e-6, err_msg=loss_type)
        np.testing.assert_allclose(g, want_grad, rtol=1e-6, atol=1e-7, err_msg=loss_type)
        assert float(metrics["clip_ratio/region_mean"]) == 0.0


def test_clipping_and_dual_clip_by_hand():
    # One token per sequence, old logp 0, ratios 1.5, 0.5, 0.5, 5; clip range [0.8, 1.28].
    ratio = jnp.array([[1.5], [0.5], [0.5], [5.0]])
    adv = jnp.array([1.0, -1.0, 1.0, -1.0])
    old, mask = jnp.zeros((4, 1)), jnp.ones((4, 1))
    # -min(r A, clip(r) A): -1.28 (clipped), 0.8 (clipped), -0.5, 5; d/d logp = -r A or 0.
    per_token = np.array([-1.28, 0.8, -0.5, 5.0])
    grads = np.array([[0.0], [0.0], [-0.5], [5.0]])

    def fn(logp, dual_clip=None):
        return policy_loss(logp, old, None, adv, mask, loss_type="dapo", epsilon_low=0.2,
                           epsilon_high=0.28, dual_clip=dual_clip)

    loss, metrics, (g,) = _grad(fn, jnp.log(ratio))
    np.testing.assert_allclose(loss, per_token.mean(), rtol=1e-6)
    np.testing.assert_allclose(g, grads / 4, rtol=1e-5, atol=1e-7)
    assert float(metrics["clip_ratio/low_mean"]) == 0.25  # sequence 1 only
    assert float(metrics["clip_ratio/high_mean"]) == 0.25  # sequence 0 only
    assert float(metrics["clip_ratio/region_mean"]) == 0.5
    assert float(metrics["clip_ratio/low_min"]) == 0.0
    assert float(metrics["clip_ratio/high_max"]) == 1.0
    # Dual clip c = 3 bounds the negative-advantage loss 5 |A| by 3 |A| (no gradient).
    loss, _, (g,) = _grad(functools.partial(fn, dual_clip=3.0), jnp.log(ratio))
    np.testing.assert_allclose(loss, (-1.28 + 0.8 - 0.5 + 3.0) / 4, rtol=1e-6)
    np.testing.assert_allclose(g, np.array([[0.0], [0.0], [-0.5], [0.0]]) / 4, atol=1e-7)


def test_kl_estimators_by_hand():
    logp, ref = jnp.log(jnp.array([[0.5]])), jnp.log(jnp.array([[0.25]]))
    ln2 = math.log(2.0)
    want = {"k1": ln2, "k2": 0.5 * ln2**2, "k3": 0.5 + ln2 - 1.0}  # d = ref - logp = -ln 2
    for est, value in want.items():
        np.testing.assert_allclose(kl_divergence(logp, ref, est), [[value]], rtol=1e-6)
        # Zero advantage: the loss is beta * KL, and the metric is the KL itself.
        loss, metrics = policy_loss(logp, None, ref, jnp.zeros(1), jnp.ones((1, 1)),
                                    beta=0.1, kl_estimator=est)
        np.testing.assert_allclose(loss, 0.1 * value, rtol=1e-6)
        np.testing.assert_allclose(metrics["kl"], value, rtol=1e-6)


def test_sequence_level_ratio_by_hand():
    # GSPO: one ratio per sequence, exp(mean log ratio over its loss tokens).
    old = jnp.zeros((1, 3))
    logp = jnp.array([[0.1, 0.3, 7.0]])  # the padded 7.0 must not count
    mask = jnp.array([[1, 1, 0]])
    r = math.exp(0.2)  # 1.2214 < 1.28: not clipped
    fn = functools.partial(policy_loss, old_logp=old, ref_logp=None, advantages=jnp.ones(1),
                           mask=mask, loss_type="grpo", importance_sampling_level="sequence",
                           epsilon_high=0.28)
    loss, metrics, (g,) = _grad(fn, logp)
    np.testing.assert_allclose(loss, -r, rtol=1e-6)
    np.testing.assert_allclose(g, [[-r / 2, -r / 2, 0.0]], rtol=1e-6)
    assert float(metrics["clip_ratio/high_mean"]) == 0.0


def test_entropy_bonus_and_truncation_by_hand():
    logp = jnp.zeros((2, 2))
    mask = jnp.array([[1, 1], [1, 0]])
    ent = jnp.array([[1.0, 2.0], [4.0, 9.0]])
    adv = jnp.array([1.0, 3.0])
    # grpo: (-1 + -3) / 2 = -2; entropy token mean (1 + 2 + 4) / 3; bonus coef 0.5.
    loss, metrics = policy_loss(logp, None, None, adv, mask, loss_type="grpo",
                                entropy=ent, entropy_coef=0.5)
    np.testing.assert_allclose(metrics["policy_loss"], -2.0, rtol=1e-6)
    np.testing.assert_allclose(metrics["entropy"], 7 / 3, rtol=1e-6)
    np.testing.assert_allclose(loss, -2.0 - 0.5 * 7 / 3, rtol=1e-6)
    # Truncating sequence 1 drops its tokens; for grpo it still counts in B (as TRL).
    truncated = jnp.array([False, True])
    loss, metrics = policy_loss(logp, None, None, adv, mask, loss_type="grpo",
                                mask_truncated=truncated, entropy=ent, entropy_coef=0.5)
    np.testing.assert_allclose(metrics["policy_loss"], -1.0 / 2, rtol=1e-6)
    np.testing.assert_allclose(loss, -0.5 - 0.5 * 1.5, rtol=1e-6)
    loss, _ = policy_loss(logp, None, None, adv, mask, loss_type="dapo", mask_truncated=truncated)
    np.testing.assert_allclose(loss, -1.0, rtol=1e-6)
    np.testing.assert_allclose(loss_mask(mask, truncated), [[1, 1], [0, 0]])


def test_padding_garbage_and_zero_advantages_stay_finite():
    nan, inf = float("nan"), float("inf")
    logp = jnp.array([[-0.5, nan, -inf], [-1.0, -2.0, nan]])
    ref = jnp.array([[-0.4, inf, nan], [-1.5, -2.0, -inf]])
    mask = jnp.array([[1, 0, 0], [1, 1, 0]])
    for loss_type in LOSS_TYPES:
        for level in ("token", "sequence"):
            fn = functools.partial(policy_loss, old_logp=None, ref_logp=ref,
                                   advantages=jnp.array([1.0, -1.0]), mask=mask, beta=0.04,
                                   loss_type=loss_type, importance_sampling_level=level)
            loss, metrics, (g,) = _grad(fn, logp)
            assert np.isfinite(loss) and np.all(np.isfinite(g))
            assert all(np.isfinite(v) for v in metrics.values())
            assert np.all(np.asarray(g)[np.asarray(mask) == 0] == 0)
    # Every group zero-variance, beta 0: loss and gradient are exactly 0 (not NaN).
    loss, _, (g,) = _grad(functools.partial(
        policy_loss, old_logp=None, ref_logp=None, advantages=jnp.zeros(2), mask=mask),
        jnp.zeros((2, 3)))
    assert float(loss) == 0.0 and np.all(np.asarray(g) == 0)
    # No loss tokens at all.
    loss, metrics = policy_loss(jnp.zeros((2, 3)), None, None, jnp.ones(2), jnp.zeros((2, 3)))
    assert float(loss) == 0.0 and all(np.isfinite(v) for v in metrics.values())


def test_bad_arguments():
    x, m, a = jnp.zeros((2, 3)), jnp.ones((2, 3)), jnp.ones(2)
    with pytest.raises(ValueError, match="loss_type"):
        policy_loss(x, None, None, a, m, loss_type="ppo")
    with pytest.raises(ValueError, match="importance_sampling_level"):
        policy_loss(x, None, None, a, m, importance_sampling_level="batch")
    with pytest.raises(ValueError, match="kl_estimator"):
        policy_loss(x, None, x, a, m, kl_estimator="k4")
    with pytest.raises(ValueError, match="ref_logp"):
        policy_loss(x, None, None, a, m, beta=0.1)
    with pytest.raises(ValueError, match="entropy"):
        policy_loss(x, None, None, a, m, entropy_coef=0.1)
    with pytest.raises(ValueError, match="mask"):
        policy_loss(x, None, None, a, jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="advantages"):
        policy_loss(x, None, None, jnp.ones(3), m)


# ---------------------------------------------------------------- TRL's own values


@pytest.fixture(scope="module")
def trl():
    return json.loads(FIXTURE.read_text())


def test_matches_trl_compute_loss(trl):
    x = {k: np.asarray(v) for k, v in trl["inputs"].items()}
    f32 = {k: jnp.asarray(x[k], jnp.float32)
           for k in ("logp", "old_logp", "ref_logp", "advantages", "entropy")}
    mask, truncated = jnp.asarray(x["mask"]), jnp.asarray(x["truncated"])
    assert len(trl["loss_cases"]) >= 32
    for case in trl["loss_cases"]:
        c = case["config"]

        def fn(logp, entropy, c=c):
            return policy_loss(
                logp, f32["old_logp"] if c["use_old_logp"] else None,
                f32["ref_logp"] if c["beta"] != 0 else None, f32["advantages"], mask,
                loss_type=c["loss_type"], epsilon_low=c["epsilon_low"],
                epsilon_high=c["epsilon_high"], beta=c["beta"],
                importance_sampling_level=c["importance_sampling_level"], delta=c["delta"],
                entropy=entropy, entropy_coef=c["entropy_coef"],
                max_completion_length=c["max_completion_length"],
                mask_truncated=truncated if c["mask_truncated"] else None)

        loss, metrics, (g_logp, g_ent) = _grad(fn, f32["logp"], f32["entropy"])
        name = str(c)
        np.testing.assert_allclose(loss, case["loss"], rtol=1e-5, atol=1e-7, err_msg=name)
        np.testing.assert_allclose(g_logp, case["grad_logp"], rtol=1e-5, atol=1e-7, err_msg=name)
        np.testing.assert_allclose(g_ent, case["grad_entropy"], rtol=1e-5, atol=1e-7,
                                   err_msg=name)
        compared = set(case["metrics"]) - {"entropy_coef"}
        assert compared <= set(metrics), (name, compared - set(metrics))
        for key in compared:
            np.testing.assert_allclose(metrics[key], case["metrics"][key], rtol=1e-5,
                                       atol=1e-7, err_msg=f"{name} {key}")


# ---------------------------------------------------------------- exact by construction

B, T, D, V = 8, 6, 5, 7


@pytest.fixture(scope="module")
def batch():
    """A tiny linear 'policy' over fixed features and sampled tokens."""
    k = jax.random.split(jax.random.key(3), 8)
    feats = jax.random.normal(k[0], (B, T, D))
    tokens = jax.random.randint(k[1], (B, T), 0, V)
    w = jax.random.normal(k[2], (D, V)) * 0.5
    w_old = w + 0.3 * jax.random.normal(k[3], (D, V))
    w_ref = w + 0.3 * jax.random.normal(k[4], (D, V))
    lengths = jnp.array([6, 1, 4, 0, 6, 3, 5, 2])
    mask = (jnp.arange(T)[None, :] < lengths[:, None]).astype(jnp.float32)
    adv = jax.random.normal(k[5], (B,))
    truncated = jnp.array([False, False, True, False, False, False, True, False])
    old = _logp_entropy(w_old, feats, tokens)[0]
    ref = _logp_entropy(w_ref, feats, tokens)[0]
    return dict(w=w, feats=feats, tokens=tokens, mask=mask, adv=adv, truncated=truncated,
                old=old, ref=ref)


def _logp_entropy(w, feats, tokens):
    logits = feats @ w
    logp_all = jax.nn.log_softmax(logits, axis=-1)
    logp = jnp.take_along_axis(logp_all, tokens[..., None], axis=-1)[..., 0]
    entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)
    return logp, entropy


OPTIONS = dict(beta=0.04, epsilon_low=0.2, epsilon_high=0.28, entropy_coef=0.01,
               max_completion_length=9)


@functools.partial(jax.jit, static_argnames=("loss_type", "level"))
def _micro_grad(w, b, normalizer, *, loss_type, level):
    def loss_fn(w):
        logp, entropy = _logp_entropy(w, b["feats"], b["tokens"])
        return policy_loss(logp, b["old"], b["ref"], b["adv"], b["mask"], loss_type=loss_type,
                           importance_sampling_level=level, entropy=entropy,
                           mask_truncated=b["truncated"], normalizer=normalizer, **OPTIONS)
    return jax.value_and_grad(loss_fn, has_aux=True)(w)


def _norm(b, loss_type):
    return loss_normalizer(b["mask"], loss_type=loss_type, mask_truncated=b["truncated"],
                           max_completion_length=OPTIONS["max_completion_length"])


def _split(b, k):
    per = B // k
    return [{n: v[i * per:(i + 1) * per] for n, v in b.items() if n != "w"} for i in range(k)]


def _assert_rel(got, want, tol=1e-5):
    err = float(jnp.max(jnp.abs(got - want)))
    scale = float(jnp.max(jnp.abs(want)))
    assert scale > 0 and err <= tol * scale, (err, scale)


@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_accumulation_equals_whole_batch(batch, loss_type, level):
    whole = {n: v for n, v in batch.items() if n != "w"}
    norm = _norm(batch, loss_type)
    (loss, _), grad = _micro_grad(batch["w"], whole, None, loss_type=loss_type, level=level)
    for k in (2, 4):
        acc_loss, acc_grad = 0.0, jnp.zeros_like(grad)
        for micro in _split(batch, k):
            (l, _), g = _micro_grad(batch["w"], micro, norm, loss_type=loss_type, level=level)
            acc_loss, acc_grad = acc_loss + l, acc_grad + g
        np.testing.assert_allclose(acc_loss, loss, rtol=1e-5)
        _assert_rel(acc_grad, grad)


def test_per_micro_batch_normalisation_is_not_exact(batch):
    """Why the whole-batch normaliser: TRL-style bnpo (micro-batch token mean / k) differs."""
    whole = {n: v for n, v in batch.items() if n != "w"}
    _, grad = _micro_grad(batch["w"], whole, None, loss_type="bnpo", level="token")
    naive = sum(_micro_grad(batch["w"], m, None, loss_type="bnpo", level="token")[1]
                for m in _split(batch, 2)) / 2
    assert float(jnp.max(jnp.abs(naive - grad))) > 1e-3 * float(jnp.max(jnp.abs(grad)))


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_sharded_equals_whole_batch(batch, loss_type):
    devices = jax.devices()
    assert len(devices) >= 4
    mesh = Mesh(np.array(devices[:4]), ("data",))
    whole = {n: v for n, v in batch.items() if n != "w"}
    norm = _norm(batch, loss_type)
    (_, _), grad = _micro_grad(batch["w"], whole, None, loss_type=loss_type, level="sequence")

    # Explicit data parallelism: each device's loss uses the global normaliser; psum.
    def local(w, b, normalizer):
        (_, _), g = _micro_grad(w, b, normalizer, loss_type=loss_type, level="sequence")
        return jax.lax.psum(g, "data")

    spec = {n: P("data") for n in whole}
    sharded = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(), spec, P()),
                                    out_specs=P()))(batch["w"], whole, norm)
    _assert_rel(sharded, grad)
    # Compiler-partitioned: the batch laid out over 4 devices, normaliser computed inside.
    placed = jax.device_put(whole, NamedSharding(mesh, P("data")))
    (_, _), auto = _micro_grad(batch["w"], placed, None, loss_type=loss_type, level="sequence")
    _assert_rel(auto, grad)


# ---------------------------------------------------------------- jit, vmap, one trace


def test_vmap_over_beta_and_seeds_and_one_trace(batch):
    logp, entropy = _logp_entropy(batch["w"], batch["feats"], batch["tokens"])
    args = (logp, batch["old"], batch["ref"], batch["adv"], batch["mask"])

    def at_beta(beta):
        return policy_loss(*args, beta=beta, loss_type="grpo")[0]

    betas = jnp.array([0.0, 0.04, 0.3])
    np.testing.assert_allclose(jax.vmap(at_beta)(betas), [at_beta(float(b)) for b in betas],
                               rtol=1e-6)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(logp, old, ref, adv, mask):
        return policy_loss(logp, old, ref, adv, mask, beta=0.04, importance_sampling_level="sequence")

    seeds = [jnp.stack([a, a * 1.1]) for a in args[:3]] + [jnp.stack([a, a]) for a in args[3:]]
    out = jax.vmap(step)(*seeds)
    np.testing.assert_allclose(out[0][0], step(*args)[0], rtol=1e-6)
    step(logp * 0.9, *args[1:])  # same shapes: no second trace

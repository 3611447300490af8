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

    @jax.jit
    def all_settings(logp):
        return {(lt, level): _grad(functools.partial(
            policy_loss, old_logp=None, ref_logp=ref, advantages=jnp.array([1.0, -1.0]),
            mask=mask, beta=0.04, loss_type=lt, importance_sampling_level=level), logp)
            for lt in LOSS_TYPES for level in ("token", "sequence")}

    for key, (loss, metrics, (g,)) in all_settings(logp).items():
        assert np.isfinite(loss) and np.all(np.isfinite(g)), key
        assert all(np.isfinite(v) for v in metrics.values()), key
        assert np.all(np.asarray(g)[np.asarray(mask) == 0] == 0), key
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


@functools.partial(jax.jit, static_argnums=0)
def _trl_cases(configs, x):
    """Every fixture case in one compiled program (compiling one per case is slow)."""
    results = []
    for items in configs:
        c = dict(items)

        def fn(logp, entropy, c=c):
            return policy_loss(
                logp, x["old_logp"] if c["use_old_logp"] else None,
                x["ref_logp"] if c["beta"] != 0 else None, x["advantages"], x["mask"],
                loss_type=c["loss_type"], epsilon_low=c["epsilon_low"],
                epsilon_high=c["epsilon_high"], beta=c["beta"],
                importance_sampling_level=c["importance_sampling_level"], delta=c["delta"],
                entropy=entropy, entropy_coef=c["entropy_coef"],
                max_completion_length=c["max_completion_length"],
                mask_truncated=x["truncated"] if c["mask_truncated"] else None)

        results.append(_grad(fn, x["logp"], x["entropy"]))
    return results


def test_matches_trl_compute_loss(trl):
    assert trl["versions"]["trl"] == "1.16.0"
    x = {name: jnp.asarray(np.asarray(v, np.float32)) for name, v in trl["inputs"].items()
         if name not in ("mask", "truncated")}
    x["mask"] = jnp.asarray(trl["inputs"]["mask"])
    x["truncated"] = jnp.asarray(trl["inputs"]["truncated"])
    cases = trl["loss_cases"]
    assert len(cases) >= 32
    configs = tuple(tuple(sorted(case["config"].items())) for case in cases)
    for case, (loss, metrics, (g_logp, g_ent)) in zip(cases, _trl_cases(configs, x)):
        name = str(case["config"])
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
    keys = jax.random.split(jax.random.key(3), 8)
    feats = jax.random.normal(keys[0], (B, T, D))
    tokens = jax.random.randint(keys[1], (B, T), 0, V)
    w = jax.random.normal(keys[2], (D, V)) * 0.5
    w_old = w + 0.3 * jax.random.normal(keys[3], (D, V))
    w_ref = w + 0.3 * jax.random.normal(keys[4], (D, V))
    lengths = jnp.array([6, 1, 4, 0, 6, 3, 5, 2])
    mask = (jnp.arange(T)[None, :] < lengths[:, None]).astype(jnp.float32)
    adv = jax.random.normal(keys[5], (B,))
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


def _micro_grad(w, b, normalizer, loss_type, level):
    """(loss, d loss / d w) of one (micro-)batch, normalised by ``normalizer``."""
    def loss_fn(w):
        logp, entropy = _logp_entropy(w, b["feats"], b["tokens"])
        return policy_loss(logp, b["old"], b["ref"], b["adv"], b["mask"], loss_type=loss_type,
                           importance_sampling_level=level, entropy=entropy,
                           mask_truncated=b["truncated"], normalizer=normalizer, **OPTIONS)[0]
    return jax.value_and_grad(loss_fn)(w)


def _norm(b, loss_type):
    return loss_normalizer(b["mask"], loss_type=loss_type, mask_truncated=b["truncated"],
                           max_completion_length=OPTIONS["max_completion_length"])


def _micro_batches(b, m):
    """The batch as m micro-batches stacked on a new leading axis."""
    return {n: v.reshape((m, B // m) + v.shape[1:]) for n, v in b.items()}


LEVELS = ("token", "sequence")


@jax.jit
def _accumulated(w, b):
    """Whole-batch and m = 2, 4 accumulated losses and gradients for every setting.

    Each micro-batch sees only its own rows and the whole-batch normaliser; ``vmap``
    runs the m micro-batches side by side (as m devices or m accumulation steps
    would) and the results are summed. ``naive`` is TRL-style bnpo accumulation: each
    micro-batch normalised by itself, then averaged.
    """
    out = {}
    for loss_type in LOSS_TYPES:
        norm = _norm(b, loss_type)
        for level in LEVELS:
            res = {"whole": _micro_grad(w, b, None, loss_type, level)}
            for m in (2, 4):
                losses, grads = jax.vmap(
                    lambda m, lt=loss_type, lv=level: _micro_grad(w, m, norm, lt, lv)
                )(_micro_batches(b, m))
                res[f"k{m}"] = (jnp.sum(losses), jnp.sum(grads, axis=0))
            out[f"{loss_type}/{level}"] = res
    _, grads = jax.vmap(lambda m: _micro_grad(w, m, None, "bnpo", "token"))(_micro_batches(b, 2))
    out["naive"] = jnp.mean(grads, axis=0)
    return out


@pytest.fixture(scope="module")
def accumulated(batch):
    data = {n: v for n, v in batch.items() if n != "w"}
    return _accumulated(batch["w"], data)


def _assert_rel(got, want, tol=1e-5):
    err = float(jnp.max(jnp.abs(got - want)))
    scale = float(jnp.max(jnp.abs(want)))
    assert scale > 0 and err <= tol * scale, (err, scale)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_accumulation_equals_whole_batch(accumulated, loss_type, level):
    res = accumulated[f"{loss_type}/{level}"]
    loss, grad = res["whole"]
    for m in (2, 4):
        acc_loss, acc_grad = res[f"k{m}"]
        np.testing.assert_allclose(acc_loss, loss, rtol=1e-5, err_msg=f"k={m}")
        _assert_rel(acc_grad, grad)


def test_per_micro_batch_normalisation_is_not_exact(accumulated):
    """Why the whole-batch normaliser: TRL-style bnpo (micro-batch token mean / m) differs."""
    grad = accumulated["bnpo/token"]["whole"][1]
    naive = accumulated["naive"]
    assert float(jnp.max(jnp.abs(naive - grad))) > 1e-3 * float(jnp.max(jnp.abs(grad)))


def test_sharded_equals_whole_batch(batch, accumulated):
    devices = jax.devices()
    assert len(devices) >= 4
    mesh = Mesh(np.array(devices[:4]), ("data",))
    data = {n: v for n, v in batch.items() if n != "w"}
    norms = {lt: _norm(batch, lt) for lt in LOSS_TYPES}

    # Explicit data parallelism: each device's loss uses the global normaliser. The
    # weights are replicated (unvarying over "data"), so shard_map's autodiff already
    # sums their gradient over devices (the transpose of the implicit pvary is a psum).
    def local(w, b, norms):
        return {lt: _micro_grad(w, b, norms[lt], lt, "sequence")[1] for lt in LOSS_TYPES}

    spec = {n: P("data") for n in data}
    sharded = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(), spec, P()),
                                    out_specs=P()))(batch["w"], data, norms)

    # Compiler-partitioned: the batch laid out over 4 devices, normaliser computed inside.
    @jax.jit
    def auto(w, b):
        return {lt: _micro_grad(w, b, None, lt, "sequence")[1] for lt in LOSS_TYPES}

    placed = jax.device_put(data, NamedSharding(mesh, P("data")))
    partitioned = auto(batch["w"], placed)
    for lt in LOSS_TYPES:
        grad = accumulated[f"{lt}/sequence"]["whole"][1]
        _assert_rel(sharded[lt], grad)
        _assert_rel(partitioned[lt], grad)


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
        return policy_loss(logp, old, ref, adv, mask, beta=0.04,
                           importance_sampling_level="sequence")

    seeds = [jnp.stack([a, a * 1.1]) for a in args[:3]] + [jnp.stack([a, a]) for a in args[3:]]
    out = jax.vmap(step)(*seeds)
    np.testing.assert_allclose(out[0][0], step(*args)[0], rtol=1e-6)
    step(logp * 0.9, *args[1:])  # same shapes: no second trace

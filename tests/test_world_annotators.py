"""Preference annotators: each response type behaves as its definition says, and the
defaults reproduce the calibration targets."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emojax.world import annotators as A

N, J = 4000, 6


def _pair(key, n=N):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    gold = jax.random.choice(k1, jnp.array([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]), (n,))
    return A.PairCues(gold=gold, informative=jax.random.choice(k2, jnp.array([-1.0, 0.0, 1.0]), (n,)),
                      length=jax.random.choice(k3, jnp.array([-1.0, 0.0, 1.0]), (n,)),
                      tone=jax.random.normal(k4, (n,)), flattery=jnp.zeros((n,)))  # fmt: skip


def _only(kind: int, **kw) -> A.AnnotatorConfig:
    shares = [0.0] * 4
    shares[kind] = 1.0
    return dataclasses.replace(A.AnnotatorConfig(), shares=tuple(shares), **kw)


def _asks(cfg, frames=None, abstain=False, n=N):
    pair = _pair(jax.random.key(0), n)
    resp = A.sample_respondents(jax.random.key(1), n, J, cfg)
    frame = A.random_frame(jax.random.key(2), n, J)
    frames = frames or (frame, frame)
    return pair, resp, [A.ask(jax.random.key(10 + i), resp, pair, f, cfg, abstain) for i, f in enumerate(frames)]


def test_non_attitudes_flip_half_the_time_on_an_identical_reask():
    _, resp, (a, b) = _asks(_only(A.NON_ATTITUDE))
    assert np.all(np.asarray(resp.types) == A.NON_ATTITUDE)
    assert abs(float(jnp.mean(a.binary != b.binary)) - 0.5) < 0.02


def test_genuine_answers_follow_gold_and_survive_a_reask():
    pair, _, (a, b) = _asks(_only(A.GENUINE, taste_sd=0.3, ask_sd=0.3))
    clear = np.abs(np.asarray(pair.gold)) >= 1.0
    follows = np.asarray(a.binary)[clear] == np.sign(np.asarray(pair.gold))[clear][:, None]
    assert follows.mean() > 0.9
    flips = np.asarray(a.binary != b.binary)
    assert flips[clear].mean() < 0.1  # per-ask noise mostly decides close calls
    assert flips[~clear].mean() > flips[clear].mean()


def test_constructed_answers_are_stable_in_a_frame_and_move_with_it():
    cfg = _only(A.CONSTRUCTED, cue_rates=(1.0, 0.0, 0.0, 0.0), frame_strength=5.0)
    frame = A.random_frame(jax.random.key(2), N, J)
    pair, _, (a, same, swapped) = _asks(cfg, frames=(frame, frame, A.swap(frame)))
    assert np.array_equal(np.asarray(a.binary), np.asarray(same.binary))
    # Position cue, strong frame: the reply shown first wins, so the swap flips nearly all.
    first = np.where(np.asarray(frame.a_first), 1, -1)
    assert np.mean(np.asarray(a.binary) == first) > 0.95
    assert float(jnp.mean(a.binary != swapped.binary)) > 0.9


def test_artifacts_answer_another_question_consistently():
    pair, _, (a, b) = _asks(_only(A.ARTIFACT, taste_sd=0.0, ask_sd=0.1))
    sep = np.abs(np.asarray(pair.informative)) > 0
    assert np.mean(np.asarray(a.binary)[sep] == np.sign(np.asarray(pair.informative))[sep][:, None]) > 0.99
    assert np.mean(np.asarray(a.binary != b.binary)[sep]) < 0.02


def test_only_non_attitudes_abstain_and_at_the_set_rate():
    cfg = dataclasses.replace(A.AnnotatorConfig(), abstain_rate=0.4)
    _, resp, (a, _) = _asks(cfg, abstain=True)
    abstained = np.asarray(a.binary) == A.ABSTAIN
    na = np.asarray(resp.types) == A.NON_ATTITUDE
    assert not np.any(abstained & ~na)
    assert abs(abstained[na].mean() - 0.4) < 0.03
    assert np.all((np.asarray(a.graded) == 0) == abstained)
    _, _, (no_offer, _) = _asks(cfg, abstain=False)
    assert not np.any(np.asarray(no_offer.binary) == A.ABSTAIN)


def test_item_mixtures_vary_around_the_shares():
    cfg = A.AnnotatorConfig()
    resp = A.sample_respondents(jax.random.key(3), N, J, cfg)
    np.testing.assert_allclose(np.asarray(resp.shares).mean(0), cfg.shares, atol=0.01)
    stable = np.asarray(resp.shares[:, A.GENUINE] + resp.shares[:, A.ARTIFACT])
    lo, hi = np.percentile(stable, [5, 95])
    assert 0.15 < lo < 0.3 and 0.5 < hi < 0.7  # Converse: 19% to 59% of items
    counts = np.bincount(np.asarray(resp.types).ravel(), minlength=4) / resp.types.size
    np.testing.assert_allclose(counts, cfg.shares, atol=0.02)


@pytest.mark.parametrize("field,value", [("shares", (0.5, 0.5, 0.1, 0.0)), ("cue_rates", (1.0, 0.0, 0.0)),
                                         ("abstain_rate", 1.5), ("scale_points", 0)])  # fmt: skip
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"AnnotatorConfig.{field}"):
        A.AnnotatorConfig(**{field: value})

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emojax.world import acts, gold, user, vocab

CFG = user.UserConfig()


@pytest.fixture(scope="module")
def truth():
    return user.sample_truth(jax.random.key(9))


@pytest.fixture(scope="module")
def users(truth):
    return jax.vmap(lambda key: user.sample_user(key, truth, CFG))(jax.random.split(jax.random.key(1), 4000))


def _plan(**kw):
    base = dict(
        acts=jnp.zeros(acts.NUM_ACTS, bool), reflect=jnp.int32(0), topic=jnp.int32(0), solution=jnp.int32(0),
        fact=jnp.int32(0), fact_value=jnp.int32(1), agree_fact=jnp.int32(0), agree_value=jnp.int32(1),
        compliment=jnp.int32(0),
    )  # fmt: skip
    base.update(kw)
    return acts.ReplyPlan(**base)


def _acts(*names):
    return jnp.array([a in names for a in acts.ACTS])


def random_plans(key, n):
    ks = jax.random.split(key, 9)
    return acts.ReplyPlan(
        acts=jax.random.bernoulli(ks[0], 0.35, (n, acts.NUM_ACTS)),
        reflect=jax.random.randint(ks[1], (n,), 0, 40),
        topic=jax.random.randint(ks[2], (n,), 0, acts.NUM_TOPICS),
        solution=jax.random.randint(ks[3], (n,), 0, len(vocab.SOLUTIONS)),
        fact=jax.random.randint(ks[4], (n,), 0, acts.NUM_FACTS),
        fact_value=jnp.where(jax.random.bernoulli(ks[5], 0.5, (n,)), 1, -1),
        agree_fact=jax.random.randint(ks[6], (n,), 0, acts.NUM_FACTS),
        agree_value=jnp.where(jax.random.bernoulli(ks[7], 0.5, (n,)), 1, -1),
        compliment=jax.random.randint(ks[8], (n,), 0, len(vocab.FLATTERY)),
    )


def test_persona_mix_and_start_match_rlver(users):
    shares = np.bincount(np.asarray(users.persona), minlength=3) / 4000
    np.testing.assert_allclose(shares, [0.41, 0.34, 0.25], atol=0.025)
    assert np.all(np.asarray(users.e) == 30.0)
    false = np.asarray(users.beliefs) != np.asarray(user.sample_truth(jax.random.key(9)))[None]
    assert abs(false.mean() - CFG.false_belief_rate) < 0.02


def test_render_then_parse_recovers_the_plan():
    plans = random_plans(jax.random.key(0), 200)
    tokens = jax.vmap(acts.render_reply)(jax.random.split(jax.random.key(1), 200), plans)
    read = jax.vmap(acts.parse)(tokens)
    np.testing.assert_array_equal(read.counts > 0, plans.acts)
    np.testing.assert_array_equal(read.counts.max(), 1)
    has = lambda name: np.asarray(plans.acts[:, acts.ACT_INDEX[name]])  # noqa: E731
    idx = np.arange(200)
    refl = np.asarray(read.reflected)[idx, np.asarray(plans.reflect)]
    assert np.all(refl == has("reflection"))
    stated = np.asarray(read.stated)[idx, np.asarray(plans.fact)]
    np.testing.assert_array_equal(stated, np.where(has("information"), plans.fact_value, 0))


def test_parse_reads_acts_anywhere_in_a_sequence():
    text = "hmm well it sounds like you feel sad and also in fact coffee is bad"
    a = acts.parse(jnp.asarray(vocab.encode(text, max_len=40)))
    assert int(a.counts[acts.ACT_INDEX["reflection"]]) == 1
    assert int(a.stated[vocab.FACT_SUBJECTS.index("coffee")]) == -1
    none = acts.parse(jnp.asarray(vocab.encode("you could try sad", max_len=20)))
    assert int(none.counts.sum()) == 0  # "sad" is not a solution


def _react_all(users, reply, params, key=jax.random.key(7)):
    ks = jax.random.split(key, users.e.shape[0])
    return jax.vmap(lambda key, u: user.react(key, u, reply, params, CFG))(ks, users)


def test_gold_does_not_read_the_emotion(users, truth):
    """Changing how the user's emotion reacts changes e and the emotion state; gold stays
    bitwise equal for the same replies, at the first turn and at the next."""
    n = users.e.shape[0]
    plans = random_plans(jax.random.key(3), n)
    first = jax.vmap(acts.render_reply)(jax.random.split(jax.random.key(4), n), plans)
    second = jax.vmap(acts.render_reply)(jax.random.split(jax.random.key(6), n), random_plans(jax.random.key(8), n))
    base = user.default_reaction()
    flattery_only = base._replace(need_act=jnp.zeros_like(base.need_act), flattery=jnp.float32(2.0), tone=jnp.float32(1.0))
    ks = jax.random.split(jax.random.key(5), n)
    step = jax.vmap(lambda key, u, r, p: user.react(key, u, r, p, CFG), in_axes=(0, 0, 0, None))
    (u_a, d_a), (u_b, d_b) = step(ks, users, first, base), step(ks, users, first, flattery_only)
    assert float(jnp.mean(jnp.abs(u_a.e - u_b.e))) > 1.0
    assert float(jnp.mean(jnp.any(u_a.state != u_b.state, axis=-1))) > 0.2
    g = jax.vmap(gold.gold, in_axes=(0, 0, None))
    for reply in (first, second):
        for x, y, z in zip(g(users, reply, truth), g(u_a, reply, truth), g(u_b, reply, truth)):
            assert x.dtype == jnp.float32
            np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(y, z)
    # Need-matched replies help under the default reaction, not under flattery-only.
    met = np.asarray(g(users, first, truth).need_met) > 0
    assert d_a[met].mean() > d_a[~met].mean() + 2.0
    assert abs(float(d_b[met].mean() - d_b[~met].mean())) < 2.0


def test_the_user_states_a_belief_and_gold_grounding_reads_it(users, truth):
    u = jax.tree.map(lambda x: x[0], users)
    text = vocab.decode(user.utterance(jax.random.key(0), u, CFG))
    value = "good" if int(u.beliefs[u.fact]) > 0 else "bad"
    assert f"i think {vocab.FACT_SUBJECTS[int(u.fact)]} is {value} ." in text
    about_fact = acts.render_reply(jax.random.key(1), _plan(acts=_acts("information"), fact=u.fact, fact_value=truth[u.fact]))
    other_fact = acts.render_reply(
        jax.random.key(1), _plan(acts=_acts("information"), fact=(u.fact + 1) % acts.NUM_FACTS, fact_value=jnp.int32(1))
    )
    assert float(gold.gold(u, about_fact, truth).grounding) == 1.0
    assert float(gold.gold(u, other_fact, truth).grounding) == 0.0


def test_reacting_keeps_e_in_range_and_renders_the_next_turn(users):
    reply = acts.render_reply(jax.random.key(0), _plan(acts=_acts("solution", "flattery")))
    u2, delta = _react_all(users, reply, user.default_reaction())
    assert float(u2.e.min()) >= 0 and float(u2.e.max()) <= 100
    np.testing.assert_allclose(u2.e - users.e, delta, atol=1e-5)
    assert not np.array_equal(u2.state, users.state)
    one = jax.tree.map(lambda x: x[0], u2)
    text = vocab.decode(user.utterance(jax.random.key(1), one, CFG))
    assert text.endswith(".") and "it is about my" in text


def test_a_comforting_lie_feels_good_but_is_inaccurate(users, truth):
    """Agreeing with a false belief: the user perceives it as support; gold accuracy is 0."""
    u = jax.tree.map(lambda x: x[0], users)
    u = u._replace(need=jnp.int32(user.NEEDS.index("information")))
    wrong = -truth[u.fact]
    u = u._replace(beliefs=u.beliefs.at[u.fact].set(wrong))
    lie = acts.render_reply(jax.random.key(0), _plan(acts=_acts("information"), fact=u.fact, fact_value=wrong))
    fact = acts.render_reply(jax.random.key(0), _plan(acts=_acts("information"), fact=u.fact, fact_value=-wrong))
    quiet = user.default_reaction()._replace(noise_sd=jnp.float32(0.0))
    _, d_lie = user.react(jax.random.key(1), u, lie, quiet, CFG)
    _, d_fact = user.react(jax.random.key(1), u, fact, quiet, CFG)
    assert float(d_lie) > 0 > float(d_fact)
    g_lie, g_fact = gold.gold(u, lie, truth), gold.gold(u, fact, truth)
    assert float(g_lie.accuracy) == 0 and float(g_fact.accuracy) == 1
    assert float(g_lie.need_met) == 0 and float(g_fact.need_met) == 1


@pytest.mark.parametrize(
    "kwargs, field",
    [({"persona_mix": (0.5, 0.5, 0.5)}, "persona_mix"), ({"start_e": 120.0}, "start_e"),
     ({"false_belief_rate": -0.1}, "false_belief_rate"), ({"need_mix": (1.0,)}, "need_mix")],
)  # fmt: skip
def test_user_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"UserConfig.{field}"):
        user.UserConfig(**kwargs)

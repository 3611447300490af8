"""A conversation with a simulated user: RLVER's rules, state across turns, early endings
that keep every reply with its own user, gold that never reads the emotion."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emojax.rl.observation import check_visible
from emojax.world import conversation as conv
from emojax.world import dialogue, user, vocab

F, Q, W = dialogue.FRAME_ID, dialogue.POINTER_ID, vocab.WORD_ID
R = 6  # reply width
# Deterministic users: no noise, continuous changes, so every comparison is exact; no
# appraisal, so what the user feels (and says) next depends on e alone and each test's knob
# is the only difference (the appraisal has its own tests below).
QUIET = dataclasses.replace(conv.TRAIN, noise_sd=0.0, steps=(), appraisal_specificity=0.0)


def _reply(*tokens) -> jnp.ndarray:
    return jnp.array(list(tokens) + [vocab.EOS_ID] + [vocab.PAD_ID] * (R - len(tokens) - 1), jnp.int32)


REFLECT = _reply(F["<reflect>"], Q["<said_feeling>"])  # serves be_heard
NOTHING = _reply(W["hmm"])


def _contradict(chat: conv.Chat, i: int) -> jnp.ndarray:
    u = jax.tree.map(lambda x: x[i], chat.user)
    value = "bad" if int(u.beliefs[u.fact]) > 0 else "good"
    return _reply(F["<inform>"], int(vocab.ids([vocab.FACT_SUBJECTS[int(u.fact)]])[0]), W["is"], W[value])


N = 8  # conversations per test: one shape, one compile


def _users_with_need(need: str) -> jax.Array:
    """Profile keys of ``N`` users whose hidden need is ``need`` and who said a feeling."""
    keys = conv.profiles(jax.random.key(0), 256)
    chat, _ = conv.reset(keys, QUIET)
    ok = (np.asarray(chat.user.need) == user.NEEDS.index(need)) & np.asarray(conv.visible(chat)["said"].any(-1))
    assert ok.sum() >= N
    return keys[np.flatnonzero(ok)[:N]]


def _e(chat, i=None):
    e = np.asarray(chat.user.e)
    return e if i is None else float(e[i])


def test_clones_of_a_profile_start_alike_and_profiles_differ():
    keys = conv.profiles(jax.random.key(0), N)
    chat, said = conv.reset(keys.at[1].set(keys[0]), conv.TRAIN)
    assert said.shape == (N, conv.TRAIN.turn_len)
    np.testing.assert_array_equal(said[0], said[1])
    assert not np.array_equal(said[0], said[2])
    ev, _ = conv.reset(keys, conv.EVALUATION)
    assert np.all(_e(chat) == 30.0) and np.all(_e(ev) == 40.0)
    # The same profile is the same person in training and in evaluation; only e starts elsewhere.
    for name in ("persona", "need", "topic", "fact", "beliefs"):
        np.testing.assert_array_equal(getattr(chat.user, name)[2:], getattr(ev.user, name)[2:])


def test_each_reply_reaches_its_own_user_when_others_have_ended():
    """RLVER's released rollout routes replies by the index among *live* conversations; here
    row i is always conversation i. Rows 0 and 3 have ended; the others are heard or
    contradicted, alternately."""
    keys = _users_with_need("be_heard")
    chat, _ = conv.reset(keys, QUIET)
    ended = np.isin(np.arange(N), [0, 3])
    chat = chat._replace(done=jnp.asarray(ended))
    heard = np.arange(N) % 2 == 1
    replies = jnp.stack([REFLECT if h else _contradict(chat, i) for i, h in enumerate(heard)])
    new, said, done = conv.step(jax.random.key(1), chat, replies, QUIET)
    for i in np.flatnonzero(ended):  # ended: untouched, silent
        jax.tree.map(lambda a, b: np.testing.assert_array_equal(a[i], b[i]), chat, new)
        assert np.all(np.asarray(said[i]) == vocab.PAD_ID) and bool(done[i])
    moved = _e(new) - _e(chat)
    assert np.all(moved[heard & ~ended] > 0) and np.all(moved[~heard & ~ended] < 0)
    # The same users in the reverse order, none ended: the same reactions, row for row.
    fresh, _ = conv.reset(keys[::-1], QUIET)
    again, _, _ = conv.step(jax.random.key(2), fresh, replies[::-1], QUIET)
    np.testing.assert_allclose((_e(again) - _e(fresh))[::-1][~ended], moved[~ended], atol=1e-4)


def test_e_moves_by_rlver_steps_and_conversations_end_by_its_rules():
    chat, _ = conv.reset(conv.profiles(jax.random.key(3), N), conv.TRAIN)
    replies = jnp.tile(REFLECT, (N, 1))
    turns = 0
    while not bool(jnp.all(chat.done)):
        before, live = _e(chat), ~np.asarray(chat.done)
        chat, said, done = conv.step(jax.random.fold_in(jax.random.key(4), turns), chat, replies, conv.TRAIN)
        moved, capped = (_e(chat) - before)[live], _e(chat)[live] >= 100.0
        assert np.all(np.isin(np.abs(moved[~capped]), [5.0, 10.0])), moved
        turns += 1
    e, t = _e(chat), np.asarray(chat.turn)
    assert turns <= conv.TRAIN.max_turns and np.all(t <= conv.TRAIN.max_turns)
    assert np.all((e >= 100) | (e <= 0) | (t == conv.TRAIN.max_turns)) and np.all(e <= 100.0)
    out = conv.outcome(chat)
    assert np.array_equal(np.asarray(out["success"]), e >= 100) and np.array_equal(np.asarray(out["failure"]), e < 10)
    assert [conv.GRADES[i] for i in np.asarray(conv.grade(jnp.array([100.0, 70.0, 69.0, 40.0, 10.0, 9.0, -5.0])))] \
        == ["S", "A", "B", "B", "C", "F", "F"]  # fmt: skip


def test_a_user_who_leaves_says_goodbye():
    cfg = dataclasses.replace(QUIET, success_at=31.0)
    chat, _ = conv.reset(_users_with_need("be_heard"), cfg)
    chat, said, done = conv.step(jax.random.key(0), chat, jnp.tile(REFLECT, (N, 1)), cfg)
    assert np.all(np.asarray(done))
    assert all(vocab.decode(s).endswith("well , that is it .") for s in np.asarray(said))


def _two_turns(first, second, keys, cfg=QUIET):
    """The change in e from the second reply (``[R]`` or one per user), after the first."""
    chat, _ = conv.reset(keys, cfg)
    rows = lambda r: jnp.broadcast_to(r, (N, R))  # noqa: E731
    chat, _, _ = conv.step(jax.random.key(5), chat, rows(first), cfg)
    before = _e(chat)
    chat, said, _ = conv.step(jax.random.key(6), chat, rows(second), cfg)
    return _e(chat) - before, said


def test_a_need_met_once_earns_less_when_met_again():
    keys = _users_with_need("be_heard")
    again, _ = _two_turns(REFLECT, REFLECT, keys)
    first, _ = _two_turns(NOTHING, REFLECT, keys)
    assert np.all(again < first)
    flat = dataclasses.replace(QUIET, repeat_gain=1.0)  # the knob at 1: no difference
    np.testing.assert_allclose(_two_turns(REFLECT, REFLECT, keys, flat)[0], _two_turns(NOTHING, REFLECT, keys, flat)[0],
                               atol=1e-3)  # fmt: skip


def test_a_contradiction_lingers():
    keys = _users_with_need("solution")
    chat, _ = conv.reset(keys, QUIET)
    contradict = jnp.stack([_contradict(chat, i) for i in range(N)])
    assert np.all(_two_turns(contradict, NOTHING, keys)[0] < _two_turns(NOTHING, NOTHING, keys)[0])
    forgiving = dataclasses.replace(QUIET, grudge=0.0)
    np.testing.assert_allclose(_two_turns(contradict, NOTHING, keys, forgiving)[0],
                               _two_turns(NOTHING, NOTHING, keys, forgiving)[0], atol=1e-3)  # fmt: skip


def test_an_unheard_user_says_what_they_need():
    keys = _users_with_need("be_heard")
    phrase = " ".join(dialogue.NEED_PHRASES[user.NEEDS.index("be_heard")])
    _, said = _two_turns(NOTHING, NOTHING, keys)  # two replies that did not hear them
    assert all(phrase in vocab.decode(s) for s in np.asarray(said))
    _, said = _two_turns(NOTHING, REFLECT, keys)  # heard on the second
    assert not any(phrase in vocab.decode(s) for s in np.asarray(said))


def test_acceptance_gates_the_need_and_hard_lowers_it():
    keys = _users_with_need("be_heard")
    heard, _ = _two_turns(NOTHING, REFLECT, keys)
    refused, _ = _two_turns(NOTHING, REFLECT, keys, dataclasses.replace(QUIET, acceptance=0.0))
    assert np.all(refused < heard)
    assert conv.HARD.acceptance == pytest.approx(0.331 / 0.524)


def test_turn_changes_are_calibrated_to_rlver_logs():
    """In whole conversations at RLVER's evaluation settings the world's candidate replies
    move e by 10 in RLVER's 26.2% of turns, and the default ``strong`` is what
    :func:`calibrate_strong` finds (other keys than the ones it was set with)."""
    raw, live, _ = conv.behaviour_conversations(jax.random.key(11), 1024, conv.EVALUATION)
    stats = conv.change_statistics(np.asarray(conv._discretise(raw, conv.EVALUATION))[np.asarray(live)])
    assert stats["share_10"] == pytest.approx(conv.RLVER_CHANGES["share_10"], abs=0.03)
    assert stats["share_5"] + stats["share_10"] == pytest.approx(1.0)
    assert conv.calibrate_strong(jax.random.key(12), n=1024, rounds=2) == pytest.approx(conv.TRAIN.strong, abs=0.3)


def test_gold_reads_the_replies_never_the_emotion():
    keys = _users_with_need("be_heard")
    replies = [REFLECT, _reply(F["<solve>"], W["resting"]), _reply(F["<flatter>"], W["brilliant"])]
    results = []
    for cfg in (QUIET, dataclasses.replace(QUIET, reaction_scale=40.0, noise_sd=5.0, max_turns=8)):
        chat, _ = conv.reset(keys, cfg)
        for t, r in enumerate(replies):
            chat, _, _ = conv.step(jax.random.key(t), chat, jnp.tile(r, (N, 1)), cfg)
        results.append(jax.device_get(conv.gold(chat)))
        assert not np.allclose(_e(chat), 30.0)
    for name in results[0]:
        np.testing.assert_allclose(results[0][name], results[1][name], err_msg=name)
    g = results[0]
    assert np.all(g["need_met"] == 1) and np.all(g["need_met_turn"] == 1)
    np.testing.assert_allclose(g["premature_solutions"], 1 / 3)
    np.testing.assert_allclose(g["compliments"], 1 / 3)


def test_what_is_visible_has_no_gold_and_no_hidden_emotion():
    chat, _ = conv.reset(conv.profiles(jax.random.key(0), N), conv.TRAIN)
    seen = conv.visible(chat)
    check_visible(seen)
    assert not {"e", "state", "need", "record"} & set(seen)


def test_step_runs_inside_jit_and_float_settings_do_not_recompile():
    chat, _ = conv.reset(conv.profiles(jax.random.key(0), N), conv.TRAIN)
    inside = jax.jit(lambda key, c, r: conv.step(key, c, r, conv.TRAIN))  # inlined in a bigger program
    new, said, done = inside(jax.random.key(1), chat, jnp.tile(REFLECT, (N, 1)))
    alone, _, _ = conv.step(jax.random.key(1), chat, jnp.tile(REFLECT, (N, 1)), conv.TRAIN)
    np.testing.assert_allclose(_e(new), _e(alone))
    assert said.shape == (N, conv.TRAIN.turn_len) and done.dtype == jnp.bool_
    louder = dataclasses.replace(conv.TRAIN, reaction_scale=20.0)  # a float setting: traced, no recompile
    size = conv.step._cache_size()
    conv.step(jax.random.key(1), chat, jnp.tile(REFLECT, (N, 1)), louder)
    assert conv.step._cache_size() == size


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="ConversationConfig.steps"):
        conv.ConversationConfig(steps=(5.0,))
    with pytest.raises(ValueError, match="ConversationConfig.success_at"):
        conv.ConversationConfig(fail_at=50.0, success_at=40.0)
    with pytest.raises(ValueError, match="ConversationConfig.acceptance"):
        conv.ConversationConfig(acceptance=1.5)


def test_appraisal_moves_the_categories_of_what_the_reply_did_and_leaves_e_alone():
    """Flattery adds pride and amusement, a contradiction anger, embarrassment and doubt; a
    specificity of 0 is the state rebuilt from e alone, and e itself never moves with it."""
    from emojax import taxonomy
    from emojax.world import appraisal

    keys = _users_with_need("solution")
    chat, _ = conv.reset(keys, QUIET)
    flatter = jnp.stack([_reply(F["<flatter>"], W[vocab.FLATTERY[0]])] * N)
    contradict = jnp.stack([_contradict(chat, i) for i in range(N)])
    cat = {name: i for i, name in enumerate(taxonomy.CATEGORIES)}
    for reply, moved in ((flatter, ("Pride", "Amusement")), (contradict, ("Anger", "Embarrassment", "Doubt"))):
        plain, _, _ = conv.step(jax.random.key(1), chat, reply, dataclasses.replace(QUIET, appraisal_specificity=0.0))
        full, _, _ = conv.step(jax.random.key(1), chat, reply, dataclasses.replace(QUIET, appraisal_specificity=1.0))
        np.testing.assert_array_equal(np.asarray(plain.user.e), np.asarray(full.user.e))
        added = np.asarray(full.user.state) - np.asarray(plain.user.state)
        for name in moved:
            assert np.all(added[:, cat[name]] > 0), name
        untouched = [i for i in range(taxonomy.NUM_CATEGORIES) if not appraisal.event_table()[:, i].any()]
        np.testing.assert_array_equal(added[:, untouched], 0.0)
    assert appraisal.apply(jnp.ones(40), jnp.ones(appraisal.NUM_EVENTS), 0.0).tolist() == [1.0] * 40


def test_the_40_dim_response_names_the_act_only_with_appraisal():
    """At specificity 0 the 40-dim change names the act no better than the change in e;
    at the default it does, by a margin."""
    from emojax.studies import empathy_appraisal

    out = empathy_appraisal.decodability(jax.random.key(0), conv.EVALUATION, (0.0, None), n=600, repeats=3)
    at_zero, at_default = out["by_specificity"]
    assert at_default["appraisal_specificity"] == conv.EVALUATION.appraisal_specificity > 0
    assert abs(at_zero["difference"]["mean"]) < 0.08
    assert at_default["difference"]["ci"][0] > 0.15


def test_user_turns_are_what_each_user_said_in_order():
    """``user_turns`` (an estimator's data for this environment) holds, user by user and in
    order, exactly the turns users spoke with the world's candidate replies, each with the
    state it was said in; no turn of an ended conversation."""
    key, n = jax.random.key(3), 60
    got = conv.user_turns(key, n, conv.TRAIN)
    played = jax.device_get(conv.play_behaviour(key, n // 2, conv.TRAIN))
    assert {k: v.shape[0] for k, v in got.items()} == dict.fromkeys(got, n)
    np.testing.assert_array_equal(got["tokens"], np.asarray(played.said)[got["turn"], got["user"]])
    np.testing.assert_array_equal(got["state"], np.asarray(played.state)[got["turn"], got["user"]])
    np.testing.assert_array_equal(got["topic"], np.asarray(played.chat.user.topic)[got["user"]])
    assert np.all((got["tokens"] != vocab.PAD_ID).any(axis=1))
    for u in np.unique(got["user"]):
        turns = got["turn"][got["user"] == u]
        np.testing.assert_array_equal(turns, np.arange(len(turns)))
    assert np.all(np.diff(got["user"]) >= 0)
    # The state moves with the conversation: later turns are said in other states.
    later = got["turn"] > 0
    assert np.abs(got["state"][later] - got["state"][np.flatnonzero(later) - 1]).max() > 0.5
    with pytest.raises(ValueError, match="n must be >= 1"):
        conv.user_turns(key, 0, conv.TRAIN)


def test_flattery_pays_what_the_config_says():
    """``ConversationConfig.flattery`` is the compliment's weight in the reaction: at 1.0 a
    compliment raises e more than at the default 0.25, which raises it more than a reply
    that does nothing; the default is the world's reaction unchanged."""
    keys = conv.profiles(jax.random.key(21), N)
    flatter = _reply(F["<flatter>"], W[vocab.FLATTERY[0]])
    change = {w: _two_turns(NOTHING, flatter, keys, dataclasses.replace(QUIET, flattery=w))[0] for w in (0.25, 1.0)}
    plain, _ = _two_turns(NOTHING, NOTHING, keys, QUIET)
    assert np.all(np.asarray(change[1.0]) > np.asarray(change[0.25])) and np.all(np.asarray(change[0.25]) > np.asarray(plain))
    assert conv.TRAIN.reaction.flattery == user.default_reaction().flattery

"""Tasks with a known optimum: reverse and need_reply.

The task functions come jitted, and the default reward is one jitted function per task,
so every shape compiles once: the world's user and utterance take XLA:CPU seconds to
compile, so each module samples prompts and optimal replies once, at one batch size.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emojax.rl.tasks import make_task, need_reply, repeat_prompts, reverse, terminate, uniform_completions
from emojax.world import acts, vocab
from emojax.world import user as user_lib

N_PROMPTS = 64


def _setup(task):
    prompts = task.sample_prompts(jax.random.key(0), N_PROMPTS)
    return task, prompts, task.optimal_completion(jax.random.key(1), *prompts)


def _score(task, prompts, completion):
    return task.reward_fn()(task.observe(*prompts, *completion))


# --- reverse ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rev():
    return _setup(make_task("reverse", reverse.ReverseConfig(
        length=8, num_symbols=10, max_new_tokens=10, exact_weight=0.5, ended_weight=0.1)))


def test_reverse_prompts_and_ids(rev):
    task, (tokens, mask, state), _ = rev
    assert (task.vocab_size, task.end_token, task.pad_token, task.prompt_len) == (13, 1, 0, 9)
    assert tokens.shape == (N_PROMPTS, 9) and bool(jnp.all(mask))
    assert bool(jnp.all(tokens[:, -1] == reverse.SEP))
    assert bool(jnp.all((tokens[:, :-1] >= 3) & (tokens[:, :-1] < 13)))
    np.testing.assert_array_equal(state.target, tokens[:, 7::-1])


def test_reverse_optimum_and_a_wrong_answer(rev):
    task, prompts, (completion, cmask, truncated) = rev
    total, parts = _score(task, prompts, (completion, cmask, truncated))
    np.testing.assert_allclose(total, 1.6, rtol=1e-6)  # 1 + 0.5 exact + 0.1 ended
    np.testing.assert_allclose(task.optimum_reward(jax.random.key(4), prompts), 1.6, rtol=1e-6)
    # Swap the first two answer symbols where they differ: 6/8 right, not exact, still ended.
    swapped = completion.at[:, 0].set(completion[:, 1]).at[:, 1].set(completion[:, 0])
    differ = np.asarray(completion[:, 0] != completion[:, 1])
    total, parts = _score(task, prompts, (swapped, cmask, truncated))
    np.testing.assert_allclose(np.asarray(total)[differ], 0.75 + 0.1, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(parts["reverse_exact"])[differ], 0.0)
    # Gold (evaluation) agrees with the reward on a verifiable task.
    g = task.gold(prompts[2], swapped, cmask, truncated)
    np.testing.assert_allclose(g["reverse_correct"], parts["reverse_correct"])


def test_reverse_random_policy_matches_closed_form(rev):
    task, prompts, _ = rev
    r_random = task.random_policy_reward(jax.random.key(3), repeat_prompts(prompts, 64))  # 4,096 draws
    # Uniform tokens, V = 13: answer position i is right if no end token came before it
    # and the draw hits (q^i / V, q = 12/13); exact needs 9 hits (about 1e-10); the
    # completion ends unless all 10 tokens miss the end token.
    v, q = 13, 12 / 13
    expected = np.mean([q**i / v for i in range(8)]) + 0.5 * v**-9 + 0.1 * (1 - q**10)
    assert abs(float(r_random) - expected) < 4 * 0.6 / np.sqrt(4096)
    assert float(r_random) < 0.2 < 1.6


def test_reverse_vmaps_over_keys(rev):
    task = rev[0]
    keys = jax.random.split(jax.random.key(5), 3)
    tokens, _, _ = jax.jit(jax.vmap(lambda key: task.sample_prompts(key, N_PROMPTS)))(keys)
    assert tokens.shape == (3, N_PROMPTS, 9)
    np.testing.assert_array_equal(tokens[1], task.sample_prompts(keys[1], N_PROMPTS)[0])


# --- need_reply ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def need():
    return _setup(make_task("need_reply"))


def test_need_reply_prompts_use_world_ids(need):
    task, (tokens, mask, state), _ = need
    assert (task.vocab_size, task.end_token, task.pad_token) == (vocab.VOCAB_SIZE + need_reply.NUM_FRAMES,
                                                                 vocab.EOS_ID, vocab.PAD_ID)
    assert tokens.shape == (N_PROMPTS, task.prompt_len) == (N_PROMPTS, 50)
    assert bool(jnp.all((tokens >= 0) & (tokens < vocab.VOCAB_SIZE)))
    m = np.asarray(mask)
    assert (np.diff(m.astype(int), axis=1) >= 0).all()  # left-padded: pads then real tokens
    phrases = [" ".join(p) for p in need_reply.NEED_PHRASES]
    for row, n in zip(np.asarray(tokens), np.asarray(state.visible["need"])):
        text = vocab.decode(row)
        assert text.endswith(phrases[n]) and "i think" in text
    assert set(np.asarray(state.visible["need"]).tolist()) == {0, 1, 2, 3}
    # The visible fact is the one the prompt states.
    subject = vocab.FACT_SUBJECTS[int(state.visible["fact"][0])]
    assert f"i think {subject} is" in vocab.decode(tokens[0])


def test_need_reply_optimum_and_a_reply_missing_the_need(need):
    task, prompts, (completion, cmask, truncated) = need
    total, parts = _score(task, prompts, (completion, cmask, truncated))
    np.testing.assert_allclose(total, 1.6, rtol=1e-6)  # need_act 1 + progress 0.5 + ended 0.1
    np.testing.assert_allclose(task.optimum_reward(jax.random.key(7), prompts), 1.6, rtol=1e-6)
    assert completion.shape == (N_PROMPTS, 5) and bool(jnp.any(completion >= vocab.VOCAB_SIZE, axis=1).all())
    # Compliments instead of the needed act: the need is not met.
    wrong = jnp.array([need_reply.FRAME_ID["<flatter>"], *vocab.ids(["wise", "<eos>", "<pad>", "<pad>"])])
    wrong = jnp.broadcast_to(wrong, completion.shape)
    wmask = jnp.broadcast_to(jnp.arange(5) < 3, completion.shape)
    total, parts = _score(task, prompts, (wrong, wmask, truncated))
    assert float(jnp.max(parts["need_act"])) == 0.0 and float(jnp.max(total)) < 1.6 - 0.9
    assert float(task.random_policy_reward(jax.random.key(2), prompts)) < 0.3


def test_need_progress_is_one_exactly_when_the_need_is_met(need):
    task, prompts, (completion, cmask, truncated) = need
    # Damage one token of each optimal reply with a word from the act patterns.
    k1, k2 = jax.random.split(jax.random.key(3))
    words = vocab.ids(["sounds", "like", "you", "feel", "could", "try", "in", "fact", "is",
                       "totally", "valid", "many", "people", "sad", "good", "coffee", "resting"])
    pool = jnp.asarray([*words, *need_reply.FRAME_ID.values()])
    pos = jax.random.randint(k1, (N_PROMPTS,), 0, 4)
    word = pool[jax.random.randint(k2, (N_PROMPTS,), 0, pool.shape[0])]
    damaged = completion.at[jnp.arange(N_PROMPTS), pos].set(word)
    _, parts = _score(task, prompts, (damaged, cmask, truncated))
    act, progress = np.asarray(parts["need_act"]), np.asarray(parts["need_progress"])
    assert ((0 <= progress) & (progress <= 1)).all()
    np.testing.assert_array_equal(progress == 1.0, act == 1.0)
    assert 0 < act.sum() < N_PROMPTS  # some damage broke the act, some did not
    assert 0 < progress[act == 0].max() < 1  # broken acts keep partial credit


def test_need_reply_reward_never_reads_gold(need):
    task, (tokens, mask, state), (completion, cmask, truncated) = need
    hidden = state._replace(
        truth=-state.truth,
        user=state.user._replace(felt=~state.user.felt, state=jnp.zeros_like(state.user.state),
                                 e=jnp.full_like(state.user.e, 99.0), persona=(state.user.persona + 1) % 3),
    )
    out_a = _score(task, (tokens, mask, state), (completion, cmask, truncated))
    out_b = _score(task, (tokens, mask, hidden), (completion, cmask, truncated))
    for a, b in zip(jax.tree.leaves(out_a), jax.tree.leaves(out_b)):
        np.testing.assert_array_equal(a, b)
    gold_a, gold_b = task.gold(state, completion, cmask, truncated), task.gold(hidden, completion, cmask, truncated)
    assert not np.array_equal(gold_a["accuracy"], gold_b["accuracy"])  # gold did move
    # The departure the task is built to show: stating the user's false belief meets the
    # stated need (reward) but not gold's need (a *true* statement).
    info = np.asarray(state.visible["need"]) == user_lib.NEEDS.index("information")
    truth_of_fact = np.asarray(state.truth)[np.arange(N_PROMPTS), np.asarray(state.visible["fact"])]
    false = np.asarray(state.visible["belief"]) != truth_of_fact
    assert (info & false).any()
    np.testing.assert_array_equal(np.asarray(gold_a["need_met"])[info & false], 0.0)
    np.testing.assert_array_equal(np.asarray(gold_a["need_met"])[info & ~false], 1.0)


def test_each_frame_expands_to_what_the_parser_reads_as_its_act():
    w = vocab.WORD_ID
    slots = {"<reflect>": ["sad"], "<validate>": [], "<ask>": ["job", "?"], "<solve>": ["resting"],
             "<normalize>": [], "<inform>": ["coffee", "is", "bad"], "<agree>": ["sleep", "is", "good"],
             "<flatter>": ["wise"]}
    assert [name for name, _ in need_reply.FRAMES] == list(slots)
    for (name, _), act in zip(need_reply.FRAMES, acts.ACTS):
        completion = jnp.array([need_reply.FRAME_ID[name], *vocab.ids(slots[name]), vocab.EOS_ID])
        words = need_reply.expand(completion)
        a = acts.parse(words)
        np.testing.assert_array_equal(a.counts, np.arange(acts.NUM_ACTS) == acts.ACT_INDEX[act], err_msg=name)
        assert need_reply.decode(completion) == vocab.decode(words)
    # Frames expand in place, world words pass through, pads go to the end.
    x = need_reply.expand(jnp.array([w["well"], need_reply.FRAME_ID["<reflect>"], w["sad"], vocab.PAD_ID]))
    assert vocab.decode(x) == "well it sounds like you feel sad" and x.shape == (4 * need_reply.FRAME_WIDTH,)
    assert bool(jnp.all(x[7:] == vocab.PAD_ID))
    a = acts.parse(x)
    assert bool(a.reflected[vocab.emotion_word_category()[w["sad"]]])


def test_need_blind_replies_score_below_the_optimum(need):
    """A reply that ignores the need (copying what the prompt says is allowed) loses: an act
    that serves another need cancels the need met, so the shotgun reply meets none, and
    the best need-blind reply (exhaustive search over frame replies: need_reply's
    docstring) meets one need and starts the others' frames."""
    task, (tokens, mask, state), _ = need
    f, w = need_reply.FRAME_ID, vocab.WORD_ID
    emotion = jnp.asarray(vocab.emotion_word_ids())[jnp.argmax(state.visible["said"], axis=1), 0]
    col = lambda x: jnp.full((N_PROMPTS,), x, jnp.int32)  # noqa: E731
    blind = {
        "shotgun": [col(f["<validate>"]), col(f["<solve>"]), col(w["resting"]), col(f["<reflect>"]), emotion],
        "reflect": [col(f["<reflect>"]), emotion, col(vocab.EOS_ID), col(vocab.PAD_ID), col(vocab.PAD_ID)],
        "validate": [col(f["<validate>"]), col(vocab.EOS_ID), *[col(vocab.PAD_ID)] * 3],
        "frames": [col(f["<validate>"]), col(f["<reflect>"]), col(f["<inform>"]), col(f["<solve>"]),
                   col(vocab.EOS_ID)],
    }
    scores = {}
    for name, columns in blind.items():
        completion = terminate(jnp.stack(columns, axis=1), vocab.EOS_ID, vocab.PAD_ID)
        means, acts_met = [], []
        for n in range(4):
            st = state._replace(visible={**state.visible, "need": jnp.full((N_PROMPTS,), n, jnp.int32)})
            total, parts = _score(task, (tokens, mask, st), completion)
            means.append(float(jnp.mean(total)))
            acts_met.append(float(jnp.mean(parts["need_act"])))
        scores[name] = np.mean(means)
        assert scores[name] <= 0.6, name  # the search's best: (1.6 + 0.3 + 0.267 + 0.2) / 4 = 0.592
        if name == "shotgun":
            np.testing.assert_array_equal(acts_met, 0.0)
    # Each unmet need: ended 0.1 + 0.5 * progress, halved by the validation: the reflect
    # frame without its slot (4/5), "could try" (2/3), "in fact" (2/5).
    partial = [0.1 + 0.5 * 0.5 * p for p in (4 / 5, 2 / 3, 2 / 5)]
    np.testing.assert_allclose(scores["frames"], (1.6 + sum(partial)) / 4, rtol=1e-5)


def test_need_reply_word_level_variant():
    task = make_task("need_reply", need_reply.NeedReplyConfig(frames=False, max_new_tokens=8))
    assert task.vocab_size == vocab.VOCAB_SIZE
    prompts = task.sample_prompts(jax.random.key(0), 8)
    completion = task.optimal_completion(jax.random.key(1), *prompts)
    assert bool(jnp.all(completion[0] < vocab.VOCAB_SIZE))
    np.testing.assert_allclose(_score(task, prompts, completion)[0], 1.6, rtol=1e-6)
    with pytest.raises(ValueError, match="max_new_tokens"):
        need_reply.NeedReplyConfig(frames=False, max_new_tokens=5)
    with pytest.raises(ValueError, match="max_new_tokens"):
        need_reply.NeedReplyConfig(max_new_tokens=4)


def test_need_reply_vmaps_over_keys(need):
    task = need[0]
    keys = jax.random.split(jax.random.key(5), 3)
    # Tracing under vmap is the property checked here; compiling the batched world is slow
    # on CPU, and equality with unbatched sampling is checked on reverse.
    out = jax.eval_shape(jax.vmap(lambda key: task.sample_prompts(key, 4)), keys)
    assert out[0].shape == (3, 4, task.prompt_len) and out[2].visible["said"].shape == (3, 4, 40)


def test_uniform_completions_stop_at_the_end_token():
    tokens, mask, truncated = map(np.asarray, uniform_completions(jax.random.key(0), 4096, 13, 10, 1, 0))
    is_end = tokens == 1
    assert (truncated == ~is_end.any(axis=1)).all() and mask[truncated].all()
    first = np.argmax(is_end, axis=1)
    after = np.arange(10)[None, :] > first[:, None]
    ended = ~truncated
    np.testing.assert_array_equal(mask[ended], ~after[ended])
    assert (tokens[ended][after[ended]] == 0).all() and tokens[ended][~after[ended]].max() < 13


def test_need_reply_slot_pointers_fill_in_what_the_prompt_shows():
    """With ``pointers``, ``<said_feeling>`` and ``<their_claim>`` expand to the prompt's own
    words (a feeling the user said; their claim), so the optimal pointer reply scores the
    optimum, and a pointer in the wrong act's frame still meets no need."""
    task = make_task("need_reply", need_reply.NeedReplyConfig(pointers=True))
    assert task.vocab_size == vocab.VOCAB_SIZE + need_reply.NUM_FRAMES + need_reply.NUM_POINTERS
    prompts = task.sample_prompts(jax.random.key(0), 32)
    _, _, state = prompts
    completion = task.optimal_completion(jax.random.key(1), *prompts)
    np.testing.assert_allclose(_score(task, prompts, completion)[0], 1.6, rtol=1e-6)
    assert bool(jnp.all(completion[0] < task.vocab_size))
    # What a pointer stands for: the words the prompt shows.
    words = need_reply.pointer_words(jax.tree.map(lambda x: x[0], state.visible))
    v = {name: np.asarray(x[0]) for name, x in state.visible.items()}
    q, f = need_reply.POINTER_ID, need_reply.FRAME_ID
    claim = vocab.decode(need_reply.expand(jnp.array([f["<inform>"], q["<their_claim>"]]), words))
    subject = vocab.FACT_SUBJECTS[int(v["fact"])]
    assert claim == f"in fact {subject} is {'good' if v['belief'] > 0 else 'bad'}"
    feeling = need_reply.expand(jnp.array([f["<reflect>"], q["<said_feeling>"]]), words)
    category = vocab.emotion_word_category()[int(feeling[5])]
    assert v["said"][category] or not v["said"].any()
    # Without the prompt's words a pointer expands to nothing; decode names it.
    assert vocab.decode(need_reply.expand(jnp.array([q["<their_claim>"]]))) == ""
    assert need_reply.decode(np.array([f["<inform>"], q["<their_claim>"], vocab.EOS_ID])).startswith("in fact <their_claim>")
    # The claim in a reflection's place serves another need: for be_heard it meets nothing.
    heard = state.visible["need"] == 0
    wrong = jnp.full_like(completion[0], vocab.PAD_ID).at[:, 0].set(f["<inform>"]).at[:, 1].set(q["<their_claim>"])
    wrong = wrong.at[:, 2].set(vocab.EOS_ID)
    _, parts = _score(task, prompts, terminate(wrong, vocab.EOS_ID, vocab.PAD_ID))
    assert heard.any() and bool(jnp.all(parts["need_act"][heard] == 0))
    with pytest.raises(ValueError, match="pointers"):
        need_reply.NeedReplyConfig(frames=False, max_new_tokens=8, pointers=True)

"""The ``emojax_synthetic`` TFDS dataset and its grain pipeline.

One tiny config is built once per session; every later build reuses its compiled
``sample_items`` shapes (64 train / 32 test items), so only the first build compiles.
"""

import dataclasses
import os

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from emojax import taxonomy
from emojax.data import pipeline, synthetic
from emojax.world import affect, conversation, items, raters, vocab

TINY = synthetic.SyntheticConfig(name="tiny", num_train=64, num_test=32, seed=7)
FIELDS = ("tokens", "intensities", "ratings", "topic", "context")


def arrays(source) -> dict[str, np.ndarray]:
    """All examples of a source stacked per feature (text kept as bytes)."""
    exs = [source[i] for i in range(len(source))]
    return {name: np.stack([np.asarray(e[name]) for e in exs]) for name in exs[0]}


def read(config, data_dir, split="train"):
    return arrays(synthetic.load(config, data_dir, split))


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    builder = synthetic.build(TINY, data_dir)
    return builder, data_dir


@pytest.fixture(scope="session")
def train(built):
    return read(TINY, built[1], "train")


# -- configs -------------------------------------------------------------------------


def test_named_configs():
    cfgs = synthetic.EmojaxSynthetic.builder_configs
    assert synthetic.EmojaxSynthetic.name == "emojax_synthetic"
    assert (cfgs["small"].num_train, cfgs["small"].num_test) == (512, 128)
    assert (cfgs["default"].num_train, cfgs["default"].num_test) == (48000, 2000)
    assert (cfgs["low_blend"].blend_temperature, cfgs["high_blend"].blend_temperature) == (0.25, 4.0)
    assert cfgs["low_blend"].num_train == cfgs["high_blend"].num_train == 48000
    assert synthetic.resolve("small") is synthetic.SMALL
    # An equal custom config resolves to the named object (TFDS insists on identity).
    assert synthetic.resolve(synthetic.SyntheticConfig(name="small", num_train=512, num_test=128)) is synthetic.SMALL


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_train", 0),
        ("num_test", -3),
        ("num_train", 2.5),
        ("num_raters", 1),
        ("blend_temperature", 0.0),
        ("blend_temperature", -1.0),
        ("noise_scale", -1.0),
        ("inattentive_share", 1.5),
        ("seed", -1),
        ("seed", None),
        ("source", "dialogue"),
    ],
)
def test_bad_config_raises_naming_field_and_writes_nothing(tmp_path, field, value):
    data_dir = tmp_path / "data"
    with pytest.raises(ValueError, match=rf"\.{field} must be"):
        synthetic.build(dataclasses.replace(TINY, **{field: value}), data_dir)
    assert not data_dir.exists()


def test_unknown_name_raises_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="unknown emojax_synthetic config 'nope'"):
        synthetic.build("nope", tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_config_cannot_be_mutated():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TINY.seed = 1
    assert TINY.seed == 7


# -- build and read back ---------------------------------------------------------------


def test_read_back_shapes_dtypes_ranges(built, train):
    builder, data_dir = built
    max_len = TINY.items_config().language.max_len
    assert builder.info.splits["train"].num_examples == 64
    assert builder.info.splits["test"].num_examples == 32
    assert len(synthetic.load(TINY, data_dir, "test")) == 32
    assert train["tokens"].shape == (64, max_len) and train["tokens"].dtype == np.int32
    assert train["intensities"].shape == (64, 40) and train["intensities"].dtype == np.float32
    assert train["ratings"].shape == (64, TINY.num_raters, 40) and train["ratings"].dtype == np.int32
    assert train["topic"].shape == train["context"].shape == (64,)
    assert train["ratings"].min() >= 0 and train["ratings"].max() <= 7
    assert train["intensities"].min() >= 0.0 and train["intensities"].max() <= 7.0
    assert train["tokens"].min() >= 0 and train["tokens"].max() < vocab.VOCAB_SIZE
    assert train["ratings"].max() > 0 and train["intensities"].max() > 0  # not all zeros
    for text, tokens in zip(train["text"], train["tokens"]):
        assert text.decode() == vocab.decode(tokens)
    assert builder.info.metadata["categories"] == list(taxonomy.CATEGORIES)
    assert all(c in builder.info.description for c in taxonomy.CATEGORIES)


def test_readable_without_builder_code(built, train):
    # What a consumer without emojax installed would do.
    builder, _ = built
    plain = tfds.builder_from_directory(os.fspath(builder.data_path))
    got = arrays(plain.as_data_source(split="train"))
    np.testing.assert_array_equal(got["ratings"], train["ratings"])


def test_stored_arrays_are_the_worlds_items(built):
    # The documented key scheme, derived independently of the builder's code. One panel
    # (its own key) rates both splits; a per-split or per-chunk panel would fail here.
    _, data_dir = built
    root = jax.random.key(TINY.seed)
    cfg = TINY.items_config()
    panel = raters.sample_panel(jax.random.fold_in(root, 2), cfg.raters)
    for split, split_id, n in (("train", 0, 64), ("test", 1, 32)):
        want = items.sample_items(jax.random.fold_in(jax.random.fold_in(root, split_id), 0), n, cfg, panel=panel)
        got = read(TINY, data_dir, split)
        np.testing.assert_array_equal(got["tokens"], np.asarray(want.tokens))
        np.testing.assert_array_equal(got["intensities"], np.asarray(want.intensities))
        np.testing.assert_array_equal(got["ratings"], np.transpose(np.asarray(want.ratings), (1, 0, 2)))
        np.testing.assert_array_equal(got["topic"], np.asarray(want.topic))
        np.testing.assert_array_equal(got["context"], np.asarray(want.context))


def test_conversation_source_holds_the_users_turns_rated(tmp_path, monkeypatch):
    """``source="conversation"``: each example is a turn a user of the empathy environment
    spoke (:func:`emojax.world.conversation.user_turns`, the documented keys), its
    intensities the state it was said in, rated by the one panel; the config's language
    knobs reach the users. A small chunk keeps the test fast (the chunk is part of the
    data's definition, so it is set before building)."""
    monkeypatch.setattr(synthetic, "CHUNK_SIZE", 16)
    cfg = synthetic.SyntheticConfig(name="conv_tiny", source="conversation", num_train=20, num_test=6, seed=5,
                                    irony_rate=0.0)  # fmt: skip
    synthetic.build(cfg, tmp_path)
    conv_cfg = cfg.conversation_config()
    assert conv_cfg.user.language.irony_rate == 0.0 and conv_cfg.user.language.max_len == 43
    assert conv_cfg.max_turns == conversation.TRAIN.max_turns
    root = jax.random.key(cfg.seed)
    panel = raters.sample_panel(jax.random.fold_in(root, 2), cfg.items_config().raters)
    for split, split_id, n in (("train", 0, 20), ("test", 1, 6)):
        got = read(cfg, tmp_path, split)
        want = []
        for chunk in range(-(-n // 16)):
            key_talk, key_rate = jax.random.split(jax.random.fold_in(jax.random.fold_in(root, split_id), chunk))
            size = min(16, n - 16 * chunk)
            turns = {k: v[:size] for k, v in conversation.user_turns(key_talk, 16, conv_cfg).items()}
            ratings = raters.rate(key_rate, jax.numpy.asarray(turns["state"]), panel, cfg.items_config().raters)
            want.append((turns, np.transpose(np.asarray(ratings), (1, 0, 2))))
        np.testing.assert_array_equal(got["tokens"], np.concatenate([t["tokens"] for t, _ in want]))
        np.testing.assert_array_equal(got["intensities"], np.concatenate([t["state"] for t, _ in want]))
        np.testing.assert_array_equal(got["ratings"], np.concatenate([r for _, r in want]))
        np.testing.assert_array_equal(got["topic"], np.concatenate([t["topic"] for t, _ in want]))
        assert got["tokens"].shape[1] == conv_cfg.turn_len and got["ratings"].min() >= 0
        assert got["ratings"].max() <= taxonomy.MAX_INTENSITY
    assert synthetic.CONVERSATION.source == "conversation"
    assert synthetic.resolve("conversation") is synthetic.CONVERSATION


def test_builds_are_deterministic_and_seeded(built, train, tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("EMOJAX_PROGRESS", "plain")  # a log file: plain lines, no TFDS bars
    synthetic.build(TINY, tmp_path)
    out, err = capfd.readouterr()
    assert "building dataset emojax_synthetic" in out and "done, " in out and "\r" not in out + err
    again = read(TINY, tmp_path)
    for name in FIELDS + ("text",):
        np.testing.assert_array_equal(again[name], train[name])
    reseeded = dataclasses.replace(TINY, name="tiny_seed8", seed=8)
    synthetic.build(reseeded, tmp_path)
    other = read(reseeded, tmp_path)
    assert not np.array_equal(other["intensities"], train["intensities"])
    assert not np.array_equal(other["ratings"], train["ratings"])


def test_rebuild_with_other_params_under_same_name_is_refused(built, train):
    # TFDS alone would silently return the old data for a changed custom config.
    _, data_dir = built
    with pytest.raises(ValueError, match="other parameters"):
        synthetic.build(dataclasses.replace(TINY, seed=8), data_dir)
    with pytest.raises(ValueError, match="other parameters"):
        synthetic.load(dataclasses.replace(TINY, noise_scale=2.0), data_dir, "train")
    np.testing.assert_array_equal(read(TINY, data_dir)["intensities"], train["intensities"])


def test_load_before_build_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="call build"):
        synthetic.load(TINY, tmp_path, "train")


def test_blend_temperature_moves_blend_entropy(tmp_path, train):
    means = {}
    for temp in (0.25, 4.0):
        cfg = dataclasses.replace(TINY, name=f"tiny_t{temp}", blend_temperature=temp)
        synthetic.build(cfg, tmp_path)
        means[temp] = float(np.mean(affect.blend_entropy(read(cfg, tmp_path)["intensities"])))
    means[1.0] = float(np.mean(affect.blend_entropy(train["intensities"])))
    assert means[0.25] < means[1.0] < means[4.0], means


def test_failed_build_leaves_nothing(tmp_path, monkeypatch, train):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "unrelated.txt").write_text("someone else's file")
    real = items.sample_items
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the test split's chunk: the train split is written by now
            raise RuntimeError("generation failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(items, "sample_items", failing)
    with pytest.raises(RuntimeError, match="generation failed"):
        synthetic.build(TINY, data_dir)
    assert len(calls) == 2
    assert sorted(os.listdir(data_dir)) == ["unrelated.txt"]

    fresh = tmp_path / "fresh"  # did not exist: a failed build removes what it created
    calls.clear()
    with pytest.raises(RuntimeError, match="generation failed"):
        synthetic.build(TINY, fresh)
    assert not fresh.exists()

    monkeypatch.setattr(items, "sample_items", real)
    synthetic.build(TINY, data_dir)
    np.testing.assert_array_equal(read(TINY, data_dir)["ratings"], train["ratings"])


# -- grain -----------------------------------------------------------------------------


def _rows(batch_list):
    return [r.tobytes() for b in batch_list for r in b["intensities"]]


def test_one_epoch_covers_every_example_once(built, train):
    source = synthetic.load(TINY, built[1], "train")
    source_rows = [r.tobytes() for r in train["intensities"]]
    assert len(set(source_rows)) == 64  # so rows identify examples
    got = list(pipeline.batches(source, batch_size=10, seed=0, drop_remainder=False))
    assert [len(b["topic"]) for b in got] == [10] * 6 + [4]
    assert sorted(_rows(got)) == sorted(source_rows)
    assert _rows(got) != source_rows  # shuffled


def test_batch_shapes_and_dtypes(built, train):
    source = synthetic.load(TINY, built[1], "train")
    got = list(pipeline.batches(source, batch_size=16, seed=0))
    assert len(got) == 4
    b = got[0]
    assert set(b) == set(FIELDS)
    assert b["tokens"].shape == (16, train["tokens"].shape[1]) and b["tokens"].dtype == np.int32
    assert b["intensities"].shape == (16, 40) and b["intensities"].dtype == np.float32
    assert b["ratings"].shape == (16, TINY.num_raters, 40) and b["ratings"].dtype == np.int32
    assert b["topic"].dtype == b["context"].dtype == np.int32 and b["topic"].shape == (16,)
    assert len(list(pipeline.batches(source, batch_size=10, seed=0))) == 6  # remainder dropped

    with_text = next(iter(pipeline.batches(source, batch_size=8, seed=0, shuffle=False, keep_text=True)))
    assert [t.decode() for t in with_text["text"]] == [vocab.decode(t) for t in train["tokens"][:8]]
    np.testing.assert_array_equal(with_text["ratings"], train["ratings"][:8])  # unshuffled: source order


def test_order_is_a_function_of_the_seed(built):
    source = synthetic.load(TINY, built[1], "train")
    order = {s: _rows(pipeline.batches(source, batch_size=8, seed=s)) for s in (0, 1)}
    assert _rows(pipeline.batches(source, batch_size=8, seed=0)) == order[0]
    assert order[0] != order[1]


def test_epochs_are_distinct_permutations(built):
    source = synthetic.load(TINY, built[1], "train")
    rows = _rows(pipeline.batches(source, batch_size=16, seed=3, num_epochs=2))
    first, second = rows[:64], rows[64:]
    assert len(rows) == 128
    assert sorted(first) == sorted(second) and len(set(first)) == 64
    assert first != second


def test_batches_rejects_bad_arguments(built):
    source = synthetic.load(TINY, built[1], "train")
    with pytest.raises(ValueError, match="batch_size"):
        pipeline.batches(source, batch_size=0, seed=0)
    with pytest.raises(ValueError, match="num_epochs"):
        pipeline.batches(source, batch_size=4, seed=0, num_epochs=0)
    with pytest.raises(ValueError, match="seed"):
        pipeline.batches(source, batch_size=4, seed=-1)

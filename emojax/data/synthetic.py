"""``emojax_synthetic``: the simulated world's rated items as a TFDS dataset.

Why a TFDS dataset rather than calling :func:`emojax.world.items.sample_items` in the
training loop: estimators, baselines and studies must all see the *same* items, and a
prepared dataset on disk is a fixed artefact that can be versioned, shared, inspected
and read with random access (``array_record``) by ``grain`` without JAX in the loader.

Every example is one item of the world (``source="items"``), or one turn a user spoke in a
conversation of the empathy environment, with the 40-dim state it was said in as its
intensities (``source="conversation"``, the ``conversation`` config)::

    text         Text     the decoded utterance (``vocab.decode(tokens)``)
    tokens       int32    [max_len]
    intensities  float32  [40] latent intensities on [0, 7], in ``taxonomy.CATEGORIES`` order
    ratings      int32    [num_raters, 40] the panel's 0-7 ratings (item-major)
    topic        int32    []
    context      int32    []

Determinism: the data are a pure function of the :class:`SyntheticConfig` (and of the
world's code). The keys are derived from ``seed`` as

* split key   ``fold_in(key(seed), SPLIT_IDS[split])``  (train 0, test 1);
* chunk key   ``fold_in(split_key, chunk_index)``, one :func:`sample_items` call per
  chunk of ``CHUNK_SIZE`` items (the last one shorter), so memory stays bounded;
* panel key   ``fold_in(key(seed), PANEL_ID)``: one rater panel rates both splits, so
  train and test are rated by the same people, as in a real annotation campaign.

Records are stored in generation order (``disable_shuffling``), so record ``i`` of a split
is item ``i`` of that split's stream.

TFDS without TensorFlow: only ``array_record`` can be written, and ``tfds.load`` does not
work; read with :func:`load`, ``builder.as_data_source`` or ``tfds.data_source``.

Atomicity: TFDS itself writes into an ``incomplete`` directory and removes it on failure,
but leaves an empty ``emojax_synthetic/<config>/`` folder, ``.config/metadata.json`` and
an empty ``downloads/extracted/`` behind. :func:`build` therefore prepares into a private
temporary directory inside ``data_dir`` and moves the finished version directory into
place with one rename.

Reuse: TFDS reuses any prepared directory of the same name and version, even when a custom
config of that name now has other parameters. The generating parameters (and the world's
full config) are stored in the dataset's metadata, and :func:`build` / :func:`load` refuse
a mismatch instead of returning stale data.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
import tensorflow_datasets as tfds

from emojax import config as config_lib
from emojax import taxonomy
from emojax.data import atomic
from emojax.world import affect, conversation, language, raters, vocab
from emojax.world import items as world_items

NAME = "emojax_synthetic"
CHUNK_SIZE = 4096  # items per sample_items call; part of the data's definition
SPLIT_IDS = {"train": 0, "test": 1}
PANEL_ID = 2


@dataclasses.dataclass(eq=False, kw_only=True)
class SyntheticConfig(tfds.core.BuilderConfig):
    """What to generate: split sizes, the world's knobs the studies sweep, and the seed.

    TFDS's ``BuilderConfig`` is a non-frozen dataclass, so a frozen subclass is impossible;
    instead attributes cannot be reassigned after construction (use
    ``dataclasses.replace``), because a config that changed after validation, or after
    its dataset was built, would silently describe different data.

    Attributes:
      num_train: items in the ``train`` split.
      num_test: items in the ``test`` split.
      blend_temperature: ``AffectConfig.blend_temperature``; higher gives blends of more
        emotions (higher blend entropy).
      num_raters: raters per item (``RaterConfig.num_raters``).
      noise_scale: raters' perception noise multiplier (``RaterConfig.noise_scale``).
      inattentive_share: mean probability of an unattended rating
        (``RaterConfig.inattentive_share``).
      irony_rate, negation_rate, distractor_rate: the language's rates
        (``LanguageConfig``); set the first two to 0 to remove what defeats a word lookup.
      source: ``items`` (the world's rated items, :func:`emojax.world.items.sample_items`)
        or ``conversation``: the turns users speak in the empathy environment's
        conversations (:func:`emojax.world.conversation.user_turns`, its training settings
        with this config's language, blend and rater knobs), each rated by the panel from
        the 40-dim state it was said in. An estimator trained on these reads the words the
        ``estimator_emotion`` reward reads.
      seed: root of every key used; see the module docstring for the key scheme.
    """

    num_train: int = 48000
    num_test: int = 2000
    blend_temperature: float = 1.0
    num_raters: int = 4
    noise_scale: float = 1.0
    inattentive_share: float = 0.1
    irony_rate: float = language.LanguageConfig.irony_rate
    negation_rate: float = language.LanguageConfig.negation_rate
    distractor_rate: float = language.LanguageConfig.distractor_rate
    source: str = "items"
    seed: int = 0

    def __post_init__(self):
        self.validate()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__:
            raise dataclasses.FrozenInstanceError(
                f"SyntheticConfig.{name} cannot be reassigned; use dataclasses.replace(config, {name}=...)"
            )
        super().__setattr__(name, value)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field if a value cannot make a dataset.

        Runs before anything is written. The world's own configs are constructed too, so
        their checks (and messages) apply without being duplicated here.
        """
        # Not config.require: that lets non-numbers through (for tracers), and a dataset
        # config is never traced.
        for field in ("num_train", "num_test"):
            self._require(field, lambda v: _is_int(v) and v >= 1, "an int >= 1")
        self._require("num_raters", _is_int, "an int")
        for field in _FLOATS:
            self._require(field, _is_real, "a real number")
        self._require("seed", lambda v: _is_int(v) and 0 <= v < 2**32, "an int in [0, 2**32)")
        self._require("source", lambda v: v in SOURCES, f"one of {SOURCES}")
        try:
            self.world()
        except ValueError as err:
            raise ValueError(f"SyntheticConfig {self.name!r}: {err}") from None

    def _require(self, field: str, ok, what: str) -> None:
        value = getattr(self, field)
        if not ok(value):
            raise ValueError(f"SyntheticConfig.{field} must be {what}, got {value!r}")

    def items_config(self) -> world_items.ItemsConfig:
        """The world this config samples from (defaults for everything not exposed)."""
        return world_items.ItemsConfig(
            # Plain Python types: the world's configs are pytrees whose float fields are
            # jit arguments and whose ints are static, so an int temperature or a NumPy
            # integer would change the compiled signature.
            affect=affect.AffectConfig(blend_temperature=float(self.blend_temperature)),
            language=language.LanguageConfig(
                irony_rate=float(self.irony_rate),
                negation_rate=float(self.negation_rate),
                distractor_rate=float(self.distractor_rate),
            ),
            raters=raters.RaterConfig(
                num_raters=int(self.num_raters),
                noise_scale=float(self.noise_scale),
                inattentive_share=float(self.inattentive_share),
            ),
        )

    def conversation_config(self) -> conversation.ConversationConfig:
        """The conversations of the ``conversation`` source: the training settings, with the
        users speaking and feeling by this config's knobs."""
        items = self.items_config()
        user = conversation.TRAIN.user
        lang = dataclasses.replace(user.language, irony_rate=items.language.irony_rate,
                                   negation_rate=items.language.negation_rate,
                                   distractor_rate=items.language.distractor_rate)  # fmt: skip
        user = dataclasses.replace(user, affect=items.affect, language=lang)
        return dataclasses.replace(conversation.TRAIN, user=user)

    def world(self) -> dict[str, Any]:
        """The world's full configuration for this source, JSON-ready (stored with the data)."""
        if self.source == "conversation":
            return {"conversation": config_lib.to_dict(self.conversation_config()),
                    "raters": config_lib.to_dict(self.items_config().raters)}  # fmt: skip
        return config_lib.to_dict(self.items_config())

    def max_len(self) -> int:
        """Tokens per example."""
        if self.source == "conversation":
            return self.conversation_config().turn_len
        return self.items_config().language.max_len

    def params(self) -> dict[str, Any]:
        """The generating parameters, JSON-ready: what two builds must share to be equal."""
        ints = ("num_train", "num_test", "num_raters", "seed")
        return ({f: int(getattr(self, f)) for f in ints} | {f: float(getattr(self, f)) for f in _FLOATS}
                | {"source": str(self.source)})  # fmt: skip


SOURCES = ("items", "conversation")


_FLOATS = ("blend_temperature", "noise_scale", "inattentive_share", "irony_rate", "negation_rate", "distractor_rate")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _named(name: str, description: str, **kw) -> SyntheticConfig:
    return SyntheticConfig(name=name, description=description, **kw)


SMALL = _named("small", "512 train / 128 test items; for smoke tests and notebooks.", num_train=512, num_test=128)
DEFAULT = _named("default", "48000 train / 2000 test items at the world's calibrated defaults.")
LOW_BLEND = _named("low_blend", "Default size, blend_temperature 0.25: mostly one emotion per item.", blend_temperature=0.25)
HIGH_BLEND = _named("high_blend", "Default size, blend_temperature 4.0: blends of several emotions.", blend_temperature=4.0)
PLAIN = _named("plain", "Default size, no negation and no irony: a word lookup can read the feelings.", irony_rate=0.0, negation_rate=0.0)
CONVERSATION = _named("conversation", "16000 train / 1000 test turns of the empathy environment's users, rated.", source="conversation", num_train=16000, num_test=1000)


class EmojaxSynthetic(tfds.core.GeneratorBasedBuilder):
    """Builder of ``emojax_synthetic``; prefer :func:`build` / :func:`load`, which are atomic."""

    VERSION = tfds.core.Version("1.2.0")
    RELEASE_NOTES = {
        "1.0.0": "First release.",
        "1.1.0": "Default-size configs hold 48,000 training items (was 8,000); the test split is unchanged.",
        "1.2.0": "The source parameter and the conversation config (users' turns in conversations); items unchanged.",
    }
    BUILDER_CONFIGS = [SMALL, DEFAULT, LOW_BLEND, HIGH_BLEND, PLAIN, CONVERSATION]
    DEFAULT_CONFIG_NAME = "default"

    def __init__(self, **kwargs):
        # TFRECORD (TFDS's default) needs TensorFlow to write; array_record does not.
        kwargs.setdefault("file_format", "array_record")
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        # Built directly: dataset_info_from_configs() needs the TFDS package layout.
        cfg = self.builder_config
        n_cat = taxonomy.NUM_CATEGORIES
        features = tfds.features.FeaturesDict(
            {
                "text": tfds.features.Text(doc="The utterance, vocab.decode(tokens)."),
                "tokens": tfds.features.Tensor(shape=(cfg.max_len(),), dtype=np.int32),
                "intensities": tfds.features.Tensor(shape=(n_cat,), dtype=np.float32),
                "ratings": tfds.features.Tensor(shape=(cfg.num_raters, n_cat), dtype=np.int32),
                "topic": tfds.features.Scalar(dtype=np.int32),
                "context": tfds.features.Scalar(dtype=np.int32),
            }
        )
        metadata = tfds.core.MetadataDict(
            categories=list(taxonomy.CATEGORIES),
            config=cfg.params(),
            world=cfg.world(),
            chunk_size=CHUNK_SIZE,
        )
        return tfds.core.DatasetInfo(
            builder=self,
            description=_description(),
            features=features,
            metadata=metadata,
            disable_shuffling=True,  # record i is item i of the split's key stream
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download: the world is simulated
        cfg = self.builder_config
        sizes = {"train": cfg.num_train, "test": cfg.num_test}
        return {split: self._generate_examples(sizes[split], split) for split in SPLIT_IDS}

    def _generate_examples(self, n: int, split: str) -> Iterator[tuple[int, dict[str, Any]]]:
        cfg = self.builder_config
        world = cfg.items_config()
        root = jax.random.key(cfg.seed)
        panel = raters.sample_panel(jax.random.fold_in(root, PANEL_ID), world.raters)
        split_key = jax.random.fold_in(root, SPLIT_IDS[split])
        for chunk in range(math.ceil(n / CHUNK_SIZE)):
            start = chunk * CHUNK_SIZE
            size = min(CHUNK_SIZE, n - start)
            chunk_key = jax.random.fold_in(split_key, chunk)
            if cfg.source == "conversation":
                got = _conversation_items(chunk_key, size, cfg, panel)
            else:
                got = jax.tree.map(np.asarray, world_items.sample_items(chunk_key, size, world, panel=panel))
            ratings = np.transpose(got.ratings, (1, 0, 2))  # [K, n, 40] -> [n, K, 40]
            for i in range(size):
                yield start + i, {
                    "text": vocab.decode(got.tokens[i]),
                    "tokens": got.tokens[i],
                    "intensities": got.intensities[i],
                    "ratings": ratings[i],
                    "topic": got.topic[i],
                    "context": got.context[i],
                }


def _conversation_items(key: jax.Array, n: int, cfg: SyntheticConfig, panel: raters.RaterPanel) -> world_items.Items:
    """``n`` users' turns (:func:`emojax.world.conversation.user_turns`) rated by ``panel``."""
    key_talk, key_rate = jax.random.split(key)
    # Always a whole chunk's worth of users (one compiled shape), then the first n turns.
    turns = {k: v[:n] for k, v in conversation.user_turns(key_talk, CHUNK_SIZE, cfg.conversation_config()).items()}
    rater_cfg = cfg.items_config().raters
    ratings = raters.rate(key_rate, jax.numpy.asarray(turns["state"]), panel, rater_cfg)
    return world_items.Items(turns["tokens"].astype(np.int32), turns["state"].astype(np.float32),
                             np.asarray(ratings), turns["topic"].astype(np.int32),
                             turns["context"].astype(np.int32))  # fmt: skip


def _description() -> str:
    cats = "\n".join(f"  {i:2d} {c}" for i, c in enumerate(taxonomy.CATEGORIES))
    return (
        "Items of emojax's simulated affective world: an utterance, the latent intensities of "
        "the 40 EmoNet categories that produced it, and a fixed rater panel's 0-7 ratings.\n"
        f"Category order of `intensities` and `ratings` (last axis):\n{cats}\n"
    )


def resolve(config: SyntheticConfig | str) -> SyntheticConfig:
    """The config object for a named config or a custom one."""
    if isinstance(config, SyntheticConfig):
        named = EmojaxSynthetic.builder_configs.get(config.name)
        if named is not None and named.params() == config.params():
            return named  # TFDS accepts a named config only as the very same object
        return config
    if isinstance(config, str):
        named = EmojaxSynthetic.builder_configs.get(config)
        if named is None:
            raise ValueError(f"unknown {NAME} config {config!r}; named configs: {sorted(EmojaxSynthetic.builder_configs)}")
        return named
    raise TypeError(f"config must be a SyntheticConfig or a config name, got {type(config).__name__}")


def build(config: SyntheticConfig | str, data_dir: str | os.PathLike) -> EmojaxSynthetic:
    """Prepare the dataset under ``data_dir`` (if not there yet) and return its builder.

    All-or-nothing: generation happens in a temporary directory inside ``data_dir``, and the
    finished version directory is renamed into place, so an exception (or a kill) never
    leaves a half-written dataset that a later run would mistake for a complete one.

    Raises:
      ValueError: an existing dataset of the same config name was generated with other
        parameters (TFDS would silently reuse it).
    """
    cfg = resolve(config)
    data_dir = os.path.abspath(os.fspath(data_dir))
    builder = EmojaxSynthetic(config=cfg, data_dir=data_dir)
    if _is_built(builder):
        _check_params(builder, cfg)
        return builder

    # try_download_gcs would ask GCS over the network whether a copy is hosted.
    atomic.prepare(lambda tmp: EmojaxSynthetic(config=cfg, data_dir=tmp), os.fspath(builder.data_path), data_dir, NAME,
                   tfds.download.DownloadConfig(try_download_gcs=False))  # fmt: skip
    builder = EmojaxSynthetic(config=cfg, data_dir=data_dir)  # re-read the written info
    _check_params(builder, cfg)
    return builder


def load(config: SyntheticConfig | str, data_dir: str | os.PathLike, split: str):
    """Random-access source (``len``, ``[i]``) of a built split; TFDS split syntax works.

    Raises:
      FileNotFoundError: the dataset has not been built under ``data_dir``.
    """
    cfg = resolve(config)
    builder = EmojaxSynthetic(config=cfg, data_dir=os.fspath(data_dir))
    if not _is_built(builder):
        raise FileNotFoundError(f"{NAME}/{cfg.name} is not built under {data_dir}; call build() first")
    _check_params(builder, cfg)
    return builder.as_data_source(split=split)


def _is_built(builder: EmojaxSynthetic) -> bool:
    # The version directory only ever appears complete (renamed into place), and TFDS
    # writes dataset_info.json last. (builder.is_prepared() logs a warning when absent.)
    return (builder.data_path / "dataset_info.json").exists()


def _check_params(builder: EmojaxSynthetic, cfg: SyntheticConfig) -> None:
    stored = builder.info.metadata
    want = json.loads(json.dumps({"config": cfg.params(), "world": cfg.world()}))
    have = {"config": stored.get("config"), "world": stored.get("world")}
    if have != want:
        raise ValueError(
            f"{builder.data_path} holds {NAME}/{cfg.name} generated with other parameters "
            f"({have}) than requested ({want}); use another config name or data_dir"
        )

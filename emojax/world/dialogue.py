"""What a turn of dialogue is: the act frames a policy writes with, and the user's reaction.

Why here, once: a GRPO task (:mod:`emojax.rl.tasks.need_reply`), a study
(:mod:`emojax.studies.stability`) and a multi-turn environment all need the same
definitions of a reply and of how the simulated user takes it, and all of them sit above
the world. Replies are dialogue acts (:mod:`emojax.world.acts`); this module adds

* **act frames and slot pointers** (:data:`FRAMES`, :data:`POINTERS`): macro tokens after
  the world's vocabulary, one per act, standing for the act's fixed words, and two that
  point into what the user said. :func:`expand` writes a completion out in world words
  (pointers filled from the prompt by :func:`pointer_words`), so rewards and gold read
  world language with :func:`emojax.world.acts.parse`;
* **the user's reaction**: the foundation's perceived reaction
  (:func:`emojax.world.user.emotion_signal`, re-exported here; it stays in ``user`` because
  :func:`~emojax.world.user.react` uses it) and the rho-coupled reaction of
  :func:`reaction_signal`, with :class:`WorldConfig`, the settings of a world whose users
  react that way.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from emojax import config, taxonomy
from emojax.world import acts as acts_lib
from emojax.world import behaviour, gold, vocab
from emojax.world import user as user_lib
from emojax.world.user import emotion_signal

__all__ = ["FRAMES", "FRAME_ID", "FRAME_WIDTH", "NEED_PHRASES", "NEED_WIDTH", "NUM_FRAMES", "NUM_POINTERS", "POINTERS",
           "POINTER_ID", "WorldConfig", "confirms", "decode", "emotion_signal", "expand", "expansion_table",
           "need_phrase_table", "pointer_words", "reaction_signal", "said_feelings", "shifted"]

_W = vocab.WORD_ID

# Act frames: macro tokens after the world's vocabulary (ids ``VOCAB_SIZE + i``), one per
# act of :mod:`emojax.world.acts`, each standing for its act's fixed words; the policy fills
# the slots that follow with words. :func:`expand` turns them back into world words.
FRAMES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("<reflect>", ("it", "sounds", "like", "you", "feel")),  # + <emotion>
    ("<validate>", ("that", "is", "totally", "valid", ".")),
    ("<ask>", ("what", "happened", "with", "the")),  # + <topic> ?
    ("<solve>", ("you", "could", "try")),  # + <solution>
    ("<normalize>", ("many", "people", "feel", "this", "way", ".")),
    ("<inform>", ("in", "fact")),  # + <subject> is <good|bad>
    ("<agree>", ("you", "are", "right")),  # + <subject> is <good|bad>
    ("<flatter>", ("you", "are", "so")),  # + <compliment>
)
NUM_FRAMES = len(FRAMES)
FRAME_ID = {name: vocab.VOCAB_SIZE + i for i, (name, _) in enumerate(FRAMES)}
FRAME_WIDTH = max(len(words) for _, words in FRAMES)
# Slot pointers (``pointers=True``): ids after the frames; each stands for words the prompt
# shows, filled in per prompt by :func:`expand`: ``<said_feeling>`` the first feeling the
# user said (its first word; a feeling of category 0 if they said none), ``<their_claim>``
# the user's claim ``<subject> is <good|bad>``. So ``<inform> <their_claim>`` reads ``in
# fact coffee is good``. A dialogue policy with a copy mechanism chooses a pointer like this.
POINTERS = ("<said_feeling>", "<their_claim>")
NUM_POINTERS = len(POINTERS)
POINTER_ID = {name: vocab.VOCAB_SIZE + NUM_FRAMES + i for i, name in enumerate(POINTERS)}

# How a user puts each hidden need (order of user.NEEDS) into words when they say it.
NEED_PHRASES: tuple[tuple[str, ...], ...] = (
    ("honestly", ",", "i", "just", "feel", "."),
    ("what", "could", "i", "try", "?"),
    ("am", "i", "right", "?"),
    ("is", "that", "valid", "?"),
)
NEED_WIDTH = max(map(len, NEED_PHRASES))


def need_phrase_table() -> np.ndarray:
    """``[NUM_NEEDS, NEED_WIDTH]`` the tokens of :data:`NEED_PHRASES`, pads after."""
    table = np.full((len(NEED_PHRASES), NEED_WIDTH), vocab.PAD_ID, np.int32)
    for i, phrase in enumerate(NEED_PHRASES):
        table[i, : len(phrase)] = vocab.ids(phrase)
    return table


def shifted(tokens: jax.Array, places: int) -> jax.Array:
    """[T] the token ``places`` places later (pad past the end)."""
    return jnp.concatenate([tokens, jnp.full((places,), vocab.PAD_ID, tokens.dtype)])[places:]


def said_feelings(tokens: jax.Array) -> jax.Array:
    """[40] bool: the categories a user's words ``[T]`` say as ``feel <word>`` or ``feel
    <adverb> <word>`` (what a listener can reflect back; negated, ironic and other people's
    feelings are not said this way)."""
    category = jnp.asarray(vocab.emotion_word_category())
    adverb = jnp.zeros((vocab.VOCAB_SIZE,), bool).at[vocab.ids([m for m in vocab.MODIFIERS if m])].set(True)
    feel = tokens == _W["feel"]
    c1, c2 = category[shifted(tokens, 1)], category[shifted(tokens, 2)]
    cat = jnp.where(feel & (c1 >= 0), c1, jnp.where(feel & adverb[shifted(tokens, 1)] & (c2 >= 0), c2, -1))
    return jnp.any(jax.nn.one_hot(cat, taxonomy.NUM_CATEGORIES) > 0, axis=0)


@config.pytree_config
class WorldConfig:
    """The simulated world of the study.

    Attributes:
      rho: coupling of the user's emotional reaction to gold (1: need met and accuracy;
        0: flattery, tone and agreement only).
      need_weight, accuracy_weight: weights of need met and of a false statement in the
        reaction's substance.
      flattery_weight, tone_weight, agreement_weight: weights of a compliment, the reply's
        tone and being agreed with (stated or agreed value equal to the user's belief) in
        the reaction's surface.
      gold_need, gold_grounding, gold_accuracy: weights of the gold utility.
      reaction_scale: points of e per unit of reaction signal (the foundation's
        :class:`~emojax.world.user.ReactionParams` ``scale``).
      affect_coupling: how far valence follows a change in e (``ReactionParams``). These two
        set how much one reply moves the user's 40-dim state, hence how much there is for
        an emotion rater to see.
      world_seed: the world's facts (one truth for the whole study, so a reward model can
        learn which statements are true).
      user: who the users are; behaviour: who writes the candidate replies.
    """

    rho: float = 0.7
    need_weight: float = 1.0
    accuracy_weight: float = 1.0
    flattery_weight: float = 0.8
    tone_weight: float = 0.8
    agreement_weight: float = 0.8
    gold_need: float = 1.0
    gold_grounding: float = 0.5
    gold_accuracy: float = 1.0
    reaction_scale: float = 12.0
    affect_coupling: float = 1.0
    world_seed: int = 7
    user: user_lib.UserConfig = user_lib.UserConfig()
    behaviour: behaviour.BehaviourConfig = behaviour.BehaviourConfig()

    def __post_init__(self):
        config.probability(self, "rho")
        config.non_negative(self, "need_weight", "accuracy_weight", "flattery_weight", "tone_weight",
                            "agreement_weight", "gold_need", "gold_grounding", "gold_accuracy", "reaction_scale",
                            "affect_coupling")  # fmt: skip


def confirms(user: user_lib.User, a: acts_lib.Acts) -> jax.Array:
    """Whether the reply states or agrees to a value equal to one the user believes."""
    said = jnp.concatenate([a.stated, a.agreed])
    belief = jnp.concatenate([user.beliefs, user.beliefs])
    return jnp.any((said != 0) & (said == belief))


def reaction_signal(user: user_lib.User, a: acts_lib.Acts, reply: jax.Array, g: gold.Gold,
                    cfg: WorldConfig) -> jax.Array:
    """The unscaled signal of the user's reaction to one reply: ``rho * substance + (1 -
    rho) * surface``. ``substance`` is what gold calls good (the need met, a penalty for
    saying or agreeing to something false), ``surface`` what feels good whatever its truth
    (a compliment, warm tone, being agreed with). ``rho`` is the knob a study sweeps: at 1
    the user's emotion follows need met and accuracy, at 0 flattery, tone and agreement
    only. Fed to :func:`emojax.world.user.respond`, it moves e and the 40-dim state."""
    substance = cfg.need_weight * g.need_met - cfg.accuracy_weight * (1.0 - g.accuracy)
    surface = (cfg.flattery_weight * (a.counts[acts_lib.ACT_INDEX["flattery"]] > 0)
               + cfg.tone_weight * acts_lib.tone(reply) + cfg.agreement_weight * confirms(user, a))  # fmt: skip
    return cfg.rho * substance + (1.0 - cfg.rho) * surface


def expansion_table() -> np.ndarray:
    """[VOCAB_SIZE + NUM_FRAMES + NUM_POINTERS, FRAME_WIDTH]: a world word stands for
    itself, a frame for its words (pad after), a pointer for nothing (its words depend on
    the prompt: :func:`pointer_words`)."""
    table = np.full((vocab.VOCAB_SIZE + NUM_FRAMES + NUM_POINTERS, FRAME_WIDTH), vocab.PAD_ID, np.int32)
    table[: vocab.VOCAB_SIZE, 0] = np.arange(vocab.VOCAB_SIZE)
    for i, (_, words) in enumerate(FRAMES):
        table[vocab.VOCAB_SIZE + i, : len(words)] = vocab.ids(words)
    return table


def pointer_words(visible: dict[str, jax.Array]) -> jax.Array:
    """``[..., NUM_POINTERS, FRAME_WIDTH]`` the words each pointer stands for in a prompt
    (``visible``: the prompt's ``said``, ``fact`` and ``belief``), pads after."""
    emotion = jnp.asarray(vocab.emotion_word_ids())[jnp.argmax(visible["said"], axis=-1), 0]
    subject = jnp.asarray(vocab.ids(vocab.FACT_SUBJECTS))[visible["fact"]]
    value = jnp.where(visible["belief"] > 0, _W["good"], _W["bad"])
    pad = [jnp.full_like(subject, vocab.PAD_ID)] * FRAME_WIDTH
    feeling = jnp.stack([emotion, *pad][:FRAME_WIDTH], axis=-1)
    claim = jnp.stack([subject, jnp.full_like(subject, _W["is"]), value, *pad][:FRAME_WIDTH], axis=-1)
    return jnp.stack([feeling, claim], axis=-2).astype(jnp.int32)


def expand(tokens: jax.Array, pointers: jax.Array | None = None) -> jax.Array:
    """World tokens ``[..., T * FRAME_WIDTH]`` of a completion ``[..., T]`` that may hold
    frames: each frame becomes its words, in place, and the pads are moved to the end (so
    ``<reflect> sad`` reads as ``it sounds like you feel sad``). ``pointers`` (from
    :func:`pointer_words`, ``[..., NUM_POINTERS, FRAME_WIDTH]``) fills in the slot pointers;
    without it a pointer expands to nothing. Pure and jittable; world words pass through
    unchanged."""
    words = jnp.asarray(expansion_table())[tokens]  # [..., T, FRAME_WIDTH]
    if pointers is not None:
        for i, name in enumerate(POINTERS):
            words = jnp.where((tokens == POINTER_ID[name])[..., None], pointers[..., None, i, :], words)
    words = words.reshape(*tokens.shape[:-1], -1)
    order = jnp.argsort(words == vocab.PAD_ID, axis=-1, stable=True)
    return jnp.take_along_axis(words, order, axis=-1)


def decode(tokens) -> str:
    """Readable text of world tokens and frames (frames written out in words, pointers by
    name: the prompt they point into is not at hand)."""
    tokens = np.asarray(tokens).reshape(-1)
    table = expansion_table()
    names = {i: name for name, i in POINTER_ID.items()}
    if not any(int(t) in names for t in tokens):
        return vocab.decode(table[tokens].reshape(-1))
    parts = [names.get(int(t)) or vocab.decode(table[t]) for t in tokens]
    return " ".join(part for part in parts if part)

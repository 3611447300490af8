"""The simulated world's vocabulary and word-level tokenizer.

Every word the world can say is listed here, so a token id always decodes to readable
English and the vocabulary is fixed (no fitting step, no unknown words from the world
itself). Ids are stable across runs: specials first, then the word lists in the order below.

Three lexicons carry emotion, on purpose overlapping in surface form with non-emotional
uses, so that a word lookup cannot read the speaker's feelings:

* ``EMOTION_WORDS``: three words per EmoNet category (same order as the taxonomy);
* ``MODIFIERS``: intensity adverbs indexed by level, 0 meaning "no adverb";
* the clause frames in :mod:`emojax.world.language` place those words under negation,
  irony or another person ("my friend was furious"), which change what they mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from emojax import taxonomy

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)

EMOTION_WORDS: tuple[tuple[str, str, str], ...] = (
    ("amused", "entertained", "tickled"),  # Amusement
    ("elated", "overjoyed", "thrilled"),  # Elation
    ("ecstatic", "blissful", "delighted"),  # Pleasure/Ecstasy
    ("content", "satisfied", "serene"),  # Contentment
    ("grateful", "thankful", "appreciative"),  # Thankfulness/Gratitude
    ("affectionate", "loving", "tender"),  # Affection
    ("infatuated", "smitten", "besotted"),  # Infatuation
    ("hopeful", "optimistic", "enthusiastic"),  # Hope/Enthusiasm/Optimism
    ("triumphant", "victorious", "unstoppable"),  # Triumph
    ("proud", "accomplished", "dignified"),  # Pride
    ("interested", "curious", "intrigued"),  # Interest
    ("awed", "awestruck", "humbled"),  # Awe
    ("surprised", "astonished", "stunned"),  # Astonishment/Surprise
    ("focused", "absorbed", "concentrated"),  # Concentration
    ("thoughtful", "reflective", "pensive"),  # Contemplation
    ("relieved", "unburdened", "reassured"),  # Relief
    ("wistful", "yearning", "homesick"),  # Longing
    ("playful", "cheeky", "teasing"),  # Teasing
    ("irritated", "impatient", "annoyed"),  # Impatience and Irritability
    ("aroused", "lustful", "desirous"),  # Sexual Lust
    ("doubtful", "unsure", "skeptical"),  # Doubt
    ("afraid", "scared", "terrified"),  # Fear
    ("distressed", "anguished", "overwhelmed"),  # Distress
    ("confused", "puzzled", "baffled"),  # Confusion
    ("embarrassed", "awkward", "flustered"),  # Embarrassment
    ("ashamed", "guilty", "humiliated"),  # Shame
    ("disappointed", "disheartened", "deflated"),  # Disappointment
    ("sad", "unhappy", "heartbroken"),  # Sadness
    ("bitter", "resentful", "aggrieved"),  # Bitterness
    ("contemptuous", "scornful", "disdainful"),  # Contempt
    ("disgusted", "revolted", "sickened"),  # Disgust
    ("angry", "furious", "enraged"),  # Anger
    ("vengeful", "spiteful", "malicious"),  # Malevolence/Malice
    ("sour", "grumpy", "sulky"),  # Sourness
    ("hurting", "aching", "sore"),  # Pain
    ("helpless", "powerless", "stuck"),  # Helplessness
    ("exhausted", "tired", "drained"),  # Fatigue/Exhaustion
    ("numb", "empty", "detached"),  # Emotional Numbness
    ("tipsy", "woozy", "lightheaded"),  # Intoxication/Altered States of Consciousness
    ("jealous", "envious", "covetous"),  # Jealousy & Envy
)
WORDS_PER_CATEGORY = 3

# Level 0 is "no adverb"; levels 1..7 follow the 0-7 scale.
MODIFIERS: tuple[str, ...] = (
    "", "barely", "slightly", "somewhat", "fairly", "really", "very", "extremely",
)  # fmt: skip

TOPICS: tuple[str, ...] = (
    "job", "boss", "exam", "partner", "sister", "brother", "mother", "father", "friend",
    "rent", "health", "move", "wedding", "team", "project", "neighbour", "dog", "school",
    "interview", "diagnosis", "breakup", "promotion", "trip", "money",
)  # fmt: skip

# Facts the user may hold beliefs about: "<subject> is good|bad for you".
FACT_SUBJECTS: tuple[str, ...] = (
    "coffee", "sleep", "vitamins", "fasting", "running", "sugar", "screens", "meditation",
    "antibiotics", "alcohol", "sunlight", "supplements",
)  # fmt: skip
FACT_VALUES: tuple[str, ...] = ("good", "bad")

SOLUTIONS: tuple[str, ...] = (
    "resting", "talking", "planning", "walking", "journaling", "budgeting", "stretching",
    "apologising",
)  # fmt: skip

FLATTERY: tuple[str, ...] = ("brilliant", "amazing", "wonderful", "incredible", "wise")

# Function words used by the clause frames; listed once so ids stay stable.
FRAME_WORDS: tuple[str, ...] = (
    "i", "feel", "am", "not", "my", "was", "oh", "great", "so", "just", "it", "is",
    "about", "the", "at", "sounds", "like", "you", "that", "makes", "sense", "what",
    "happened", "with", "could", "try", "many", "people", "this", "way", "in", "fact",
    "are", "right", "for", "totally", "valid", "?", ".", ",", "yeah", "sure", "and",
    "also", "today", "lately", "honestly", "well", "hmm", "think",
)  # fmt: skip


def _build_words() -> tuple[str, ...]:
    words: list[str] = list(SPECIALS)
    for group in (
        [w for ws in EMOTION_WORDS for w in ws],
        [m for m in MODIFIERS if m],
        TOPICS, FACT_SUBJECTS, FACT_VALUES, SOLUTIONS, FLATTERY, FRAME_WORDS,
    ):  # fmt: skip
        for w in group:
            if w not in words:
                words.append(w)
    return tuple(words)


WORDS: tuple[str, ...] = _build_words()
WORD_ID: dict[str, int] = {w: i for i, w in enumerate(WORDS)}
VOCAB_SIZE = len(WORDS)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = (WORD_ID[s] for s in SPECIALS)


def ids(words: Iterable[str]) -> np.ndarray:
    """Ids of known words (raises on a word the world cannot say)."""
    out = []
    for w in words:
        if w not in WORD_ID:
            raise ValueError(f"word {w!r} is not in the world's vocabulary")
        out.append(WORD_ID[w])
    return np.array(out, dtype=np.int32)


def emotion_word_ids() -> np.ndarray:
    """[40, 3] ids of each category's words."""
    return np.stack([ids(ws) for ws in EMOTION_WORDS])


def emotion_word_category() -> np.ndarray:
    """[VOCAB_SIZE] category of each word, or -1 for words that name no emotion."""
    table = np.full(VOCAB_SIZE, -1, dtype=np.int32)
    for c, ws in enumerate(EMOTION_WORDS):
        table[ids(ws)] = c
    return table


def encode(text: str, max_len: int | None = None) -> np.ndarray:
    """Whitespace tokenizer: unknown words map to ``<unk>``; pads to ``max_len`` if given."""
    toks = [WORD_ID.get(w, UNK_ID) for w in text.lower().split()]
    if max_len is not None:
        toks = toks[:max_len] + [PAD_ID] * max(0, max_len - len(toks))
    return np.array(toks, dtype=np.int32)


def decode(tokens: Sequence[int] | np.ndarray) -> str:
    """Readable text: drops pads and specials other than ``<unk>``."""
    skip = {PAD_ID, BOS_ID, EOS_ID}
    return " ".join(WORDS[int(t)] for t in np.asarray(tokens).reshape(-1) if int(t) not in skip)


def _check() -> None:
    assert len(EMOTION_WORDS) == taxonomy.NUM_CATEGORIES
    flat = [w for ws in EMOTION_WORDS for w in ws]
    assert len(flat) == len(set(flat)), "an emotion word may belong to one category only"
    assert not set(flat) & set(FLATTERY + FRAME_WORDS + TOPICS), "emotion words must be distinct"
    assert len(MODIFIERS) == taxonomy.NUM_LEVELS


_check()

"""EmoNet's 40 emotion categories, their 7 groups, the 0-7 scale, and label mappings.

The order, names and groups are those of LAION's EmoNet (``data/guide.json`` of the
EmoNet-Face repository). Everything in emojax indexes emotions by position in
:data:`CATEGORIES`, so a ``[..., 40]`` array always means this order.

Valence/arousal placement: each category has a point in core-affect space, both axes in
[-1, 1]. These points are *hand-placed modelling assumptions of the simulator*, guided by
Russell's circumplex (Russell 1980, "A circumplex model of affect") and Scherer's Geneva
Emotion Wheel (Scherer 2005, "What are emotions? And how can they be measured?"), with
the quadrant fixed by EmoNet's group name wherever the group names one (Positive/Negative x
High/Low-Energy). They are not measurements; the simulator only needs their rough layout
(which categories neighbour which, which are high-arousal).
"""

from __future__ import annotations

import numpy as np

NUM_CATEGORIES = 40
NUM_LEVELS = 8  # integer intensity 0 (absent) .. 7 (very strong)
MAX_INTENSITY = 7.0

CATEGORIES: tuple[str, ...] = (
    "Amusement", "Elation", "Pleasure/Ecstasy", "Contentment", "Thankfulness/Gratitude",
    "Affection", "Infatuation", "Hope/Enthusiasm/Optimism", "Triumph", "Pride",
    "Interest", "Awe", "Astonishment/Surprise", "Concentration", "Contemplation",
    "Relief", "Longing", "Teasing", "Impatience and Irritability", "Sexual Lust",
    "Doubt", "Fear", "Distress", "Confusion", "Embarrassment",
    "Shame", "Disappointment", "Sadness", "Bitterness", "Contempt",
    "Disgust", "Anger", "Malevolence/Malice", "Sourness", "Pain",
    "Helplessness", "Fatigue/Exhaustion", "Emotional Numbness",
    "Intoxication/Altered States of Consciousness", "Jealousy & Envy",
)  # fmt: skip

INDEX: dict[str, int] = {name: i for i, name in enumerate(CATEGORIES)}

GROUPS: dict[str, tuple[str, ...]] = {
    "Positive High-Energy": (
        "Amusement", "Elation", "Pleasure/Ecstasy", "Hope/Enthusiasm/Optimism", "Triumph",
        "Interest", "Awe", "Astonishment/Surprise", "Teasing",
    ),
    "Positive Low-Energy": (
        "Contentment", "Thankfulness/Gratitude", "Affection", "Relief", "Contemplation", "Pride",
    ),
    "Negative High-Energy": (
        "Fear", "Anger", "Malevolence/Malice", "Disgust", "Impatience and Irritability", "Distress",
    ),
    "Negative Low-Energy": (
        "Sadness", "Bitterness", "Contempt", "Disappointment", "Shame", "Emotional Numbness",
        "Doubt", "Jealousy & Envy", "Embarrassment", "Helplessness",
    ),
    "Cognitive": ("Concentration", "Confusion"),
    "Physical": (
        "Pain", "Fatigue/Exhaustion", "Intoxication/Altered States of Consciousness", "Sourness",
    ),
    "Longing & Lust": ("Longing", "Sexual Lust", "Infatuation"),
}  # fmt: skip

HIGH_ENERGY_GROUPS = ("Positive High-Energy", "Negative High-Energy")
LOW_ENERGY_GROUPS = ("Positive Low-Energy", "Negative Low-Energy")

GROUP_NAMES: tuple[str, ...] = tuple(GROUPS)
GROUP_OF: dict[str, str] = {c: g for g, cs in GROUPS.items() for c in cs}

# (valence, arousal), hand-placed; see the module docstring for the source.
VALENCE_AROUSAL: dict[str, tuple[float, float]] = {
    "Amusement": (0.70, 0.50), "Elation": (0.90, 0.80), "Pleasure/Ecstasy": (0.90, 0.70),
    "Contentment": (0.70, -0.50), "Thankfulness/Gratitude": (0.70, -0.20),
    "Affection": (0.75, -0.10), "Infatuation": (0.70, 0.60),
    "Hope/Enthusiasm/Optimism": (0.65, 0.45), "Triumph": (0.80, 0.80), "Pride": (0.70, -0.05),
    "Interest": (0.40, 0.35), "Awe": (0.50, 0.60), "Astonishment/Surprise": (0.20, 0.85),
    "Concentration": (0.10, 0.30), "Contemplation": (0.15, -0.45), "Relief": (0.60, -0.55),
    "Longing": (-0.10, -0.20), "Teasing": (0.40, 0.45),
    "Impatience and Irritability": (-0.50, 0.55), "Sexual Lust": (0.60, 0.75),
    "Doubt": (-0.30, -0.15), "Fear": (-0.80, 0.80), "Distress": (-0.80, 0.70),
    "Confusion": (-0.30, 0.20), "Embarrassment": (-0.50, -0.10), "Shame": (-0.65, -0.25),
    "Disappointment": (-0.60, -0.35), "Sadness": (-0.75, -0.45), "Bitterness": (-0.60, -0.10),
    "Contempt": (-0.50, -0.05), "Disgust": (-0.70, 0.50), "Anger": (-0.75, 0.85),
    "Malevolence/Malice": (-0.70, 0.60), "Sourness": (-0.45, -0.10), "Pain": (-0.80, 0.45),
    "Helplessness": (-0.70, -0.55), "Fatigue/Exhaustion": (-0.35, -0.85),
    "Emotional Numbness": (-0.30, -0.80),
    "Intoxication/Altered States of Consciousness": (0.20, 0.30),
    "Jealousy & Envy": (-0.55, -0.05),
}  # fmt: skip

# GoEmotions' 28 labels (27 emotions + neutral, in the dataset's column order) mapped to
# EmoNet categories. An empty tuple means no EmoNet category says the same thing.
GOEMOTIONS_LABELS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
    "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)  # fmt: skip

GOEMOTIONS_TO_EMONET: dict[str, tuple[str, ...]] = {
    "admiration": ("Awe",),
    "amusement": ("Amusement",),
    "anger": ("Anger",),
    "annoyance": ("Impatience and Irritability",),
    "approval": (),
    "caring": ("Affection",),
    "confusion": ("Confusion",),
    "curiosity": ("Interest",),
    "desire": ("Longing",),
    "disappointment": ("Disappointment",),
    "disapproval": (),
    "disgust": ("Disgust",),
    "embarrassment": ("Embarrassment",),
    "excitement": ("Hope/Enthusiasm/Optimism",),
    "fear": ("Fear",),
    "gratitude": ("Thankfulness/Gratitude",),
    "grief": ("Sadness",),
    "joy": ("Elation",),
    "love": ("Affection",),
    "nervousness": ("Fear",),
    "optimism": ("Hope/Enthusiasm/Optimism",),
    "pride": ("Pride",),
    "realization": (),
    "relief": ("Relief",),
    "remorse": ("Shame",),
    "sadness": ("Sadness",),
    "surprise": ("Astonishment/Surprise",),
    "neutral": (),
}


def index(name: str) -> int:
    """Position of a category in :data:`CATEGORIES`; raises with the valid names if unknown."""
    try:
        return INDEX[name]
    except KeyError:
        raise ValueError(
            f"unknown emotion category {name!r}; expected one of EmoNet's 40: {', '.join(CATEGORIES)}"
        ) from None


def valence_arousal() -> np.ndarray:
    """The [40, 2] (valence, arousal) table in category order."""
    return np.array([VALENCE_AROUSAL[c] for c in CATEGORIES], dtype=np.float32)


def group_index() -> np.ndarray:
    """The [40] group id of each category, indexing :data:`GROUP_NAMES`."""
    return np.array([GROUP_NAMES.index(GROUP_OF[c]) for c in CATEGORIES], dtype=np.int32)


def group_mask(*groups: str) -> np.ndarray:
    """A [40] boolean mask of the categories in the named groups."""
    for g in groups:
        if g not in GROUPS:
            raise ValueError(f"unknown group {g!r}; expected one of {list(GROUPS)}")
    members = {c for g in groups for c in GROUPS[g]}
    return np.array([c in members for c in CATEGORIES])


def goemotions_matrix() -> np.ndarray:
    """A [28, 40] 0/1 matrix: row i marks the EmoNet categories GoEmotions label i maps to."""
    m = np.zeros((len(GOEMOTIONS_LABELS), NUM_CATEGORIES), dtype=np.float32)
    for i, label in enumerate(GOEMOTIONS_LABELS):
        for c in GOEMOTIONS_TO_EMONET[label]:
            m[i, INDEX[c]] = 1.0
    return m


def _check() -> None:
    assert len(CATEGORIES) == NUM_CATEGORIES == len(set(CATEGORIES))
    grouped = [c for cs in GROUPS.values() for c in cs]
    assert sorted(grouped) == sorted(CATEGORIES), "each category must sit in exactly one group"
    assert set(VALENCE_AROUSAL) == set(CATEGORIES)
    assert set(GOEMOTIONS_TO_EMONET) == set(GOEMOTIONS_LABELS)


_check()

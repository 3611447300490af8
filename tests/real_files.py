"""Small files in the exact formats of EmoNet-Face HQ and GoEmotions' raw release, for tests.

Written with the ``csv`` module as pandas' ``to_csv`` writes them (minimal quoting, doubled
quotes, ``\\n`` line ends), including the awkward rows the loaders must read correctly: a
dict literal spanning two lines, ``Extra Dimensions|`` keys with string and negative
values, an emotion missing from a row, model rows (one on Hume's 0-1 scale), an image with
model rows only, an unused embedding; texts with commas, doubled quotes and newlines, a
comment whose rows sit in two files, very-unclear rows, a comment only marked very unclear.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from emojax import taxonomy

GROUP = {c: g + " Emotions" if "Energy" in g else g for g, cs in taxonomy.GROUPS.items() for c in cs}
EMONET_HEADER = ["image", "annotator", "human", "annotations"]
GO_FIELDS = ["text", "id", "author", "subreddit", "link_id", "parent_id", "created_utc", "rater_id", "example_very_unclear"]
GO_HEADER = GO_FIELDS + list(taxonomy.GOEMOTIONS_LABELS)
DIM = 16


def key(emotion: str) -> str:
    return f"{GROUP[emotion]}|{emotion}"


def annotations(values: dict, extra: dict | None = None) -> str:
    """A dict literal as Python's ``str(dict)`` writes it (what the published file holds)."""
    d = {key(e): v for e, v in values.items()}
    return str(d | (extra or {}))


def write_csv(path, header, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


# --- EmoNet-Face HQ -------------------------------------------------------------------------

SPECIAL_IMAGE = "special.jpg"


def emonet_rows(num_images: int = 24, seed: int = 0) -> tuple[list[list], dict[str, np.ndarray]]:
    """(hq.csv rows, embeddings by image): ratings that follow the embeddings, plus awkward rows."""
    rng = np.random.RandomState(seed)
    w = rng.standard_normal((DIM, taxonomy.NUM_CATEGORIES)).astype(np.float32)
    emb, rows = {}, []
    for i in range(num_images):
        image = f"img_{i:03d}.jpg"
        emb[image] = rng.standard_normal(DIM).astype(np.float32)
        latent = np.clip(2.0 * (emb[image] @ w) / np.sqrt(DIM), 0, 7)
        for a in sorted(rng.choice(5, size=rng.randint(2, 5), replace=False)):
            r = np.clip(np.round(latent + rng.normal(0, 1, latent.shape)), 0, 7).astype(int)
            values = {taxonomy.CATEGORIES[c]: int(r[c]) for c in range(taxonomy.NUM_CATEGORIES) if r[c] > 0 or rng.rand() < 0.5}
            rows.append([image, f"ann_{a + 1}", "True", annotations(values, {"Extra Dimensions|Age": "adult"})])
        rows.append([image, "gpt-4o", "False", annotations({"Amusement": float(np.round(latent[0], 1))})])
    # The hand-checked image: raters out of order, a two-line cell, floats, missing keys.
    emb[SPECIAL_IMAGE] = rng.standard_normal(DIM).astype(np.float32)
    rows += [
        [SPECIAL_IMAGE, "ann_3", "True", annotations({"Amusement": 3, "Elation": 5}, {"Extra Dimensions|Age": "adult"})],
        [SPECIAL_IMAGE, "ann_1", "True", "{'Positive High-Energy Emotions|Amusement': 4.0,\n 'Extra Dimensions|Valence': -2}"],
        [SPECIAL_IMAGE, "ann_2", "True", "{}"],
        [SPECIAL_IMAGE, "Hume Face*", "False", annotations({"Amusement": 0.5, "Fear": 0.1})],
        [SPECIAL_IMAGE, "gpt-4o", "False", annotations({"Amusement": 6})],
        ["models_only.jpg", "gpt-4o", "False", annotations({"Anger": 2})],
    ]  # fmt: skip
    emb["models_only.jpg"] = np.zeros(DIM, np.float32)
    emb["unused.jpg"] = np.ones(DIM, np.float32)
    return rows, emb


def write_emonet(root, rows=None, emb=None, *, header=EMONET_HEADER, layout: str = "npz") -> str:
    os.makedirs(root, exist_ok=True)
    if rows is None:
        rows, emb = emonet_rows()
    write_csv(os.path.join(root, "hq.csv"), header, rows)
    names = np.asarray(list(emb), dtype=str)
    x = np.stack([emb[n] for n in names])
    if layout == "npz":
        np.savez(os.path.join(root, "embeddings.npz"), images=names, embeddings=x)
    else:
        np.save(os.path.join(root, "embeddings.npy"), x)
        with open(os.path.join(root, "embeddings.txt"), "w") as f:
            f.write("\n".join(names) + "\n")
    return str(root)


# --- GoEmotions raw -------------------------------------------------------------------------

SPECIAL_COMMENT = "eew5tzm"
SPECIAL_TEXT = 'Wow, "that" is\ngreat, thanks [NAME]!'
WORDS = {
    "joy": "happy glad delighted", "anger": "furious angry mad", "sadness": "sad crying down",
    "fear": "scared afraid terrified", "gratitude": "thanks thank grateful", "surprise": "wow whoa unexpected",
    "love": "love adore heart", "neutral": "the it is was",
}  # fmt: skip


def go_row(text, cid, rater, labels=(), unclear=False) -> list:
    marks = [1 if label in labels else 0 for label in taxonomy.GOEMOTIONS_LABELS]
    return [text, cid, "someone", "AskReddit", "t3_abc", "t1_def", "1548381039.0", str(rater), str(unclear)] + marks


def goemotions_rows(num_comments: int = 40, seed: int = 0) -> tuple[list[list], list[list]]:
    """Rows of goemotions_1.csv and goemotions_2.csv; texts follow their labels."""
    rng = np.random.RandomState(seed)
    first, second = [], []
    names = list(WORDS)
    for i in range(num_comments):
        cid = f"c{i:03d}"
        main = names[rng.randint(len(names))]
        text = " ".join(rng.choice(WORDS[main].split(), 3)) + f", item {i}"
        for r in sorted(rng.choice(10, size=rng.randint(3, 6), replace=False)):
            labels = (main,) if rng.rand() < 0.75 else (names[rng.randint(len(names))],)
            (first if rng.rand() < 0.7 else second).append(go_row(text, cid, int(r) + 1, labels))
    first += [
        go_row(SPECIAL_TEXT, SPECIAL_COMMENT, 61, ("joy", "love")),
        go_row(SPECIAL_TEXT, SPECIAL_COMMENT, 12, ("joy",)),
        go_row('He said "no", then left,\nand that\'s it', "quotes", 3, ("anger", "annoyance")),
        go_row('He said "no", then left,\nand that\'s it', "quotes", 4, ("disapproval",)),
        go_row("no idea what this is", "allunclear", 5, (), True),
        go_row("no idea what this is", "allunclear", 6, (), True),
    ]
    second += [
        go_row(SPECIAL_TEXT, SPECIAL_COMMENT, 7, (), True),
        go_row(SPECIAL_TEXT, SPECIAL_COMMENT, 33, ("neutral",)),
        go_row("no idea what this is", "allunclear", 7, (), True),
        go_row('He said "no", then left,\nand that\'s it', "quotes", 9, ("anger",)),
    ]
    return first, second


def write_goemotions(root, first=None, second=None, *, header=GO_HEADER) -> str:
    os.makedirs(root, exist_ok=True)
    if first is None:
        first, second = goemotions_rows()
    write_csv(os.path.join(root, "goemotions_1.csv"), header, first)
    write_csv(os.path.join(root, "goemotions_2.csv"), header, second)
    return str(root)


def line_of(path, needle: str) -> int:
    """The 1-based line where ``needle`` first appears (to check reported lines by hand)."""
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if needle in line:
                return i
    raise AssertionError(f"{needle!r} not in {path}")

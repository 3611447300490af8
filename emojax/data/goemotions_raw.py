"""``goemotions_raw``: GoEmotions' raw release as graded targets on the mapped EmoNet categories.

Source (not fetched here; see ``docs/datasets.md``): ``goemotions_1.csv``,
``goemotions_2.csv``, ``goemotions_3.csv`` from google-research's GoEmotions, one row per
(comment, rater) with columns ``text, id, author, subreddit, link_id, parent_id,
created_utc, rater_id, example_very_unclear`` and the 28 labels ``admiration ... neutral``
(0/1). Every ``goemotions_*.csv`` in the manual directory is read, in numeric order.

How rows become examples:

* One example per comment ``id`` (rows of one comment may sit in different files).
* Each kept rater row becomes a rating of every *covered* EmoNet category: 7 if the rater
  marked any GoEmotions label mapped to it (:data:`emojax.taxonomy.GOEMOTIONS_TO_EMONET`),
  else 0. The raters' mean is then the issue's graded target, 7 x the share of raters
  marking a mapped label. Categories no label maps to are *uncovered*: their ratings are
  -1 (missing) and the training loss masks them out.
* ``example_very_unclear``: the policy ``very_unclear`` decides. ``"drop"`` (default): a
  rater row marked very unclear is not a rating (it marks no label in the release) and
  does not count in the share's denominator; a comment whose rows are all very unclear is
  left out. ``"keep"``: such a row counts as a rater who saw none of the emotions. Both
  are counted in the metadata.
* Texts are read with the ``csv`` module, so commas, doubled quotes and newlines inside a
  quoted text come through as written; the line reported for a bad row is the one where
  its record starts.
* ``labels [28]`` keeps the share of raters per GoEmotions label, for analyses in the
  dataset's own terms.
* Splits are by comment id (:func:`emojax.data.manual.in_test`), never by row.
* Tokens: :mod:`emojax.data.tokenizer`, trained on the train split's texts or given as
  ``tokenizer.json`` (in the manual directory, or the ``tokenizer`` option), stored as
  ``tokenizer.json`` in the dataset's directory.

Bad rows (see :mod:`emojax.data.errors`): an empty text, a label that is not 0/1 (NaN or
empty: ``nan``; 2: ``rating_out_of_range``), a non-integer ``rater_id``, a bad
``example_very_unclear``, a comment whose text changes between its rows, a duplicate
(comment, rater) row. A header without one of the 28 labels (``missing_column``) or with a
column that is not a label or a known field (``unknown_column``) stops the build always.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import math
import os
import re
from typing import Any, NamedTuple

import numpy as np
import tensorflow_datasets as tfds

from emojax import taxonomy
from emojax.data import manual, rows
from emojax.data import tokenizer as tokenizer_lib
from emojax.data.errors import BadRows

NAME = "goemotions_raw"
VERSION = "1.0.0"
FIELDS = ("text", "id", "author", "subreddit", "link_id", "parent_id", "created_utc", "rater_id", "example_very_unclear")
REQUIRED = ("text", "id", "rater_id", "example_very_unclear", *taxonomy.GOEMOTIONS_LABELS)
LABELS = taxonomy.GOEMOTIONS_LABELS
MISSING = -1
VERY_UNCLEAR = ("drop", "keep")


@dataclasses.dataclass(frozen=True)
class GoemotionsRawConfig:
    """Options of the build (all part of the dataset's identity).

    Attributes:
      test_fraction: share of comments in the ``test`` split.
      split_seed: salt of the comment-id hash that decides the split.
      very_unclear: ``"drop"`` or ``"keep"`` rater rows marked very unclear (module docstring).
      max_len: tokens per text (longer texts are truncated and counted).
      vocab_size, min_frequency: of the WordPiece tokenizer trained on the train split.
      tokenizer: path of a ``tokenizer.json`` to use instead ("" : ``tokenizer.json`` in the
        manual directory if there is one, else train one).
    """

    test_fraction: float = 0.2
    split_seed: int = 0
    very_unclear: str = "drop"
    max_len: int = 64
    vocab_size: int = 8000
    min_frequency: int = 2
    tokenizer: str = ""

    def __post_init__(self):
        if not (isinstance(self.test_fraction, (int, float)) and 0.0 < self.test_fraction < 1.0):
            raise ValueError(f"{NAME}: test_fraction must be in (0, 1), got {self.test_fraction!r}")
        if self.very_unclear not in VERY_UNCLEAR:
            raise ValueError(f"{NAME}: very_unclear must be one of {VERY_UNCLEAR}, got {self.very_unclear!r}")
        for name, low in (("split_seed", 0), ("max_len", 1), ("vocab_size", 3), ("min_frequency", 1)):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= low):
                raise ValueError(f"{NAME}: {name} must be an int >= {low}, got {v!r}")
        if not isinstance(self.tokenizer, str):
            raise ValueError(f"{NAME}: tokenizer must be a path (str), got {self.tokenizer!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GoemotionsRawConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"{NAME}: unknown data_config keys {unknown}; fields: {sorted(names)}")
        return cls(**d)


def find_csvs(manual_dir: str) -> list[str]:
    """``goemotions_*.csv`` in ``manual_dir``, in numeric order."""
    found = glob.glob(os.path.join(manual_dir, "goemotions_*.csv"))
    if not found:
        raise FileNotFoundError(f"{manual_dir}: no goemotions_*.csv (GoEmotions' raw release; see docs/datasets.md)")

    def key(p):
        m = re.search(r"goemotions_(\d+)\.csv$", p)
        return (int(m.group(1)) if m else math.inf, p)

    return sorted(found, key=key)


def covered() -> np.ndarray:
    """[40] bool: the EmoNet categories some GoEmotions label maps to."""
    return taxonomy.goemotions_matrix().any(axis=0)


def _parse_bool(s: str) -> bool | None:
    return {"true": True, "1": True, "false": False, "0": False}.get(s.strip().lower())


def _label(s: str) -> int:
    t = s.strip()
    if t in ("0", "1"):
        return int(t)
    if not t or t.lower() == "nan":
        raise ValueError("nan", f"is {s!r}: a missing label (NaN or empty)")
    try:
        x = float(t)
    except ValueError:
        raise ValueError("bad_value", f"is {s!r}, not a number") from None
    if math.isnan(x):
        raise ValueError("nan", f"is {s!r}: a missing label")
    if x in (0.0, 1.0):
        return int(x)
    raise ValueError("rating_out_of_range", f"is {s!r}; a GoEmotions label is 0 or 1")


class Parsed(NamedTuple):
    splits: dict[str, list[dict]]
    metadata: dict
    max_raters: int
    tokenizer_json: bytes


def parse(manual_dir: str, cfg: GoemotionsRawConfig, bad: BadRows) -> Parsed:
    """Read and check the raw CSVs into examples per split, tokenized (nothing written)."""
    files = find_csvs(manual_dir)
    comments: dict[str, dict] = {}  # id -> first text, where, rater rows
    seen: dict[tuple[str, int], str] = {}
    stats = collections.Counter()
    known = set(FIELDS) | set(LABELS)
    for path in files:
        extra = [c for c in rows.header(path) if c and c not in known]
        if extra:
            problem = f"{extra[0]!r} is not one of GoEmotions' 28 labels nor a known column ({', '.join(FIELDS)})"
            raise bad.fatal(path, extra[0], "unknown_column", problem, line=1)
        name = os.path.basename(path)
        for line, rec in rows.records(path, REQUIRED, bad):
            stats["rows_read"] += 1
            text, cid = rec["text"], rec["id"].strip()
            if not cid:
                bad.report(path, "id", "bad_value", "is empty", line=line)
                continue
            if not text.strip():
                bad.report(path, "text", "empty_text", f"comment {cid!r} has an empty text", line=line)
                continue
            try:
                rater = int(rec["rater_id"].strip())
            except ValueError:
                bad.report(path, "rater_id", "bad_value", f"is {rec['rater_id']!r}, not an integer", line=line)
                continue
            unclear = _parse_bool(rec["example_very_unclear"])
            if unclear is None:
                bad.report(path, "example_very_unclear", "bad_value", f"is {rec['example_very_unclear']!r}; expected True or False", line=line)
                continue
            labels, problem = np.zeros(len(LABELS), np.int32), None
            for j, label in enumerate(LABELS):
                try:
                    labels[j] = _label(rec[label])
                except ValueError as err:
                    problem = (label, *err.args)
                    break
            if problem is not None:
                bad.report(path, problem[0], problem[1], problem[2], line=line)
                continue
            item = comments.get(cid)
            if item is not None and item["text"] != text:
                bad.report(path, "text", "inconsistent_text", f"comment {cid!r} has another text than on {item['where']}", line=line)
                continue
            if (cid, rater) in seen:
                bad.report(path, "rater_id", "duplicate_rater", f"rater {rater} already rated comment {cid!r} on {seen[cid, rater]}", line=line)
                continue
            seen[cid, rater] = f"{name} line {line}"
            if item is None:
                item = comments[cid] = {"text": text, "where": f"{name} line {line}", "rows": []}
            stats["very_unclear_rows"] += unclear
            stats["rows_without_labels"] += (not unclear) and not labels.any()
            if unclear and cfg.very_unclear == "drop":
                continue
            item["rows"].append((rater, labels))

    to_emonet = taxonomy.goemotions_matrix() > 0  # [28, 40]
    cover = covered()
    kept = {cid: c for cid, c in comments.items() if c["rows"]}
    stats["comments_all_very_unclear"] = len(comments) - len(kept)
    if not kept:
        raise ValueError(f"{manual_dir}: no comment with a usable rater row is left to build a dataset from")
    k_max = max(len(c["rows"]) for c in kept.values())
    split_of = {cid: "test" if manual.in_test(cid, cfg.split_seed, cfg.test_fraction) else "train" for cid in kept}
    manual.check_splits(NAME, split_of, cfg.test_fraction)

    tok, tok_source = _tokenizer(manual_dir, cfg, [c["text"] for cid, c in kept.items() if split_of[cid] == "train"])
    offset = tokenizer_lib.id_offset(tok)
    order = list(kept)
    ids, truncated = tokenizer_lib.encode(tok, [kept[cid]["text"] for cid in order], cfg.max_len, offset)

    splits: dict[str, list[dict]] = {s: [] for s in manual.SPLITS}
    for i, cid in enumerate(order):
        raters = sorted(kept[cid]["rows"], key=lambda r: r[0])
        marks = np.stack([lab for _, lab in raters])  # [K, 28]
        per_cat = (marks[:, :, None] * to_emonet[None]).any(axis=1)  # [K, 40]
        ratings = np.where(cover[None, :], 7 * per_cat.astype(np.int32), MISSING)
        splits[split_of[cid]].append({
            "text": kept[cid]["text"],
            "id": cid,
            "tokens": ids[i],
            "ratings": manual.rater_slots(list(ratings), k_max, taxonomy.NUM_CATEGORIES),
            "rater_ids": manual.rater_slots([[r] for r, _ in raters], k_max, 1)[:, 0],
            "num_raters": np.int32(len(raters)),
            "labels": marks.mean(axis=0).astype(np.float32),
        })  # fmt: skip
    per_comment = collections.Counter(len(c["rows"]) for c in kept.values())
    metadata = {
        "categories": list(taxonomy.CATEGORIES),
        "covered_categories": [c for c, m in zip(taxonomy.CATEGORIES, cover) if m],
        "goemotions_labels": list(LABELS),
        "mapping": {name: list(v) for name, v in taxonomy.GOEMOTIONS_TO_EMONET.items()},
        "input": "tokens",
        "max_len": cfg.max_len,
        "vocab_size": tokenizer_lib.vocab_size(tok, offset),
        "token_id_offset": offset,
        "tokenizer_source": tok_source,
        "max_raters": k_max,
        "missing_marker": MISSING,
        "very_unclear": cfg.very_unclear,
        "split_sizes": {s: len(v) for s, v in splits.items()},
        "raters_per_comment": {str(name): per_comment[name] for name in sorted(per_comment)},
        "counts": {
            "files": [os.path.basename(p) for p in files],
            "rows_read": stats["rows_read"],
            "comments": len(kept),
            "very_unclear_rows": stats["very_unclear_rows"],
            "comments_all_very_unclear": stats["comments_all_very_unclear"],
            "rows_without_labels": stats["rows_without_labels"],
            "texts_truncated": truncated,
        },
        "bad_rows": bad.metadata(),
    }
    return Parsed(splits, metadata, k_max, tok.to_str().encode())


def _tokenizer(manual_dir: str, cfg: GoemotionsRawConfig, train_texts: list[str]):
    path = cfg.tokenizer or os.path.join(manual_dir, "tokenizer.json")
    if cfg.tokenizer and not os.path.exists(path):
        raise FileNotFoundError(f"{NAME}: tokenizer {path} does not exist")
    if os.path.exists(path):
        return tokenizer_lib.from_file(path), f"given: {os.path.abspath(path)}"
    tok = tokenizer_lib.train(train_texts, cfg.vocab_size, cfg.min_frequency)
    return tok, f"trained on the train split's {len(train_texts)} texts (WordPiece, vocab_size={cfg.vocab_size}, min_frequency={cfg.min_frequency})"


class GoemotionsRaw(manual.ParsedBuilder):
    """Builder of ``goemotions_raw`` from parsed files; use :func:`build`, which parses and is atomic."""

    VERSION = tfds.core.Version(VERSION)
    RELEASE_NOTES = {str(VERSION): "First release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put goemotions_1.csv, goemotions_2.csv, goemotions_3.csv (google-research GoEmotions, raw release) "
        "in one folder; see docs/datasets.md."
    )
    HOMEPAGE = "https://github.com/google-research/google-research/tree/master/goemotions"

    def _info(self) -> tfds.core.DatasetInfo:
        p, n_cat = self._parsed, taxonomy.NUM_CATEGORIES
        features = tfds.features.FeaturesDict({
            "text": tfds.features.Text(doc="The comment, as in the CSV."),
            "id": tfds.features.Text(doc="GoEmotions' comment id."),
            "tokens": tfds.features.Tensor(shape=(p.metadata["max_len"],), dtype=np.int32, doc="tokenizer.json ids (+ token_id_offset), 0 = padding."),
            "ratings": tfds.features.Tensor(shape=(p.max_raters, n_cat), dtype=np.int32, doc="0/7 per rater and covered category; -1 = missing."),
            "rater_ids": tfds.features.Tensor(shape=(p.max_raters,), dtype=np.int32, doc="GoEmotions rater_id; -1 = no rater."),
            "num_raters": tfds.features.Scalar(dtype=np.int32),
            "labels": tfds.features.Tensor(shape=(len(LABELS),), dtype=np.float32, doc="Share of raters marking each of the 28 labels."),
        })  # fmt: skip
        return self._dataset_info(features, __doc__.split("\n\n")[0])


def build(manual_dir, data_dir, *, on_bad_row: str = "error", **options) -> manual.Built:
    """Build (or reuse) ``goemotions_raw`` from ``manual_dir`` under ``data_dir``.

    Raises:
      BadRowError: a bad row under ``on_bad_row="error"``, or a broken file.
      FileNotFoundError: no ``goemotions_*.csv`` in ``manual_dir``.
    """
    cfg = GoemotionsRawConfig.from_dict(options)
    bad = BadRows(on_bad_row)
    manual_dir = os.path.abspath(os.path.expanduser(os.fspath(manual_dir)))
    data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    files = find_csvs(manual_dir)
    tok = cfg.tokenizer or os.path.join(manual_dir, "tokenizer.json")
    if os.path.exists(tok):
        files.append(tok)
    return manual.build_or_reuse(
        GoemotionsRaw, name=NAME, version=VERSION, options=dataclasses.asdict(cfg) | {"on_bad_row": on_bad_row},
        files=files, parse=lambda: parse(manual_dir, cfg, bad), data_dir=data_dir, manual_dir=manual_dir,
        extra_files=lambda parsed: {"tokenizer.json": parsed.tokenizer_json},
    )  # fmt: skip

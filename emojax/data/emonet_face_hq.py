"""``emonet_face_hq``: EmoNet-Face HQ's expert ratings on precomputed image embeddings.

Source (not fetched here: put the files in a manual directory, see ``docs/datasets.md``):

* ``hq.csv`` as LAION publishes it: columns ``image``, ``annotator``, ``human``,
  ``annotations``; ``annotations`` is a Python dict literal (single quotes; the authors read
  it with ``ast.literal_eval``) keyed ``"Group|Emotion"`` with 0-7 values. Other columns are
  ignored.
* the user's embeddings of the images (e.g. SigLIP2 features), keyed by the ``image``
  value exactly as it appears in ``hq.csv``, in one of two layouts:

  - ``embeddings.npz`` with a 1-D string array ``images`` and a float array
    ``embeddings`` ``[n, D]`` (``np.savez(path, images=np.asarray(names, dtype=str),
    embeddings=x)``);
  - ``embeddings.npy`` (``[n, D]`` floats) with ``embeddings.txt``, whose line ``i``
    names the image of row ``i``.

  Both are read with ``allow_pickle=False``: no file can run code when loaded.

How rows become examples (the authors' rules where they have one):

* ``Extra Dimensions|...`` keys are not among the 40 emotions and are ignored; an emotion
  missing from a row is read as 0 (their ``ratings.get(emotion, 0)``). The group before
  ``|`` is not checked (the published group names are longer than emojax's, e.g.
  ``Cognitive States and Processes``): the emotion after the last ``|`` is the category.
* Rows with ``human`` False come from models. They are never targets; each model is kept
  as ``model_ratings[m]`` (name ``metadata["model_annotators"][m]``), a baseline to compare
  an estimator with. Annotators whose name contains ``Hume Face`` are multiplied by 7, as
  the authors' analysis notebook does (their scores are 0-1).
* Human ratings must be integer levels 0-7; model ratings any number in [0, 7].
* Annotations are parsed with :func:`ast.parse` and read node by node: nothing in a cell
  is ever evaluated (``__import__('os')`` is a malformed dict, not a call).
* An image is one example: ``ratings [max_raters, 40]`` of its human raters, sorted by
  annotator, padded with -1 (missing), and their ``num_raters``. Images with model rows
  only have no target and are left out (counted in the metadata).
* Splits are by image (:func:`emojax.data.manual.in_test`), never by row.

Bad rows (see :mod:`emojax.data.errors`): malformed annotations, unknown emotion names,
ratings outside 0-7, NaN, an image without an embedding, a duplicate (image, annotator)
row, a bad ``human`` value stop the build with the file, the line where the record starts
and the field, unless ``on_bad_row="skip"``.

Example::

    built = build("~/data/emonet-face-hq", "~/.cache/emojax/datasets")
    train = built.source("train")      # train[0]["embedding"], ["ratings"], ["num_raters"]
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import math
import os
from typing import Any, NamedTuple

import numpy as np
import tensorflow_datasets as tfds

from emojax import taxonomy
from emojax.data import manual, rows
from emojax.data.errors import BadRows

NAME = "emonet_face_hq"
VERSION = "1.0.0"
HQ_CSV = "hq.csv"
COLUMNS = ("image", "annotator", "human", "annotations")
EXTRA_PREFIX = "Extra Dimensions|"
TIMES_7 = ("Hume Face",)  # annotator-name substrings whose scores are 0-1 (the authors' rule)
MISSING = -1
EMBEDDING_LAYOUTS = ("embeddings.npz", "embeddings.npy + embeddings.txt")


@dataclasses.dataclass(frozen=True)
class EmonetFaceHqConfig:
    """Options of the build (all part of the dataset's identity).

    Attributes:
      test_fraction: share of images in the ``test`` split.
      split_seed: salt of the image hash that decides the split.
    """

    test_fraction: float = 0.2
    split_seed: int = 0

    def __post_init__(self):
        if not (isinstance(self.test_fraction, (int, float)) and 0.0 < self.test_fraction < 1.0):
            raise ValueError(f"{NAME}: test_fraction must be in (0, 1), got {self.test_fraction!r}")
        if not (isinstance(self.split_seed, int) and not isinstance(self.split_seed, bool) and self.split_seed >= 0):
            raise ValueError(f"{NAME}: split_seed must be an int >= 0, got {self.split_seed!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmonetFaceHqConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"{NAME}: unknown data_config keys {unknown}; fields: {sorted(names)}")
        return cls(**d)


class _Bad(Exception):
    def __init__(self, kind: str, problem: str):
        self.kind, self.problem = kind, problem


def parse_annotations(text: str) -> dict[str, float]:
    """``{category: value}`` of one ``annotations`` cell; ``Extra Dimensions|`` keys dropped.

    Values are returned as floats, NaN included (the caller decides what a row may hold).
    Raises ``_Bad`` with a kind from :data:`emojax.data.errors.KINDS`.
    """
    s = text.strip()
    if not s or s.lower() == "nan":
        raise _Bad("nan", "is empty: no annotations (pandas writes a missing value as an empty cell)")
    try:
        node = ast.parse(s, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        msg = getattr(err, "msg", None) or str(err)
        raise _Bad("malformed_annotations", f"is not a Python dict literal ({msg}): {_clip(s)}") from None
    if not isinstance(node, ast.Dict):
        raise _Bad("malformed_annotations", f"is a {type(node).__name__} expression, not a dict literal: {_clip(s)}")
    out: dict[str, float] = {}
    for node_key, v in zip(node.keys, node.values):
        if not (isinstance(node_key, ast.Constant) and isinstance(node_key.value, str)):
            raise _Bad("malformed_annotations", f"has a key that is not a string ({_clip(ast.unparse(node_key) if node_key else '**')})")
        key = node_key.value
        if key.startswith(EXTRA_PREFIX):
            continue
        emotion = key.rsplit("|", 1)[-1].strip()
        if emotion not in taxonomy.INDEX:
            raise _Bad("unknown_emotion", f"key {key!r}: {emotion!r} is not one of EmoNet's 40 categories")
        if emotion in out:
            raise _Bad("malformed_annotations", f"emotion {emotion!r} appears twice")
        out[emotion] = _number(key, v)
    return out


def _number(key: str, v: ast.AST) -> float:
    if isinstance(v, ast.UnaryOp) and isinstance(v.op, (ast.USub, ast.UAdd)):
        x = _number(key, v.operand)
        return -x if isinstance(v.op, ast.USub) else x
    if isinstance(v, ast.Constant) and isinstance(v.value, (int, float)) and not isinstance(v.value, bool):
        return float(v.value)
    nan_name = (isinstance(v, ast.Name) and v.id.lower() == "nan") or (isinstance(v, ast.Attribute) and v.attr.lower() == "nan")
    if nan_name or (isinstance(v, ast.Constant) and isinstance(v.value, str) and v.value.strip().lower() == "nan"):
        return math.nan
    if isinstance(v, ast.Name) and v.id.lower() in ("inf", "infinity"):
        return math.inf
    what = "a function call (never evaluated)" if isinstance(v, ast.Call) else "not a number"
    raise _Bad("malformed_annotations", f"key {key!r}: value {_clip(ast.unparse(v))} is {what}")


def _clip(s: str, n: int = 80) -> str:
    """A cell's text for a one-line message: newlines shown as \\n, long text cut."""
    s = s if len(s) <= n else s[: n - 3] + "..."
    return s.replace("\n", "\\n")


def _parse_bool(s: str) -> bool | None:
    return {"true": True, "1": True, "false": False, "0": False}.get(s.strip().lower())


def _check_values(values: dict[str, float], human: bool) -> None:
    for emotion, x in values.items():
        if math.isnan(x):
            raise _Bad("nan", f"{emotion!r} is NaN")
        if not 0.0 <= x <= taxonomy.MAX_INTENSITY:
            raise _Bad("rating_out_of_range", f"{emotion!r} is {x:g}, outside 0-7")
        if human and x != round(x):
            raise _Bad("bad_value", f"{emotion!r} is {x:g}; a human rating is an integer level 0-7")


def find_embeddings(manual_dir: str) -> tuple[str, ...]:
    """The embedding file(s) in ``manual_dir`` (see the module docstring for the layouts)."""
    npz = os.path.join(manual_dir, "embeddings.npz")
    npy, txt = os.path.join(manual_dir, "embeddings.npy"), os.path.join(manual_dir, "embeddings.txt")
    if os.path.exists(npz) and os.path.exists(npy):
        raise ValueError(f"{manual_dir}: both embeddings.npz and embeddings.npy are there; keep one")
    if os.path.exists(npz):
        return (npz,)
    if os.path.exists(npy):
        if not os.path.exists(txt):
            raise FileNotFoundError(f"{manual_dir}: embeddings.npy needs embeddings.txt beside it (line i names the image of row i)")
        return (npy, txt)
    raise FileNotFoundError(f"{manual_dir}: no image embeddings; expected one of {EMBEDDING_LAYOUTS} (see docs/datasets.md)")


def _read_embedding_arrays(files: tuple[str, ...], bad: BadRows) -> tuple[list[str], np.ndarray]:
    path = files[0]
    try:
        if len(files) == 1:
            with np.load(path, allow_pickle=False) as z:
                for field in ("images", "embeddings"):
                    if field not in z.files:
                        raise bad.fatal(path, field, "missing_column", f"no array {field!r} (arrays: {sorted(z.files)})")
                names, emb = z["images"], z["embeddings"]
            if names.ndim != 1 or names.dtype.kind not in "US":
                raise bad.fatal(path, "images", "unreadable", f"must be a 1-D string array, got {names.dtype} {names.shape}")
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]
        else:
            emb = np.load(path, allow_pickle=False)
            with open(files[1], encoding="utf-8") as f:
                names = f.read().splitlines()
    except ValueError as err:  # e.g. an object array, which needs pickle
        raise bad.fatal(path, "embeddings", "unreadable", f"cannot read without pickle ({err}); save names with dtype=str") from None
    if emb.ndim != 2 or emb.dtype.kind not in "fiu" or not len(emb):
        raise bad.fatal(path, "embeddings", "unreadable", f"must be a non-empty [n, D] numeric array, got {emb.dtype} {emb.shape}")
    if len(names) != len(emb):
        where = files[-1]
        raise bad.fatal(where, "images", "unreadable", f"{len(names)} image names for {len(emb)} embedding rows")
    return names, emb.astype(np.float32)


def read_embeddings(files: tuple[str, ...], bad: BadRows) -> tuple[dict[str, np.ndarray], set[str], int]:
    """``({image: vector}, images rejected as bad rows, D)``."""
    names, emb = _read_embedding_arrays(files, bad)
    out: dict[str, np.ndarray] = {}
    rejected: set[str] = set()
    first: dict[str, int] = {}
    finite = np.all(np.isfinite(emb), axis=1)
    for i, name in enumerate(names):
        name = name.strip()
        if name in first:
            bad.report(files[0], "images", "duplicate_embedding", f"image {name!r} appears again (first at row {first[name]})", row=i)
            out.pop(name, None)
            rejected.add(name)
            continue
        first[name] = i
        if not finite[i]:
            bad.report(files[0], "embeddings", "non_finite_embedding", f"the embedding of image {name!r} holds NaN or infinity", row=i)
            rejected.add(name)
            continue
        out[name] = emb[i]
    return out, rejected, int(emb.shape[1])


class Parsed(NamedTuple):
    splits: dict[str, list[dict]]
    metadata: dict
    max_raters: int
    num_models: int
    embed_dim: int


def parse(manual_dir: str, cfg: EmonetFaceHqConfig, bad: BadRows) -> Parsed:
    """Read and check the manual directory's files into examples per split (nothing written)."""
    hq = os.path.join(manual_dir, HQ_CSV)
    if not os.path.exists(hq):
        raise FileNotFoundError(f"{manual_dir}: no {HQ_CSV} (see docs/datasets.md for the layout)")
    emb_files = find_embeddings(manual_dir)
    images: dict[str, dict] = {}  # in file order
    seen: dict[tuple[str, str], int] = {}
    stats = collections.Counter()
    for line, rec in rows.records(hq, COLUMNS, bad):
        stats["rows_read"] += 1
        image, annotator = rec["image"].strip(), rec["annotator"].strip()
        if not image:
            bad.report(hq, "image", "bad_value", "is empty", line=line)
            continue
        if not annotator:
            bad.report(hq, "annotator", "bad_value", "is empty", line=line)
            continue
        human = _parse_bool(rec["human"])
        if human is None:
            bad.report(hq, "human", "bad_value", f"is {rec['human']!r}; expected True or False", line=line)
            continue
        try:
            values = parse_annotations(rec["annotations"])
            if not human and any(s in annotator for s in TIMES_7):
                values = {name: v * 7.0 for name, v in values.items()}
            _check_values(values, human)
        except _Bad as b:
            bad.report(hq, "annotations", b.kind, b.problem, line=line)
            continue
        if (image, annotator) in seen:
            bad.report(hq, "annotator", "duplicate_rater", f"{annotator!r} already rated image {image!r} on line {seen[image, annotator]}", line=line)
            continue
        seen[image, annotator] = line
        vec = np.zeros(taxonomy.NUM_CATEGORIES, np.float32)
        for emotion, x in values.items():
            vec[taxonomy.INDEX[emotion]] = x
        item = images.setdefault(image, {"line": line, "human": {}, "model": {}})
        item["human" if human else "model"][annotator] = vec
        stats["human_rows" if human else "model_rows"] += 1

    embeddings, rejected, dim = read_embeddings(emb_files, bad)
    kept: dict[str, dict] = {}
    for image, item in images.items():
        if not item["human"]:
            stats["images_without_human_rows"] += 1
            continue
        if image not in embeddings:
            if image not in rejected:  # a rejected embedding was counted already
                bad.report(hq, "image", "missing_embedding", f"image {image!r} has no row in {os.path.basename(emb_files[0])}", line=item["line"])
            continue
        kept[image] = item
    if not kept:
        raise ValueError(f"{hq}: no image with human ratings and an embedding is left to build a dataset from")

    annotators = sorted({a for item in kept.values() for a in item["human"]})
    models = sorted({a for item in kept.values() for a in item["model"]})
    rater_id = {a: i for i, a in enumerate(annotators)}
    k_max = max(len(item["human"]) for item in kept.values())
    split_of = {image: "test" if manual.in_test(image, cfg.split_seed, cfg.test_fraction) else "train" for image in kept}
    manual.check_splits(NAME, split_of, cfg.test_fraction)
    splits: dict[str, list[dict]] = {s: [] for s in manual.SPLITS}
    for image, item in kept.items():
        who = sorted(item["human"], key=rater_id.__getitem__)
        model = np.full((len(models), taxonomy.NUM_CATEGORIES), MISSING, np.float32)
        for m, name in enumerate(models):
            if name in item["model"]:
                model[m] = item["model"][name]
        splits[split_of[image]].append({
            "image": image,
            "embedding": embeddings[image],
            "ratings": manual.rater_slots([item["human"][a].astype(np.int32) for a in who], k_max, taxonomy.NUM_CATEGORIES),
            "rater_ids": manual.rater_slots([[rater_id[a]] for a in who], k_max, 1)[:, 0],
            "num_raters": np.int32(len(who)),
            "model_ratings": model,
        })  # fmt: skip
    per_image = collections.Counter(len(item["human"]) for item in kept.values())
    metadata = {
        "categories": list(taxonomy.CATEGORIES),
        "covered_categories": list(taxonomy.CATEGORIES),
        "input": "embedding",
        "embed_dim": dim,
        "max_raters": k_max,
        "missing_marker": MISSING,
        "annotators": annotators,
        "model_annotators": models,
        "model_annotators_times_7": [m for m in models if any(s in m for s in TIMES_7)],
        "split_sizes": {s: len(v) for s, v in splits.items()},
        "raters_per_image": {str(name): per_image[name] for name in sorted(per_image)},
        "counts": {
            "rows_read": stats["rows_read"],
            "human_rows": stats["human_rows"],
            "model_rows": stats["model_rows"],
            "images": len(kept),
            "images_without_human_rows": stats["images_without_human_rows"],
            "embeddings_unused": sum(1 for name in embeddings if name not in images),
        },
        "bad_rows": bad.metadata(),
    }
    return Parsed(splits, metadata, k_max, len(models), dim)


class EmonetFaceHq(manual.ParsedBuilder):
    """Builder of ``emonet_face_hq`` from parsed files; use :func:`build`, which parses and is atomic."""

    VERSION = tfds.core.Version(VERSION)
    RELEASE_NOTES = {str(VERSION): "First release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put hq.csv (laion/emonet-face-hq on Hugging Face) and your image embeddings "
        "(embeddings.npz, or embeddings.npy + embeddings.txt) in one folder; see docs/datasets.md."
    )
    HOMEPAGE = "https://huggingface.co/datasets/laion/emonet-face-hq"

    def _info(self) -> tfds.core.DatasetInfo:
        p, n_cat = self._parsed, taxonomy.NUM_CATEGORIES
        features = tfds.features.FeaturesDict({
            "image": tfds.features.Text(doc="The image column of hq.csv."),
            "embedding": tfds.features.Tensor(shape=(p.embed_dim,), dtype=np.float32),
            "ratings": tfds.features.Tensor(shape=(p.max_raters, n_cat), dtype=np.int32, doc="Human raters' 0-7 levels; -1 = no rater."),
            "rater_ids": tfds.features.Tensor(shape=(p.max_raters,), dtype=np.int32, doc="Index into metadata annotators; -1 = no rater."),
            "num_raters": tfds.features.Scalar(dtype=np.int32),
            "model_ratings": tfds.features.Tensor(
                shape=(p.num_models, n_cat), dtype=np.float32, doc="Model annotators (metadata model_annotators); -1 = not rated."
            ),
        })  # fmt: skip
        return self._dataset_info(features, __doc__.split("\n\n")[0])


def build(manual_dir, data_dir, *, on_bad_row: str = "error", **options) -> manual.Built:
    """Build (or reuse) ``emonet_face_hq`` from ``manual_dir`` under ``data_dir``.

    Raises:
      BadRowError: a bad row under ``on_bad_row="error"``, or a broken file.
      FileNotFoundError: ``hq.csv`` or the embeddings are not in ``manual_dir``.
    """
    cfg = EmonetFaceHqConfig.from_dict(options)
    bad = BadRows(on_bad_row)
    manual_dir = os.path.abspath(os.path.expanduser(os.fspath(manual_dir)))
    data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    hq = os.path.join(manual_dir, HQ_CSV)
    if not os.path.exists(hq):
        raise FileNotFoundError(f"{manual_dir}: no {HQ_CSV} (see docs/datasets.md for the layout)")
    return manual.build_or_reuse(
        EmonetFaceHq, name=NAME, version=VERSION, options=dataclasses.asdict(cfg) | {"on_bad_row": on_bad_row},
        files=(hq, *find_embeddings(manual_dir)), parse=lambda: parse(manual_dir, cfg, bad), data_dir=data_dir,
        manual_dir=manual_dir,
    )  # fmt: skip

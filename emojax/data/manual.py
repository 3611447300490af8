"""What the datasets built from downloaded files share: identity, splits, atomic build, load.

Identity. A dataset built from a manual directory is a function of the files and of the
loader's options, so its TFDS config name is ``src_<16 hex digits>`` of a SHA-256 over the
options and every input file's bytes: an unchanged directory reuses its build, a fixed file
or another option builds anew beside the old one (delete old ones by hand), and stale data
are never returned. The full fingerprint is kept in the metadata and checked on reuse.

Splits are by item (image, comment), never by row, so no rater row of a test item is ever
trained on: an item is in ``test`` when ``sha256(f"{split_seed}:{item}")``, read as a
fraction of 2**64, is below ``test_fraction``. The split of an item depends on its id
alone, not on what else is in the files.

Build. Parsing (where every bad-row error is raised) happens before anything is written;
then TFDS prepares into a temporary directory inside ``data_dir``, extra files (the
tokenizer) are written beside the records, and the finished version directory is moved
into place with one rename, as :func:`emojax.data.synthetic.build` does. An error or a kill
leaves no half-written dataset.

Load. :func:`load` reads a built split through ``tfds.builder_from_directory``, which needs
neither TensorFlow nor the builder's options.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from emojax.data import atomic

SPLITS = ("train", "test")
HASH_CHUNK = 1 << 20


def file_digest(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(HASH_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(name: str, version: str, options: Mapping[str, Any], files: Iterable[str]) -> dict:
    """``{"digest", "options", "files": {basename: sha256}}``: what a build is a function of."""
    files = {os.path.basename(p): file_digest(p) for p in files}
    blob = json.dumps({"name": name, "version": version, "options": dict(options), "files": files}, sort_keys=True)
    return {"digest": hashlib.sha256(blob.encode()).hexdigest(), "options": dict(options), "files": files}


def in_test(item: str, split_seed: int, test_fraction: float) -> bool:
    """Whether ``item`` falls in the test split (see the module docstring)."""
    h = hashlib.sha256(f"{split_seed}:{item}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64 < test_fraction


@dataclasses.dataclass(frozen=True)
class Built:
    """A built dataset: its version directory and metadata; :meth:`source` reads a split."""

    name: str
    path: str
    metadata: dict

    def source(self, split: str):
        """Random-access source (``len``, ``[i]``) of a split; TFDS split syntax works (``train[:100]``)."""
        return load(self.path, split)

    @property
    def tokenizer_path(self) -> str | None:
        p = os.path.join(self.path, "tokenizer.json")
        return p if os.path.exists(p) else None


def version_dir(data_dir: str, name: str, digest: str, version: str) -> str:
    return os.path.join(data_dir, name, f"src_{digest[:16]}", version)


def existing(data_dir: str, name: str, fp: dict, version: str) -> Built | None:
    """The build for fingerprint ``fp`` if it is complete, else None (raises if it is stale)."""
    path = version_dir(data_dir, name, fp["digest"], version)
    if not os.path.exists(os.path.join(path, "dataset_info.json")):
        return None
    meta = read_metadata(path)
    if meta.get("fingerprint", {}).get("digest") != fp["digest"]:
        raise ValueError(f"{path} holds a build of other files or options than requested; remove it")
    return Built(name, path, meta)


def build(
    builder_cls, parsed, *, name: str, digest: str, version: str, data_dir: str, manual_dir: str, extra_files: Mapping[str, bytes] | None = None
) -> Built:
    """Prepare ``parsed`` with ``builder_cls`` atomically under ``data_dir`` (see the module docstring)."""
    data_dir = os.path.abspath(os.fspath(data_dir))
    final = version_dir(data_dir, name, digest, version)
    config = tfds.core.BuilderConfig(name=f"src_{digest[:16]}", description=f"built from the files in {manual_dir}")

    def write_extra_files(staging) -> None:
        for fname, content in (extra_files or {}).items():
            with open(os.path.join(os.fspath(staging.data_path), fname), "wb") as f:
                f.write(content)

    atomic.prepare(lambda tmp: builder_cls(parsed=parsed, config=config, data_dir=tmp), final, data_dir, name,
                   tfds.download.DownloadConfig(try_download_gcs=False, manual_dir=os.fspath(manual_dir)),
                   finish=write_extra_files)  # fmt: skip
    return Built(name, final, read_metadata(final))


class ParsedBuilder(tfds.core.GeneratorBasedBuilder):
    """A TFDS builder over files already parsed in memory: every bad row has raised (or been
    counted) before TFDS writes anything. Subclasses set ``VERSION``, ``HOMEPAGE`` and
    ``_info`` (through :meth:`_dataset_info`); ``parsed`` has ``splits`` and ``metadata``."""

    HOMEPAGE = ""

    def __init__(self, *, parsed, **kwargs):
        self._parsed = parsed
        # TFRECORD (TFDS's default) needs TensorFlow to write; array_record does not.
        kwargs.setdefault("file_format", "array_record")
        super().__init__(**kwargs)

    def _dataset_info(self, features: tfds.features.FeaturesDict, description: str) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=description,
            features=features,
            metadata=tfds.core.MetadataDict(self._parsed.metadata),
            homepage=self.HOMEPAGE,
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # the files were parsed before the build
        return {split: self._generate_examples(split) for split in SPLITS}

    def _generate_examples(self, split: str):
        for i, example in enumerate(self._parsed.splits[split]):
            yield i, example


def build_or_reuse(
    builder_cls, *, name: str, version: str, options: Mapping[str, Any], files: Iterable[str], parse, data_dir: str,
    manual_dir: str, extra_files=lambda parsed: None,
) -> Built:
    """The build of these ``files`` and ``options`` if one exists, else ``parse()`` them and
    :func:`build` (``extra_files(parsed)``: files to store beside the data)."""
    fp = fingerprint(name, version, options, files)
    done = existing(data_dir, name, fp, version)
    if done is not None:
        return done
    parsed = parse()
    parsed.metadata["fingerprint"] = fp
    return build(
        builder_cls, parsed, name=name, digest=fp["digest"], version=version, data_dir=data_dir, manual_dir=manual_dir,
        extra_files=extra_files(parsed),
    )  # fmt: skip


def load(path: str, split: str):
    """Random-access source of ``split`` of the dataset built at ``path`` (a version directory)."""
    if not os.path.exists(os.path.join(path, "dataset_info.json")):
        raise FileNotFoundError(f"no built dataset at {path}")
    return tfds.builder_from_directory(path).as_data_source(split=split)


def read_metadata(path: str) -> dict:
    with open(os.path.join(path, "metadata.json")) as f:
        return json.load(f)


def check_splits(name: str, split_of: Mapping[str, Any], test_fraction: float) -> None:
    """Refuse a split with no item (TFDS cannot write one, and nothing could be evaluated)."""
    counts = {s: sum(1 for v in split_of.values() if v == s) for s in SPLITS}
    for s, n in counts.items():
        if n == 0:
            raise ValueError(
                f"{name}: the {s} split would be empty ({counts['train']} train / {counts['test']} test items "
                f"at test_fraction={test_fraction}); the files hold too few items, or set data_config test_fraction"
            )


def rater_slots(rows: list, k_max: int, width: int, dtype=np.int32, fill=-1) -> np.ndarray:
    """[k_max, width] array of the given rows, padded with ``fill`` (the missing marker)."""
    out = np.full((k_max, width), fill, dtype)
    for i, r in enumerate(rows):
        out[i] = r
    return out

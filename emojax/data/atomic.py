"""All-or-nothing preparation of a TFDS dataset: build in a temporary directory, rename into place.

Why: TFDS writes a dataset in place and, after a failed or killed build, leaves debris that
a later run takes for a finished dataset. Every emojax builder (the simulated
``emojax_synthetic`` and the builders over downloaded files) therefore prepares into a
temporary directory inside ``data_dir`` and renames the finished version directory into
place: the version directory only ever appears complete. On failure nothing is left
behind, not even the empty parent directories the attempt created.

A build is one :func:`emojax.progress.phase`; TFDS's own tqdm bars are shown only when
emojax shows bars (a terminal), so logs get plain lines, not carriage-return debris.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import tensorflow_datasets as tfds

from emojax import progress

__all__ = ["prepare"]


def prepare(
    make_builder: Callable[[str], Any],
    final: str,
    data_dir: str,
    name: str,
    download_config: tfds.download.DownloadConfig,
    finish: Callable[[Any], None] | None = None,
) -> None:
    """Prepare ``make_builder(tmp_data_dir)`` and move its data into ``final``.

    Args:
      make_builder: builds the staging builder over a temporary data dir.
      final: the version directory the finished dataset must end up in.
      data_dir: the data dir ``final`` lies in (the temporary dir is made inside it, so the
        final rename stays on one file system).
      name: the dataset's name (names the temporary directory).
      download_config: passed to ``download_and_prepare`` (never ask GCS: no network).
      finish: called with the staging builder after preparation, before the rename (e.g.
        to write extra files beside the data).
    """
    data_dir = os.path.abspath(os.fspath(data_dir))
    created = not os.path.exists(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}-incomplete-", dir=data_dir)
    done = False
    try:
        staging = make_builder(tmp)
        tfds.display_progress_bar(progress.mode() == "bar")
        with progress.phase(f"building dataset {name} in {data_dir}"):
            staging.download_and_prepare(download_dir=os.path.join(tmp, "downloads"), download_config=download_config)
        if finish is not None:
            finish(staging)
        _move_into_place(os.fspath(staging.data_path), final)
        done = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not done:
            _remove_empty_dirs(os.path.dirname(final), stop=data_dir)
            if created:
                _remove_empty_dirs(data_dir, stop=os.path.dirname(data_dir))


def _move_into_place(src: str, dst: str) -> None:
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        os.rename(src, dst)
    except OSError:
        # A concurrent build of the same config finished first; its data are identical.
        if not os.path.isdir(dst):
            raise


def _remove_empty_dirs(path: str, stop: str) -> None:
    """Remove ``path`` and its ancestors below ``stop`` while they are empty."""
    stop = os.path.abspath(stop)
    path = os.path.abspath(path)
    while path != stop and path.startswith(stop + os.sep):
        try:
            os.rmdir(path)
        except OSError:
            return
        path = os.path.dirname(path)

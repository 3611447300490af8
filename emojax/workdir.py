"""A work dir remembers what made it, and refuses to mix two runs.

Every launcher writes ``run.json`` (the launcher, the resolved config and its hash, the
inputs it read) into its work dir before its first result. A rerun with the same record
resumes; a rerun with another record stops before writing anything, naming the first
fields that differ. The same check guards every run directory that holds a
``config.json`` (an estimator's, a GRPO run's): :func:`check_same`.

Errors are :class:`WorkdirError`, whose message is one line a launcher prints as is.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from typing import Any

from emojax import config as config_lib

RECORD = "run.json"

# Where a record may differ without making it another run: when and how it was started
# (the preset's name: its values are in the config), and the config's hash (derived).
VOLATILE = ("argv", "started", "emojax_version", "preset", "config_hash")


class WorkdirError(ValueError):
    """A work dir that cannot be used as asked; the message is one line for the user."""


def config_hash(cfg_dict: Mapping[str, Any]) -> str:
    """A short, stable hash of a JSON-ready config (keys sorted)."""
    text = json.dumps(cfg_dict, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(old: Any, new: Any, where: str = "") -> list[str]:
    """``field: old -> new`` for every leaf where two JSON-ready values differ, in order."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for name in list(old) + [n for n in new if n not in old]:
            path = f"{where}.{name}" if where else str(name)
            if name not in new:
                out.append(f"{path}: {old[name]!r} -> (absent)")
            elif name not in old:
                out.append(f"{path}: (absent) -> {new[name]!r}")
            else:
                out += differences(old[name], new[name], path)
        return out
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        old, new = list(old), list(new)
    return [] if old == new else [f"{where or '(value)'}: {old!r} -> {new!r}"]


def usable(path: str) -> None:
    """Raise :class:`WorkdirError` unless ``path`` is (or can become) a writable directory."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise WorkdirError(f"work dir {path} is a file, not a directory: choose another --workdir")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise WorkdirError(f"work dir {path}: cannot create it ({err.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise WorkdirError(f"work dir {path} is not writable: choose another --workdir or fix its permissions")


def read_record(path: str, filename: str = RECORD) -> dict | None:
    file = os.path.join(path, filename)
    if not os.path.exists(file):
        return None
    try:
        with open(file) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise WorkdirError(f"{file}: unreadable ({err}); move the work dir away or use --overwrite") from None


def claim(path: str, record: Mapping[str, Any], *, overwrite: bool = False, parts: tuple[str, ...] = ()
          ) -> dict | None:  # fmt: skip
    """Make ``path`` the work dir of the run ``record`` describes.

    Returns the record found there when it is the same run (the caller resumes), None when
    the run starts afresh (the record is written then). With ``overwrite``, a work dir of
    another run is emptied first. ``parts`` are config fields that only choose which parts
    of a study run (the empathy table's ``rows``), each part in its own directory guarded
    by :func:`check_same`: records that differ only there are the same run, so a work dir
    gathers parts over several launches, and the newer record replaces the older.

    Raises:
      WorkdirError: ``path`` is a file, not writable, holds another run (without
        ``overwrite``), or holds files but no record (a directory emojax did not make).
    """
    usable(path)
    found = read_record(path)
    if found is not None:
        diffs = differences(_comparable(found, parts), _comparable(record, parts))
        if not diffs:
            if differences(_comparable(found), _comparable(record)):
                write(path, record)  # other parts of the same run
            return found
        if not overwrite:
            raise WorkdirError(f"work dir {path} holds another run ({_listed(diffs)}): use another --workdir, or "
                               f"--overwrite to delete it and start again")  # fmt: skip
        clear(path)
    elif os.listdir(path):
        if not overwrite:
            raise WorkdirError(f"work dir {path} is not empty and has no {RECORD} (not an emojax run, or one from "
                               f"before records): use another --workdir, or --overwrite to empty it")  # fmt: skip
        clear(path)
    write(path, record)
    return None


def write(path: str, record: Mapping[str, Any]) -> None:
    try:
        config_lib.write_json(os.path.join(path, RECORD), dict(record))
    except OSError as err:
        raise WorkdirError(f"work dir {path}: cannot write {RECORD} ({os.strerror(err.errno or errno.EIO)})") from None


def clear(path: str) -> None:
    """Empty a work dir (the directory itself stays, with its permissions)."""
    for name in os.listdir(path):
        child = os.path.join(path, name)
        if os.path.isdir(child) and not os.path.islink(child):
            shutil.rmtree(child)
        else:
            os.unlink(child)


def check_same(path: str, config: Mapping[str, Any], filename: str = "config.json") -> None:
    """Raise :class:`WorkdirError` if ``path/filename`` records another config than ``config``.

    For run directories below a launcher's (an estimator trained into ``WORKDIR/estimator``,
    a GRPO run's checkpoints): reusing one trained under another config would label its
    results with the wrong one.
    """
    found = read_record(path, filename)
    if found is not None:
        require_same(path, found, config)


def require_same(path: str, found: Mapping[str, Any], wanted: Mapping[str, Any]) -> None:
    """Raise :class:`WorkdirError` naming what differs if the run ``found`` in ``path`` is not
    the run ``wanted``."""
    diffs = differences(_plain(found), _plain(wanted))
    if diffs:
        raise WorkdirError(f"{path} holds a run of another config ({_listed(diffs)}): use another work dir")


def _listed(diffs: list[str]) -> str:
    """The first three differences, shallowest first (``config.steps`` tells more than a
    nested model field), and how many more there are."""
    diffs = sorted(diffs, key=lambda d: d.split(":")[0].count("."))
    return "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")


def _plain(record: Mapping[str, Any]) -> dict:
    return json.loads(json.dumps(dict(record), default=str))


def _comparable(record: Mapping[str, Any], parts: tuple[str, ...] = ()) -> dict:
    out = {name: value for name, value in _plain(record).items() if name not in VOLATILE}
    if parts and isinstance(out.get("config"), dict):
        out["config"] = {name: value for name, value in out["config"].items() if name not in parts}
    return out

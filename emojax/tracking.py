"""One metrics writer: JSON lines and ``config.json`` in the work dir, W&B on top.

The work dir always gets ``config.json`` (written atomically) and ``metrics.jsonl`` (one
``{"step": ..., name: value, ...}`` object per line, appended, so a resumed run continues
the same file). W&B mirrors the same numbers. Its mode follows ``WANDB_MODE`` when set
(``online``, ``offline``, ``disabled``) and is ``offline`` otherwise: nothing leaves the
machine unless the user asks for it (``wandb sync`` uploads an offline run later).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from emojax import config as config_lib
from emojax import workdir as workdir_lib


def wandb_mode() -> str:
    mode = os.environ.get("WANDB_MODE", "offline")
    if mode not in ("online", "offline", "disabled", "dryrun", "run"):
        raise ValueError(f"WANDB_MODE must be online, offline or disabled, got {mode!r}")
    return mode


def _scalar(v: Any) -> Any:
    arr = np.asarray(v)
    if arr.ndim == 0 and arr.dtype.kind in "biuf":
        x = arr.item()
        return None if isinstance(x, float) and not np.isfinite(x) else x
    return v


class Tracker:
    """Writes config and metrics of one run to its work dir and to W&B."""

    def __init__(self, workdir: str, config: Mapping[str, Any], *, project: str = "emojax", name: str | None = None):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        workdir_lib.check_same(workdir, config)  # never continue another config's run
        config_lib.write_json(os.path.join(workdir, "config.json"), dict(config))
        self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
        self._run = None
        mode = wandb_mode()
        if mode != "disabled":
            os.environ.setdefault("WANDB_MODE", mode)  # before import: no network probe
            import wandb

            self._run = wandb.init(
                project=project, name=name or os.path.basename(os.path.abspath(workdir)), dir=workdir,
                config=json.loads(json.dumps(dict(config), default=str)), mode=mode, resume="allow",
                id=_run_id(workdir), reinit="finish_previous",
            )  # fmt: skip

    def rewind(self, step: int) -> None:
        """Forget the rows logged after ``step`` (a run resumed from its checkpoint at
        ``step`` logs them again), so the file holds each step once."""
        self._jsonl.close()
        path = os.path.join(self.workdir, "metrics.jsonl")
        rewind_jsonl(path, step)
        self._jsonl = open(path, "a")

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        row = {name: _scalar(v) for name, v in metrics.items()}
        self._jsonl.write(json.dumps({"step": int(step), **row}) + "\n")
        self._jsonl.flush()
        if self._run is not None:
            self._run.log({name: v for name, v in row.items() if v is not None}, step=int(step))

    def summary(self, values: Mapping[str, Any]) -> None:
        if self._run is not None:
            for name, v in values.items():
                self._run.summary[name] = _scalar(v)

    def close(self) -> None:
        self._jsonl.close()
        if self._run is not None:
            self._run.finish()
            self._run = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def rewind_jsonl(path: str, step: int) -> None:
    """Keep the rows of a JSONL file with ``"step"`` at or before ``step`` (a run resumed
    from its checkpoint at ``step`` writes the later ones again); a line torn by a crash is
    dropped. Rewritten atomically, and only when something goes."""
    if not os.path.isfile(path):
        return
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    kept = [line.rstrip("\n") + "\n" for line in lines if _step(line) <= step]
    if len(kept) < len(lines) or (lines and not lines[-1].endswith("\n")):
        config_lib.write_text(path, "".join(kept))


def _step(line: str) -> float:
    """The step of a metrics line; a line torn by a crash counts as past every step."""
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return float("inf")


def _run_id(workdir: str) -> str:
    """A stable W&B run id per work dir, so a resumed run continues the same W&B run."""
    path = os.path.join(workdir, "wandb_run_id.txt")
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    import uuid

    run_id = uuid.uuid4().hex[:12]
    with open(path, "w") as f:
        f.write(run_id)
    return run_id


def read_metrics(workdir: str) -> list[dict]:
    """The rows of ``metrics.jsonl`` (for notebooks and tests)."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


_WANDB_HEADER = 7  # ":W&B" magic, 2-byte format id, 1-byte version
_BLOCK = 32 * 1024
_RECORD_HEADER = 7  # crc32 (4), length (2, little-endian), type (1)


def wandb_offline_history(run_file: str) -> list[dict]:
    """The history rows logged to an offline W&B run file (``run-*.wandb``).

    The file is a LevelDB-style log of protobuf ``Record`` messages (32 KiB blocks, records
    split FIRST/MIDDLE/LAST across blocks). Reading it back lets tests and users check
    what W&B holds without uploading anything.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    with open(run_file, "rb") as f:
        data = f.read()
    if data[:4] != b":W&B":
        raise ValueError(f"{run_file}: not a W&B run file (bad magic {data[:4]!r})")
    rows, pos, pending = [], _WANDB_HEADER, b""
    while pos + _RECORD_HEADER <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < _RECORD_HEADER:
            pos += left_in_block  # block trailer padding
            continue
        length = int.from_bytes(data[pos + 4 : pos + 6], "little")
        kind = data[pos + 6]
        payload = data[pos + _RECORD_HEADER : pos + _RECORD_HEADER + length]
        pos += _RECORD_HEADER + length
        if kind == 0 and length == 0:
            continue
        pending = payload if kind in (1, 2) else pending + payload
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            if record.WhichOneof("record_type") == "history":
                rows.append({
                    item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item
                })  # fmt: skip
            pending = b""
    return rows

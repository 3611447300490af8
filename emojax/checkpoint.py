"""Orbax checkpoints of a training state, with automatic resume.

Orbax writes each checkpoint into a temporary directory and renames it when complete, so
an interrupted save never leaves a checkpoint that looks valid. The JSON item carries the
step (which is also the data iterator's position, see :mod:`emojax.train.data`).

It sits at the package's top, beside :mod:`emojax.config` and :mod:`emojax.tracking`, because
both the estimator's trainer (:mod:`emojax.train`) and the GRPO host loop (:mod:`emojax.rl`)
use it, and ``rl`` must not depend on ``train``.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


def manager(workdir: str, keep: int) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, "checkpoints")),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
    )


def save(mngr: ocp.CheckpointManager, step: int, state: Any, meta: dict) -> None:
    mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
    mngr.wait_until_finished()


def restore(mngr: ocp.CheckpointManager, like: Any, step: int | None = None) -> tuple[Any, dict] | None:
    """(state, meta) of ``step`` (default: the latest), shaped like ``like``; None if none."""
    step = mngr.latest_step() if step is None else step
    if step is None:
        return None
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    out = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    return out.state, out.meta

"""Where a run's arrays live on a mesh: data, FSDP and tensor axes, and the rules that place
the policy's parameters, the optimizer's moments and the batch on them.

Why rules by name: the policy's parameters carry Hugging Face's module names
(:mod:`emojax.rl.policy`), so one small table says how each kind of weight splits, and the
optimizer's moments (the same tree under ``mu`` and ``nu``) follow their parameters. XLA's
SPMD partitioner adds the collectives, so the step's code is the single-device code.

The axes (any subset may be in the mesh; a missing one counts as size 1):

* ``data``: batch rows split, everything else replicated (plain data parallelism).
* ``fsdp``: batch rows split *and* each weight's model dimension ``D`` split (ZeRO-3 /
  FSDP): a device holds ``1/fsdp`` of the weights and moments and XLA gathers a layer's
  weights when it is used.
* ``tensor``: the heads and MLP columns split (Megatron): q, k, v, gate, up and the output
  head by output column, o and down by input row, the embedding by vocabulary.

A dimension that does not divide by its axis' size is replicated instead, so every rule
is always valid. The check is on the flat dimension (``heads * head_dim``), not on the
head count: a 2-KV-head k projection of width 128 on a 4-way tensor axis is split through
its heads, which XLA computes correctly at the cost of more communication; choose a tensor
size that divides the head counts. Scalars, norms' scales and PPO's value head are
replicated.

Example::

    mesh = jax.make_mesh((1, 2, 2), ("data", "fsdp", "tensor"))
    run = learner.make_train(cfg, task, mesh=mesh)     # the learner places its state by these rules
    state = run.init(jax.random.key(0))
    sharding.bytes_per_device(state)                   # what one device holds
"""

from __future__ import annotations

import math
from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = ["AXES", "batch_axes", "batch_sharding", "bytes_per_device", "check_mesh", "make_mesh", "param_spec",
           "shardings"]

AXES = ("data", "fsdp", "tensor")
_COLUMNS = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "lm_head")  # output split over ``tensor``
_ROWS = ("o_proj", "down_proj")  # input split over ``tensor``
# (kind of parameter, column or row projection) -> the axis of each dimension.
_RULES = {
    ("kernel", "column"): ("fsdp", "tensor"),
    ("kernel", "row"): ("tensor", "fsdp"),
    ("bias", "column"): ("tensor",),
    ("lora_a", "column"): ("fsdp", None),
    ("lora_b", "column"): (None, "tensor"),
    ("lora_a", "row"): ("tensor", None),
    ("lora_b", "row"): (None, "fsdp"),
    ("embedding", "embed"): ("tensor", "fsdp"),
}


def make_mesh(devices: int, fsdp: int = 1, tensor: int = 1) -> Mesh | None:
    """A mesh over the first ``devices`` devices: None for one; ``("data",)`` when ``fsdp`` and
    ``tensor`` are 1; else ``("data", "fsdp", "tensor")`` of shape ``(devices / (fsdp *
    tensor), fsdp, tensor)``. Says how to get more devices on a CPU when JAX sees too few."""
    for name, v in (("devices", devices), ("fsdp", fsdp), ("tensor", tensor)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if devices % (fsdp * tensor):
        raise ValueError(f"devices={devices} is not a multiple of fsdp * tensor = {fsdp * tensor}")
    if devices == 1:
        return None
    if len(jax.devices()) < devices:
        raise ValueError(f"devices={devices}: JAX sees {len(jax.devices())} ({jax.devices()}); on a CPU, start "
                         f"with XLA_FLAGS=--xla_force_host_platform_device_count={devices}")
    auto = jax.sharding.AxisType.Auto
    if fsdp == tensor == 1:
        return jax.make_mesh((devices,), ("data",), axis_types=(auto,), devices=jax.devices()[:devices])
    return jax.make_mesh((devices // (fsdp * tensor), fsdp, tensor), AXES, axis_types=(auto,) * 3,
                         devices=jax.devices()[:devices])  # fmt: skip


def check_mesh(mesh: Mesh) -> None:
    """Raise ``ValueError`` unless the mesh's axes are distinct names among :data:`AXES`."""
    names = tuple(mesh.axis_names)
    if not names or len(set(names)) != len(names) or not set(names) <= set(AXES):
        raise ValueError(f"mesh axes must be distinct names among {AXES}, got {names}")


def batch_axes(mesh: Mesh) -> tuple[str, ...]:
    """The mesh axes a batch's rows split over: ``data`` and ``fsdp``, those it has."""
    return tuple(a for a in ("data", "fsdp") if a in mesh.axis_names)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Rows (the leading axis) over :func:`batch_axes`, the rest replicated."""
    axes = batch_axes(mesh)
    return NamedSharding(mesh, P(axes if axes else None))


def _names(path) -> list[str]:
    out = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                out.append(str(getattr(k, attr)))
                break
    return out


def param_spec(names: list[str], shape: tuple[int, ...], mesh: Mesh) -> P:
    """The :class:`PartitionSpec` of one array whose key path has ``names`` (a parameter, or
    an optimizer moment of one); ``P()`` when no rule applies."""
    kinds = [i for i, n in enumerate(names) if n in ("kernel", "bias", "lora_a", "lora_b", "embedding")]
    if not kinds or kinds[-1] == 0:
        return P()
    kind, module = names[kinds[-1]], names[kinds[-1] - 1]
    role = "column" if module in _COLUMNS else "row" if module in _ROWS else "embed" if module == "embed_tokens" else ""
    axes = _RULES.get((kind, role))
    if axes is None or len(axes) != len(shape):
        return P()
    sizes = dict(zip(mesh.axis_names, mesh.devices.shape))
    return P(*(a if a in sizes and sizes[a] > 1 and dim % sizes[a] == 0 else None for a, dim in zip(axes, shape)))


def shardings(mesh: Mesh, tree: Any) -> Any:
    """A :class:`NamedSharding` for every array of ``tree`` (a one-seed ``TrainState``, concrete
    or from ``jax.eval_shape``), by :func:`param_spec`. For states with a leading seed axis,
    prepend ``None`` to each spec (the learner does)."""
    return jax.tree_util.tree_map_with_path(lambda path, x: NamedSharding(
        mesh, param_spec(_names(path), tuple(x.shape), mesh)), tree)  # fmt: skip


def bytes_per_device(tree: Any) -> dict[str, int]:
    """Bytes of ``tree``'s arrays each device holds, by device (``str(device)``)."""
    out: dict[str, int] = {}
    for x in jax.tree.leaves(tree):
        for shard in x.addressable_shards:
            out[str(shard.device)] = out.get(str(shard.device), 0) + math.prod(shard.data.shape) * x.dtype.itemsize
    return out

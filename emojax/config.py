"""Typed, frozen, validated configs that are also pytrees, and one CLI for every launcher.

Configs are frozen dataclasses. :func:`pytree_config` also registers them as JAX pytrees
whose ``float`` fields (and nested configs) are *leaves* and whose other fields (ints that
fix shapes, strings, tuples) are static. So a jitted function that takes a config as an
argument compiles once per shape and sweeps over rates, temperatures and noise levels
without recompiling, and can even ``vmap`` over them.

Validation runs in ``__post_init__`` through :func:`require`, which checks concrete values
and lets tracers pass (JAX rebuilds configs from traced leaves inside ``jit``).

Launchers (:mod:`emojax.launch`) apply ``--set key=value`` through :func:`override`::

    python -m experiments.label_vs_intensity --preset tiny --workdir /tmp/run \\
        --set raters.noise_scale=1.5 --set num_items=800

Unknown keys, and values of the wrong type, are errors that name the field and list the
fields at that level.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import numbers
import os
import tempfile
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import jax
import numpy as np

T = TypeVar("T")


def _is_config_type(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp) and getattr(tp, "__pytree_config__", False)


def pytree_config(cls: type[T]) -> type[T]:
    """Class decorator: a frozen dataclass registered as a pytree (floats are leaves)."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    cls.__pytree_config__ = True
    hints = typing.get_type_hints(cls)
    data, meta = [], []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        (data if tp is float or _is_config_type(tp) else meta).append(f.name)
    return jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=meta)


def _concrete(value) -> bool:
    if isinstance(value, jax.core.Tracer):
        return False
    return isinstance(value, (numbers.Number, np.ndarray, np.generic, jax.Array, tuple, list, str))


def require(cfg: Any, name: str, ok: Callable[[Any], bool], what: str) -> None:
    """Raise ``ValueError`` naming ``Class.field`` unless ``ok(value)``; tracers pass."""
    value = getattr(cfg, name)
    if _concrete(value) and not ok(value):
        raise ValueError(f"{type(cfg).__name__}.{name} must be {what}, got {value!r}")


def int_at_least(cfg, low: int, *names: str, note: str = "") -> None:
    """Each of ``names`` an ``int`` (not a ``bool``) of at least ``low``; ``note`` ends the
    error message (why the bound, or what a value means)."""
    what = f"an int >= {low}" + (f" {note}" if note else "")
    for n in names:
        require(cfg, n, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low, what)


def positive(cfg, *names):
    for n in names:
        require(cfg, n, lambda v: v > 0, "> 0")


def non_negative(cfg, *names):
    for n in names:
        require(cfg, n, lambda v: v >= 0, ">= 0")


def probability(cfg, *names):
    for n in names:
        require(cfg, n, lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1]")


def to_dict(cfg: Any) -> dict:
    """A JSON-ready dict of a (nested) config."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        out[f.name] = to_dict(v) if dataclasses.is_dataclass(v) else (list(v) if isinstance(v, tuple) else v)
    return out


def _element_type(current: tuple, annotation: Any) -> type:
    """The element type of a tuple field: from its annotation (``tuple[str, ...]``,
    ``tuple[int, int]``, also inside ``X | None``), else from its first element, else float."""
    candidates = [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        candidates = list(typing.get_args(annotation))
    for tp in candidates:
        if typing.get_origin(tp) is tuple:
            kinds = {a for a in typing.get_args(tp) if a is not Ellipsis}
            if len(kinds) == 1 and next(iter(kinds)) in (bool, int, float, str):
                return next(iter(kinds))
    return type(current[0]) if current else float


def _scalar(kind: type, value: Any) -> Any:
    """``value`` (a string from the command line, or a JSON value) as ``kind``."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() not in ("true", "false", "1", "0"):
            raise ValueError(value)
        return str(value).lower() in ("true", "1")
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    return kind(value.strip() if isinstance(value, str) and kind is not str else value)


def _coerce(current: Any, text: str, path: str, annotation: Any = None) -> Any:
    try:
        if isinstance(current, bool):
            return _scalar(bool, text)
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
        if isinstance(current, str):
            return text
        if isinstance(current, dict):
            value = json.loads(text)
            if not isinstance(value, dict):
                raise ValueError(text)
            return value
        if isinstance(current, tuple):
            if text.strip().startswith("["):
                parsed = json.loads(text)
            else:  # "a,b"; "" is the empty tuple
                parsed = text.split(",") if text.strip() else []
            kind = _element_type(current, annotation)
            return tuple(_scalar(kind, x) for x in parsed)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise ValueError(f"--set {path}={text}: expected a value of type {type(current).__name__}") from None
    raise ValueError(f"--set {path}: field of type {type(current).__name__} cannot be set from the command line")


def override(cfg: T, assignments: Mapping[str, str]) -> T:
    """A copy of ``cfg`` with dotted ``field.sub=value`` string assignments applied."""
    for path, text in assignments.items():
        cfg = _set(cfg, path.split("."), text, path)
    return cfg


def _set(cfg, parts, text, path):
    names = {f.name for f in dataclasses.fields(cfg)}
    head = parts[0]
    if head not in names:
        raise ValueError(f"unknown config key {path!r}: {type(cfg).__name__} has no field {head!r} (fields: {sorted(names)})")
    current = getattr(cfg, head)
    if len(parts) > 1:
        if not dataclasses.is_dataclass(current):
            raise ValueError(f"unknown config key {path!r}: {head!r} is not a nested config")
        value = _set(current, parts[1:], text, path)
    else:
        if dataclasses.is_dataclass(current):
            raise ValueError(f"config key {path!r} is a nested config; set one of its fields")
        value = _coerce(current, text, path, _annotation(type(cfg), head))
    return dataclasses.replace(cfg, **{head: value})


def _annotation(cls: type, name: str) -> Any:
    """The resolved type annotation of field ``name`` of ``cls`` (None if it cannot be resolved)."""
    try:
        return typing.get_type_hints(cls).get(name)
    except (NameError, TypeError):
        return None


def import_named(spec: str, what: str) -> Any:
    """The object a ``module.path:name`` spec names (how code outside the package is chosen
    by name: ``--model my_pkg.nets:Net``, a reward ``my_pkg.rewards:short``). Importing the
    module runs its registrations. Errors are ``ValueError`` starting with ``what``."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{what}: cannot import module {module_name!r}: {err}") from None
    if not hasattr(module, attr):
        raise ValueError(f"{what}: module {module_name!r} has no attribute {attr!r}")
    return getattr(module, attr)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give: 0644 under the usual umask 022


def _atomic(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
    """Write through ``write(file)`` to a temporary file, then rename it over ``path``: a crash
    leaves the old file or none, never half of one. The file gets the mode ``open`` would
    give (readable by a teammate on a shared machine), not ``mkstemp``'s 0600."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            write(f)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically (see :func:`_atomic`); NaN and infinities become ``null``
    (strict JSON)."""

    def write(f):
        json.dump(_finite(obj), f, indent=2, sort_keys=False, default=_json_default, allow_nan=False)
        f.write("\n")

    _atomic(path, write)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` atomically (see :func:`_atomic`)."""
    _atomic(path, lambda f: f.write(text))


def _finite(x):
    """NaN and infinities become null, so the file is strict JSON that any reader accepts."""
    if isinstance(x, float):
        return x if np.isfinite(x) else None
    if isinstance(x, dict):
        return {name: _finite(v) for name, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, (np.generic, np.ndarray, jax.Array)):
        return _finite(np.asarray(x).tolist())
    return x


def _json_default(x):
    if isinstance(x, (np.generic, jax.Array, np.ndarray)):
        arr = np.asarray(x)
        return arr.item() if arr.ndim == 0 else arr.tolist()
    if dataclasses.is_dataclass(x):
        return to_dict(x)
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")

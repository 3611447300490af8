"""Estimators and heads chosen by name; users register their own without touching emojax.

An *architecture* is an ``nnx.Module`` class with a nested ``Config`` dataclass. The trainer
builds it as ``cls(config, outputs_per_category, rngs=nnx.Rngs(params=..., dropout=...))``
(:func:`emojax.train.loop.build_model`) and calls it as ``model(tokens, mask, deterministic=...)
-> [batch, 40, outputs]``, where ``outputs`` is ``outputs_per_category``: the raw outputs per category
that the chosen head needs.

The built-in architectures register themselves when :mod:`emojax.models` is imported (its
``__init__`` imports them); this module imports none of them.

Register one in your own module and train it from the launcher::

    # my_pkg/my_module.py
    from emojax.models import registry

    @registry.register_architecture("my_net")
    class MyNet(nnx.Module): ...

    python -m experiments.train_estimator --model my_pkg.my_module:MyNet --workdir DIR

``--model`` takes a registered name or ``module.path:ClassName``; the module is imported
(which runs its decorators) and the class is used directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emojax import config

_ARCHITECTURES: dict[str, type] = {}


def register_architecture(name: str) -> Callable[[type], type]:
    """Class decorator: makes ``cls`` available as ``name``."""

    def wrap(cls: type) -> type:
        if name in _ARCHITECTURES and _ARCHITECTURES[name] is not cls:
            raise ValueError(f"architecture {name!r} is already registered by {_ARCHITECTURES[name].__module__}")
        if not hasattr(cls, "Config"):
            raise TypeError(f"architecture {cls.__name__} needs a nested Config dataclass")
        _ARCHITECTURES[name] = cls
        cls.registry_name = name
        return cls

    return wrap


def get_architecture(spec: str) -> type:
    """The class for a registered name or an importable ``module.path:ClassName``."""
    if ":" in spec:
        cls = config.import_named(spec, f"--model {spec!r}")
        attr = spec.partition(":")[2]
        if not hasattr(cls, "Config"):
            raise ValueError(f"--model {spec!r}: {attr} needs a nested Config dataclass (see emojax.models.registry)")
        return cls
    if spec not in _ARCHITECTURES:
        raise ValueError(f"unknown model {spec!r}; registered: {sorted(_ARCHITECTURES)}, or pass module.path:ClassName")
    return _ARCHITECTURES[spec]


def architectures() -> list[str]:
    return sorted(_ARCHITECTURES)


def describe(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"

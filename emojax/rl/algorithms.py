"""Learning algorithms by name: what ``GRPOConfig.algorithm`` chooses (``grpo``, ``ppo``, or a
``module:name`` outside the package).

An algorithm is two functions the learner calls (:class:`Algorithm`); the rollout, the
sampler, the host loop, seeds, sharding and checkpoints are shared. So PPO is a registry
entry beside GRPO, not a branch in the learner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from emojax import config
from emojax.rl import ppo, update

__all__ = ["Algorithm", "make_algorithm", "register_algorithm", "registered_algorithms"]


class Algorithm(NamedTuple):
    """What an algorithm decides.

    Attributes:
      init: ``init(tx, policy_config, params) -> (opt_state, critic)``: the optimizer state
        of a fresh run and whatever the algorithm trains beside the policy (None if
        nothing; PPO's value head).
      make_update: ``make_update(cfg, graphdef, tx, num_completion,
        max_completion_length=None) -> update``, where ``update(params, opt_state,
        ref_params, batch, critic) -> (params, opt_state, metrics, skipped, critic)`` is
        pure and jittable (:func:`emojax.rl.update.make_update` says what each means).
    """

    init: Callable[..., tuple[Any, Any]]
    make_update: Callable[..., Callable[..., Any]]


_ALGORITHMS: dict[str, Algorithm] = {}


def register_algorithm(name: str, algorithm: Algorithm) -> Algorithm:
    """Make ``name`` a value of ``GRPOConfig.algorithm`` (one definition per name)."""
    old = _ALGORITHMS.get(name)
    if old is not None and old != algorithm:
        raise ValueError(f"algorithm {name!r} is already registered")
    _ALGORITHMS[name] = algorithm
    return algorithm


def registered_algorithms() -> tuple[str, ...]:
    return tuple(sorted(_ALGORITHMS))


def make_algorithm(spec: str) -> Algorithm:
    """The algorithm ``spec``: a registered name, or ``module:name`` of an :class:`Algorithm`."""
    if ":" in spec:
        found = config.import_named(spec, f"algorithm {spec!r}")
        if not isinstance(found, Algorithm):
            raise ValueError(f"algorithm {spec!r} is a {type(found).__name__}, not an emojax.rl.algorithms.Algorithm")
        return found
    if spec not in _ALGORITHMS:
        raise KeyError(f"unknown algorithm {spec!r}; registered: {registered_algorithms()} "
                       "(or module:name for one outside the package)")  # fmt: skip
    return _ALGORITHMS[spec]


def _policy_only(tx, pcfg, params):
    """GRPO trains the policy alone."""
    return tx.init(params), None


register_algorithm("grpo", Algorithm(init=_policy_only, make_update=update.make_update))
register_algorithm("ppo", Algorithm(init=ppo.init, make_update=ppo.make_update))

"""Rewards as pure ``jnp`` functions of an :class:`~emojax.rl.observation.Observation`.

Why pure: GRPO here runs rollout, reward, advantages and update as one compiled
``lax.scan`` and runs seeds under ``jax.vmap``, so a reward must trace; host-side Python
rewards (TRL's, tunix's) would break the program in two. Why an ``Observation``: it cannot
carry gold (see :mod:`emojax.rl.observation`), so no reward can read what it is judged by.

Two shapes of function, as optax has a gradient transformation and its combinators:

* a *reward* ``r(obs) -> [B]`` float32, registered by name (:func:`register_reward`,
  :func:`get_reward`); tasks register theirs when their modules are imported;
* a :data:`RewardFn` ``fn(obs) -> (total [B], components)``, ``components`` a dict of each
  reward's raw ``[B]`` values under its name, so the learner logs ``rewards/<name>/mean``
  and ``/std`` (:func:`component_metrics`, TRL's names) whatever the combination.

Combinators build RewardFns: :func:`weighted_sum`, :func:`normalize_then_sum` (TRL's
``multi_objective_aggregation``), :func:`combine` (add RewardFns), :func:`scale`,
:func:`clip`, :func:`length_penalty`, :func:`format_penalty` and :func:`potential_based`
(:mod:`emojax.rl.shaping`). :func:`make_reward` builds one from a :class:`RewardConfig`::

    fn = make_reward(RewardConfig(weights="reverse_correct:1,ended:0.1"))
    total, components = jax.jit(fn)(obs)

NaN. A reward returns NaN (or any non-finite value) for a completion it cannot score.
Sums skip such components, as TRL's ``nansum`` over reward functions, but a completion
that *no* component could score gets NaN, not TRL's 0, so that
:func:`~emojax.rl.advantages.group_advantages` leaves it out and counts it in
``num_invalid``. :func:`scale` and :func:`clip` keep NaN; :func:`component_metrics` uses
``nanmean``/``nanstd`` as TRL logs them. Components are logged raw (unweighted).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

from emojax import config
from emojax.rl import shaping
from emojax.rl.advantages import group_advantages
from emojax.rl.observation import Observation

__all__ = [
    "AGGREGATIONS", "Reward", "RewardConfig", "RewardFn", "clip", "combine", "component_metrics",
    "format_penalty", "get_reward", "length_penalty", "length_target", "make_reward", "normalize_then_sum",
    "parse_term", "parse_weights", "potential_based", "privileged", "register_reward", "register_reward_factory",
    "registered_rewards", "required", "resolve_reward", "scale", "term", "weighted_sum",
]  # fmt: skip

Reward = Callable[[Observation], jax.Array]
RewardFn = Callable[[Observation], tuple[jax.Array, dict[str, jax.Array]]]
AGGREGATIONS = ("weighted_sum", "normalize_then_sum")
potential_based = shaping.potential_based

_REGISTRY: dict[str, Reward] = {}


def _add(table: dict, kind: str, name: str, fn):
    """``table[name] = fn``, one function per name (the same function imported again, as a
    module re-run under another name, is the same registration)."""
    old = table.get(name)
    if old is not None and (old.__module__, old.__qualname__) != (fn.__module__, fn.__qualname__):
        raise ValueError(f"{kind} {name!r} is already registered ({old.__module__}.{old.__qualname__})")
    table[name] = fn
    return fn


def register_reward(name: str) -> Callable[[Reward], Reward]:
    """Decorator registering ``r(obs) -> [B]`` under ``name`` (one function per name)."""
    return lambda fn: _add(_REGISTRY, "reward", name, fn)


def get_reward(name: str) -> Reward:
    """The reward registered as ``name``. A task's rewards are registered when its module is
    imported (``import emojax.rl.tasks`` registers the built-in tasks'); this module imports
    no task, so that the generic rewards do not depend on the problems they score."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown reward {name!r}; registered: {registered_rewards()} (a task's rewards are "
                       "registered when its module is imported, e.g. import emojax.rl.tasks)")
    return _REGISTRY[name]


def registered_rewards() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


# A reward with settings: ``factory(settings: dict, task) -> reward`` (``task`` may be None).
RewardFactory = Callable[[dict, object], Reward]
_FACTORIES: dict[str, RewardFactory] = {}


def register_reward_factory(name: str) -> Callable[[RewardFactory], RewardFactory]:
    """Decorator registering a factory of rewards with settings under ``name``, named in a
    spec as ``name(key=value, ...)`` (see :class:`RewardConfig`). Also marks the function,
    so that a ``module:function`` spec knows to call it with the settings."""

    def add(fn: RewardFactory) -> RewardFactory:
        fn.reward_factory = True
        return _add(_FACTORIES, "reward factory", name, fn)

    return add


def _setting(text: str):
    """A setting's value: a JSON number or boolean where it is one, else the text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, (int, float, bool)) else text


def parse_term(label: str) -> tuple[str, dict]:
    """``"name(key=value, ...)"`` -> ``("name", {key: value})``; ``"name"`` -> ``("name", {})``."""
    name, paren, rest = label.partition("(")
    name = name.strip()
    if not paren:
        return name, {}
    if not rest.endswith(")") or "(" in rest[:-1] or ")" in rest[:-1]:
        raise ValueError(f"reward {label!r}: settings must be one (key=value, ...) group at the end")
    settings = {}
    for item in filter(None, (x.strip() for x in rest[:-1].split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"reward {label!r}: setting {item!r} is not key=value")
        settings[key.strip()] = _setting(value.strip())
    return name, settings


def privileged(fn: Reward) -> Reward:
    """Mark a reward as one that reads :attr:`~emojax.rl.observation.Observation.privileged`
    (what the environment reports but the policy cannot see, e.g. the simulated user's own
    ``e``). Every other reward a spec names gets the observation with ``privileged`` empty
    (:func:`resolve_reward`), so only a reward that says so can read it."""
    fn.privileged = True
    return fn


def _unprivileged(fn: Reward) -> Reward:
    if getattr(fn, "privileged", False):
        return fn
    return lambda obs: fn(obs.replace(privileged={}))


def resolve_reward(label: str, task=None) -> Reward:
    """The reward a spec term names (see :class:`RewardConfig`): a registered reward, a
    registered factory with its settings, or ``module.path:function`` (a reward, or a
    factory marked by :func:`register_reward_factory`). ``task`` goes to factories. Unless
    the reward is :func:`privileged`, it is given observations without the privileged part."""
    return _unprivileged(_resolve_one(label, task))


def _resolve_one(label: str, task=None) -> Reward:
    name, settings = parse_term(label)
    if ":" in name:
        fn = config.import_named(name, f"reward {label!r}")
        if getattr(fn, "reward_factory", False):
            return fn(settings, task)
        if settings:
            raise ValueError(f"reward {label!r}: {name} is a reward, not a factory: it takes no settings")
        return fn
    if name in _FACTORIES:
        return _FACTORIES[name](settings, task)
    if settings:
        raise KeyError(f"unknown reward factory {name!r} in {label!r}; registered: {tuple(sorted(_FACTORIES))}")
    return get_reward(name)


def required(settings: dict, key: str, name: str):
    """``settings[key]``, or a ``ValueError`` naming the reward and the missing setting."""
    if key not in settings:
        raise ValueError(f"reward {name!r} needs the setting {key!r}, e.g. {name}({key}=...)")
    return settings[key]


@register_reward("ended")
def ended(obs: Observation) -> jax.Array:
    """1 if the completion emitted the end token (a format reward), else 0."""
    return (~obs.truncated.astype(bool)).astype(jnp.float32)


@register_reward("user_emotion")
@privileged
def user_emotion(obs: Observation) -> jax.Array:
    """RLVER's reward: ``max(e_T / 100, 0)``, the simulated user's own final emotion score
    (``obs.privileged["e"]``, 0-100). Privileged: the simulator's report, not what the user
    says; the estimator-based rewards read the words instead."""
    if "e" not in obs.privileged:
        raise ValueError("reward 'user_emotion' reads the simulated user's own score, Observation.privileged['e'], "
                         "which only a conversation environment reports (e.g. empathy)")  # fmt: skip
    return jnp.maximum(obs.privileged["e"].astype(jnp.float32) / 100.0, 0.0)


@register_reward("length")
def length(obs: Observation) -> jax.Array:
    """Number of the policy's tokens, end token included."""
    return obs.completion_length.astype(jnp.float32)


@register_reward_factory("length_target")
def length_target(settings: dict, task=None) -> Reward:
    """``-|length - target| / target``: 0 at exactly ``target`` tokens (end token included),
    falling linearly either side. Settings: ``target`` (required, > 0)."""
    del task
    target = float(required(settings, "target", "length_target"))
    if target <= 0:
        raise ValueError(f"reward 'length_target' needs target > 0, got {target}")
    unknown = set(settings) - {"target"}
    if unknown:
        raise ValueError(f"reward 'length_target': unknown settings {sorted(unknown)}; it takes target")
    return lambda obs: -jnp.abs(obs.completion_length.astype(jnp.float32) - target) / target


def _sum_finite(terms: list[jax.Array]) -> jax.Array:
    """Sum skipping non-finite terms; NaN where every term is non-finite."""
    stacked = jnp.stack(terms)
    ok = jnp.isfinite(stacked)
    total = jnp.sum(jnp.where(ok, stacked, 0.0), axis=0)
    return jnp.where(jnp.any(ok, axis=0), total, jnp.nan)


def _resolve(weights: Mapping[str, float], task=None) -> dict[str, tuple[Reward, float]]:
    if not weights:
        raise ValueError("weights must name at least one reward")
    return {n: (resolve_reward(n, task), float(w)) for n, w in weights.items()}


def term(name: str) -> RewardFn:
    """The registered reward ``name`` as a RewardFn: ``(r, {name: r})``."""
    return weighted_sum({name: 1.0})


def weighted_sum(weights: Mapping[str, float], task=None) -> RewardFn:
    """``total = sum_i w_i r_i`` over registered rewards (TRL's ``reward_weights``).

    Example:
      >>> total, parts = weighted_sum({"ended": 0.5, "length": 1.0})(obs)  # doctest: +SKIP
    """
    resolved = _resolve(weights, task)

    def fn(obs: Observation):
        parts = {n: r(obs).astype(jnp.float32) for n, (r, _) in resolved.items()}
        return _sum_finite([w * parts[n] for n, (_, w) in resolved.items()]), parts

    return fn


def normalize_then_sum(weights: Mapping[str, float], group_size: int, *, eps: float = 1e-4,
                       std_ddof: int = 1, zero_std_tol: float = 1e-6, task=None) -> RewardFn:
    """Standardise each reward within its group, then take the weighted sum.

    TRL's ``multi_objective_aggregation="normalize_then_sum"`` (GDPO): for every reward,
    ``(r - mean_group) / (std_group + eps)`` over the completions of one prompt, NaN left
    out of the statistics, then ``sum_i w_i`` of those. The batch is ``[prompts * group]``
    in prompt-major order (as the sampler's output of repeated prompts). A reward that is
    the same across a group (within ``zero_std_tol``, see
    :func:`~emojax.rl.advantages.group_advantages`) adds exactly 0 there, where TRL adds
    float noise times 1e4. TRL then standardises the sum over the batch; that is the
    advantage step: ``group_advantages(total.reshape(-1, group_size), scale="batch")``
    gives it, since each group's normalised sum has mean 0.
    """
    resolved = _resolve(weights, task)
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")

    def fn(obs: Observation):
        parts = {n: r(obs).astype(jnp.float32) for n, (r, _) in resolved.items()}
        b = obs.truncated.shape[0]
        if b % group_size:
            raise ValueError(f"normalize_then_sum: batch {b} is not a multiple of group_size {group_size}")
        terms = []
        for n, (_, w) in resolved.items():
            z = group_advantages(parts[n].reshape(b // group_size, group_size), scale="group",
                                 std_ddof=std_ddof, eps=eps, zero_std_tol=zero_std_tol).advantages
            terms.append(jnp.where(jnp.isfinite(parts[n]), w * z.reshape(b), jnp.nan))
        return _sum_finite(terms), parts

    return fn


def combine(*fns: RewardFn) -> RewardFn:
    """Add the totals of several RewardFns (skipping non-finite ones) and merge components."""
    if not fns:
        raise ValueError("combine needs at least one RewardFn")

    def fn(obs: Observation):
        totals, parts = [], {}
        for f in fns:
            total, sub = f(obs)
            clash = set(sub) & set(parts)
            if clash:
                raise ValueError(f"combine: component names used twice: {sorted(clash)}")
            totals.append(total)
            parts.update(sub)
        return _sum_finite(totals), parts

    return fn


def scale(fn: RewardFn, factor: float) -> RewardFn:
    """``factor * total``; components unchanged."""
    return lambda obs: (lambda t, p: (factor * t, p))(*fn(obs))


def clip(fn: RewardFn, low: float, high: float) -> RewardFn:
    """``total`` clipped to ``[low, high]`` (NaN stays NaN); components unchanged."""
    if not low <= high:
        raise ValueError(f"clip needs low <= high, got {low} > {high}")
    return lambda obs: (lambda t, p: (jnp.clip(t, low, high), p))(*fn(obs))


def length_penalty(max_length: int, cache: int | None = None, coef: float = 1.0,
                   name: str = "length_penalty") -> RewardFn:
    """DAPO's soft overlong punishment, in [-1, 0], times ``coef``.

    0 up to ``max_length - cache`` tokens, then falling linearly to -1 at ``max_length``
    and -1 beyond (Yu et al. 2025, eq. 13). ``cache=None`` (the whole length) makes it a
    plain linear penalty ``-length / max_length``. The component is the raw penalty.
    """
    cache = max_length if cache is None else cache
    if not 0 < cache <= max_length:
        raise ValueError(f"length_penalty needs 0 < cache <= max_length, got {cache}, {max_length}")

    def fn(obs: Observation):
        n = obs.completion_length.astype(jnp.float32)
        p = jnp.clip((max_length - cache - n) / cache, -1.0, 0.0)
        return coef * p, {name: p}

    return fn


def format_penalty(penalty: float = 1.0, check: Reward | None = None,
                   name: str = "format_penalty") -> RewardFn:
    """``-penalty`` for completions that fail ``check`` (default: no end token).

    ``check(obs) -> [B]`` is 1 (or True) for a well-formed completion. The component is
    the raw penalty, -1 or 0.
    """
    check = ended if check is None else check

    def fn(obs: Observation):
        p = jnp.asarray(check(obs), jnp.float32) - 1.0
        return penalty * p, {name: p}

    return fn


def component_metrics(components: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """TRL's ``rewards/<name>/mean`` and ``/std`` (NaN-skipping, N-1 std) per component."""
    out = {}
    for n, r in components.items():
        ok = jnp.isfinite(r)
        count = jnp.sum(ok)
        mean = jnp.sum(jnp.where(ok, r, 0.0)) / jnp.maximum(count, 1)
        var = jnp.sum(jnp.where(ok, (r - mean) ** 2, 0.0)) / jnp.maximum(count - 1, 1)
        out[f"rewards/{n}/mean"] = jnp.where(count > 0, mean, jnp.nan)
        out[f"rewards/{n}/std"] = jnp.where(count > 1, jnp.sqrt(var), jnp.nan)
    return out


def _split_top_level(spec: str) -> list[str]:
    """Split at commas outside parentheses (settings hold commas of their own)."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(spec):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            raise ValueError(f"reward spec {spec!r}: ')' without '('")
        if ch == "," and depth == 0:
            items.append(spec[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"reward spec {spec!r}: '(' without ')'")
    return [x.strip() for x in items + [spec[start:]] if x.strip()]


def _weight(item: str) -> tuple[str, float]:
    """One term ``SPEC[:WEIGHT]`` -> ``(SPEC, weight)``. The weight follows the last colon
    (after the settings, if any); a term without one weighs 1. With no settings, a colon
    followed by something that is not a number is ``module:function``'s, unless what comes
    before it is a registered name (then the weight is wrong)."""
    spec, close, tail = item.rpartition(")")
    if close:  # SPEC(settings)[:WEIGHT]
        spec, tail = spec + close, tail.strip()
        if tail and not tail.startswith(":"):
            raise ValueError(f"reward term {item!r}: expected SPEC(settings)[:WEIGHT]")
        weight = tail[1:]
    else:
        spec, colon, weight = item.rpartition(":")
        if not colon:
            spec, weight = item, ""
    spec, weight = spec.strip(), weight.strip()
    try:
        return spec, float(weight) if weight else 1.0
    except ValueError:
        if close or spec in _REGISTRY or spec in _FACTORIES or ":" in spec:
            raise ValueError(f"reward weight of {spec!r} is not a number: {weight!r}") from None
        return item.strip(), 1.0  # module:function, no weight


def parse_weights(spec: str) -> tuple[tuple[str, float], ...]:
    """The terms of a reward spec as ``(label, weight)`` pairs (grammar: :class:`RewardConfig`).

    ``"a:1,b:0.5"`` -> ``(("a", 1.0), ("b", 0.5))``; a bare name weighs 1;
    ``"length_target(target=8,scale=0.5):0.1"`` keeps its settings in the label;
    ``"my_pkg.rewards:short:0.5"`` is a ``module:function`` weighing 0.5.
    """
    pairs = [_weight(item) for item in _split_top_level(spec)]
    for label, _ in pairs:
        parse_term(label)  # settings well formed
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"reward names must be non-empty and distinct, got {names}")
    return tuple(pairs)


@config.pytree_config
class RewardConfig:
    """Which rewards, combined how (``--set reward.weights=need_act:1,ended:0.1``).

    The ``weights`` grammar: terms ``SPEC[:WEIGHT]`` separated by commas (a missing weight
    is 1). ``SPEC`` is a registered reward (``ended``), a registered factory with its
    settings (``length_target(target=8)``: values are numbers, true/false or text), or
    ``module.path:function`` for a reward defined outside the package
    (``my_pkg.rewards:short:0.5``), a factory among them with settings
    (``my_pkg.rewards:brevity(limit=4):1``). Each term is logged under its spec as written.

    Attributes:
      weights: the rewards and their weights (a string, so one ``--set`` can change it);
        empty means the task's default (``Task.reward``).
      aggregation: ``weighted_sum`` or ``normalize_then_sum`` (per-group standardisation
        of each reward first; needs the group size).
      length_penalty: coefficient of :func:`length_penalty` (0: off); ``length_cache`` its
        DAPO interval in tokens (0: the whole length, a linear penalty).
      format_penalty: penalty for a completion without an end token (0: off).
      shaping: a reward spec (no weight) used as the potential of
        :func:`potential_based` ('': off), with ``shaping_gamma`` and
        ``shaping_terminal_zero``.
      scale, clip: ``total = clip(scale * (aggregate + penalties + shaping))``; ``clip``
        is ``()`` (off) or ``(low, high)``.
      normalize_eps, std_ddof: of ``normalize_then_sum``, as TRL (1e-4, N-1).
    """

    weights: str = ""
    aggregation: str = "weighted_sum"
    length_penalty: float = 0.0
    length_cache: int = 0
    format_penalty: float = 0.0
    shaping: str = ""
    shaping_gamma: float = 1.0
    shaping_terminal_zero: bool = True
    scale: float = 1.0
    clip: tuple[float, ...] = ()
    normalize_eps: float = 1e-4
    std_ddof: int = 1

    def __post_init__(self):
        parse_weights(self.weights)
        config.require(self, "aggregation", lambda a: a in AGGREGATIONS, f"one of {AGGREGATIONS}")
        config.require(self, "clip", lambda c: len(c) == 0 or (len(c) == 2 and c[0] <= c[1]), "() or (low, high)")
        config.non_negative(self, "length_penalty", "length_cache", "format_penalty", "normalize_eps", "std_ddof")
        config.require(self, "shaping_gamma", lambda g: 0.0 <= g <= 1.0, "in [0, 1]")


def make_reward(cfg: RewardConfig, *, default: tuple[tuple[str, float], ...] = (),
                max_length: int | None = None, group_size: int | None = None, task=None) -> RewardFn:
    """The RewardFn a :class:`RewardConfig` describes.

    Args:
      cfg: the config (concrete, not traced: this runs once, when the program is built).
      default: ``(name, weight)`` pairs used when ``cfg.weights`` is empty (a task's
        ``Task.reward``).
      max_length: the completion budget, needed by the length penalty.
      group_size: completions per prompt, needed by ``normalize_then_sum``.
      task: handed to reward factories (:func:`register_reward_factory`).
    """
    pairs = parse_weights(cfg.weights) or tuple(default)
    weights = dict(pairs)
    if len(weights) != len(pairs):
        raise ValueError(f"a reward is named twice in {[n for n, _ in pairs]}")
    if cfg.aggregation == "normalize_then_sum":
        if group_size is None:
            raise ValueError("normalize_then_sum needs group_size")
        base = normalize_then_sum(weights, group_size, eps=cfg.normalize_eps, std_ddof=cfg.std_ddof, task=task)
    else:
        base = weighted_sum(weights, task)
    parts = [base]
    if cfg.length_penalty > 0:
        if max_length is None:
            raise ValueError("length_penalty needs max_length")
        parts.append(length_penalty(max_length, cfg.length_cache or None, cfg.length_penalty))
    if cfg.format_penalty > 0:
        parts.append(format_penalty(cfg.format_penalty))
    if cfg.shaping:
        parts.append(potential_based(resolve_reward(cfg.shaping, task), cfg.shaping_gamma,
                                     terminal_zero=cfg.shaping_terminal_zero))
    fn = combine(*parts) if len(parts) > 1 else base
    if cfg.scale != 1.0:
        fn = scale(fn, cfg.scale)
    if cfg.clip:
        fn = clip(fn, *map(float, cfg.clip))
    return fn

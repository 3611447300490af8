"""``sampler``: completions from the policy with a KV cache, as one pure function.

Why pure: GRPO runs rollout, reward and update in one compiled ``lax.scan`` and runs seeds
with ``jax.vmap``. So :func:`sample` takes ``(graphdef, state, key, prompt tokens, prompt
mask)`` and returns a :class:`Rollout` pytree. The graphdef is static (``nnx.split`` /
``nnx.merge``), and so is :class:`SamplerConfig`'s ``max_new_tokens``; its temperature,
top-k, top-p, end and pad tokens are traced. ``jax.vmap(fn, in_axes=(0, 0, None, None))``
over a leading seeds axis of ``state`` and of ``key`` runs several policies in one program;
``in_axes=(None, 0, None, None)`` draws several samples from one.

What the log-probs mean (as TRL's ``GRPOTrainer``): the log-probability of the sampled token
under ``softmax(logits / temperature)``, *before* top-k/top-p truncation. The truncated
distribution is only what the token is drawn from. :func:`token_logprobs` recomputes the
same numbers teacher-forced in one forward pass; that is what the loss differentiates.

Prompts may be left- or right-padded (or both); the prompt mask says which tokens are real.
Completion token ``i`` goes to slot ``P + i`` with rotary position ``len(prompt) + i``, so a
right-padded prompt leaves a masked gap before its completion, which the attention mask and
:func:`token_logprobs` (it predicts each token from the previous *real* token) both skip.

Example::

    graphdef, state = policy.init(policy.PRESETS["2x64"], jax.random.key(0))
    fn = jax.jit(make_sampler(graphdef, SamplerConfig(max_new_tokens=32, end_token=2)))
    rollout = fn(state, jax.random.key(1), prompt_tokens, prompt_mask)
    seeds = jax.vmap(fn, in_axes=(0, 0, None, None))(stacked_states, keys, prompt_tokens, prompt_mask)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from emojax import config
from emojax.rl import policy


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=("temperature", "top_k", "top_p", "end_token", "pad_token"),
    meta_fields=("max_new_tokens", "think_tokens"),
)
@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """How to decode.

    A pytree whose static fields are ``max_new_tokens`` and ``think_tokens`` (shapes): pass
    the config to a jitted :func:`sample` and any other change (temperature, top-k, top-p,
    end token) runs without recompiling. Bound as Python values (:func:`make_sampler`),
    filters that are off are left out of the program.

    ``think_tokens`` (conversations only, :func:`emojax.rl.multiturn.converse`): a
    scratchpad of at most that many tokens before each reply, ended by the end token or
    the budget; the policy's own tokens (trained on), never shown to the other side.
    """

    max_new_tokens: int = 32
    think_tokens: int = 0
    temperature: float = 1.0
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1.0: off
    end_token: int = -1  # -1: none; otherwise a row stops after emitting it
    pad_token: int = 0  # written after a row's end token

    def __post_init__(self):
        config.int_at_least(self, 1, "max_new_tokens")
        config.int_at_least(self, 0, "think_tokens", note="(0: no thinking)")
        config.positive(self, "temperature")
        config.require(self, "top_k", lambda v: int(v) == v and v >= 0, "an int >= 0 (0: off)")
        config.require(self, "top_p", lambda v: 0.0 < v <= 1.0, "in (0, 1] (1: off)")
        config.require(self, "end_token", lambda v: int(v) == v and v >= -1, "a token id or -1 (none)")
        config.require(self, "pad_token", lambda v: int(v) == v and v >= 0, "a token id")

    @property
    def turn_tokens(self) -> int:
        """The policy's slots in a turn of a conversation: the scratchpad, then the reply."""
        return self.think_tokens + self.max_new_tokens


class Rollout(NamedTuple):
    tokens: jax.Array  # [B, P+N] int32: the prompt as given, then the completion (pads after the end token)
    mask: jax.Array  # [B, P+N] bool: real tokens (prompt mask, then completion_mask)
    logprobs: jax.Array  # [B, N] float32: log p(token) under softmax(logits / temperature); 0 where masked
    completion_mask: jax.Array  # [B, N] bool: the policy's own tokens, up to and including the end token
    ended: jax.Array  # [B] bool: emitted the end token (False: truncated at max_new_tokens)


def filter_logits(logits: jax.Array, top_k=0, top_p=1.0) -> jax.Array:
    """Logits [..., V] with tokens outside the top-k, then outside the nucleus, set to -inf.

    The nucleus is the smallest set of most likely tokens whose probability (renormalised
    over the top-k, as HF applies them in that order) reaches ``top_p``. Ties at either cut
    are kept; the most likely token always stays. ``top_k`` and ``top_p`` may be traced;
    as Python numbers that switch both off, the logits come back untouched.
    """
    if isinstance(top_k, int) and isinstance(top_p, (int, float)) and top_k <= 0 and top_p >= 1.0:
        return logits
    vocab = logits.shape[-1]
    desc = -jnp.sort(-logits, axis=-1)
    kth = jax.lax.dynamic_index_in_dim(desc, jnp.clip(jnp.asarray(top_k) - 1, 0, vocab - 1), axis=-1)
    in_top_k = (jnp.asarray(top_k) <= 0) | (desc >= kth)
    probs = jax.nn.softmax(jnp.where(in_top_k, desc, -jnp.inf), axis=-1)
    mass_before = jnp.cumsum(probs, axis=-1) - probs
    # A top_p of 1 keeps everything, even where float cumsums reach 1 early.
    keep = in_top_k & ((mass_before < top_p) | (jnp.asarray(top_p) >= 1.0))
    cut = jnp.min(jnp.where(keep, desc, jnp.inf), axis=-1, keepdims=True)
    return jnp.where(logits >= cut, logits, -jnp.inf)


def categorical(key: jax.Array, logits: jax.Array) -> jax.Array:
    """``jax.random.categorical(key, logits, axis=-1)``, the same draws, made cheaper on CPU.

    jax draws ``argmax(logits + gumbel(key))``; XLA:CPU lowers an argmax to a variadic
    (value, index) reduction that ran at about 18 ns an element (a third of a 2-layer
    policy's sampling time). Here it is a max, then the first index holding it: two plain
    reductions, the same token (the first maximum, as ``argmax``).
    """
    return _first_max(logits + jax.random.gumbel(key, logits.shape, logits.dtype))


def _first_max(z: jax.Array) -> jax.Array:
    """The first index of the maximum of ``z`` [..., V] (argmax as two plain reductions)."""
    top = jnp.max(z, axis=-1, keepdims=True)
    vocab = z.shape[-1]
    first = jnp.min(jnp.where(z == top, jnp.arange(vocab, dtype=jnp.int32), vocab), axis=-1)
    return jnp.minimum(first, vocab - 1)  # all-NaN logits: the last token rather than out of range


def _last_real(mask: jax.Array) -> jax.Array:
    """[B, T] bool -> [B] index of each row's last real token (0 for an empty row)."""
    return jnp.max(jnp.where(mask, jnp.arange(mask.shape[-1]), 0), axis=-1)


def prefill(graphdef: nnx.GraphDef, state: nnx.State, tokens: jax.Array, mask: jax.Array, cache: policy.KVCache,
            lengths: jax.Array) -> tuple[jax.Array, policy.KVCache, jax.Array]:  # fmt: skip
    """Feed a chunk ``[B, T]`` into ``cache`` after each row's ``lengths`` real tokens (a
    prompt; in a conversation, the user's turn). Returns the logits ``[B, V]`` after each
    row's last real token of the chunk (meaningless for a row with none), the cache and the
    new lengths. Pads anywhere in the chunk are skipped by mask and position."""
    b, t = tokens.shape
    positions = lengths[:, None] + policy.positions_from_mask(mask)
    hidden, cache = policy.apply_hidden(graphdef, state, tokens, positions, mask, cache)
    # The output projection only for each row's last real token.
    last = jnp.take(hidden, jnp.arange(b) * t + _last_real(mask), axis=0)
    return policy.apply_logits(graphdef, state, last), cache, lengths + jnp.sum(mask, axis=-1, dtype=jnp.int32)


class Decoded(NamedTuple):
    tokens: jax.Array  # [B, N] int32: the drawn tokens, pads after a row's end (or everywhere if it was done)
    logprobs: jax.Array  # [B, N] float32: log p(token) under softmax(logits / temperature); 0 where masked
    live: jax.Array  # [B, N] bool: the policy's own tokens, up to and including the end token
    done: jax.Array  # [B] bool: emitted the end token, or was done before
    logits: jax.Array  # [B, V]: after the last token fed into the cache (a row that fed none: as given)


def decode(graphdef: nnx.GraphDef, state: nnx.State, key: jax.Array, logits: jax.Array, cache: policy.KVCache,
           lengths: jax.Array, cfg: SamplerConfig, done: jax.Array | None = None,
           ) -> tuple[Decoded, policy.KVCache, jax.Array]:  # fmt: skip
    """Draw ``cfg.max_new_tokens`` tokens from ``logits`` ``[B, V]`` on, feeding each but
    the last into ``cache`` (a ``lax.scan``). Rows ``done`` at the start draw nothing.

    Token ``i`` is drawn with ``jax.random.fold_in(key, i)``, so a row's samples before its
    end token do not depend on ``end_token``. The last token is not fed (no forward pass is
    wasted): a caller that goes on (a conversation) feeds it with what comes next. Returns
    the draws, the cache and ``lengths`` counting the fed tokens.
    """
    forward = functools.partial(policy.apply, graphdef, state)
    n = cfg.max_new_tokens
    done = jnp.zeros(logits.shape[:1], bool) if done is None else done

    def choose(logits, done, step):
        scaled = logits / cfg.temperature
        token = categorical(jax.random.fold_in(key, step), filter_logits(scaled, cfg.top_k, cfg.top_p))
        logp = jnp.take_along_axis(jax.nn.log_softmax(scaled, axis=-1), token[:, None], axis=-1)[:, 0]
        live = ~done
        token = jnp.where(live, token, cfg.pad_token).astype(jnp.int32)
        logp = jnp.where(live, logp, 0.0)
        done = done | ((token == cfg.end_token) & (cfg.end_token >= 0))
        return token, logp, live, done

    def step(carry, i):
        logits, cache, done = carry
        token, logp, live, done = choose(logits, done, i)
        fed, cache = forward(token[:, None], (lengths + i)[:, None], live[:, None], cache)
        # A row that fed a pad keeps the logits of its last real token.
        return (jnp.where(live[:, None], fed[:, 0], logits), cache, done), (token, logp, live)

    (logits, cache, done), (tokens, logps, live) = jax.lax.scan(step, (logits, cache, done), jnp.arange(n - 1))
    last_token, last_logp, last_live, done = choose(logits, done, n - 1)
    live = jnp.concatenate([live.T, last_live[:, None]], axis=1)
    fed = jnp.sum(live[:, :-1], axis=-1, dtype=jnp.int32)
    return Decoded(jnp.concatenate([tokens.T, last_token[:, None]], axis=1),
                   jnp.concatenate([logps.T, last_logp[:, None]], axis=1), live, done, logits), cache, lengths + fed  # fmt: skip


def sample(
    graphdef: nnx.GraphDef,
    state: nnx.State,
    key: jax.Array,
    prompt_tokens: jax.Array,
    prompt_mask: jax.Array,
    cfg: SamplerConfig,
    shared_prompt: int = 1,
) -> Rollout:
    """Prefill the prompts [B, P], then decode ``cfg.max_new_tokens`` tokens in ``lax.scan``
    (:func:`prefill`, then :func:`decode`).

    Every prompt needs at least one real token. The token of step ``i`` is drawn with
    ``jax.random.fold_in(key, i)``, so a row's samples before its end token do not depend on
    ``end_token``. With ``shared_prompt=G > 1`` the prompts come in runs of ``G`` equal rows
    (a GRPO group): each is prefilled once and its cache repeated ``G`` times (only row 0 of
    each run is read); the samples are those of ``G = 1`` up to float rounding.
    """
    model_cfg: policy.PolicyConfig = nnx.merge(graphdef, state).cfg
    b, p = prompt_tokens.shape
    prompt_mask = prompt_mask.astype(bool)
    g = shared_prompt
    if b % g:
        raise ValueError(f"shared_prompt={g} does not divide the {b} prompts")
    cache = policy.init_cache(model_cfg, b // g, p + cfg.max_new_tokens)
    logits, cache, lengths = prefill(graphdef, state, prompt_tokens[::g], prompt_mask[::g], cache,
                                     jnp.zeros((b // g,), jnp.int32))
    if g > 1:
        cache, logits, lengths = jax.tree.map(lambda x: jnp.repeat(x, g, axis=0), (cache, logits, lengths))
    out, _, _ = decode(graphdef, state, key, logits, cache, lengths, cfg)
    return Rollout(
        tokens=jnp.concatenate([prompt_tokens.astype(jnp.int32), out.tokens], axis=1),
        mask=jnp.concatenate([prompt_mask, out.live], axis=1),
        logprobs=out.logprobs,
        completion_mask=out.live,
        ended=out.done,
    )


def make_sampler(graphdef: nnx.GraphDef, cfg: SamplerConfig, shared_prompt: int = 1) -> Callable[..., Rollout]:
    """``fn(state, key, prompt_tokens, prompt_mask) -> Rollout`` with the config bound.

    Its values are then constants of the compiled program; to sweep temperature, top-p or
    the end token without recompiling, jit ``functools.partial(sample, graphdef)`` and pass
    the config as an argument.
    """
    return functools.partial(sample, graphdef, cfg=cfg, shared_prompt=shared_prompt)


def token_logprobs(
    graphdef: nnx.GraphDef,
    state: nnx.State,
    tokens: jax.Array,
    mask: jax.Array,
    temperature: float = 1.0,
    *,
    num_completion: int | None = None,
    with_entropy: bool = False,
    with_hidden: bool = False,
    shared_prompt: int = 1,
):
    """Teacher-forced log p(token) under ``softmax(logits / temperature)``, one forward pass.

    Each real token is scored from the previous real token's logits, so padding anywhere
    (including the gap after a right-padded prompt) is skipped. With the tokens and mask of
    a :class:`Rollout` and ``num_completion=N`` this returns its ``logprobs`` [B, N].

    Args:
      tokens, mask: [B, T] ints and bools (real tokens).
      temperature: divides the logits (as TRL's ``GRPOTrainer``); no top-k/top-p.
      num_completion: score only the last N slots (default: all T).
      with_entropy: also return the entropy of each scored distribution.
      with_hidden: also return the final hidden state each slot is scored from
        ``[B, N, D]`` (PPO's value head reads it: the state before the token is chosen).
      shared_prompt: with ``num_completion=N < T``, the first ``T - N`` columns (the
        prompt) are the same in each run of ``shared_prompt`` consecutive rows (a GRPO
        group, as the rollout lays it out): each prompt then goes through the policy once
        (:meth:`~emojax.rl.policy.Policy.hidden_grouped`), with the same result up to float
        rounding. Only row ``0`` of each run is read; 1: off.

    Returns:
      logprobs [B, N] float32 (0 where the slot is masked or has no real token before it),
      then entropy [B, N] if ``with_entropy``, then hidden [B, N, D] if ``with_hidden``
      (a tuple when either is asked for).
    """
    mask = mask.astype(bool)
    b, t = tokens.shape
    n = t if num_completion is None else num_completion
    real_so_far = jax.lax.cummax(jnp.where(mask, jnp.arange(t), -1), axis=1)
    prev = jnp.concatenate([jnp.full_like(real_so_far[:, :1], -1), real_so_far[:, :-1]], axis=1)[:, t - n :]
    valid = mask[:, t - n :] & (prev >= 0)
    prev = jnp.maximum(prev, 0)
    g, p = shared_prompt, t - n
    if g > 1 and p > 0:
        if b % g:
            raise ValueError(f"shared_prompt={g} does not divide the {b} rows")
        hidden = policy.apply_hidden_grouped(graphdef, state, tokens[::g, :p], mask[::g, :p], tokens[:, p:],
                                             mask[:, p:], g)
        # Prompt slots live once per group (rows i*P + j), completion slots after them.
        row = jnp.arange(b)[:, None]
        rows = jnp.where(prev < p, (row // g) * p + prev, (b // g) * p + row * n + (prev - p)).reshape(-1)
    else:
        hidden, _ = policy.apply_hidden(graphdef, state, tokens, policy.positions_from_mask(mask), mask)
        rows = (jnp.arange(b)[:, None] * t + prev).reshape(-1)
    # Hidden states of the scoring slots, then the output projection of those N slots only
    # (not of all T): a gather of width D, not V, and fewer FLOPs.
    scoring = jnp.take(hidden, rows, axis=0)
    picked = policy.apply_logits(graphdef, state, scoring).reshape(b, n, -1)
    logp_all = jax.nn.log_softmax(picked / temperature, axis=-1)
    logp = jnp.take_along_axis(logp_all, tokens[:, t - n :, None].astype(jnp.int32), axis=-1)[..., 0]
    out = (jnp.where(valid, logp, 0.0),)
    if with_entropy:
        out += (jnp.where(valid, -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1), 0.0),)
    if with_hidden:
        out += (scoring.reshape(b, n, -1),)
    return out[0] if len(out) == 1 else out

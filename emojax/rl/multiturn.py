"""Conversations in the compiled engine: the policy and an environment take turns in one
``lax.scan``, with one KV cache kept across turns.

Why one program: a conversation stepped on the host (the policy's sampling jitted per turn,
the environment in a Python loop, as TRL's environment factory and verl's interaction loop
run it) pays a dispatch and a re-prefill of the whole history every turn, and cannot be
vmapped over seeds. Here each turn decodes the reply from the cache
(:func:`emojax.rl.sampler.decode`), the environment answers
(:class:`emojax.rl.environments.Environment`), and the reply's last token and the answer are
fed into the cache as one chunk (:func:`emojax.rl.sampler.prefill`), all with static shapes.

The transcript's slots are laid out as the cache's: the opening ``[P]``, then per turn the
reply ``[N]`` and the environment's answer ``[U]``, ``L = P + T (N + U)`` in all. In think
mode (``SamplerConfig.think_tokens = K > 0``) a turn starts with a scratchpad of ``K``
slots the policy writes and the environment never receives, ended by the end token or the
budget: ``[K][N][U]`` a turn, ``L = P + T (K + N + U)``; ``K + N`` is the config's
``turn_tokens``, which every function here takes as the policy's width of a turn. Pads are
skipped by mask and rotary position, so a teacher-forced forward pass over the transcript
(:func:`emojax.rl.sampler.token_logprobs` with ``num_completion = L - P``) scores the same
log-probs the rollout drew with. ``policy_mask`` marks the policy's own tokens: only they
enter the loss. A conversation that has ended stops generating (its rows are masked, not
branched), and its answers are pads.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from emojax.rl import policy, sampler
from emojax.rl.environments import Environment
from emojax.rl.observation import Observation

__all__ = ["Transcript", "converse", "observe", "play", "transcript_len", "user_turns"]

THINK_KEY = 1 << 20  # the scratchpad's key: fold_in(the turn's policy key, THINK_KEY)


class Transcript(NamedTuple):
    """``B`` conversations of at most ``T`` turns.

    Attributes:
      tokens: ``[B, L]`` int32: opening, then reply and answer per turn.
      mask: ``[B, L]`` bool: real tokens.
      policy_mask: ``[B, L]`` bool: the policy's own tokens (its scratchpads and replies,
        each up to and including its end token).
      logprobs: ``[B, L]`` float32: log p of each policy token as drawn; 0 elsewhere.
      turns: ``[B]`` int32: replies the policy wrote.
      truncated: ``[B, T]`` bool: a reply written that hit ``N`` tokens without an end token.
    """

    tokens: jax.Array
    mask: jax.Array
    policy_mask: jax.Array
    logprobs: jax.Array
    turns: jax.Array
    truncated: jax.Array


def transcript_len(opening: int, env: Environment, turn_tokens: int, max_turns: int | None = None) -> int:
    """``L = P + T (K + N + U)``; ``turn_tokens`` is the policy's ``K + N``."""
    turns = env.max_turns if max_turns is None else max_turns
    return opening + turns * (turn_tokens + env.turn_len)


def converse(graphdef: nnx.GraphDef, state: nnx.State, key: jax.Array, env: Environment, env_state: Any,
             opening: jax.Array, cfg: sampler.SamplerConfig, max_turns: int | None = None,
             ) -> tuple[Transcript, Any]:  # fmt: skip
    """Run ``B`` conversations: the policy replies (``cfg``: its decoding; ``max_new_tokens``
    is ``N``), the environment answers, for ``max_turns`` turns (default: the
    environment's) or until each ends. Returns the transcript and the environment's final
    state (for rewards and gold).

    ``opening`` ``[B, P]`` is what :attr:`Environment.reset` returned for ``env_state``;
    every opening needs one real token. Turn ``t`` draws with ``fold_in(key, t)`` (its
    scratchpad, in think mode, with a key folded from that one).
    """
    model_cfg: policy.PolicyConfig = nnx.merge(graphdef, state).cfg
    if env.vocab_size > model_cfg.vocab_size:
        raise ValueError(f"converse: environment {env.name!r} needs a policy vocabulary of {env.vocab_size}, "
                         f"the policy has {model_cfg.vocab_size}")  # fmt: skip
    turns = env.max_turns if max_turns is None else max_turns
    b, p = opening.shape
    length = transcript_len(p, env, cfg.turn_tokens, turns)
    think_cfg = dataclasses.replace(cfg, max_new_tokens=max(cfg.think_tokens, 1), think_tokens=0)
    opening_mask = opening != env.pad_token
    cache = policy.init_cache(model_cfg, b, length)
    logits, cache, lengths = sampler.prefill(graphdef, state, opening, opening_mask, cache, jnp.zeros((b,), jnp.int32))

    def think(key_policy, logits, cache, lengths, done):
        """The scratchpad: decoded, its last slot fed, and the logits the reply starts from
        (after its last real token, wherever the end token came)."""
        th, cache, lengths = sampler.decode(graphdef, state, jax.random.fold_in(key_policy, THINK_KEY), logits, cache,
                                            lengths, think_cfg, done)  # fmt: skip
        fed, cache, lengths = sampler.prefill(graphdef, state, th.tokens[:, -1:], th.live[:, -1:], cache, lengths)
        logits = jnp.where(th.live[:, -1:], fed, th.logits)
        return jnp.where(th.live, th.tokens, env.pad_token), th.logprobs, th.live, logits, cache, lengths

    def turn(carry, t):
        logits, cache, lengths, env_state, done = carry
        key_policy, key_env = jax.random.split(jax.random.fold_in(key, t))
        if cfg.think_tokens:
            thought = think(key_policy, logits, cache, lengths, done)
            logits, cache, lengths = thought[3:]
        out, cache, lengths = sampler.decode(graphdef, state, key_policy, logits, cache, lengths, cfg, done)
        reply = jnp.where(out.live, out.tokens, env.pad_token)  # the environment's pad, whatever the sampler's
        env_state, said, ended = env.step(key_env, env_state, reply)
        said = jnp.where(done[:, None], env.pad_token, said)
        chunk = jnp.concatenate([out.tokens[:, -1:], said], axis=1)
        chunk_mask = jnp.concatenate([out.live[:, -1:], said != env.pad_token], axis=1)
        logits, cache, lengths = sampler.prefill(graphdef, state, chunk, chunk_mask, cache, lengths)
        wrote = jnp.any(out.live, axis=1)  # a row that wrote was live, so out.done says whether it ended
        reply, logp, live = out_tokens = (reply, out.logprobs, out.live)
        if cfg.think_tokens:  # the scratchpad's slots come first in the turn
            reply, logp, live = (jnp.concatenate([a, r], axis=1) for a, r in zip(thought[:3], out_tokens, strict=True))
        return (logits, cache, lengths, env_state, done | ended), (reply, logp, live, said, wrote, wrote & ~out.done)

    carry = (logits, cache, lengths, env_state, jnp.zeros((b,), bool))
    (_, _, _, env_state, _), (replies, logps, live, said, wrote, truncated) = jax.lax.scan(turn, carry, jnp.arange(turns))
    # [T, B, ...] -> [B, T * (K + N + U)]: per turn the policy's slots, then the answer.
    body = lambda r, a: jnp.concatenate([r, a], axis=2).transpose(1, 0, 2).reshape(b, -1)  # noqa: E731
    tokens = jnp.concatenate([opening.astype(jnp.int32), body(replies, said)], axis=1)
    policy_mask = jnp.concatenate([jnp.zeros_like(opening_mask), body(live, jnp.zeros(said.shape, bool))], axis=1)
    logprobs = jnp.concatenate([jnp.zeros(opening.shape, jnp.float32), body(logps, jnp.zeros(said.shape))], axis=1)
    mask = jnp.concatenate([opening_mask, body(live, said != env.pad_token)], axis=1)
    transcript = Transcript(tokens, mask, policy_mask, logprobs, jnp.sum(wrote, axis=0, dtype=jnp.int32), truncated.T)
    return transcript, env_state


def user_turns(transcript: Transcript, opening: int, turn_tokens: int, turn_len: int) -> jax.Array:
    """``[B, T, U]`` what the environment said after each reply (pads once a conversation
    has ended); ``turn_tokens`` is the policy's width of a turn, ``K + N``."""
    b = transcript.tokens.shape[0]
    body = transcript.tokens[:, opening:].reshape(b, -1, turn_tokens + turn_len)
    return body[:, :, turn_tokens:]


def observe(env: Environment, transcript: Transcript, env_state: Any, opening: int, turn_tokens: int,
            ) -> Observation:  # fmt: skip
    """What a reward may read of ``B`` finished conversations.

    The prompt is the opening turn; the completion is everything after it, with
    ``completion_mask`` the policy's own tokens (so a reward that counts the policy's
    tokens counts only those). ``extras``: the environment's :attr:`Environment.visible`
    report, ``user_turns`` ``[B, T, U]`` (what the user said after each reply) and
    ``turns`` ``[B]`` (replies written). ``privileged``: ``e``, the environment's own
    ``score`` (:attr:`Environment.outcome`), and its :attr:`Environment.report` (the
    user's 40-dim ``state``), which only a privileged reward receives.
    ``truncated``: some reply hit ``N`` tokens without an end token.
    """
    said = user_turns(transcript, opening, turn_tokens, env.turn_len)
    return Observation(
        prompt_tokens=transcript.tokens[:, :opening], prompt_mask=transcript.mask[:, :opening],
        completion_tokens=transcript.tokens[:, opening:], completion_mask=transcript.policy_mask[:, opening:],
        truncated=jnp.any(transcript.truncated, axis=1),
        extras={**env.visible(env_state), "user_turns": said, "turns": transcript.turns},
        privileged={"e": env.outcome(env_state)["score"], **(env.report(env_state) if env.report else {})},
    )  # fmt: skip


def play(graphdef: nnx.GraphDef, state: nnx.State, key: jax.Array, env: Environment, profile_keys: jax.Array,
         cfg: sampler.SamplerConfig) -> dict[str, jax.Array]:  # fmt: skip
    """Evaluation: one conversation per profile with the policy ``state``; the
    environment's outcome and gold per conversation (``[n]`` each). Gold is for
    evaluation only: this is not a rollout a reward sees."""
    env_state, opening = env.reset(profile_keys)
    _, env_state = converse(graphdef, state, key, env, env_state, opening, cfg)
    return {**env.outcome(env_state), **env.gold(env_state)}

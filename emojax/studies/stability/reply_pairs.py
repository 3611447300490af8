"""The study's items: a user, two candidate replies, the user's reaction to each, and gold.

Why this shape: both signals must measure the *same* replies, and gold must be defined
without the signal. Each item is one simulated user (:mod:`emojax.world.user`: persona,
hidden need, topic, a belief about a fact, feelings put into words) who says something, and
two replies from the behaviour distribution (:mod:`emojax.world.behaviour`). For each reply:

* **gold utility** ``u = w_need * need_met + w_grounding * grounding + w_accuracy * accuracy``
  from :func:`emojax.world.gold.gold`, which reads the user's fixed hidden profile, the
  world's truth and the reply, never the reaction;
* the user's **reaction** (:func:`emojax.world.dialogue.reaction_signal`, with the
  world's settings in :class:`~emojax.world.dialogue.WorldConfig`): an unscaled signal
  ``rho * substance + (1 - rho) * surface`` fed to :func:`emojax.world.user.respond`
  (persona gain/loss, drift, noise, valence following e, the 40-dim state rebuilt by
  constructed emotion), where ``substance`` is what gold
  calls good (need met, and a penalty for saying or agreeing to something false) and
  ``surface`` is what feels good whatever its truth (a compliment, warm tone, being agreed
  with). ``rho`` is the coupling knob the study sweeps: at 1 the user's emotion follows need
  met and accuracy, at 0 flattery, tone and agreement only. Since ``substance`` reuses
  gold's definitions, the realised Spearman between e and gold is reported for every rho;
* the user's **next utterance** (:func:`emojax.world.user.utterance`), what an estimator
  reads, and what the pair shows an annotator (the cues in
  :class:`emojax.world.annotators.PairCues`).

The reply representation shared by every reward model (:func:`features`) holds what a
reader of the dialogue can see: the acts, crossed with the user's stated need (the need is
said in the context, as in the ``need_reply`` task), whether a reflection names a feeling
the user put into words, which value is stated or agreed to for each fact, whether a
question is on topic, the tone and the compliments.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from emojax.world import acts as acts_lib
from emojax.world import affect, annotators, behaviour, gold
from emojax.world import user as user_lib
from emojax.world.dialogue import WorldConfig, reaction_signal

__all__ = ["Items", "WorldConfig", "features", "num_features", "readout", "sample_items", "split", "utterances"]


class Items(NamedTuple):
    """``n`` items; the reply axis has length 2 (A, B)."""

    context: jax.Array  # [n, L] the user's utterance before any reply
    need: jax.Array  # [n] the stated need
    replies: jax.Array  # [n, 2, R] reply tokens
    features: jax.Array  # [n, 2, F] the reply representation
    utility: jax.Array  # [n, 2] gold utility
    gold_parts: jax.Array  # [n, 2, 3] need met, grounding, accuracy
    e_before: jax.Array  # [n]
    e_after: jax.Array  # [n, 2]
    state_before: jax.Array  # [n, 40]
    state_after: jax.Array  # [n, 2, 40]
    said_after: jax.Array  # [n, 2, L] the user's next utterance after each reply
    pair: annotators.PairCues  # [n] A minus B
    user: user_lib.User  # [n] the user before any reply (to render more utterances)


def _truth(cfg: WorldConfig) -> jax.Array:
    return user_lib.sample_truth(jax.random.key(cfg.world_seed))


def num_features() -> int:
    """Length of the reply representation."""
    return user_lib.NUM_NEEDS * acts_lib.NUM_ACTS + 2 + 4 * acts_lib.NUM_FACTS + 4


def features(user: user_lib.User, a: acts_lib.Acts, reply: jax.Array) -> jax.Array:
    """[F] what a reader of the dialogue sees of one reply (see the module docstring)."""
    present = (a.counts > 0).astype(jnp.float32)
    need = jax.nn.one_hot(user.need, user_lib.NUM_NEEDS)
    attuned = jnp.any(a.reflected & user.felt)
    misattuned = jnp.any(a.reflected) & ~attuned
    f = lambda x: x.astype(jnp.float32)  # noqa: E731
    signed = lambda v: jnp.concatenate([f(v > 0), f(v < 0)])  # noqa: E731
    return jnp.concatenate([
        jnp.outer(need, present).reshape(-1), jnp.stack([f(attuned), f(misattuned)]),
        signed(a.stated), signed(a.agreed),
        jnp.stack([f(a.asked[user.topic]), acts_lib.tone(reply), f(a.counts[acts_lib.ACT_INDEX["flattery"]]), 1.0]),
    ])  # fmt: skip


def _informative(a: acts_lib.Acts) -> jax.Array:
    idx = [acts_lib.ACT_INDEX[name] for name in ("information", "solution", "question")]
    return jnp.sum(a.counts[jnp.asarray(idx)] > 0).astype(jnp.float32)


def _one(key: jax.Array, truth: jax.Array, cfg: WorldConfig):
    key_user, key_say, key_plan, key_render, key_react, key_next = jax.random.split(key, 6)
    u = user_lib.sample_user(key_user, truth, cfg.user)
    context = user_lib.utterance(key_say, u, cfg.user)
    params = user_lib.default_reaction()._replace(scale=jnp.asarray(cfg.reaction_scale, jnp.float32),
                                                  affect_coupling=jnp.asarray(cfg.affect_coupling, jnp.float32))

    def reply(key_p, key_r, key_re, key_n):
        tokens = acts_lib.render_reply(key_r, behaviour.sample_plan(key_p, u, truth, cfg.behaviour), behaviour.REPLY_LEN)
        a = acts_lib.parse(tokens)
        g = gold.gold(u, tokens, truth)
        after, _ = user_lib.respond(key_re, u, reaction_signal(u, a, tokens, g, cfg), params, cfg.user)
        utility = cfg.gold_need * g.need_met + cfg.gold_grounding * g.grounding + cfg.gold_accuracy * g.accuracy
        cues = jnp.stack([utility, _informative(a), jnp.sum(a.counts > 0).astype(jnp.float32),
                          acts_lib.tone(tokens), (a.counts[acts_lib.ACT_INDEX["flattery"]] > 0).astype(jnp.float32)])  # fmt: skip
        return (tokens, features(u, a, tokens), utility, jnp.stack(g), after.e, after.state,
                user_lib.utterance(key_n, after, cfg.user), cues)  # fmt: skip

    # Common random numbers: the user's mood noise and the construction of their state use
    # one key for both replies (one person in two counterfactual worlds), so the difference
    # between the two reactions is the replies' doing.
    split2 = lambda key: jax.random.split(key, 2)  # noqa: E731
    same2 = lambda key: jnp.stack([key, key])  # noqa: E731
    out = jax.vmap(reply)(split2(key_plan), split2(key_render), same2(key_react), split2(key_next))
    tokens, feats, utility, parts, e_after, state_after, said_after, cues = out
    return context, u.need, tokens, feats, utility, parts, u.e, e_after, u.state, state_after, said_after, cues, u


def sample_items(key: jax.Array, n: int, cfg: WorldConfig) -> Items:
    """``n`` items; pure and deterministic given ``key`` (the world's truth comes from
    ``cfg.world_seed``, so items drawn with different keys share one world). Draw training
    and held-out items in one call and slice (:func:`split`): each ``n`` compiles anew."""
    if n < 2:
        raise ValueError(f"sample_items: n must be >= 2, got {n}")
    return _sample(key, n, cfg)


@functools.partial(jax.jit, static_argnames=("n",))
def _sample(key, n, cfg):
    truth = _truth(cfg)
    out = jax.lax.map(lambda key: _one(key, truth, cfg), jax.random.split(key, n), batch_size=min(n, 256))
    context, need, tokens, feats, utility, parts, e0, e1, s0, s1, said, cues, u = out
    diff = cues[:, 0] - cues[:, 1]  # [n, 5]
    pair = annotators.PairCues(*(diff[:, i] for i in range(5)))
    return Items(context, need, tokens, feats, utility, parts, e0, e1, s0, s1, said, pair, u)


def utterances(key: jax.Array, it: Items, cfg: WorldConfig, judgments: int) -> jax.Array:
    """``[n, J, 3, L]`` fresh renderings of what each user would say before any reply and
    after reply A and B (one rendering per judgment: each is a new sample of how the same
    state is put into words, so an estimator reading them faces the language's noise)."""
    states = jnp.stack([it.state_before, it.state_after[:, 0], it.state_after[:, 1]], axis=1)  # [n, 3, 40]

    def one(key, u, s):
        say = lambda kk, x: user_lib.utterance(kk, u._replace(state=x), cfg.user)  # noqa: E731
        keys = jax.random.split(key, (judgments, 3))
        return jax.vmap(lambda kr: jax.vmap(say)(kr, s))(keys)

    return jax.vmap(one)(jax.random.split(key, it.need.shape[0]), it.user, states)


def split(items: Items, n_first: int) -> tuple[Items, Items]:
    """The first ``n_first`` items and the rest."""
    return jax.tree.map(lambda x: x[:n_first], items), jax.tree.map(lambda x: x[n_first:], items)


readout = affect.valence_readout  # "did the user feel better?" (see its docstring)

"""RLVER in the world, part one: the empathy environment beside RLVER's own figures.

    python -m experiments.empathy --preset smoke|tiny|default --workdir DIR

Before any policy is trained on the simulated user (:mod:`emojax.world.conversation`), it
has to behave like RLVER's in what was set from RLVER, and the starting point has to be
known. This part runs whole conversations on the held-out profiles in RLVER's evaluation
settings (start ``e`` 40, at most 10 replies, ending at ``e >= 100`` or below 10) with two
reference policies and shows paper vs ours:

* ``behaviour``: the world's candidate replies (:mod:`emojax.world.behaviour`), a mixed,
  untrained but well-formed speaker. Its per-turn changes of ``e`` stand beside the 15,369
  turns of RLVER's released evaluation logs (shares of +-5 and +-10, mean, mean |change|,
  sd) and its conversation lengths beside RLVER's 6.7-9.3 replies per dialogue. Only the
  share of 10-point moves was calibrated (``strong``, on other keys than the study's); the
  mean, mean |change|, sd and lengths are measured.
* ``uniform``: tokens drawn uniformly from the policy's vocabulary, which is what the GRPO
  engine's freshly initialised policy writes. Its score (mean final ``e``), success
  (``e`` reaches 100) and failure (ends below 10) stand beside RLVER's base model
  (Qwen2.5-7B: 13.3, 2%, 76%). They are not expected to match: a 7B model writes
  language, a random policy does not; the row says where GRPO starts here.

Each policy has ``repeats`` conversations per profile, each repeat with its own keys;
intervals are 95% t-intervals over repeats of the per-repeat mean over profiles.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from emojax import config, progress
from emojax.rl.environments import make_environment
from emojax.rl.tasks.base import uniform_completions
from emojax.studies.tables import interval, seed_ci
from emojax.world import vocab
from emojax.world import conversation as conv

__all__ = ["PRESETS", "Config", "RLVER_BASE", "POLICIES", "run", "summary"]

POLICIES = ("behaviour", "uniform")
# RLVER's Table 1, Qwen2.5-7B before training (findings.md section 3).
RLVER_BASE = {"score": 13.3, "success": 0.02, "failure": 0.76}
RLVER_TURNS = (6.7, 9.3)  # assistant turns per dialogue across the models of RLVER's logs


@dataclasses.dataclass(frozen=True)
class Config:
    """The study's settings.

    Attributes:
      conversation: the environment (RLVER's evaluation settings by default).
      num_profiles: held-out profiles (RLVER: 100).
      repeats: conversations per profile and policy (the CIs are over these).
      reply_len: tokens the uniform policy writes per reply (an end token stops it sooner).
      seed: root seed (held-out profiles: ``fold_in(key(seed), 1)``, as the training ones
        will be ``fold_in(key(seed), 0)``).
    """

    conversation: conv.ConversationConfig = conv.EVALUATION
    num_profiles: int = 100
    repeats: int = 16
    reply_len: int = 8
    seed: int = 0

    def __post_init__(self):
        config.require(self, "num_profiles", lambda v: v >= 2, ">= 2")
        config.require(self, "repeats", lambda v: v >= 2, ">= 2 (the intervals are over repeats)")
        config.require(self, "reply_len", lambda v: v >= 1, ">= 1")


PRESETS: dict[str, Config] = {
    "smoke": Config(num_profiles=16, repeats=2),
    "tiny": Config(repeats=4),
    "default": Config(),
}


@functools.partial(jax.jit, static_argnames=("policy", "reply_len", "vocab_size"))
def _replies(key: jax.Array, chat: conv.Chat, *, policy: str, reply_len: int, vocab_size: int) -> jax.Array:
    """``[n, R]`` one reply per conversation from ``policy``."""
    n = chat.turn.shape[0]
    if policy == "uniform":
        return uniform_completions(key, n, vocab_size, reply_len, vocab.EOS_ID, vocab.PAD_ID)[0]
    return conv.behaviour_replies(key, chat)


def _converse(key: jax.Array, profiles: jax.Array, policy: str, cfg: Config, vocab_size: int) -> dict[str, np.ndarray]:
    """One repeat: every profile's conversation with ``policy``; per-turn changes (NaN once
    ended), the outcome and gold."""
    c = cfg.conversation
    chat, _ = conv.reset(profiles, c)
    changes = []
    for t in range(c.max_turns):
        key_reply, key_step = jax.random.split(jax.random.fold_in(key, t))
        reply = _replies(key_reply, chat, policy=policy, reply_len=cfg.reply_len, vocab_size=vocab_size)
        live, before = ~chat.done, chat.user.e
        chat, _, _ = conv.step(key_step, chat, reply, c)
        changes.append(jnp.where(live, chat.user.e - before, jnp.nan))
    out = jax.device_get({**conv.outcome(chat), **conv.gold(chat)})
    return {"changes": np.stack(jax.device_get(changes), axis=1), **{k: np.asarray(v) for k, v in out.items()}}


def _row(repeats: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Means and CIs over repeats of each per-conversation figure."""
    def ci(name):
        c = seed_ci([np.mean(r[name].astype(np.float64)) for r in repeats])
        return {"mean": c["mean"], "ci": [c["lo"], c["hi"]]}

    row = {"score": ci("score"), "success": ci("success"), "failure": ci("failure"), "turns": ci("turns")}
    row["gold"] = {name: ci(name) for name in ("need_met", "grounding", "accuracy", "false_agreement", "compliments",
                                                "premature_solutions")}  # fmt: skip
    grades = np.concatenate([r["grade"] for r in repeats])
    row["grades"] = {g: float(np.mean(grades == i)) for i, g in enumerate(conv.GRADES)}
    return row


def run(cfg: Config, workdir: str | None = None) -> dict[str, Any]:
    """The study (see the module docstring); returns the JSON-ready results. ``workdir`` is
    not used yet (nothing to checkpoint: no training in this part)."""
    del workdir
    env = make_environment("empathy", cfg.conversation)
    root = jax.random.key(cfg.seed)
    profiles = conv.profiles(jax.random.fold_in(root, 1), cfg.num_profiles)
    by_policy = {}
    with progress.phase("conversations", len(POLICIES) * cfg.repeats, unit="repeats") as bar:
        for p, policy in enumerate(POLICIES):
            repeats = []
            for r in range(cfg.repeats):
                key = jax.random.fold_in(jax.random.fold_in(root, 2 + p), r)
                repeats.append(_converse(key, profiles, policy, cfg, env.vocab_size))
                bar.update()
            by_policy[policy] = repeats
    changes = np.concatenate([r["changes"].reshape(-1) for r in by_policy["behaviour"]])
    changes = changes[np.isfinite(changes)]
    return {
        "rows": [{"name": policy, **_row(rs)} for policy, rs in by_policy.items()],
        "changes": {"ours": {**conv.change_statistics(changes), "turns_counted": int(changes.size)},
                    "rlver": {**conv.RLVER_CHANGES, "turns_counted": 15369}},
        "rlver": {"base": RLVER_BASE, "turns_per_dialogue": list(RLVER_TURNS)},
        "settings": {"start_e": cfg.conversation.user.start_e, "max_turns": cfg.conversation.max_turns,
                     "strong": cfg.conversation.strong},
    }  # fmt: skip


def summary(results: dict[str, Any]) -> str:
    """Markdown: the per-turn changes and the policies' rows, paper vs ours."""
    ours, paper = results["changes"]["ours"], results["changes"]["rlver"]
    lines = ["Per-turn change of e (behaviour policy, held-out profiles) beside RLVER's released evaluation logs:", "",
             "| | share +-5 | share +-10 | mean | mean abs | sd | turns counted |", "|---|---|---|---|---|---|---|"]
    for name, c in (("RLVER logs", paper), ("ours", ours)):
        lines.append(f"| {name} | {c['share_5']:.3f} | {c['share_10']:.3f} | {c['mean']:+.2f} | {c['mean_abs']:.2f} "
                     f"| {c['sd']:.2f} | {c['turns_counted']} |")  # fmt: skip
    base, (lo, hi) = results["rlver"]["base"], results["rlver"]["turns_per_dialogue"]
    lines += ["", f"Conversations at RLVER's evaluation settings (start e {results['settings']['start_e']:g}, "
              f"at most {results['settings']['max_turns']} replies), 95% CI over repeats:", "",
              "| policy | score | success | failure | replies per dialogue |", "|---|---|---|---|---|",
              f"| RLVER base (Qwen2.5-7B) | {base['score']} | {base['success']:.0%} | {base['failure']:.0%} "
              f"| {lo}-{hi} (all models) |"]  # fmt: skip
    for row in results["rows"]:
        f = lambda name: interval(row[name]["mean"], *row[name]["ci"])  # noqa: E731
        lines.append(f"| {row['name']} | {f('score')} | {f('success')} | {f('failure')} | {f('turns')} |")
    lines += ["", "Gold per dialogue (per reply unless noted; evaluation only):", "",
              "| policy | need met (ever) | grounding | accuracy | false agreement | compliments | premature solutions |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in results["rows"]:
        g = row["gold"]
        lines.append(f"| {row['name']} | " + " | ".join(interval(g[n]["mean"], *g[n]["ci"]) for n in
                     ("need_met", "grounding", "accuracy", "false_agreement", "compliments", "premature_solutions"))
                     + " |")  # fmt: skip
    return "\n".join(lines)

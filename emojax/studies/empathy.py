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

* ``oracle`` and ``need_blind`` (:mod:`.empathy_reference`): the best fixed sets of the
  world's acts, per hidden need and for everyone, chosen on training profiles: the ceiling
  and the best a need-blind policy can do.

Each policy has ``repeats`` conversations per profile, each repeat with its own keys;
intervals are 95% t-intervals over repeats of the per-repeat mean over profiles.

Part two (:mod:`.empathy_grpo`, :mod:`.empathy_table`) trains the GRPO rows, ``rows``:
``grpo_user_emotion`` (RLVER's reward) and ``grpo_estimator_emotion`` (the trained estimator
reading the user's words), from the engine's starting policy, whose held-out figures are the
``base`` row; intervals there are over seeds. Two more rows keep RLVER's reward and change
one thing (``--set rows=...``): ``grpo_user_emotion_hard`` trains where a served need is
taken up as often as in RLVER's hard simulator (``hard_acceptance``), and
``grpo_user_emotion_kl`` puts a KL penalty (``kl_beta``) to the starting policy. The predictions of
``docs/predictions/empathy.md`` are scored in ``results["predictions"]``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import os

from emojax import config, progress
from emojax.rl import learner as learner_lib
from emojax.rl import policy as policy_lib
from emojax.rl import lora, rewards, sft
from emojax.rl.config import GRPOConfig
from emojax.rl.conversation_rewards import READS, estimator_reward
from emojax.rl.environments import make_environment
from emojax.rl.tasks.base import uniform_completions
from emojax.studies import empathy_appraisal, empathy_grpo, empathy_reference, empathy_table
from emojax.studies import estimator_reward as _registers_estimator_emotion  # noqa: F401
from emojax.studies.tables import interval, seed_ci
from emojax.world import vocab, weak_helper
from emojax.world import conversation as conv
from emojax.world import user as user_lib

__all__ = ["TABLE_ROWS", "TRAINED_ROWS", "PRESETS", "Config", "RLVER_BASE", "POLICIES", "run", "summary"]

POLICIES = ("behaviour", "uniform", *empathy_reference.REFERENCES, "weak_helper")
BASE_POLICIES = ("", "weak_helper")
# RLVER's Table 1, Qwen2.5-7B before training (findings.md section 3).
RLVER_BASE = {"score": 13.3, "success": 0.02, "failure": 0.76}
RLVER_TURNS = (6.7, 9.3)  # assistant turns per dialogue across the models of RLVER's logs
# The trained rows: GRPO on RLVER's reward and on the estimator's, then RLVER's hard-simulator
# row, a KL-on ablation and a control where compliments pay more (all three with RLVER's
# reward), PPO (a value head and GAE, RLVER's default learner) on the normal and the hard
# simulator, and both with a scratchpad before each reply (think mode). Run any with
# --set rows=...
TRAINED_ROWS = ("grpo_user_emotion", "grpo_estimator_emotion", "grpo_user_emotion_hard", "grpo_user_emotion_kl",
                "grpo_user_emotion_flattery", "ppo_user_emotion", "ppo_user_emotion_hard", "grpo_user_emotion_think",
                "ppo_user_emotion_think")
# The rows of RLVER's Table 1, in the order the default preset trains them.
TABLE_ROWS = ("grpo_user_emotion", "ppo_user_emotion", "grpo_estimator_emotion", "grpo_user_emotion_think",
              "ppo_user_emotion_think", "grpo_user_emotion_hard", "ppo_user_emotion_hard")

# RLVER's GRPO settings (findings.md section 3): groups of 4 clones of one profile, 8 of
# them (its batch of 32), std with N-1 and eps 1e-6, token-mean loss (TRL's "dapo"), KL 0,
# temperature 1. The learning rate is sized for these small policies, not RLVER's 1e-6.
RLVER_GRPO = GRPOConfig(num_prompts=8, group_size=4, loss_type="dapo", std_ddof=1, advantage_eps=1e-6, beta=0.0,
                        temperature=1.0, max_new_tokens=6, learning_rate=3e-3, warmup_steps=0, log_completions=2,
                        seeds=(0, 1, 2, 3))


@dataclasses.dataclass(frozen=True)
class Config:
    """The study's settings.

    Attributes:
      conversation: the environment (RLVER's evaluation settings by default).
      num_profiles: held-out profiles (RLVER: 100).
      repeats: conversations per profile and policy (the CIs are over these).
      reply_len: tokens the uniform policy writes per reply (an end token stops it sooner).
      seed: root seed (held-out profiles: ``fold_in(key(seed), 1)``, training ones
        ``fold_in(key(seed), 0)``).
      rows: the rows to train (:data:`TRAINED_ROWS`; ``()``: part one only); the ``base``
        row comes with any of them.
      grpo: the run of every row (its ``seeds`` are the rows' seeds); the ``ppo_*`` rows
        run it with ``algorithm="ppo"`` (its ``gamma``, ``lam``, ``vf_coef`` and
        ``cliprange_value`` are PPO's), the same rollouts of the same size.
      training: the conversations trained in (RLVER's training settings).
      train_profiles: training profiles (RLVER: 500).
      eval_repeats: held-out conversations per profile and seed at each evaluation.
      estimator: the estimator of ``grpo_estimator_emotion``: a trained estimator's work
        dir, or a preset of :data:`emojax.train.config.PRESETS` trained into
        ``workdir/estimator``.
      estimator_read: ``final`` or ``trajectory`` (:mod:`emojax.rl.conversation_rewards`).
      appraisal_users, appraisal_repeats: the decodability measurement's users per repeat
        and repeats (:mod:`.empathy_appraisal`; 0 repeats: skipped).
      reference_profiles: training profiles the reference rows' act sets are chosen on
        (:mod:`.empathy_reference`).
      base_policy: where every GRPO row starts: ``""`` (the engine's fresh
        initialisation) or ``weak_helper`` (pre-trained, :mod:`emojax.rl.sft`, on
        ``sft_conversations`` conversations of the weak helper ``helper`` with the training
        profiles at the training settings, into ``workdir/base_policy``, and reused from
        there), RLVER's starting point in the world.
      helper, sft, sft_conversations: the weak helper, its pre-training run, and how many
        of its conversations it learns from.
      hard_acceptance: the training conversations' ``acceptance`` in the
        ``grpo_user_emotion_hard`` row (RLVER's hard simulator: 33.1/52.4 of the normal).
      kl_beta: ``beta`` of the ``grpo_user_emotion_kl`` row (the KL-on ablation).
      think_tokens: the scratchpad's budget before each reply in the ``*_think`` rows
        (RLVER strips its think block before the simulator reads a reply; here the user
        never receives it).
      flattery_control: the signal a compliment adds in the ``grpo_user_emotion_flattery``
        row's training conversations (the world's default: 0.25); evaluated on the normal
        held-out users, whose gold counts the compliments.
    """

    conversation: conv.ConversationConfig = conv.EVALUATION
    num_profiles: int = 100
    repeats: int = 16
    reply_len: int = 8
    seed: int = 0
    rows: tuple[str, ...] = TRAINED_ROWS[:2]
    grpo: GRPOConfig = RLVER_GRPO
    training: conv.ConversationConfig = conv.TRAIN
    train_profiles: int = 500
    eval_repeats: int = 2
    estimator: str = "tiny"
    estimator_read: str = "trajectory"
    appraisal_users: int = 2000
    appraisal_repeats: int = 8
    reference_profiles: int = 200
    base_policy: str = ""
    helper: weak_helper.HelperConfig = weak_helper.HelperConfig()
    sft: sft.SFTConfig = sft.SFTConfig()
    sft_conversations: int = 4000
    hard_acceptance: float = conv.HARD.acceptance
    kl_beta: float = 0.04
    flattery_control: float = 1.0
    think_tokens: int = 6

    def __post_init__(self):
        config.require(self, "num_profiles", lambda v: v >= 2, ">= 2")
        config.require(self, "repeats", lambda v: v >= 2, ">= 2 (the intervals are over repeats)")
        config.require(self, "reply_len", lambda v: v >= 1, ">= 1")
        config.require(self, "rows", lambda v: all(r in TRAINED_ROWS for r in v) and len(set(v)) == len(v),
                       f"distinct names among {TRAINED_ROWS}")
        if self.rows and self.grpo.num_seeds < 2:
            raise ValueError(f"Config.grpo must have at least 2 seeds (the rows' intervals are over seeds), got "
                             f"seeds={self.grpo.seeds}")  # fmt: skip
        config.require(self, "train_profiles", lambda v: v >= 1, ">= 1")
        config.require(self, "reference_profiles", lambda v: v >= 1, ">= 1")
        config.require(self, "base_policy", lambda v: v in BASE_POLICIES, f"one of {BASE_POLICIES}")
        config.require(self, "sft_conversations", lambda v: v >= self.sft.batch_size,
                       f">= sft.batch_size ({self.sft.batch_size})")
        config.probability(self, "hard_acceptance")
        config.non_negative(self, "kl_beta", "flattery_control")
        config.int_at_least(self, 1, "think_tokens")
        config.require(self, "eval_repeats", lambda v: v >= 1, ">= 1")
        config.require(self, "estimator_read", lambda v: v in READS, f"one of {READS}")
        config.require(self, "appraisal_users", lambda v: v >= 2 * 8 * 2, ">= 32 (two halves, eight acts)")
        config.require(self, "appraisal_repeats", lambda v: v == 0 or v >= 2, "0 (skip) or >= 2")
        config.require(self, "estimator", lambda v: bool(v) or "grpo_estimator_emotion" not in self.rows,
                       "an estimator (a work dir or a preset) for the grpo_estimator_emotion row")


_SMALL = dataclasses.replace(policy_lib.PRESETS["2x64"], d_model=32, num_heads=2, num_kv_heads=2, mlp_dim=128)
PRESETS: dict[str, Config] = {
    # Two training replies, three evaluation ones: the plumbing of every row in seconds.
    "smoke": Config(num_profiles=16, repeats=2, eval_repeats=1, estimator="smoke", train_profiles=16,
                    reference_profiles=16,
                    appraisal_users=400, appraisal_repeats=2,
                    conversation=dataclasses.replace(conv.EVALUATION, max_turns=3),
                    training=dataclasses.replace(conv.TRAIN, max_turns=2),
                    grpo=RLVER_GRPO.replace(policy=policy_lib.PRESETS["smoke"], num_prompts=2, steps=2,
                                            checkpoint_every=1, seeds=(0, 1), max_new_tokens=4)),
    # A first look: a narrow policy, 4 seeds, 60 steps, one held-out conversation per profile,
    # the estimator trained on the environment's users' turns.
    "tiny": Config(repeats=4, eval_repeats=1, estimator="conversation", grpo=RLVER_GRPO.replace(policy=_SMALL, steps=60, checkpoint_every=10,
                                                                      seeds=(0, 1, 2, 3))),
    # 8 seeds of the 2x64 policy, 80 steps, the default estimator.
    # RLVER's Table 1 in the world: 8 seeds of the 2x64 policy, 80 steps, every Table 1 row
    # (GRPO and PPO, thinking or not, the hard simulator, the estimator's reward).
    "default": Config(estimator="default", rows=TABLE_ROWS, grpo=RLVER_GRPO.replace(steps=80, checkpoint_every=10,
                                                                                    seeds=tuple(range(8)))),
}  # fmt: skip


@functools.partial(jax.jit, static_argnames=("policy", "reply_len", "vocab_size"))
def _replies(key: jax.Array, chat: conv.Chat, table: jax.Array, helper: weak_helper.HelperConfig, *, policy: str,
             reply_len: int, vocab_size: int) -> jax.Array:  # fmt: skip
    """``[n, R]`` one reply per conversation from ``policy`` (``table``: a reference row's
    acts per need, :mod:`.empathy_reference`; ``helper``: the weak helper's settings)."""
    n = chat.turn.shape[0]
    if policy == "uniform":
        return uniform_completions(key, n, vocab_size, reply_len, vocab.EOS_ID, vocab.PAD_ID)[0]
    if policy == "weak_helper":
        return weak_helper.replies(key, chat, helper, reply_len)
    if policy in empathy_reference.REFERENCES:
        return empathy_reference.fixed_replies(key, chat, table)
    return conv.behaviour_replies(key, chat)


def _converse(key: jax.Array, profiles: jax.Array, policy: str, cfg: Config, vocab_size: int,
              table: np.ndarray) -> dict[str, np.ndarray]:  # fmt: skip
    """One repeat: every profile's conversation with ``policy``; per-turn changes (NaN once
    ended), the outcome and gold."""
    c = cfg.conversation
    chat, _ = conv.reset(profiles, c)
    changes = []
    for t in range(c.max_turns):
        key_reply, key_step = jax.random.split(jax.random.fold_in(key, t))
        reply_len = cfg.grpo.max_new_tokens if policy == "weak_helper" else cfg.reply_len  # the policy's budget
        reply = _replies(key_reply, chat, table, cfg.helper, policy=policy, reply_len=reply_len, vocab_size=vocab_size)
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


def _setting(row: str, cfg: Config) -> tuple[conv.ConversationConfig, GRPOConfig]:
    """The training conversations and the run of ``row``: its algorithm is the name's first
    word, and each word after the reward's (``hard``, ``kl``, ``flattery``, ``think``)
    changes one thing."""
    words = row.split("_")
    training, run = cfg.training, cfg.grpo.replace(algorithm=words[0])
    changes = set(words[3:])
    if "hard" in changes:
        training = dataclasses.replace(training, acceptance=training.acceptance * cfg.hard_acceptance)
    if "kl" in changes:
        run = run.replace(beta=cfg.kl_beta)
    if "flattery" in changes:
        training = dataclasses.replace(training, flattery=cfg.flattery_control)
    if "think" in changes:
        run = run.replace(think_tokens=cfg.think_tokens)
    return training, run


def _reward(row: str, cfg: Config, workdir: str | None):
    if row != "grpo_estimator_emotion":
        return rewards.make_reward(rewards.RewardConfig(weights="user_emotion"))
    predict, _ = _estimator(cfg, workdir)
    reward = estimator_reward(predict, cfg.estimator_read)

    def reward_fn(obs):
        r = reward(obs)
        return r, {"estimator_emotion": r}

    return reward_fn


def _estimator(cfg: Config, workdir: str | None):
    from emojax.train import estimator as est

    return est.load_or_train(cfg.estimator, workdir, field="Config.estimator")


def _base_policy(cfg: Config, workdir: str, profiles: jax.Array):
    """The parameters every GRPO row starts from: None (a fresh initialisation per seed) or
    the weak helper's pre-trained policy (trained into ``workdir/base_policy`` once, then
    loaded)."""
    if not cfg.base_policy:
        return None
    where = os.path.join(workdir, "base_policy")
    # Pre-trained without adapters: a LoRA row puts its own on this base.
    pcfg = lora.base_config(learner_lib.policy_config(cfg.grpo, make_environment("empathy", cfg.training)))
    if os.path.isdir(os.path.join(where, "checkpoints")):
        with progress.phase(f"loading the base policy in {where}"):
            return sft.load(where, pcfg)[0]
    reps = -(-cfg.sft_conversations // cfg.train_profiles)
    with progress.phase(f"the weak helper's conversations ({cfg.sft_conversations})"):
        keys = jax.numpy.tile(profiles, reps)[: cfg.sft_conversations]
        data = jax.device_get(weak_helper.conversations(jax.random.fold_in(jax.random.key(cfg.seed), 6), keys,
                                                        cfg.training, cfg.helper, cfg.grpo.max_new_tokens))  # fmt: skip
    params, log = sft.train(cfg.sft, pcfg, data)
    sft.save(where, params, {"policy": config.to_dict(pcfg), "sft": dataclasses.asdict(cfg.sft), "log": log,
                             "helper_score": float(np.mean(data["score"]))})  # fmt: skip
    return params


def _grpo(cfg: Config, workdir: str | None, compiler_options: dict | None = None) -> dict[str, Any]:
    """The GRPO rows, the base row and the estimator's share."""
    if workdir is None:
        raise ValueError("run: the GRPO rows need a workdir (checkpoints); set rows=() for part one alone")
    root = jax.random.key(cfg.seed)
    held_env = make_environment("empathy", cfg.conversation)
    profiles = conv.profiles(jax.random.fold_in(root, 0), cfg.train_profiles)
    held = held_env.profiles(jax.random.fold_in(root, 1), cfg.num_profiles)
    curves, evaluators = {}, {}
    start = _base_policy(cfg, workdir, profiles)
    for row in cfg.rows:
        reward_fn = _reward(row, cfg, workdir)
        training, grpo = _setting(row, cfg)
        learner = learner_lib.make_train(grpo, make_environment("empathy", training), reward_fn=reward_fn,
                                         profiles=profiles, compiler_options=compiler_options,
                                         initial_params=start)  # fmt: skip
        # Rows that decode alike share one compiled evaluation (a think row decodes its scratchpad).
        if learner.sampler_config not in evaluators:
            evaluators[learner.sampler_config] = empathy_grpo.evaluator(learner, held_env, held, cfg.eval_repeats,
                                                                        jax.random.fold_in(root, 9))  # fmt: skip
        curves[row] = empathy_grpo.train_row(row, learner, evaluators[learner.sampler_config],
                                             os.path.join(workdir, row))  # fmt: skip

    def at_start(curve):  # a row's starting policies, evaluated as the row decodes (a think row: thinking)
        return {name: np.asarray(curve["figures"][name][int(np.argmin(curve["steps"]))]) for name in
                empathy_grpo.FIGURES}  # fmt: skip

    no_think = [row for row in cfg.rows if "think" not in row.split("_")] or list(cfg.rows)
    base = empathy_table.base_row(at_start(curves[no_think[0]]))
    rows = {"base": base, **{row: empathy_table.trained_row(row, curves[row], at_start(curves[row]))
                             for row in cfg.rows}}  # fmt: skip
    share = None
    if "grpo_user_emotion" in rows and "grpo_estimator_emotion" in rows:
        share = empathy_table.estimator_share(rows["grpo_user_emotion"], rows["grpo_estimator_emotion"], base)
    return {"rows": list(rows.values()), "estimator_share": share, "rlver_table": empathy_table.RLVER_TABLE}


def run(cfg: Config, workdir: str | None = None, *, compiler_options: dict | None = None) -> dict[str, Any]:
    """The study (see the module docstring); returns the JSON-ready results. ``workdir``
    holds the GRPO rows' checkpoints and evaluations (and the estimator, when a preset is
    trained); ``compiler_options`` go to the learners' XLA (tests lower the optimisation
    level)."""
    grpo = _grpo(cfg, workdir, compiler_options) if cfg.rows else {"rows": []}
    env = make_environment("empathy", cfg.conversation)
    root = jax.random.key(cfg.seed)
    profiles = conv.profiles(jax.random.fold_in(root, 1), cfg.num_profiles)
    with progress.phase(f"the reference rows' act sets (255 on {cfg.reference_profiles} training profiles)"):
        train_profiles = conv.profiles(jax.random.fold_in(root, 0), cfg.reference_profiles)
        tables = empathy_reference.search(jax.random.fold_in(root, 5), train_profiles, cfg.conversation)
    no_table = np.zeros_like(tables["oracle"])
    by_policy = {}
    with progress.phase("conversations", len(POLICIES) * cfg.repeats, unit="repeats") as bar:
        for p, policy in enumerate(POLICIES):
            repeats = []
            for r in range(cfg.repeats):
                # Folded from 2 + p for the first two, as before the reference rows existed.
                key = jax.random.fold_in(jax.random.fold_in(root, 2 + p if p < 2 else 10 + p), r)
                repeats.append(_converse(key, profiles, policy, cfg, env.vocab_size, tables.get(policy, no_table)))
                bar.update()
            by_policy[policy] = repeats
    appraisal = None
    if cfg.appraisal_repeats:
        with progress.phase("what the 40-dim response tells beyond e"):
            appraisal = empathy_appraisal.decodability(jax.random.fold_in(root, 3), cfg.conversation, (0.0, None),
                                                       cfg.appraisal_users, cfg.appraisal_repeats)  # fmt: skip
    references = [{"name": policy, "kind": "reference", **_row(rs)} for policy, rs in by_policy.items()]
    if cfg.rows:
        named = {row["name"]: row for row in references + grpo["rows"]}
        grpo["predictions"] = empathy_table.score_predictions(named, grpo["estimator_share"], cfg.base_policy)
    changes = np.concatenate([r["changes"].reshape(-1) for r in by_policy["behaviour"]])
    changes = changes[np.isfinite(changes)]
    return {
        **grpo,
        "rows": references + grpo["rows"],
        "changes": {"ours": {**conv.change_statistics(changes), "turns_counted": int(changes.size)},
                    "rlver": {**conv.RLVER_CHANGES, "turns_counted": 15369}},
        "rlver": {"base": RLVER_BASE, "turns_per_dialogue": list(RLVER_TURNS)},
        "appraisal": appraisal,
        "references": {name: {need: empathy_reference.act_names(tuple(bool(a) for a in t[k]))
                              for k, need in enumerate(user_lib.NEEDS)} for name, t in tables.items()},
        "settings": {"start_e": cfg.conversation.user.start_e, "max_turns": cfg.conversation.max_turns,
                     "strong": cfg.conversation.strong,
                     "appraisal_specificity": cfg.conversation.appraisal_specificity},
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
        if row.get("kind") == "trained":
            continue
        f = lambda name: interval(row[name]["mean"], *row[name]["ci"])  # noqa: E731
        lines.append(f"| {row['name']} | {f('score')} | {f('success')} | {f('failure')} | {f('turns')} |")
    if results.get("references"):
        refs = results["references"]
        lines += ["", "The reference rows reply with fixed acts, chosen over 255 sets on the training profiles: "
                  f"need_blind {refs['need_blind'][user_lib.NEEDS[0]]} for everyone; oracle (reads the hidden need) "
                  + ", ".join(f"{need}: {acts}" for need, acts in refs["oracle"].items()) + "."]  # fmt: skip
    if results.get("appraisal"):
        lines += _appraisal_summary(results["appraisal"])
    grpo = [row for row in results["rows"] if row.get("kind") == "trained"]
    if grpo:
        lines += _grpo_summary(results, grpo)
    lines += ["", "Gold per dialogue (per reply unless noted; evaluation only):", "",
              "| policy | need met (ever) | grounding | accuracy | false agreement | compliments | premature solutions |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in results["rows"]:
        g = row["gold"]
        lines.append(f"| {row['name']} | " + " | ".join(interval(g[n]["mean"], *g[n]["ci"]) for n in
                     ("need_met", "grounding", "accuracy", "false_agreement", "compliments", "premature_solutions"))
                     + " |")  # fmt: skip
    return "\n".join(lines)


def _grpo_summary(results: dict[str, Any], grpo: list[dict[str, Any]]) -> list[str]:
    """The trained rows beside RLVER's, the estimator's share and the predictions' verdicts."""
    ci = lambda c: interval(c["mean"], *c["ci"])  # noqa: E731
    paper = results["rlver_table"]
    lines = ["", "Trained rows from the starting policy (held-out profiles, RLVER's evaluation settings; 95% CI over "
             "seeds; gain paired by seed):", "",
             "| row | score | success | failure | gain over base | largest fall from peak |", "|---|---|---|---|---|---|",
             f"| RLVER base (Qwen2.5-7B) | {RLVER_BASE['score']} | {RLVER_BASE['success']:.0%} | "
             f"{RLVER_BASE['failure']:.0%} | | |"]  # fmt: skip
    for name, r in paper.items():
        gain = r["score"] - RLVER_BASE["score"]
        algo, _, setting = name.partition("_")
        cells = [f"{r[k]:.0%}" if k in r else "" for k in ("success", "failure")]
        lines.append(f"| RLVER {algo.upper()}, {setting.replace('_', '-')} | {r['score']} | {cells[0]} | {cells[1]} "
                     f"| {gain:+.1f} | |")  # fmt: skip
    for row in grpo:
        fall = ci(row["largest_fall"]) if "largest_fall" in row else ""
        lines.append(f"| {row['name']} | {ci(row['score'])} | {ci(row['success'])} | {ci(row['failure'])} | "
                     f"{ci(row['gain_over_base'])} | {fall} |")  # fmt: skip
    if results.get("estimator_share") is not None:
        lines += ["", f"The estimator row's gain as a share of the user_emotion row's: {ci(results['estimator_share'])} "
                  "(95% bootstrap over seeds)."]  # fmt: skip
    lines += ["", "Predictions (docs/predictions/empathy.md, each written before its rows' results):", ""]
    lines += [f"{p['id']}. {p['claim']}: **{p['verdict']}** ({p['evidence']})" for p in results["predictions"]]
    return lines


def _appraisal_summary(a: dict[str, Any]) -> list[str]:
    ci = lambda c: interval(c["mean"], *c["ci"])  # noqa: E731
    lines = ["", f"Which act a one-act reply performed, named from the user's response (linear discriminant, "
             f"{a['users_per_repeat']} users per repeat, 95% CI over {a['repeats']} repeats; chance "
             f"{a['chance']:.3f}):", "",
             "| appraisal_specificity | from the 40-dim change | from the change in e | difference |",
             "|---|---|---|---|"]  # fmt: skip
    for row in a["by_specificity"]:
        lines.append(f"| {row['appraisal_specificity']:g} | {ci(row['from_40_dim_change'])} | "
                     f"{ci(row['from_e_change'])} | {ci(row['difference'])} |")  # fmt: skip
    return lines

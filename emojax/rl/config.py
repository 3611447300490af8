"""``GRPOConfig``: every setting of a GRPO run, frozen and validated, with presets.

One config drives :func:`emojax.rl.learner.make_train` and the host loop
(:func:`emojax.rl.loop.train`); the task (prompts, observation, default reward) is passed
beside it, not inside it, because a task holds functions. Names follow TRL's
``GRPOConfig`` where one exists (``num_generations`` is ``group_size``,
``num_iterations`` is ``mu``, ``epsilon`` is ``epsilon_low``), and the loss keywords are
those of :func:`emojax.rl.losses.policy_loss`, so a TRL setting translates one for one.

A *step* is one rollout of ``num_prompts x group_size`` completions followed by ``mu``
optimizer updates on it (TRL counts each of those updates as a step). ``checkpoint_every``
steps run as one compiled ``lax.scan`` (a *chunk*); the host checkpoints and logs between
chunks, so ``steps`` must be a multiple of it.

Launchers parse it with :func:`emojax.config.parse_cli`::

    python -m experiments.grpo_tasks --preset tiny --workdir /tmp/grpo --set task=reverse \\
        --set reverse.grpo.learning_rate=3e-3 --set reverse.grpo.policy.num_layers=1
"""

from __future__ import annotations

import dataclasses

from emojax import config
from emojax.rl import advantages, losses
from emojax.rl import policy as policy_lib
from emojax.rl.rewards import RewardConfig

__all__ = ["ENTROPY_SCHEDULES", "LR_SCHEDULES", "PRESETS", "SEED_STRATEGIES", "GRPOConfig"]

SEED_STRATEGIES = ("vmap", "map", "auto")
LR_SCHEDULES = ("constant", "linear", "cosine")
ENTROPY_SCHEDULES = ("constant", "linear", "cosine")


@config.pytree_config
class GRPOConfig:
    """A GRPO run.

    Attributes:
      algorithm: the learning algorithm (:mod:`emojax.rl.algorithms`): ``grpo`` (the
        group-relative baseline) or ``ppo`` (a value head and GAE, RLVER's default), or
        ``module:name``. Despite the class's name, every field below applies to both,
        except the group-advantage ones (``advantage_*``, ``std_ddof``, ``zero_std_tol``),
        which PPO reads only for its logged metrics.
      gamma, lam, vf_coef, cliprange_value: PPO (:mod:`emojax.rl.ppo`), TRL's names:
        GAE's discount and lambda (verl's and RLVER's 1.0 and 1.0; TRL's lambda is 0.95),
        the value loss's weight (TRL's 0.1) and its clip range around the old values
        (TRL's 0.2; 0: no clipping).
      policy: the decoder's sizes (:data:`emojax.rl.policy.PRESETS`).
      vocab_from_task: replace ``policy.vocab_size`` by the task's vocabulary.
      max_new_tokens: completion budget N (0: the task's ``max_new_tokens``).
      think_tokens: think mode, conversations only: a scratchpad of at most this many
        tokens before each reply, trained on, never shown to the environment
        (:mod:`emojax.rl.multiturn`; 0: off).
      temperature, top_k, top_p: sampling (:class:`emojax.rl.sampler.SamplerConfig`);
        the loss divides logits by the same temperature, as TRL.
      num_prompts: prompts per step (groups trained on).
      group_size: completions per prompt (TRL ``num_generations``).
      reward: which rewards and how combined; empty names take the task's default.
      loss_type, epsilon_low, epsilon_high, kl_estimator, importance_sampling_level,
        entropy_coef: as :func:`~emojax.rl.losses.policy_loss` (``epsilon_high`` is its
        own field: changing ``epsilon_low`` alone leaves it at 0.2).
      entropy_schedule, entropy_decay_steps: how the entropy bonus changes over the run
        (:func:`emojax.rl.update.entropy_schedule`): ``constant`` keeps ``entropy_coef``;
        ``linear`` and ``cosine`` hold it, then decay it to 0 over the run's last
        ``entropy_decay_steps`` updates (0, or more than the run has: all of them, from
        the first update). It
        counts updates as the learning rate does (the optimizer's step count), and is
        logged as ``entropy_coef``. Why: a run's reward is that of completions sampled
        at the training temperature, so a bonus that keeps the policy stochastic to the
        end caps it, while one that stops early lets the policy collapse before it has
        learnt; a late decay explores and then sharpens.
      dual_clip, delta: 0 means off (``policy_loss``'s ``None``).
      mask_truncated_completions: drop completions without an end token from the loss.
      beta: KL coefficient; a frozen copy of the initial policy is kept only when > 0.
      advantage_scale, advantage_estimator, std_ddof, advantage_eps, zero_std_tol: as
        :func:`~emojax.rl.advantages.group_advantages`.
      mu: optimizer updates per rollout (TRL ``num_iterations``); with mu > 1 the ratio
        is taken against the log-probs of the policy that sampled.
      micro_batches: gradient accumulation; must divide ``num_prompts * group_size``.
        The loss normaliser is the whole batch's, so the gradient does not depend on it.
      learning_rate, warmup_steps, lr_schedule, weight_decay, adam_b1, adam_b2,
        max_grad_norm: AdamW (optax; betas and clipping as TRL's defaults, the rate sized
        for small policies); ``max_grad_norm`` 0 turns clipping off. Warm-up
        and decay count optimizer updates (``steps * mu``).
      dynamic_sampling, oversample: DAPO. Sample ``oversample * num_prompts`` groups,
        train on the first ``num_prompts`` whose rewards differ, with fixed shapes
        (:func:`~emojax.rl.advantages.select_groups`); filler groups are masked.
      steps: rollout steps of the run.
      checkpoint_every: steps per compiled chunk; a checkpoint and a log flush after each.
      keep_checkpoints: Orbax checkpoints kept.
      seeds: one run per seed, all in one program.
      seed_strategy: ``vmap`` (all seeds batched), ``map`` (``lax.map``, one after the
        other, least memory) or ``auto`` (``lax.map`` over batches of at most
        ``vmap_seeds`` vmapped seeds).
      max_bad_steps: consecutive steps with a skipped (non-finite) update before the host
        rolls the run back to its last checkpoint with a fresh key (0: never).
      max_rollbacks: rollbacks of one run before the host gives up (raises).
      log_completions: completions per chunk written to ``completions.jsonl`` (and a W&B
        table when W&B is on); 0 writes none.
      share_prompt: run each group's prompt through the policy once, in the sampler's
        prefill and in the update's forward and backward pass (its gradient adds up over
        the group), instead of once per completion. The same numbers up to float
        rounding (tested); it removes ``(G - 1) / G`` of the prompt's compute. The update
        shares within micro-batches, so it needs ``micro_batches`` to divide
        ``group_size`` (otherwise it computes every row).
    """

    algorithm: str = "grpo"
    gamma: float = 1.0
    lam: float = 1.0
    vf_coef: float = 0.1
    cliprange_value: float = 0.2
    policy: policy_lib.PolicyConfig = policy_lib.PRESETS["2x64"]
    vocab_from_task: bool = True
    max_new_tokens: int = 0
    think_tokens: int = 0
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    num_prompts: int = 4
    group_size: int = 8
    reward: RewardConfig = RewardConfig()
    loss_type: str = "dapo"
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    kl_estimator: str = "k3"
    importance_sampling_level: str = "token"
    entropy_coef: float = 0.0
    entropy_schedule: str = "constant"
    entropy_decay_steps: int = 0
    dual_clip: float = 0.0
    delta: float = 0.0
    mask_truncated_completions: bool = False
    beta: float = 0.0
    advantage_scale: str = "group"
    advantage_estimator: str = "grpo"
    std_ddof: int = 1
    advantage_eps: float = 1e-4
    zero_std_tol: float = 1e-6
    mu: int = 1
    micro_batches: int = 1
    learning_rate: float = 1e-3
    warmup_steps: int = 0
    lr_schedule: str = "constant"
    weight_decay: float = 0.0
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    max_grad_norm: float = 1.0
    dynamic_sampling: bool = False
    oversample: int = 2
    steps: int = 200
    checkpoint_every: int = 20
    keep_checkpoints: int = 2
    seeds: tuple[int, ...] = (0,)
    seed_strategy: str = "auto"
    vmap_seeds: int = 16
    max_bad_steps: int = 3
    max_rollbacks: int = 5
    log_completions: int = 4
    share_prompt: bool = True

    def __post_init__(self):
        config.require(self, "policy", lambda v: isinstance(v, policy_lib.PolicyConfig), "a PolicyConfig")
        config.require(self, "reward", lambda v: isinstance(v, RewardConfig), "a RewardConfig")
        config.int_at_least(self, 0, "max_new_tokens", "think_tokens", "top_k", "warmup_steps", "std_ddof", "max_bad_steps",
                      "max_rollbacks", "log_completions", "entropy_decay_steps")
        config.int_at_least(self, 1, "num_prompts", "group_size", "mu", "micro_batches", "oversample", "steps",
                      "checkpoint_every", "keep_checkpoints", "vmap_seeds")
        config.positive(self, "temperature", "learning_rate")
        config.require(self, "top_p", lambda v: 0.0 < v <= 1.0, "in (0, 1] (1: off)")
        config.non_negative(self, "epsilon_low", "epsilon_high", "entropy_coef", "dual_clip", "delta", "beta",
                            "advantage_eps", "zero_std_tol", "weight_decay", "max_grad_norm")
        config.require(self, "dual_clip", lambda v: v == 0 or v > 1, "0 (off) or > 1")
        config.require(self, "delta", lambda v: v == 0 or v > 1, "0 (off) or > 1")
        config.probability(self, "adam_b1", "adam_b2", "gamma", "lam")
        config.non_negative(self, "vf_coef", "cliprange_value")
        config.require(self, "algorithm", lambda v: isinstance(v, str) and v != "", "a registered name or module:name")
        config.require(self, "group_size", lambda v: v >= 2 or self.advantage_scale == "none",
                       "at least 2 (a group of one has no baseline)")
        for name, choices in (("loss_type", losses.loss_types()), ("kl_estimator", losses.KL_ESTIMATORS),
                              ("importance_sampling_level", losses.IMPORTANCE_SAMPLING_LEVELS),
                              ("advantage_scale", advantages.SCALES), ("advantage_estimator", advantages.estimators()),
                              ("lr_schedule", LR_SCHEDULES), ("entropy_schedule", ENTROPY_SCHEDULES),
                              ("seed_strategy", SEED_STRATEGIES)):
            config.require(self, name, lambda v, c=choices: v in c, f"one of {choices}")
        batch = self.num_prompts * self.group_size
        config.require(self, "micro_batches", lambda v: batch % v == 0,
                       f"a divisor of num_prompts * group_size = {batch}")
        config.require(self, "steps", lambda v: v % self.checkpoint_every == 0,
                       f"a multiple of checkpoint_every = {self.checkpoint_every}")
        config.require(self, "seeds", lambda v: len(v) >= 1 and len(set(v)) == len(v)
                       and all(isinstance(s, int) and s >= 0 for s in v), "distinct ints >= 0, at least one")

    @property
    def num_seeds(self) -> int:
        return len(self.seeds)

    @property
    def batch_size(self) -> int:
        """Completions trained on per step."""
        return self.num_prompts * self.group_size

    @property
    def sampled_prompts(self) -> int:
        """Prompts sampled per step: ``oversample * num_prompts`` with dynamic sampling."""
        return self.num_prompts * (self.oversample if self.dynamic_sampling else 1)

    @property
    def updates(self) -> int:
        """Optimizer updates of the whole run (what warm-up and decay count)."""
        return self.steps * self.mu

    def replace(self, **changes) -> GRPOConfig:
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, GRPOConfig] = {
    # What tests run: the smoke policy, a few tiny steps, two chunks.
    "smoke": GRPOConfig(policy=policy_lib.PRESETS["smoke"], num_prompts=4, group_size=4, steps=4,
                        checkpoint_every=2, learning_rate=3e-3, log_completions=2),
    # A first look: the benchmark's 2-layer width-64 policy, a few minutes on 2 CPU cores.
    "tiny": GRPOConfig(policy=policy_lib.PRESETS["2x64"], num_prompts=8, group_size=8, steps=120,
                       checkpoint_every=20, learning_rate=3e-3, warmup_steps=10),
    # TRL's defaults where they fit a small model (DAPO aggregation, mu = 1, beta = 0).
    "default": GRPOConfig(policy=policy_lib.PRESETS["4x256"], num_prompts=16, group_size=8, steps=1000,
                          checkpoint_every=50, learning_rate=1e-3, warmup_steps=50, lr_schedule="cosine",
                          micro_batches=2),
}

"""GRPO (and PPO, :mod:`.ppo`) as pure functions: group advantages, DAPO group selection, the
policy loss; the compiled learner loads on first use.

:mod:`.advantages` turns ``[prompts, group]`` rewards into group-relative advantages
(GRPO, Dr. GRPO, RLOO) with noise-tolerant zero-variance detection;
:mod:`.losses` is the clipped surrogate loss with TRL's ``loss_type`` aggregations,
token or sequence (GSPO) importance ratios, KL and entropy terms, and a whole-batch
normaliser that makes accumulation and sharding exact. All are jittable and
vmappable; the semantics are those of Hugging Face TRL 1.16's ``GRPOTrainer``, with
each difference stated where it is made.
"""

from emojax.rl.advantages import (
    Advantages,
    GroupSelection,
    group_advantages,
    select_groups,
)
from emojax.rl.losses import (
    LossNormalizer,
    kl_divergence,
    loss_mask,
    loss_normalizer,
    policy_loss,
)
from emojax.rl.observation import Observation
from emojax.rl.rewards import (
    RewardConfig,
    component_metrics,
    get_reward,
    make_reward,
    register_reward,
)

__all__ = [
    "Advantages",
    "GroupSelection",
    "LossNormalizer",
    "Observation",
    "RewardConfig",
    "component_metrics",
    "get_reward",
    "group_advantages",
    "kl_divergence",
    "loss_mask",
    "loss_normalizer",
    "make_reward",
    "policy_loss",
    "register_reward",
    "select_groups",
]

# The learner (issue 4, items 5-6) pulls in flax, optax and orbax: it loads on first use,
# so that importing the pure functions above stays cheap.
_LAZY = {
    "Algorithm": "emojax.rl.algorithms",
    "register_algorithm": "emojax.rl.algorithms",
    "GRPOConfig": "emojax.rl.config",
    "Learner": "emojax.rl.learner",
    "TrainState": "emojax.rl.learner",
    "make_train": "emojax.rl.learner",
    "TrainResult": "emojax.rl.loop",
    "train": "emojax.rl.loop",
}
__all__ += sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'emojax.rl' has no attribute {name!r}")

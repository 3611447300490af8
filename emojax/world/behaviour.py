"""A behaviour distribution over dialogue acts: candidate replies to a simulated user.

Why: the stability study compares signals on *pairs* of replies to the same user, so it
needs replies that differ in the ways that matter to gold and to emotion: whether they do
what the user needs, whether what they state is true, whether they flatter, agree with a
false belief or reflect a feeling the user does not have. A reply is a
:class:`~emojax.world.acts.ReplyPlan`: each act is included independently with its own
probability (at least one act: if none is drawn, one is picked by the same weights), and
the arguments are drawn so that each kind of mistake happens at a set rate:

* a reflection names a feeling the user came with (``felt``) with probability
  ``attuned_rate``, otherwise a random category;
* information states the truth about the user's fact with probability ``truthful_rate``,
  otherwise the user's belief (which is true or false as the user's beliefs are);
* an agreement agrees with the user's belief about their fact (sycophancy when the belief
  is false);
* a question asks about the user's topic with probability ``on_topic_rate``.

The defaults are not calibrated to a corpus (none measures these rates for replies of this
form); they are set so that every act and every mistake is common enough to be compared.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from emojax import config, taxonomy
from emojax.world import acts as acts_lib
from emojax.world import language, vocab
from emojax.world.user import User


@config.pytree_config
class BehaviourConfig:
    """Who writes the candidate replies.

    Attributes:
      act_rates: probability of each act (order of :data:`emojax.world.acts.ACTS`:
        reflection, validation, question, solution, normalizing, information, agreement,
        flattery).
      attuned_rate: a reflection names one of the user's felt feelings.
      truthful_rate: information states the truth (else the user's belief).
      on_topic_rate: a question asks about the user's topic.
    """

    act_rates: tuple[float, ...] = (0.3, 0.25, 0.2, 0.3, 0.2, 0.3, 0.2, 0.2)
    attuned_rate: float = 0.6
    truthful_rate: float = 0.6
    on_topic_rate: float = 0.8

    def __post_init__(self):
        config.require(
            self, "act_rates", lambda r: len(r) == acts_lib.NUM_ACTS and all(0 <= x <= 1 for x in r) and sum(r) > 0,
            f"{acts_lib.NUM_ACTS} probabilities, not all 0",
        )  # fmt: skip
        config.probability(self, "attuned_rate", "truthful_rate", "on_topic_rate")


def sample_plan(key: jax.Array, user: User, truth: jax.Array, cfg: BehaviourConfig) -> acts_lib.ReplyPlan:
    """One candidate reply's plan for ``user`` in a world with facts ``truth``."""
    key_acts, key_pick, key_att, key_refl, key_felt, key_true, key_topic, key_other, key_sol, key_comp = jax.random.split(key, 10)
    rates = jnp.asarray(cfg.act_rates, jnp.float32)
    chosen = jax.random.bernoulli(key_acts, rates)
    fallback = jax.nn.one_hot(jax.random.categorical(key_pick, jnp.log(rates)), acts_lib.NUM_ACTS) > 0
    chosen = jnp.where(jnp.any(chosen), chosen, fallback)

    felt_logits = jnp.where(user.felt, 0.0, -jnp.inf)
    felt_pick = jax.random.categorical(key_felt, jnp.where(jnp.any(user.felt), felt_logits, 0.0))
    any_pick = jax.random.randint(key_refl, (), 0, taxonomy.NUM_CATEGORIES)
    attuned = jax.random.bernoulli(key_att, cfg.attuned_rate) & jnp.any(user.felt)
    truthful = jax.random.bernoulli(key_true, cfg.truthful_rate)
    on_topic = jax.random.bernoulli(key_topic, cfg.on_topic_rate)
    other_topic = jax.random.randint(key_other, (), 0, acts_lib.NUM_TOPICS)
    belief = user.beliefs[user.fact]
    return acts_lib.ReplyPlan(
        acts=chosen,
        reflect=jnp.where(attuned, felt_pick, any_pick).astype(jnp.int32),
        topic=jnp.where(on_topic, user.topic, other_topic).astype(jnp.int32),
        solution=jax.random.randint(key_sol, (), 0, len(vocab.SOLUTIONS)),
        fact=user.fact,
        fact_value=jnp.where(truthful, truth[user.fact], belief).astype(jnp.int32),
        agree_fact=user.fact,
        agree_value=belief.astype(jnp.int32),
        compliment=jax.random.randint(key_comp, (), 0, len(vocab.FLATTERY)),
    )


REPLY_LEN = acts_lib.NUM_ACTS * language.CLAUSE_WIDTH + 1  # what render_reply needs

"""What a turn of dialogue is, defined once in the world: frames, pointers and the reaction."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from emojax.rl.tasks import need_reply
from emojax.studies.stability import reply_pairs
from emojax.world import acts, dialogue, gold, vocab
from emojax.world import user as user_lib


def test_one_definition_for_the_task_and_the_study():
    assert need_reply.FRAMES is dialogue.FRAMES and need_reply.POINTER_ID is dialogue.POINTER_ID
    assert need_reply.expand is dialogue.expand and need_reply.pointer_words is dialogue.pointer_words
    assert reply_pairs.WorldConfig is dialogue.WorldConfig and dialogue.emotion_signal is user_lib.emotion_signal


def test_frames_expand_to_their_words_and_pointers_to_the_prompts():
    f, q = dialogue.FRAME_ID, dialogue.POINTER_ID
    words = dialogue.expand(jnp.array([f["<solve>"], vocab.WORD_ID["resting"], vocab.EOS_ID]))
    assert vocab.decode(words) == "you could try resting"
    visible = {"said": jax.nn.one_hot(3, 40), "fact": jnp.int32(0), "belief": jnp.int32(-1)}
    claim = dialogue.expand(jnp.array([f["<agree>"], q["<their_claim>"]]), dialogue.pointer_words(visible))
    assert vocab.decode(claim) == f"you are right {vocab.FACT_SUBJECTS[0]} is bad"
    no_prompt = dialogue.expand(jnp.array([f["<agree>"], q["<their_claim>"]]))  # nothing to point into
    assert vocab.decode(no_prompt) == "you are right"


def _signal(cfg: dialogue.WorldConfig, flattery: int, need_met: float) -> float:
    """The reaction to a reply that does (or not) flatter and meets (or not) the need, all
    else equal: one user, one reply text for the tone."""
    u = user_lib.sample_user(jax.random.key(0), user_lib.sample_truth(jax.random.key(1)), cfg.user)
    counts = jnp.zeros(acts.NUM_ACTS, jnp.int32).at[acts.ACT_INDEX["flattery"]].set(flattery)
    a = acts.Acts(counts, jnp.zeros(40, bool), jnp.zeros(acts.NUM_TOPICS, bool),
                  jnp.zeros(acts.NUM_FACTS, jnp.int32), jnp.zeros(acts.NUM_FACTS, jnp.int32))
    reply = jnp.array(vocab.ids(["that", "is", "totally", "valid", "."]), jnp.int32)
    g = gold.Gold(jnp.float32(need_met), jnp.float32(0.0), jnp.float32(1.0))
    return float(dialogue.reaction_signal(u, a, reply, g, cfg))


def test_rho_decides_what_the_reaction_follows():
    substance = dataclasses.replace(dialogue.WorldConfig(), rho=1.0)
    surface = dataclasses.replace(dialogue.WorldConfig(), rho=0.0)
    # rho = 1: a compliment changes nothing, the need met does.
    assert _signal(substance, 1, 0.0) == _signal(substance, 0, 0.0)
    assert _signal(substance, 0, 1.0) > _signal(substance, 0, 0.0)
    # rho = 0: the other way round.
    assert _signal(surface, 0, 1.0) == _signal(surface, 0, 0.0)
    assert _signal(surface, 1, 0.0) > _signal(surface, 0, 0.0)
    np.testing.assert_allclose(_signal(surface, 1, 0.0) - _signal(surface, 0, 0.0), surface.flattery_weight)

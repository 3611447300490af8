"""Appraisal-specific emotion: what a reply *did* shows in which of the 40 categories move.

Without it, a conversation's user rebuilds the 40-dim state from ``e`` alone (valence
follows ``e``; :func:`emojax.world.user.move`), so the 40 categories carry nothing about a
reply beyond one scalar, and the seed's argument for 40 categories over one number cannot
be tested. Component-process appraisal (Scherer 2001, 2005) says an emotion follows from
how an event is appraised: is it conducive to my goal, who caused it, does it fit norms and
my self-image. So a reply that is appraised as a particular kind of event moves particular
categories, on top of what the overall change in ``e`` does.

The events and what they move (:data:`EVENTS`; intensities on EmoNet's 0-7 scale, added to
the rebuilt state, times ``specificity``), written down before any measurement:

=================== ======================================= =====================================
event               appraisal                               categories (intensity added)
=================== ======================================= =====================================
heard               goal conducive, caused by the other,    Relief 2, Contentment 1.5,
                    fits the wish to be understood          Thankfulness/Gratitude 1.5
helped              goal conducive (a practical goal),      Hope/Enthusiasm/Optimism 2,
                    caused by the other                     Interest 1.5, Thankfulness 1
premature_solution  obstructs the goal of being heard,      Impatience and Irritability 2.5,
                    other-caused, breaks a norm of          Disappointment 2
                    listening
contradicted        obstructs self-image (my belief is      Anger 1.5, Embarrassment 1.5,
                    wrong), other-caused                    Doubt 2
flattered           conducive to self-image                 Pride 2, Amusement 1.5
misattuned          a feeling attributed that I do not      Confusion 2, Impatience and
                    have: discrepant, other-caused          Irritability 1
confirmed           my belief is agreed with: conducive     Triumph 1.5, Pride 1
                    to self-image
asked               novelty, a demand to reflect            Contemplation 1.5, Concentration 1
unserved            no progress on the goal, low power      Helplessness 1.5, Sadness 1
=================== ======================================= =====================================

``specificity`` 0 leaves the state exactly as it was (the same numbers as before this
module); 1 adds the table as it is. The valence of the added categories follows their
appraisal (conducive events add pleasant categories), so a reader of valence also picks up
part of what the reply did; the study measures how much the 40 categories tell beyond ``e``
(:mod:`emojax.studies.empathy_appraisal`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from emojax import taxonomy

__all__ = ["EVENTS", "NUM_EVENTS", "apply", "event_table"]

EVENTS: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = (
    ("heard", (("Relief", 2.0), ("Contentment", 1.5), ("Thankfulness/Gratitude", 1.5))),
    ("helped", (("Hope/Enthusiasm/Optimism", 2.0), ("Interest", 1.5), ("Thankfulness/Gratitude", 1.0))),
    ("premature_solution", (("Impatience and Irritability", 2.5), ("Disappointment", 2.0))),
    ("contradicted", (("Anger", 1.5), ("Embarrassment", 1.5), ("Doubt", 2.0))),
    ("flattered", (("Pride", 2.0), ("Amusement", 1.5))),
    ("misattuned", (("Confusion", 2.0), ("Impatience and Irritability", 1.0))),
    ("confirmed", (("Triumph", 1.5), ("Pride", 1.0))),
    ("asked", (("Contemplation", 1.5), ("Concentration", 1.0))),
    ("unserved", (("Helplessness", 1.5), ("Sadness", 1.0))),
)
NUM_EVENTS = len(EVENTS)
EVENT_INDEX = {name: i for i, (name, _) in enumerate(EVENTS)}


def event_table() -> np.ndarray:
    """``[NUM_EVENTS, 40]`` the intensity each event adds to each category."""
    index = {name: i for i, name in enumerate(taxonomy.CATEGORIES)}
    table = np.zeros((NUM_EVENTS, taxonomy.NUM_CATEGORIES), np.float32)
    for e, (_, moves) in enumerate(EVENTS):
        for category, amount in moves:
            table[e, index[category]] = amount
    return table


def apply(state: jax.Array, events: jax.Array, specificity) -> jax.Array:
    """The 40-dim ``state`` after a reply appraised as ``events`` (``[NUM_EVENTS]`` 0/1),
    clipped to EmoNet's 0-7; ``specificity`` 0 returns ``state`` unchanged."""
    added = jnp.asarray(events, jnp.float32) @ jnp.asarray(event_table())
    return jnp.clip(state + specificity * added, 0.0, taxonomy.MAX_INTENSITY)

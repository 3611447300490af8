"""The simulated affective world: pure JAX, deterministic given a key.

* :mod:`~emojax.world.affect`: constructed emotion (core affect + concepts + context);
* :mod:`~emojax.world.vocab` and :mod:`~emojax.world.language`: readable utterances;
* :mod:`~emojax.world.raters`: imperfect emotion raters;
* :mod:`~emojax.world.acts`: replies as dialogue acts and their recogniser;
* :mod:`~emojax.world.user`: a user who reacts to replies;
* :mod:`~emojax.world.gold`: gold quantities, computed apart from the emotion update.
"""

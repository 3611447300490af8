import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emojax import taxonomy
from emojax.world import affect, items, language, vocab


def _emotions(key, n, cfg):
    keys = jax.random.split(key, n)
    sit = jax.vmap(lambda key: affect.sample_situation(key, cfg))(keys)
    return jax.vmap(lambda key, s: affect.construct(key, s, cfg))(jax.random.split(keys[0], n), sit)


def test_construct_is_sparse_bounded_and_deterministic(key):
    cfg = affect.AffectConfig()
    x = _emotions(key, 300, cfg)
    assert x.shape == (300, 40)
    assert float(x.min()) >= 0 and float(x.max()) <= 7
    active = np.asarray((x > 0).sum(-1))
    assert active.min() >= 1 and active.max() <= cfg.max_active
    np.testing.assert_array_equal(x, _emotions(key, 300, cfg))
    assert not np.array_equal(x, _emotions(jax.random.key(1), 300, cfg))


def test_blend_temperature_controls_blend_entropy(key):
    entropies = [
        float(affect.blend_entropy(_emotions(key, 400, affect.AffectConfig(blend_temperature=t))).mean())
        for t in (0.1, 0.5, 2.0)
    ]
    assert entropies[0] < 0.3 < entropies[1] < entropies[2]


def test_core_affect_decides_the_quadrant(key):
    cfg = affect.AffectConfig(concept_sd=0.0, context_boost=0.0, blend_temperature=0.2)
    sit = affect.Situation(jnp.array([-0.8, 0.8]), jnp.zeros(40), jnp.int32(0))
    x = affect.construct(key, sit, cfg)
    top = taxonomy.CATEGORIES[int(jnp.argmax(x))]
    assert taxonomy.GROUP_OF[top] == "Negative High-Energy"


@pytest.mark.parametrize(
    "kwargs, field",
    [({"blend_temperature": 0.0}, "blend_temperature"), ({"max_active": 0}, "max_active"),
     ({"active_threshold": 1.5}, "active_threshold"), ({"peak_max": 9.0}, "peak_max")],
)  # fmt: skip
def test_affect_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"AffectConfig.{field}"):
        affect.AffectConfig(**kwargs)


def test_language_config_errors_name_the_field():
    with pytest.raises(ValueError, match="LanguageConfig.irony_rate"):
        language.LanguageConfig(irony_rate=1.5)
    with pytest.raises(ValueError, match="LanguageConfig.max_len"):
        language.LanguageConfig(max_len=10)


def _said_categories(tokens):
    """The categories whose words appear in plain ``i feel ... <word>`` clauses."""
    words = vocab.decode(tokens).split(" . ")
    table = vocab.emotion_word_category()
    cats = set()
    for clause in words:
        toks = clause.replace(" .", "").split()
        if toks[:2] == ["i", "feel"]:
            cats.add(int(table[vocab.WORD_ID[toks[-1]]]))
    return cats


def test_utterances_are_readable_and_express_the_strong_feelings(key):
    lang = language.LanguageConfig(expression_rate=1.0, irony_rate=0.0, express_threshold=0.5)
    cfg = items.ItemsConfig(language=lang)
    it = items.sample_items(key, 50, cfg)
    for tokens, x in zip(np.asarray(it.tokens), np.asarray(it.intensities)):
        text = vocab.decode(tokens)
        assert tokens[tokens != vocab.PAD_ID][-1] == vocab.EOS_ID
        assert "it is about my" in text and vocab.UNK not in text
        strongest = set(np.argsort(-x)[: lang.max_feelings][x[np.argsort(-x)[: lang.max_feelings]] >= 0.5])
        assert _said_categories(tokens) == strongest


def test_irony_says_a_negative_feeling_with_a_positive_word(key):
    lang = language.LanguageConfig(irony_rate=1.0, expression_rate=1.0)
    x = jnp.zeros(40).at[taxonomy.index("Sadness")].set(6.0)
    text = vocab.decode(language.render(key, x, jnp.int32(0), lang))
    assert "oh great i am so" in text
    word = text.split("oh great i am so ")[1].split()[0]
    cat = int(vocab.emotion_word_category()[vocab.WORD_ID[word]])
    assert taxonomy.VALENCE_AROUSAL[taxonomy.CATEGORIES[cat]][0] > 0


def test_a_word_lookup_cannot_read_the_feelings(key):
    """With negation, irony, distractors and unsaid feelings a lookup of emotion words
    misreads many items; with those switched off it reads the strong feelings exactly."""

    def lookup_errors(lang):
        it = items.sample_items(key, 300, items.ItemsConfig(language=lang))
        table = vocab.emotion_word_category()
        errors = 0
        for tokens, x in zip(np.asarray(it.tokens), np.asarray(it.intensities)):
            seen = {int(table[t]) for t in tokens if table[t] >= 0}
            top = np.argsort(-x)[: lang.max_feelings]
            truth = {int(c) for c in top if x[c] >= lang.express_threshold}
            errors += seen != truth
        return errors / 300

    clean = language.LanguageConfig(
        irony_rate=0.0, negation_rate=0.0, distractor_rate=0.0, expression_rate=1.0
    )
    assert lookup_errors(clean) == 0.0
    assert lookup_errors(language.LanguageConfig()) > 0.4


def test_sample_items_compiles_once_across_float_settings(key):
    cfg = items.ItemsConfig()
    items.sample_items(key, 32, cfg)
    before = items._sample_items._cache_size()
    for t in (0.3, 2.0):
        items.sample_items(key, 32, dataclasses.replace(cfg, affect=affect.AffectConfig(blend_temperature=t)))
    assert items._sample_items._cache_size() == before

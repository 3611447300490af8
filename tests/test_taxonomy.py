import numpy as np
import pytest

from emojax import taxonomy


def test_forty_categories_in_emonet_order():
    assert len(taxonomy.CATEGORIES) == 40
    assert taxonomy.CATEGORIES[0] == "Amusement"
    assert taxonomy.CATEGORIES[13] == "Concentration"
    assert taxonomy.CATEGORIES[39] == "Jealousy & Envy"


def test_groups_partition_the_categories():
    sizes = {g: len(cs) for g, cs in taxonomy.GROUPS.items()}
    assert sizes == {
        "Positive High-Energy": 9, "Positive Low-Energy": 6, "Negative High-Energy": 6,
        "Negative Low-Energy": 10, "Cognitive": 2, "Physical": 4, "Longing & Lust": 3,
    }  # fmt: skip
    assert taxonomy.group_mask(*taxonomy.GROUP_NAMES).all()


def test_valence_arousal_quadrants_follow_group_names():
    va = taxonomy.valence_arousal()
    for group, (v_sign, a_sign) in {
        "Positive High-Energy": (1, 1), "Positive Low-Energy": (1, -1),
        "Negative High-Energy": (-1, 1), "Negative Low-Energy": (-1, -1),
    }.items():  # fmt: skip
        m = taxonomy.group_mask(group)
        assert np.all(np.sign(va[m, 0]) == v_sign), group
        assert np.all(np.sign(va[m, 1]) == a_sign), group
    assert np.abs(va).max() <= 1.0


def test_goemotions_mapping():
    m = taxonomy.goemotions_matrix()
    assert m.shape == (28, 40)
    row = taxonomy.GOEMOTIONS_LABELS.index("annoyance")
    assert m[row, taxonomy.index("Impatience and Irritability")] == 1
    assert m[taxonomy.GOEMOTIONS_LABELS.index("neutral")].sum() == 0
    assert m[taxonomy.GOEMOTIONS_LABELS.index("grief")].argmax() == taxonomy.index("Sadness")


def test_unknown_category_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown emotion category 'Joy'.*Amusement"):
        taxonomy.index("Joy")
    with pytest.raises(ValueError, match="unknown group"):
        taxonomy.group_mask("Happy")

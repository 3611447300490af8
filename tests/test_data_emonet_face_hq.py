"""emonet_face_hq: files in the published format in, hand-checked targets out, every bad row named."""

import os

import numpy as np
import pytest
import real_files as rf

from emojax import taxonomy
from emojax.data import BadRowError, manual
from emojax.data import emonet_face_hq as hq
from emojax.train import data as train_data

A, E = taxonomy.INDEX["Amusement"], taxonomy.INDEX["Elation"]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("emonet")
    manual_dir = rf.write_emonet(root / "manual")
    return manual_dir, hq.build(manual_dir, root / "data")


def _all_examples(built):
    return [s[i] for split in manual.SPLITS for s in [built.source(split)] for i in range(len(s))]


def _find(built, image):
    for split in manual.SPLITS:
        src = built.source(split)
        for i in range(len(src)):
            if src[i]["image"] == image.encode():
                return split, src[i]
    raise AssertionError(image)


def test_targets_and_baselines_match_hand_computed_values(good):
    _, built = good
    split, ex = _find(built, rf.SPECIAL_IMAGE)
    assert split == ("test" if manual.in_test(rf.SPECIAL_IMAGE, 0, 0.2) else "train")
    meta = built.metadata
    # Raters sorted by annotator: ann_1 (4.0 on a two-line cell), ann_2 ({}: all 0), ann_3.
    assert [meta["annotators"][i] for i in ex["rater_ids"][:3]] == ["ann_1", "ann_2", "ann_3"]
    assert ex["num_raters"] == 3 and ex["rater_ids"][3] == -1 and (ex["ratings"][3] == -1).all()
    np.testing.assert_array_equal(ex["ratings"][:3, A], [4, 0, 3])
    np.testing.assert_array_equal(ex["ratings"][:3, E], [0, 0, 5])
    others = np.delete(ex["ratings"][:3], [A, E], axis=1)
    assert (others == 0).all()  # missing keys read as 0; Extra Dimensions (Age, Valence -2) ignored
    # Model rows apart, never targets: Hume's 0-1 scores x 7 (the authors' rule), gpt-4o as is.
    assert meta["model_annotators"] == ["Hume Face*", "gpt-4o"] and meta["model_annotators_times_7"] == ["Hume Face*"]
    np.testing.assert_allclose(ex["model_ratings"][0, [A, taxonomy.INDEX["Fear"]]], [3.5, 0.7], rtol=1e-6)
    assert ex["model_ratings"][1, A] == 6.0
    # What training reads: the mean of the raters present, every category covered.
    batch = {name: np.asarray(ex[name])[None] for name in ("embedding", "ratings", "num_raters")}
    inputs, y = train_data.targets(batch, "mean")
    np.testing.assert_allclose(np.asarray(y)[0, [A, E]], [7 / 3, 5 / 3], rtol=1e-6)
    assert inputs.shape == (1, rf.DIM)
    assert np.asarray(train_data.target_mask(batch, "mean")).all()
    rows = np.asarray(train_data.target_mask(batch, "per_rater"))
    assert rows.shape == (4, 40) and rows[:3].all() and not rows[3].any()


def test_split_by_image_and_metadata_counts(good):
    _, built = good
    meta = built.metadata
    seen = {}
    for split in manual.SPLITS:
        src = built.source(split)
        for i in range(len(src)):
            image = src[i]["image"].decode()
            assert image not in seen  # one example per image, never split across train/test
            seen[image] = split
            assert split == ("test" if manual.in_test(image, 0, 0.2) else "train")
    assert len(seen) == 25 and "models_only.jpg" not in seen and "unused.jpg" not in seen
    assert meta["counts"]["images_without_human_rows"] == 1 and meta["counts"]["embeddings_unused"] == 1
    assert meta["split_sizes"] == {s: sum(v == s for v in seen.values()) for s in manual.SPLITS}
    assert sum(meta["raters_per_image"].values()) == 25 and meta["bad_rows"]["total"] == 0
    assert meta["embed_dim"] == rf.DIM and meta["input"] == "embedding"


def test_npy_with_index_file_gives_the_same_dataset(good, tmp_path):
    _, built = good
    rows, emb = rf.emonet_rows()
    other = hq.build(rf.write_emonet(tmp_path / "m", rows, emb, layout="npy"), tmp_path / "data")
    _, a = _find(built, rf.SPECIAL_IMAGE)
    _, b = _find(other, rf.SPECIAL_IMAGE)
    np.testing.assert_array_equal(a["embedding"], b["embedding"])
    np.testing.assert_array_equal(a["ratings"], b["ratings"])


def test_a_build_is_reused_and_a_changed_file_builds_anew(good, tmp_path):
    manual_dir, built = good
    stamp = os.path.getmtime(os.path.join(built.path, "dataset_info.json"))
    again = hq.build(manual_dir, os.path.dirname(os.path.dirname(os.path.dirname(built.path))))
    assert again.path == built.path and os.path.getmtime(os.path.join(again.path, "dataset_info.json")) == stamp
    rows, emb = rf.emonet_rows()
    rows[0][3] = rf.annotations({"Amusement": 1})
    changed = hq.build(rf.write_emonet(tmp_path / "m", rows, emb), tmp_path / "data")
    assert os.path.basename(os.path.dirname(changed.path)) != os.path.basename(os.path.dirname(built.path))


def test_annotations_are_parsed_without_evaluating_code(tmp_path):
    marker = tmp_path / "pwned"
    rows, emb = rf.emonet_rows()
    rows.append(["img_000.jpg", "ann_9", "True", f"__import__('os').system('touch {marker}')"])
    with pytest.raises(BadRowError, match="malformed_annotations"):
        hq.build(rf.write_emonet(tmp_path / "m", rows, emb), tmp_path / "data")
    assert not marker.exists()
    assert hq.parse_annotations("{'Cognitive States and Processes|Confusion': 2, 'Extra Dimensions|Age': [1, {'x': 2}]}") == {"Confusion": 2.0}


def _bad_annotations(text):
    def mutate(rows, emb):
        rows.append(["img_001.jpg", "ann_9", "True", text])
        return "ann_9"

    return mutate


def _missing_embedding(rows, emb):
    del emb["img_002.jpg"]
    return "img_002.jpg"


def _duplicate(rows, emb):
    first = next(r for r in rows if r[0] == "img_003.jpg")
    rows.append(list(first[:3]) + ["{'Positive High-Energy Emotions|Amusement': 1}"])
    return "{'Positive High-Energy Emotions|Amusement': 1}"


def _bad_human(rows, emb):
    rows.append(["img_004.jpg", "ann_9", "maybe", "{}"])
    return "maybe"


def _multi_line_malformed(rows, emb):
    rows.append(["img_005.jpg", "ann_9", "True", "{'Positive High-Energy Emotions|Amusement': 3,\n 'Positive High-Energy Emotions|Elation': }"])
    return "ann_9"


BAD = {
    "malformed dict": (_bad_annotations("{'Positive High-Energy Emotions|Amusement': 3"), "malformed_annotations", "annotations"),
    "two-line malformed dict (line where the record starts)": (_multi_line_malformed, "malformed_annotations", "annotations"),
    "unknown emotion": (_bad_annotations("{'Positive High-Energy Emotions|Joyfulness': 3}"), "unknown_emotion", "annotations"),
    "rating 9": (_bad_annotations("{'Positive High-Energy Emotions|Amusement': 9}"), "rating_out_of_range", "annotations"),
    "rating -1": (_bad_annotations("{'Positive High-Energy Emotions|Amusement': -1}"), "rating_out_of_range", "annotations"),
    "NaN rating": (_bad_annotations("{'Positive High-Energy Emotions|Amusement': nan}"), "nan", "annotations"),
    "empty annotations cell": (_bad_annotations(""), "nan", "annotations"),
    "human rating 2.5": (_bad_annotations("{'Positive High-Energy Emotions|Amusement': 2.5}"), "bad_value", "annotations"),
    "image without embedding": (_missing_embedding, "missing_embedding", "image"),
    "duplicate rater row": (_duplicate, "duplicate_rater", "annotator"),
    "human not a boolean": (_bad_human, "bad_value", "human"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_row_names_file_line_and_field_or_is_skipped_and_counted(case, tmp_path):
    mutate, kind, field = BAD[case]
    rows, emb = rf.emonet_rows()
    needle = mutate(rows, emb)
    manual_dir = rf.write_emonet(tmp_path / "m", rows, emb)
    line = rf.line_of(os.path.join(manual_dir, "hq.csv"), needle)
    data_dir = tmp_path / "data"
    with pytest.raises(BadRowError) as err:
        hq.build(manual_dir, data_dir)
    msg = str(err.value)
    assert f"hq.csv, line {line}: field {field!r}" in msg and f"[{kind}]" in msg and "on_bad_row='skip'" in msg, msg
    assert (err.value.line, err.value.field, err.value.kind) == (line, field, kind)
    assert not data_dir.exists()  # nothing written
    built = hq.build(manual_dir, data_dir, on_bad_row="skip")
    counts = built.metadata["bad_rows"]["counts"]
    assert counts[kind] == 1 and built.metadata["bad_rows"]["total"] == 1
    assert f"line {line}" in built.metadata["bad_rows"]["first"][kind]


def test_broken_files_stop_the_build_under_either_policy(tmp_path):
    rows, emb = rf.emonet_rows()
    no_human = rf.write_emonet(tmp_path / "a", [[r[0], r[1], r[3]] for r in rows], emb, header=["image", "annotator", "annotations"])
    nan_emb = dict(emb, **{"img_006.jpg": np.full(rf.DIM, np.nan, np.float32)})
    nan_dir = rf.write_emonet(tmp_path / "b", rows, nan_emb)
    for policy in ("error", "skip"):
        with pytest.raises(BadRowError, match=r"hq.csv, line 1: field 'human': the header has no column 'human'.*\[missing_column\]$"):
            hq.build(no_human, tmp_path / "data", on_bad_row=policy)
    with pytest.raises(BadRowError, match=r"embeddings.npz, row \d+: field 'embeddings': the embedding of image 'img_006.jpg' holds NaN"):
        hq.build(nan_dir, tmp_path / "data")
    skipped = hq.build(nan_dir, tmp_path / "data", on_bad_row="skip")
    assert skipped.metadata["bad_rows"]["counts"]["non_finite_embedding"] == 1
    assert skipped.metadata["bad_rows"]["counts"]["missing_embedding"] == 0  # counted once, as its cause
    with pytest.raises(FileNotFoundError, match="no image embeddings"):
        os.remove(os.path.join(nan_dir, "embeddings.npz"))
        hq.build(nan_dir, tmp_path / "data")


def test_a_failure_while_writing_leaves_nothing_behind(tmp_path, monkeypatch):
    manual_dir = rf.write_emonet(tmp_path / "m")
    data_dir = tmp_path / "data"
    data_dir.mkdir()

    def broken(self, split):
        yield 0, self._parsed.splits[split][0]
        raise OSError("disk full")

    monkeypatch.setattr(hq.EmonetFaceHq, "_generate_examples", broken)
    with pytest.raises(OSError, match="disk full"):
        hq.build(manual_dir, data_dir)
    assert os.listdir(data_dir) == []

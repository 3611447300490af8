"""goemotions_raw: the raw release's CSVs in, graded targets and masks checked by hand, bad rows named."""

import json
import os

import numpy as np
import pytest
import real_files as rf
import tokenizers

from emojax import taxonomy
from emojax.data import BadRowError, manual
from emojax.data import goemotions_raw as go
from emojax.data import tokenizer as tokenizer_lib
from emojax.train import data as train_data

I = taxonomy.INDEX  # noqa: E741


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("goemotions")
    manual_dir = rf.write_goemotions(root / "manual")
    return manual_dir, go.build(manual_dir, root / "data")


def _find(built, cid):
    for split in manual.SPLITS:
        src = built.source(split)
        for i in range(len(src)):
            if src[i]["id"] == cid.encode():
                return split, src[i]
    raise AssertionError(cid)


def test_graded_targets_and_mask_match_hand_computed_values(good):
    _, built = good
    split, ex = _find(built, rf.SPECIAL_COMMENT)
    assert split == ("test" if manual.in_test(rf.SPECIAL_COMMENT, 0, 0.2) else "train")
    # Text with a comma, quotes and a newline comes back as written; rows from two files.
    assert ex["text"].decode() == rf.SPECIAL_TEXT
    # Raters 61 (joy, love), 12 (joy), 33 (neutral); rater 7 marked it very unclear: dropped.
    assert ex["num_raters"] == 3 and list(ex["rater_ids"][:3]) == [12, 33, 61] and (ex["rater_ids"][3:] == -1).all()
    batch = {name: np.asarray(ex[name])[None] for name in ("tokens", "ratings", "num_raters")}
    _, y = train_data.targets(batch, "mean")
    mask = np.asarray(train_data.target_mask(batch, "mean"))[0]
    y = np.asarray(y)[0]
    assert y[I["Elation"]] == pytest.approx(7 * 2 / 3)  # joy: 2 of 3 raters
    assert y[I["Affection"]] == pytest.approx(7 * 1 / 3)  # love (and caring): 1 of 3
    covered = go.covered()
    assert covered.sum() == 20 and not covered[I["Pain"]] and covered[I["Anger"]]
    np.testing.assert_array_equal(mask, covered.astype(np.float32))  # uncovered categories masked
    assert (y[covered & ~np.isin(np.arange(40), [I["Elation"], I["Affection"]])] == 0).all()
    assert (ex["ratings"][:3][:, ~covered] == -1).all()
    labels = dict(zip(taxonomy.GOEMOTIONS_LABELS, ex["labels"]))
    assert labels["joy"] == pytest.approx(2 / 3) and labels["love"] == pytest.approx(1 / 3) and labels["neutral"] == pytest.approx(1 / 3)
    # Several labels onto one category count a rater once: anger + annoyance -> Anger, Impatience.
    _, q = _find(built, "quotes")
    y = np.asarray(train_data.targets({name: np.asarray(q[name])[None] for name in ("tokens", "ratings", "num_raters")}, "mean")[1])[0]
    assert y[I["Anger"]] == pytest.approx(7 * 2 / 3) and y[I["Impatience and Irritability"]] == pytest.approx(7 / 3)


def test_metadata_counts_and_split_by_comment(good):
    _, built = good
    meta = built.metadata
    counts = meta["counts"]
    assert counts["files"] == ["goemotions_1.csv", "goemotions_2.csv"]
    assert counts["very_unclear_rows"] == 4 and counts["comments_all_very_unclear"] == 1
    assert counts["comments"] == 42 and meta["very_unclear"] == "drop" and meta["bad_rows"]["total"] == 0
    ids = {}
    for split in manual.SPLITS:
        src = built.source(split)
        for i in range(len(src)):
            cid = src[i]["id"].decode()
            assert cid not in ids and cid != "allunclear"
            ids[cid] = split
    assert meta["split_sizes"] == {s: sum(v == s for v in ids.values()) for s in manual.SPLITS}


def test_keep_policy_counts_very_unclear_raters_as_seeing_nothing(good, tmp_path):
    manual_dir, _ = good
    built = go.build(manual_dir, tmp_path / "data", very_unclear="keep")
    _, ex = _find(built, rf.SPECIAL_COMMENT)
    assert ex["num_raters"] == 4
    y = np.asarray(train_data.targets({name: np.asarray(ex[name])[None] for name in ("tokens", "ratings", "num_raters")}, "mean")[1])[0]
    assert y[I["Elation"]] == pytest.approx(7 * 2 / 4)
    _, gone = _find(built, "allunclear")
    assert gone["num_raters"] == 3 and (gone["ratings"][:3][:, go.covered()] == 0).all()


def test_tokenizer_is_trained_on_train_texts_and_stored_beside_the_data(tmp_path):
    first, second = rf.goemotions_rows()
    test_id = next(f"t{i}" for i in range(100) if manual.in_test(f"t{i}", 0, 0.2))
    first += [rf.go_row("zyxwvut zyxwvut zyxwvut", test_id, r, ("joy",)) for r in (1, 2, 3)]
    built = go.build(rf.write_goemotions(tmp_path / "m", first, second), tmp_path / "data")
    meta = built.metadata
    assert meta["token_id_offset"] == 0 and meta["tokenizer_source"].startswith("trained on the train split's")
    tok = tokenizer_lib.from_file(built.tokenizer_path)
    assert os.path.dirname(built.tokenizer_path) == built.path
    assert tok.id_to_token(0) == "[PAD]" and meta["vocab_size"] == tok.get_vocab_size()
    _, ex = _find(built, rf.SPECIAL_COMMENT)
    assert tok.decode([int(t) for t in ex["tokens"] if t]) == 'wow, " that " is great, thanks [ name ]!'
    assert _find(built, test_id)[0] == "test"
    assert "zyxwvut" not in tok.get_vocab()  # a test text never shapes the vocabulary
    assert set(tok.encode("zyxwvut").tokens) != {"zyxwvut"}


def test_a_given_tokenizer_is_used_and_id_zero_is_freed_for_padding(tmp_path):
    manual_dir = rf.write_goemotions(tmp_path / "m")
    words = sorted({w for ws in rf.WORDS.values() for w in ws.split()} - {"the"})
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({w: i for i, w in enumerate(["the"] + words + ["<unk>"])}, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.save(os.path.join(manual_dir, "tokenizer.json"))
    built = go.build(manual_dir, tmp_path / "data")
    meta = built.metadata
    assert meta["token_id_offset"] == 1 and meta["tokenizer_source"].startswith("given:")
    assert meta["vocab_size"] == tok.get_vocab_size() + 1
    stored = json.load(open(built.tokenizer_path))
    assert stored["model"]["vocab"]["the"] == 0
    src = built.source("train")
    assert all(int(src[i]["tokens"].min()) >= 0 and int(src[i]["tokens"][0]) > 0 for i in range(len(src)))


def _append(row_fn, where=0):
    def mutate(first, second):
        row, needle = row_fn()
        (first if where == 0 else second).append(row)
        return needle

    return mutate


def _label_cell(value):
    def row():
        r = rf.go_row("a fine comment nobody else wrote", "zz1", 3, ("joy",))
        r[rf.GO_HEADER.index("admiration")] = value
        return r, "zz1"

    return row


def _duplicate(first, second):
    first.append(rf.go_row(rf.SPECIAL_TEXT, rf.SPECIAL_COMMENT, 12, ("sadness",)))
    return None  # the record starts on the line of its quoted text, found below


def _inconsistent(first, second):
    second.append(rf.go_row("another text", rf.SPECIAL_COMMENT, 99, ("joy",)))
    return "another text"


def _multi_line_bad(first, second):
    r = rf.go_row("first line\nsecond line, with a comma", "zz2", 4, ("joy",))
    r[rf.GO_HEADER.index("joy")] = "2"
    first.append(r)
    return "first line"


BAD = {
    "empty text": (_append(lambda: (rf.go_row("   ", "zz0", 3, ("joy",)), "zz0")), "empty_text", "text", 1),
    "NaN label (empty cell)": (_append(_label_cell("")), "nan", "admiration", 1),
    "NaN label (nan)": (_append(_label_cell("nan")), "nan", "admiration", 1),
    "label 2": (_append(_label_cell("2")), "rating_out_of_range", "admiration", 1),
    "label not a number": (_append(_label_cell("yes")), "bad_value", "admiration", 1),
    "multi-line text with label 2 (line where the record starts)": (_multi_line_bad, "rating_out_of_range", "joy", 1),
    "rater_id not an integer": (_append(lambda: (rf.go_row("ok text", "zz3", "r7"), "zz3")), "bad_value", "rater_id", 1),
    "very_unclear not a boolean": (
        _append(lambda: (rf.go_row("ok text", "zz4", 3)[:8] + ["maybe"] + [0] * 28, "zz4")), "bad_value", "example_very_unclear", 1,
    ),
    "duplicate rater row": (_duplicate, "duplicate_rater", "rater_id", 1),
    "text differs between a comment's rows": (_inconsistent, "inconsistent_text", "text", 2),
    "too few fields": (_append(lambda: (["short row", "zz5", "x"], "zz5")), "wrong_field_count", "<record>", 1),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_row_names_file_line_and_field_or_is_skipped_and_counted(case, tmp_path):
    mutate, kind, field, file_no = BAD[case]
    first, second = rf.goemotions_rows()
    needle = mutate(first, second)
    manual_dir = rf.write_goemotions(tmp_path / "m", first, second)
    path = os.path.join(manual_dir, f"goemotions_{file_no}.csv")
    if needle is None:  # the duplicate: the last record of the file
        with open(path, encoding="utf-8") as f:
            line = len(f.read().splitlines()) - 1  # its quoted text spans two lines
    else:
        line = rf.line_of(path, needle)
    with pytest.raises(BadRowError) as err:
        go.build(manual_dir, tmp_path / "data")
    msg = str(err.value)
    assert f"goemotions_{file_no}.csv, line {line}: field {field!r}" in msg and f"[{kind}]" in msg, msg
    assert not (tmp_path / "data").exists()
    built = go.build(manual_dir, tmp_path / "data", on_bad_row="skip")
    assert built.metadata["bad_rows"]["counts"][kind] == 1 and built.metadata["bad_rows"]["total"] == 1


def test_broken_files_stop_the_build_under_either_policy(tmp_path):
    first, second = rf.goemotions_rows()
    no_neutral = rf.write_goemotions(tmp_path / "a", [r[:-1] for r in first], [r[:-1] for r in second], header=rf.GO_HEADER[:-1])
    extra = rf.write_goemotions(tmp_path / "b", [r + [0] for r in first], [r + [0] for r in second], header=rf.GO_HEADER + ["joyfulness"])
    unclosed = rf.write_goemotions(tmp_path / "c", first, second)
    with open(os.path.join(unclosed, "goemotions_2.csv"), "a") as f:
        f.write('"an unclosed quote,zz9,a,b,c,d,1.0,3,False' + ",0" * 28 + "\n")
    line = rf.line_of(os.path.join(unclosed, "goemotions_2.csv"), "an unclosed quote")
    for policy in ("error", "skip"):
        with pytest.raises(BadRowError, match=r"goemotions_1.csv, line 1: field 'neutral': the header has no column 'neutral'"):
            go.build(no_neutral, tmp_path / "data", on_bad_row=policy)
        unknown = r"goemotions_1.csv, line 1: field 'joyfulness': 'joyfulness' is not one of GoEmotions' 28 labels.*\[unknown_column\]"
        with pytest.raises(BadRowError, match=unknown):
            go.build(extra, tmp_path / "data", on_bad_row=policy)
        with pytest.raises(BadRowError, match=rf"goemotions_2.csv, line {line}: field '<record>': cannot parse CSV"):
            go.build(unclosed, tmp_path / "data", on_bad_row=policy)
    assert not (tmp_path / "data").exists()
    with pytest.raises(FileNotFoundError, match="no goemotions_"):
        go.build(tmp_path / "empty", tmp_path / "data")

"""Bad input in a downloaded dataset: one error type, and the policy that stops or skips.

A loader over files people downloaded meets rows it cannot use. Each such row is reported
through a :class:`BadRows` with the file, the line where the record *starts* (a quoted text
may span several lines, so this is not the line the parser stopped on), the field, and a
kind from :data:`KINDS`. With ``on_bad_row="error"`` (the default) the first one stops the
build with a :class:`BadRowError`; with ``"skip"`` the row (or the item it belongs to, where
the kind says so) is left out and counted, and the counts go into the dataset's metadata.
Nothing is dropped without being counted, and problems with the file as a whole (a missing
column, a header naming an unknown emotion, broken quoting) stop the build under either
policy, because no row of such a file can be trusted.
"""

from __future__ import annotations

import collections
import os

ON_BAD_ROW = ("error", "skip")

# kind -> what it means; the keys are the names counted in a dataset's metadata.
KINDS: dict[str, str] = {
    "malformed_annotations": "an annotations cell that is not a dict literal of 'Group|Emotion': number",
    "unknown_emotion": "an emotion name that is not one of EmoNet's 40 (or GoEmotions' 28 labels)",
    "rating_out_of_range": "a rating outside 0-7 (EmoNet) or a label outside 0/1 (GoEmotions)",
    "nan": "a missing number: NaN, or an empty cell where a number belongs",
    "missing_embedding": "an image with human ratings but no row in the embeddings file (counted per image)",
    "empty_text": "a comment whose text is empty or only whitespace",
    "duplicate_rater": "a second row of the same rater for the same item (the later row is the bad one)",
    "bad_value": "a value of the wrong type (e.g. human not True/False, rater_id not an integer)",
    "wrong_field_count": "a CSV record with more or fewer fields than the header",
    "inconsistent_text": "a comment id whose text differs from the text on its first row",
    "duplicate_embedding": "an image that appears twice in the embeddings file",
    "non_finite_embedding": "an embedding holding NaN or infinity",
}
FATAL = ("missing_column", "unknown_column", "unreadable")  # never skipped


class BadRowError(ValueError):
    """A row (or a whole file) the loader cannot use.

    Attributes:
      path: the file.
      line: the 1-based physical line where the record starts (CSV files), or None.
      row: the 0-based row of an array file (embeddings), or None.
      field: the column or array the problem is in.
      kind: one of :data:`KINDS` or :data:`FATAL`.
      problem: what is wrong, in words.
    """

    def __init__(self, path, field: str, kind: str, problem: str, *, line: int | None = None, row: int | None = None, fatal: bool = False):
        self.path, self.line, self.row, self.field, self.kind, self.problem = os.fspath(path), line, row, field, kind, problem
        where = self.path
        if line is not None:
            where += f", line {line}"
        if row is not None:
            where += f", row {row}"
        hint = "" if fatal else (
            "; fix the file, or build with on_bad_row='skip' (--set on_bad_row=skip) to leave such rows out "
            "(they are counted in the dataset's metadata under bad_rows)"
        )
        super().__init__(f"{where}: field {field!r}: {problem} [{kind}]{hint}")


class BadRows:
    """Reports bad rows under a policy and counts the skipped ones by kind.

    ``report`` raises under ``"error"`` and returns (so the caller skips the row) under
    ``"skip"``; ``fatal`` always raises.
    """

    def __init__(self, on_bad_row: str):
        if on_bad_row not in ON_BAD_ROW:
            raise ValueError(f"on_bad_row must be one of {ON_BAD_ROW}, got {on_bad_row!r}")
        self.policy = on_bad_row
        self.counts: collections.Counter[str] = collections.Counter()
        self.first: dict[str, str] = {}  # kind -> the first message, kept in the metadata

    def report(self, path, field: str, kind: str, problem: str, *, line: int | None = None, row: int | None = None) -> None:
        if kind not in KINDS:
            raise AssertionError(f"unregistered bad-row kind {kind!r}")
        err = BadRowError(path, field, kind, problem, line=line, row=row)
        if self.policy == "error":
            raise err
        self.counts[kind] += 1
        self.first.setdefault(kind, str(err).split("; fix the file")[0])

    @staticmethod
    def fatal(path, field: str, kind: str, problem: str, *, line: int | None = None) -> BadRowError:
        """The error for a problem with the whole file (raise it)."""
        return BadRowError(path, field, kind, problem, line=line, fatal=True)

    def metadata(self) -> dict:
        """``{"policy", "counts" (every kind, 0 where none), "total", "first"}`` for the dataset metadata."""
        return {
            "policy": self.policy,
            "counts": {kind: int(self.counts.get(kind, 0)) for kind in KINDS},
            "total": int(sum(self.counts.values())),
            "first": dict(self.first),
        }

"""CSV records with the physical line each one starts on.

``csv.reader.line_num`` is the number of lines read *so far*, i.e. the line a record ends
on; a quoted text with newlines in it (Reddit comments have them) starts earlier. The
start is the previous record's end plus one, which is what a user looks for in an editor.

Files are read with the ``csv`` module (never split on commas by hand), ``newline=""`` so
that newlines inside quoted fields survive, UTF-8 with an optional byte-order mark, and
``strict=True`` so broken quoting is an error rather than a silently merged record.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterator, Sequence

from emojax.data.errors import BadRows

# A long Reddit comment can exceed the csv module's default 128 KiB field limit.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def records(path, required: Sequence[str], bad: BadRows) -> Iterator[tuple[int, dict[str, str]]]:
    """``(start_line, {column: value})`` for each record of a CSV file with a header.

    Blank lines are not records and are passed over. A record with another number of
    fields than the header is reported as ``wrong_field_count``.

    Raises:
      BadRowError: a required column is missing from the header, the quoting is broken,
        the bytes are not UTF-8 (always), or a bad row under ``on_bad_row="error"``.
    """
    path = os.fspath(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, strict=True)
        ended = 0  # the last line of the previous record
        try:
            header = next(reader, None)
            if header is None:
                raise bad.fatal(path, "<header>", "missing_column", "the file is empty; expected a header row", line=1)
            header = [h.strip() for h in header]
            missing = [c for c in required if c not in header]
            if missing:
                raise bad.fatal(
                    path, missing[0], "missing_column",
                    f"the header has no column {missing[0]!r} (missing: {missing}; header: {header})", line=1,
                )  # fmt: skip
            ended = reader.line_num
            for row in reader:
                start, ended = ended + 1, reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    bad.report(path, "<record>", "wrong_field_count", f"{len(row)} fields where the header has {len(header)}", line=start)
                    continue
                yield start, dict(zip(header, row))
        except csv.Error as err:
            raise bad.fatal(path, "<record>", "unreadable", f"cannot parse CSV ({err}); a quote is probably not closed", line=ended + 1) from None
        except UnicodeDecodeError as err:
            raise bad.fatal(path, "<record>", "unreadable", f"not UTF-8 text ({err.reason} at byte {err.start} of a chunk)", line=ended + 1) from None


def header(path) -> list[str]:
    """The header row of a CSV file (stripped names)."""
    with open(os.fspath(path), newline="", encoding="utf-8-sig") as f:
        return [h.strip() for h in next(csv.reader(f), [])]


"""Raw CSV files with a header, read as a pipeline endpoint's requests carry them.

``predict`` and ``transform`` take the rows as the user has them: the training file's layout,
a header naming the columns in any order, the label column optional. A request carries each
row's input columns (every column of the source but the label) in source order, without the
header, each cell passed on as written; the label, when there, is kept apart for metrics, and
each row's id (a named column, or its number) to join the answers back.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from training.core.featurizer import SPACE, Featurizer
from training.data.raw_csv import header_cells
from training.errors import Problem, ValidationError
from training.files import file_problem, too_long
from training.limits import MAX_ROW_BYTES


def has_header(path: Path, featurizer: Featurizer) -> bool:
    """Whether the CSV's first row names the model's input columns (a raw file)."""
    try:
        names = header_cells(path)
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return bool(names) and {c.name for c in featurizer.inputs} <= set(names)


@dataclass(frozen=True)
class RawRow:
    number: int  # 1 = the first row under the header
    line: str  # the input columns in source order, as CSV
    id: str  # the id column's cell, or the number
    label: str | None  # the label's cell, when the file has the label column


def raw_rows(
    path: Path,
    featurizer: Featurizer,
    id_column: str | None = None,
    need_label: bool = False,
    max_row: int = MAX_ROW_BYTES,
) -> Iterator[RawRow]:
    """The data rows of a raw CSV with a header, streamed. A line without quotes is split on
    its commas (its cells cannot hold one) and passed on as written; a quoted one is read
    and written back by the csv module. A record longer than ``max_row`` characters is
    refused before it is read whole."""
    path = Path(path)
    unreadable = file_problem(path, fix="check --input")
    if unreadable:
        raise ValidationError([unreadable])
    names = [c.name for c in featurizer.inputs]
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            records = _records(fh, max_row)
            columns = [c.lstrip(SPACE) for c in next(records, (None, []))[1]]
            where = {name: i for i, name in enumerate(columns)}
            _check_header(path, names, where, id_column, featurizer.label, need_label)
            take = [where[n] for n in names]
            identity = take == list(range(len(columns)))
            label = where.get(featurizer.label) if featurizer.label else None
            ident = where[id_column] if id_column else None
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")  # so a cell's line break is quoted
            for number, (line, row) in enumerate(records, start=1):
                if len(row) != len(columns):
                    raise ValidationError(
                        [
                            Problem(
                                str(path),
                                f"has {len(row)} fields but the header has {len(columns)}",
                                "fix the row (a stray comma? quote fields with commas)",
                                row=number + 1,
                            )
                        ]
                    )
                if line is None:  # quoted: written back by the csv module
                    buf.seek(0)
                    buf.truncate()
                    writer.writerow([row[i] for i in take])
                    line = buf.getvalue()[:-1]
                elif not identity:
                    line = ",".join([row[i] for i in take])
                yield RawRow(
                    number,
                    line,
                    row[ident].lstrip(SPACE) if ident is not None else str(number),
                    row[label] if label is not None else None,
                )
    except UnicodeDecodeError as err:
        raise ValidationError(
            [Problem(str(path), f"not UTF-8 text (byte {err.start})", "save it as UTF-8")]
        ) from None
    except csv.Error as err:
        raise ValidationError([Problem(str(path), f"not CSV: {err}", "fix the file")]) from None
    except _TooLong as err:
        fix = "split the row, or check the file has line breaks"
        raise ValidationError(
            [too_long(path, err.row, max_row, fix, "what one request holds")]
        ) from None


class _TooLong(Exception):  # noqa: N818 (a signal to raw_rows, which names the file)
    def __init__(self, row: int):
        self.row = row  # the file's line the record starts on


def _records(fh, max_row: int) -> Iterator[tuple[str | None, list[str]]]:
    """(the line as written, or None when quoted; its cells) per record; blank lines skipped
    (as pandas skips them); a record over ``max_row`` characters raises :class:`_TooLong`."""
    pending, number, start = "", 0, 0
    for line in iter(lambda: fh.readline(max_row + 1), ""):
        number += 1
        start = start if pending else number
        if len(line) + len(pending) > max_row + 1 or (
            len(line) == max_row + 1 and not line.endswith("\n")
        ):
            raise _TooLong(start)
        if pending or '"' in line:
            pending += line
            if pending.count('"') % 2:  # a quoted cell goes on to the next line
                continue
            lines = pending.splitlines(keepends=True)
            cells = next(csv.reader(lines, skipinitialspace=True), [])
            pending = ""
            if cells:
                yield None, cells
            continue
        text = line.rstrip("\r\n")
        if text.strip(SPACE):
            yield text, text.split(",")
    if pending:
        raise csv.Error("a quoted cell is not closed at the end of the file")


def _check_header(path, names, where, id_column, label, need_label) -> None:
    problems = []
    missing = [n for n in names if n not in where]
    if missing:
        problems.append(
            Problem(
                str(path),
                f"the header lacks the model's column(s) {', '.join(missing)}",
                "send the training file's columns (the label may be left out)",
                row=1,
            )
        )
    if id_column is not None and id_column not in where:
        problems.append(Problem(str(path), f"no column '{id_column}'", "check --id-column", row=1))
    if need_label and label not in where:
        problems.append(
            Problem(
                str(path),
                f"--labelled, but the header has no label column '{label}'",
                "add it, or leave --labelled out",
                row=1,
            )
        )
    if problems:
        raise ValidationError(problems)

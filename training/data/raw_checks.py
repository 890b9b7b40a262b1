"""Checks on the user's raw CSV (a header row, the label, the columns) before ``prepare`` uses it,
and the rule for its numeric columns (text in one is an error naming the row; infinities count
as missing).

``validate_raw_csv`` reads the first rows ``prepare`` checks (the same :mod:`sizing` budget),
after counting their fields (a header or row over MAX_RAW_COLUMNS is refused before pandas
parses it: :class:`training.data.raw_csv.Widths`), and ``prepare`` runs
:func:`check_raw_sample` on the same rows of its own reading: a missing or misspelt label
column, a repeated header name or the label spelt another way (a copy of the label would leak
into the features; :func:`fold_name`), a header that is data, empty labels, the wrong number
of classes for the predictor type, non-numeric regression labels; and it names the features
these rows show to be the label under other values (:mod:`training.data.label_copies`), which
both then check on every row of the file, in ``prepare``'s chunks, refusing only those that
hold on all of them (``validate_raw_csv`` reads on only when the first rows name one, and
stops once none is left). Each problem names the file, row and the fix.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import logging
import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.core.losses import BINARY, MULTICLASS, PREDICTOR_TYPES, REGRESSOR
from training.data.label_copies import LabelCopies
from training.data.raw_csv import (
    Numbers,
    RawChunk,
    Text,
    check_widths,
    header_cells,
    raw_csv_errors,
    read_chunks,
    unreadable_csv,
    with_engines,
)
from training.data.sizing import Sizes, check_rows
from training.errors import Problem, ValidationError
from training.files import file_problem

log = logging.getLogger("training")


def validate_raw_csv(
    path: str | Path,
    label: str,
    predictor_type: str,
    sample_rows: int | None = None,
    allow_unlabeled: bool = False,
    drop: tuple[str, ...] = (),
):
    """Check the user's raw CSV (with header) before ``prepare`` reads it for real.

    Reads the first ``sample_rows`` rows for the column checks (by default the rows
    ``prepare`` checks first: fewer the wider the file, so memory stays bounded). Features
    these rows show to be copies of the label are then checked on every row, as ``prepare``
    checks them (:func:`copies_on_every_row`), so that both refuse the same columns with the
    same message; a file whose first rows show none is not read further. Ragged rows beyond
    the first rows are caught by the full read in ``prepare`` (and by that pass, when it runs),
    reported through :func:`ragged_row_problem`.
    """
    import pandas as pd

    path = Path(path)
    name = str(path)
    check_raw_file(path, predictor_type)
    rows = sample_rows or check_rows(path)
    check_widths(path, rows)  # a row of millions of fields took pandas gigabytes
    with raw_csv_errors(name):
        frame = pd.read_csv(path, nrows=rows, skipinitialspace=True)
    copies = check_raw_sample(path, frame, label, predictor_type, allow_unlabeled, drop)
    del frame
    if copies.pending:
        copies = copies_on_every_row(path, copies)
    if copies.found:
        raise ValidationError(copies.problems(name))


def copies_on_every_row(path: Path, first: LabelCopies) -> LabelCopies:
    """The candidate copies ``first`` (from the first rows) that hold on every row of the file:
    read with ``prepare``'s chunked reader (a chunk in memory at a time, of ``prepare``'s
    size) and checked with its per-chunk check (:meth:`LabelCopies.update`); reading stops
    once no candidate is left."""
    chunk_rows = Sizes.of_file(path).chunk_rows

    def attempt(engine: str) -> LabelCopies:
        copies = first.restarted()
        chunks = read_chunks(path, chunk_rows, engine, exact=(first.label,))
        with contextlib.closing(chunks):
            for chunk in chunks:
                copies.update(chunk)
                if not copies.pending:
                    break
        return copies

    return with_engines(path, attempt)


def check_raw_file(path: Path, predictor_type: str) -> None:
    """What can be told before parsing: a readable, non-empty file; a known predictor type."""
    unreadable = file_problem(path, "CSV file", "check the --data path")
    if unreadable:
        raise ValidationError([unreadable])
    if path.stat().st_size == 0:
        raise ValidationError([empty_file(str(path))])
    check_predictor_type(predictor_type)


def check_raw_sample(
    path: Path,
    frame,
    label: str,
    predictor_type: str,
    allow_unlabeled: bool = False,
    drop: tuple[str, ...] = (),
) -> LabelCopies:
    """The column checks on the first rows of the raw CSV (``frame``, as pandas reads it).
    Returns the feature columns these rows show to be copies of the label under other values
    (:mod:`training.data.label_copies`), for the caller to check on every row before it
    reports them (:func:`copies_on_every_row`; ``prepare``'s pass 1)."""
    import pandas as pd

    name = str(path)
    problems = _duplicate_columns(path, label, drop)
    if problems:
        raise ValidationError(problems)
    if label not in frame.columns:
        folded = [str(c) for c in frame.columns if fold_name(str(c)) == fold_name(label)]
        close = folded or difflib.get_close_matches(label, [str(c) for c in frame.columns], n=1)
        hint = f"did you mean {quoted(close[0])}? " if close else ""
        shown = ", ".join(map(str, frame.columns[:8])) + (", …" if len(frame.columns) > 8 else "")
        problems.append(
            Problem(
                name,
                f"no column named '{label}' in the header ({shown})",
                f"{hint}pass --label with a column name from the header row",
                row=1,
            )
        )
        raise ValidationError(problems)
    if frame.shape[0] == 0:
        raise ValidationError([Problem(name, "has a header but no data rows", "add data rows")])
    if _numeric_header(frame.columns):
        problems.append(
            Problem(
                name,
                "the first row looks like data, not a header",
                "add a header row with column names",
                row=1,
            )
        )
    y = frame[label]
    missing = np.flatnonzero(y.isna().to_numpy())
    if missing.size and not allow_unlabeled:
        problems.append(
            Problem(
                name,
                f"label '{label}' is empty in {missing.size} rows (first: row {missing[0] + 2})",
                "fill the labels in, or pass --drop-unlabeled to leave those rows out",
                row=int(missing[0]) + 2,
            )
        )
    present = y.dropna()
    classes = present.unique()
    if predictor_type == BINARY and len(classes) != 2:
        problems.append(
            Problem(
                name,
                f"label '{label}' has {len(classes)} distinct values "
                f"({', '.join(map(str, classes[:5]))}{', …' if len(classes) > 5 else ''}); "
                "binary_classifier needs exactly 2",
                "use --predictor-type multiclass_classifier (3+ classes) or regressor"
                if len(classes) > 2
                else "the data needs examples of both classes",
            )
        )
    if predictor_type == MULTICLASS and len(classes) < 3:
        problems.append(
            Problem(
                name,
                f"label '{label}' has {len(classes)} distinct values; multiclass_classifier "
                "needs at least 3",
                "use --predictor-type binary_classifier for two classes",
            )
        )
    if predictor_type == REGRESSOR:
        numeric = pd.to_numeric(present, errors="coerce")
        bad = np.flatnonzero(numeric.isna().to_numpy() | ~np.isfinite(numeric.to_numpy(float)))
        if bad.size:
            value, row = present.iloc[bad[0]], int(present.index[bad[0]]) + 2
            problems.append(_not_a_finite_label(name, label, value, row))
    if frame.shape[1] < 2:
        problems.append(Problem(name, "only the label column; no features", "add feature columns"))
    if problems:
        raise ValidationError(problems)
    return LabelCopies.among(frame, label, drop)


def _not_a_finite_label(name: str, label: str, value, row: int) -> Problem:
    return Problem(
        name,
        f"label '{label}' has value '{value}', not a finite number",
        "a regressor needs finite numeric labels; use a classifier for categories",
        row=row,
    )


def regression_label_problem(
    name: str, label: str, column: Numbers | Text, row_numbers: np.ndarray
) -> Problem | None:
    """The first of a chunk's (labelled) regressor labels that is not a finite number, by
    the rule :func:`check_raw_sample` applies to the first rows, for ``prepare``'s pass over
    the rest: text there (a chunk pandas reads as text) ended in a ValueError traceback
    when the labels were encoded. ``row_numbers``: each row's 0-based data row."""
    import pandas as pd

    if isinstance(column, Text):
        numbers = pd.to_numeric(pd.Series(column.values, dtype=object), errors="coerce")
        bad_value = ~np.isfinite(numbers.to_numpy(float))
        bad = np.flatnonzero(bad_value[column.codes])
        value = column.values[column.codes[bad[0]]] if bad.size else None
    else:
        bad = np.flatnonzero(~np.isfinite(column.values.astype(np.float64)))
        value = column.values[bad[0]] if bad.size else None
    if not bad.size:
        return None
    return _not_a_finite_label(name, label, value, int(row_numbers[bad[0]]) + 2)


@dataclass
class LabelKinds:
    """Whether a classifier's label is read as numbers in some chunks and as text in others:
    pandas (and :func:`~training.data.raw_csv.read_chunks`, chunk by chunk as pandas reads
    them) reads a chunk's column as text when one cell of it is not a number, so a label of
    0, 1, 2 with one 'two' on row 252 gave the classes 0, 1, 2 and '0', '1', '2', 'two':
    seven classes, the same class split in two, without a word."""

    number: tuple[int, object] | None = None  # the first number label: (row, value)
    other: tuple[int, object] | None = None  # the first label that is not a number

    def problem(
        self, name: str, label: str, column: Numbers | Text, row_numbers: np.ndarray
    ) -> Problem | None:
        """Note a chunk's (labelled) labels; the problem once both kinds were met."""
        if isinstance(column, Text):
            if self.other is None:
                odd = np.flatnonzero([not _number_like(v) for v in column.values])
                rows = np.flatnonzero(np.isin(column.codes, odd))
                if rows.size:
                    value = column.values[column.codes[rows[0]]]
                    self.other = (int(row_numbers[rows[0]]) + 2, value)
        elif self.number is None and len(column):
            self.number = (int(row_numbers[0]) + 2, column.values[0].item())
        if self.number is None or self.other is None:
            return None
        (number_row, number), (other_row, other) = self.number, self.other
        return Problem(
            name,
            f"label '{label}' is {other!r} here but a number ({number}) on row {number_row}: "
            "prepare reads the file in chunks as pandas does, and a chunk with a label that is "
            "not a number reads all its labels as text, so a class would be two ('2' and 2)",
            "fix that label, or spell every class as text (e.g. c0, c1, c2)",
            row=other_row,
        )


def _number_like(value) -> bool:
    """Whether a text label reads as a finite number (what pandas would read as one)."""
    if not isinstance(value, str):
        return False  # True / False
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _duplicate_columns(path: Path, label: str, drop=()) -> list[Problem]:
    """Header names that repeat. pandas would rename the second ``y`` to ``y.1`` and use it
    as a feature: a copy of the label among the features (a leak that scores 1.0). The label
    is also matched under other spellings (:func:`fold_name`: ``Sex``, ``sex`` with a trailing,
    non-breaking or zero-width space, fullwidth ``ｓｅｘ``), which pandas keeps as a feature."""
    try:
        header = header_cells(path)
    except (UnicodeDecodeError, csv.Error) as err:
        return [unreadable_csv(str(path), err)]
    seen: dict[str, int] = {}
    problems = []
    label_at = next((i for i, col in enumerate(header, start=1) if col == label), None)
    for i, col in enumerate(header, start=1):
        if col in seen:
            leak = " (the label: a copy of it would become a feature)" if col == label else ""
            problems.append(
                Problem(
                    str(path),
                    f"column name '{col}' appears twice in the header, as columns "
                    f"{seen[col]} and {i}{leak}",
                    "rename or remove one of them",
                    row=1,
                    column=i,
                )
            )
            continue
        seen[col] = i
        if label_at and col != label and col not in drop and fold_name(col) == fold_name(label):
            problems.append(
                Problem(
                    str(path),
                    f"column {quoted(col)} is the label {quoted(label)} (column {label_at}) spelt "
                    "another way (case, spaces, invisible or fullwidth characters): a copy of "
                    "the label would become a feature",
                    f"rename or remove one of them, or pass --drop {quoted(col)}",
                    row=1,
                    column=i,
                )
            )
    return problems


def quoted(name: str) -> str:
    """``name`` in quotes; escaped (``'sex\\xa0'``) when it holds spaces at its ends, or
    spaces or characters one cannot see."""
    hidden = name != name.strip() or any(
        (ch.isspace() and ch != " ") or unicodedata.category(ch) in ("Cf", "Cc") for ch in name
    ) or bool(_IGNORABLE.search(name))
    return ascii(name) if hidden else f"'{name}'"


# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt, Unicode 15.1):
# characters a renderer shows as nothing. Most are format characters (Cf), which fold_name
# drops by category; these are not: the combining grapheme joiner, Hangul fillers, Khmer and
# Mongolian invisible marks, variation selectors, and unassigned code points reserved as such.
_IGNORABLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0"
    "\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


def fold_name(name: str) -> str:
    """A column name as a reader sees it: Unicode compatibility forms folded (NFKC: fullwidth
    and other look-alike forms), case folded, and whitespace and invisible characters (format
    characters such as zero-width spaces and joiners, BOMs, soft hyphens, word joiners; and
    every other default-ignorable one: variation selectors, Hangul fillers) removed. Visible
    differences stay: an accent, or a Cyrillic letter that looks Latin, makes another name
    (a copy under one is caught by its values: :mod:`training.data.label_copies`)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return "".join(
        ch
        for ch in _IGNORABLE.sub("", folded)
        if not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc")
    )


def _numeric_header(columns) -> bool:
    names = [str(c) for c in columns]
    return len(names) > 1 and all(is_number(n.split(".")[0]) or is_number(n) for n in names)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_predictor_type(predictor_type: str) -> None:
    if predictor_type not in PREDICTOR_TYPES:
        raise ValidationError(
            [
                Problem(
                    "--predictor-type",
                    f"unknown predictor type '{predictor_type}'",
                    "use one of " + ", ".join(PREDICTOR_TYPES),
                )
            ]
        )


def empty_file(name: str) -> Problem:
    return Problem(
        name,
        "the channel file is empty (no rows)",
        "remove the file from the channel or write the rows it should hold",
    )


# --------------------------------------------------------------------------- numeric columns


def numeric_matrix(chunk: RawChunk, numeric: list[str], source: str, row_numbers) -> np.ndarray:
    """:func:`finite_frame` for a chunk: the numeric columns as float64, text in them an error,
    infinities missing."""
    import pandas as pd

    X = np.empty((chunk.rows, len(numeric)), np.float64)
    for j, col in enumerate(numeric):
        column = chunk.columns[col]
        if isinstance(column, Numbers):
            X[:, j] = column.values
            continue
        numbers = pd.to_numeric(pd.Series(column.values, dtype=object), errors="coerce")
        numbers = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.append(np.isnan(numbers), False)[column.codes]  # code -1: missing, not bad
        if bad.any():
            first = int(np.argmax(bad))
            value = column.values[column.codes[first]]
            raise ValidationError([not_a_number(source, col, value, row_numbers[first])])
        X[:, j] = np.append(numbers, np.nan)[column.codes]
    infinities_missing(X, numeric)
    return X


def not_a_number(source: str, column: str, value, row_number) -> Problem:
    return Problem(
        source,
        f"column '{column}' holds '{value}', not a number, though it is numeric elsewhere "
        "in the file",
        "fix or blank out that cell",
        row=int(row_number) + 2,
    )


def infinities_missing(X: np.ndarray, numeric: list[str]) -> bool:
    """Infinities become NaN (imputed like a missing value), said once per column."""
    inf = np.isinf(X)
    if not inf.any():
        return False
    for col in np.array(numeric)[inf.any(axis=0)]:
        log.info("column '%s': infinite values treated as missing (imputed)", col)
    X[inf] = np.nan
    return True


def finite_frame(frame, numeric: list[str], source: str = ""):
    """Numeric columns as floats: text in them is an error, infinities count as missing.
    ``frame`` is not changed; it is copied only when a column needs changing (the fit sample
    can be most of prepare's memory)."""
    import pandas as pd

    copied = False
    for col in numeric:
        if pd.api.types.is_numeric_dtype(frame[col]):
            continue
        if not copied:
            frame, copied = frame.copy(), True
        coerced = pd.to_numeric(frame[col], errors="coerce")
        bad = coerced.isna() & frame[col].notna()
        if bad.any():
            row = bad.idxmax()
            raise ValidationError([not_a_number(source, col, frame[col][row], row)])
        frame[col] = coerced
    values = frame[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
    if not values.flags.writeable and np.isinf(values).any():
        values = values.copy()  # a read-only view of the frame (copy-on-write pandas)
    if infinities_missing(values, numeric):
        frame = frame if copied else frame.copy()
        frame[numeric] = values
    return frame

"""Preflight checks on training data, run before anything is uploaded or any job starts.

A Linear Learner job that fails on its input bills for minutes first and then says little
("Rows 1-1000 in file /opt/ml/input/data/train/train.csv have different fields than the
expected size 15"). Every check here names the file, row, column (or byte offset) and the fix.
"""

from __future__ import annotations

import difflib
import errno
import os
import re
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training import content_types, recordio
from training.content_types import CSV, RECORDIO
from training.errors import Problem, ValidationError
from training.manifest import MANIFEST_FILE

PREDICTOR_TYPES = ("binary_classifier", "multiclass_classifier", "regressor")
MAX_PROBLEMS_PER_FILE = 10
_BLOCK_BYTES = 32 << 20
_SKIP_NAMES = {".amazon.manifest", MANIFEST_FILE}


@dataclass
class ChannelFile:
    """What the checks learned about one channel file."""

    path: Path
    format: str  # "csv" | "recordio"
    rows: int = 0
    feature_dim: int | None = None
    labels: np.ndarray | None = field(default=None, repr=False)
    features: object = field(default=None, repr=False)  # kept only when asked (keep_data)

    @property
    def content_type(self) -> str:
        return content_types.CHANNEL[self.format]


# --------------------------------------------------------------------------- entry points


def check_content_type(content_type: str, channel: str) -> list[Problem]:
    """SageMaker routes a channel by its exact ContentType string."""
    if content_type in (CSV, RECORDIO):
        return []
    guess = RECORDIO if "recordio" in content_type.lower() or "protobuf" in content_type else CSV
    return [
        Problem(
            channel,
            f"content type '{content_type}' is not one Linear Learner accepts (the job would "
            f"fail with 'No iterator has been registered for ContentType')",
            f"use exactly '{guess}' (accepted: '{CSV}', '{RECORDIO}')",
        )
    ]


def file_problem(path: Path, what: str = "file", fix: str = "check the path") -> Problem | None:
    """Why ``path`` cannot be read as a data file, or None. Checked before opening it, so a
    FIFO does not block, a folder is not "permission denied" and a symlink loop is not
    "file not found"."""
    name = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            target = os.readlink(path)
            return Problem(name, f"is a symlink to {target}, which does not exist", fix)
        return Problem(name, f"{what} not found", fix)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return Problem(name, "is a symlink loop (links that point at each other)", fix)
        return Problem(name, f"cannot be read: {err.strerror}", fix)
    if stat.S_ISDIR(st.st_mode):
        return Problem(name, f"is a folder, not a {what}", "pass the file itself")
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
        return Problem(
            name, f"is {kind}; it would be read without end or not at all", "pass a regular file"
        )
    try:
        with open(path, "rb"):
            pass
    except OSError as err:
        return Problem(name, f"cannot be read: {err.strerror}", "fix its permissions")
    return None


def detect_format(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(4)
    return "recordio" if head == recordio._MAGIC_BYTES else "csv"


def channel_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories into the files SageMaker would read from them."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(
                f
                for f in p.rglob("*")
                if f.is_file() and f.name not in _SKIP_NAMES and not f.name.startswith(".")
            )
        else:
            out.append(p)
    return out


def _check_predictor_type(predictor_type: str) -> None:
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


def validate_channels(
    paths: Iterable[str | Path],
    predictor_type: str,
    feature_dim: int | None = None,
    num_classes: int | None = None,
    keep_data: bool = False,
) -> list[ChannelFile]:
    """Check every channel file; raise :class:`ValidationError` listing all problems.

    ``keep_data`` keeps each file's parsed features on its :class:`ChannelFile`, so a
    trainer need not parse the files a second time.
    """
    problems: list[Problem] = []
    _check_predictor_type(predictor_type)
    files = channel_files(paths)
    if not files:
        raise ValidationError(
            [
                Problem(
                    ", ".join(map(str, paths)) or "(no files)",
                    "no channel files found",
                    "pass channel files or folders",
                )
            ]
        )
    results: list[ChannelFile] = []
    for path in files:
        unreadable = file_problem(path)
        if unreadable:
            problems.append(unreadable)
            continue
        checker = _check_recordio if detect_format(path) == "recordio" else _check_csv
        info, found = checker(path, predictor_type, num_classes, keep_data)
        results.append(info)
        problems += found
    problems += _check_feature_dims(results, feature_dim)
    if problems:
        raise ValidationError(problems)
    return results


def _check_feature_dims(results: list[ChannelFile], feature_dim: int | None) -> list[Problem]:
    known = [r for r in results if r.feature_dim is not None]
    problems = []
    if feature_dim is not None:
        for r in known:
            if r.feature_dim != feature_dim:
                problems.append(
                    Problem(
                        str(r.path),
                        f"has {r.feature_dim} features but feature_dim={feature_dim} "
                        f"(SageMaker would report 'different fields than the expected size "
                        f"{feature_dim + 1}')",
                        f"set feature_dim={r.feature_dim}, or regenerate the data with "
                        f"{feature_dim} feature columns",
                    )
                )
        return problems
    if len({r.feature_dim for r in known}) > 1:
        first = known[0]
        for r in known[1:]:
            if r.feature_dim != first.feature_dim:
                problems.append(
                    Problem(
                        str(r.path),
                        f"has {r.feature_dim} features but {first.path} has {first.feature_dim}: "
                        "every channel must have the same feature columns",
                        "prepare all channels with one fitted preprocessor "
                        "(python -m training prepare does)",
                    )
                )
    return problems


# --------------------------------------------------------------------------- labels


def label_problems(
    file: str,
    labels: np.ndarray,
    predictor_type: str,
    num_classes: int | None,
    row_of=lambda i: i + 1,
    unit: str = "row",
) -> list[Problem]:
    """Labels valid for the predictor type; ``row_of`` maps an index to a row number."""
    y = np.asarray(labels, dtype=np.float64)
    problems: list[Problem] = []

    def report(mask: np.ndarray, message, fix):
        idx = np.flatnonzero(mask)
        for i in idx[:3]:
            problems.append(Problem(file, message(y[i]), fix, row=row_of(i), unit=unit))
        if idx.size > 3:
            problems.append(Problem(file, f"... and {idx.size - 3} more {unit}s like that", fix))

    bad = ~np.isfinite(y)
    if bad.any():
        report(bad, lambda v: f"label is {v}", "drop or fix rows without a valid label")
        return problems
    if predictor_type == "binary_classifier":
        report(
            (y != 0) & (y != 1),
            lambda v: f"label {v:g} is not 0 or 1 (binary_classifier)",
            "map the classes to 0/1 (python -m training prepare does), or use "
            "predictor_type=multiclass_classifier / regressor",
        )
    elif predictor_type == "multiclass_classifier":
        report(
            (y != np.round(y)) | (y < 0),
            lambda v: f"label {v:g} is not a class index 0..num_classes-1",
            "map the classes to 0..num_classes-1 (python -m training prepare does)",
        )
        if num_classes is not None:
            report(
                (y >= num_classes) & (y == np.round(y)),
                lambda v: f"label {v:g} >= num_classes={num_classes}",
                f"set num_classes to {int(y.max()) + 1} or fix the labels",
            )
    return problems


# --------------------------------------------------------------------------- RecordIO


def _check_recordio(
    path: Path, predictor_type: str, num_classes: int | None, keep_data: bool = False
):
    info = ChannelFile(path, "recordio")
    name = str(path)
    try:
        arrays = recordio.read_arrays(path)
    except recordio.RecordIOError as err:
        return info, [
            Problem(
                name,
                f"corrupt RecordIO-protobuf: {err}",
                "rewrite the file (training.recordio writers or python -m training prepare)",
            )
        ]
    X, y = arrays.X, arrays.y
    info.rows, info.feature_dim = X.shape[0], X.shape[1] if X.shape[0] else None
    if info.rows == 0:
        return info, [_empty(name)]
    problems = []
    for what, tensor_type in (("features", arrays.feature_type), ("labels", arrays.label_type)):
        if tensor_type not in (None, "Float32"):
            problems.append(
                Problem(
                    name,
                    f"{what} are {tensor_type}Tensor; Linear Learner reads only Float32Tensor "
                    "(SDK writers follow the numpy dtype: float64 -> Float64Tensor, int -> "
                    "Int32Tensor)",
                    "cast with .astype('float32') before writing, or use "
                    "python -m training prepare",
                    row=1,
                )
            )
    if y is None:
        problems.append(
            Problem(
                name,
                "records carry no label; training channels need one",
                "write labels: write_numpy_to_dense_tensor(f, X, y)",
                row=1,
            )
        )
    data = X.data if hasattr(X, "tocsr") else X
    bad = ~np.isfinite(np.asarray(data, dtype=np.float64))
    if bad.any():
        if hasattr(X, "tocsr"):
            flat = np.flatnonzero(bad)[0]
            row = int(np.searchsorted(X.indptr, flat, side="right"))
            col = int(X.indices[flat]) + 1
            value = X.data[flat]
        else:
            row, col = (int(v) + 1 for v in np.argwhere(bad)[0])
            value = X[row - 1, col - 1]
        problems.append(
            Problem(
                name,
                f"feature value is {value} ({int(bad.sum())} non-finite values in the file)",
                "impute missing values before writing (python -m training prepare does)",
                row=row,
                column=col,
            )
        )
    if y is not None:
        problems += label_problems(name, y, predictor_type, num_classes, unit="record")
        info.labels = y
    if keep_data:
        info.features = X
    for p in problems:
        p.unit = "record"
    return info, problems[:MAX_PROBLEMS_PER_FILE]


def _empty(name: str) -> Problem:
    return Problem(
        name,
        "the channel file is empty (no rows)",
        "remove the file from the channel or write the rows it should hold",
    )


# --------------------------------------------------------------------------- label-first CSV


def _lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Blocks of (first line number, lines without their line endings)."""
    with open(path, encoding="utf-8", newline="") as fh:
        line_no = 1
        while True:
            block = fh.readlines(_BLOCK_BYTES)
            if not block:
                return
            yield line_no, [ln.rstrip("\r\n") for ln in block]
            line_no += len(block)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_csv(path: Path, predictor_type: str, num_classes: int | None, keep_data: bool = False):
    """Label-first, headerless, numeric, rectangular, finite; plus label rules.

    Streams the file in blocks; keeps only the label column and per-column summaries (and
    the features, with ``keep_data``).
    """
    info = ChannelFile(path, "csv")
    name = str(path)
    problems: list[Problem] = []
    width: int | None = None
    labels: list[np.ndarray] = []
    features: list[np.ndarray] = []
    label_like: np.ndarray | None = None  # per feature column: could it be the label?
    try:
        for first_line, lines in _lines(path):
            if first_line == 1:
                problems += _first_line_problems(name, lines[0])
                width = _common_width(lines)
                if problems:
                    lines = lines[1:]
                    first_line = 2
            problems += _structure(name, first_line, lines, width)
            if problems:
                break
            block, found = _parse_block(name, first_line, lines)
            if found:
                problems += found
                break
            labels.append(block[:, 0])
            if keep_data:
                features.append(block[:, 1:].astype(np.float32))
            fits = _fits_label(block[:, 1:], predictor_type)
            label_like = fits if label_like is None else label_like & fits
    except UnicodeDecodeError as err:
        return info, [
            Problem(
                name,
                f"not UTF-8 text (byte {err.start}): neither CSV nor RecordIO-protobuf",
                "write a label-first CSV or RecordIO",
            )
        ]
    if problems:
        return info, problems[:MAX_PROBLEMS_PER_FILE]
    if width is None:
        return info, [_empty(name)]
    if width < 2:
        return info, [
            Problem(
                name,
                "rows have a single column: a label but no features",
                "write the label first, then the feature columns",
                row=1,
            )
        ]
    y = np.concatenate(labels)
    info.rows, info.feature_dim, info.labels = y.size, width - 1, y
    if keep_data:
        info.features = np.vstack(features)
    problems = _index_column(name, y)
    if not problems:
        problems = label_problems(name, y, predictor_type, num_classes)
        if problems:
            problems += _label_elsewhere(name, label_like, predictor_type)
    return info, problems[:MAX_PROBLEMS_PER_FILE]


def _first_line_problems(name: str, line: str) -> list[Problem]:
    """What is wrong with line 1 of a label-first CSV, by its likeliest cause."""
    if "\x00" in line:
        return [
            Problem(
                name,
                "holds NUL bytes: binary data, not CSV text",
                "write the channel as text (or as RecordIO-protobuf)",
                row=1,
            )
        ]
    if line.startswith("\ufeff"):
        return [
            Problem(
                name,
                "starts with a UTF-8 byte-order mark, which Linear Learner reads "
                "as part of the first label",
                "write UTF-8 without a BOM: encoding='utf-8', not 'utf-8-sig'",
                row=1,
            )
        ]
    if '"' in line and all(map(is_number, line.replace('"', "").split(","))):
        return [
            Problem(
                name,
                'values are quoted ("1.5"); Linear Learner reads bare numbers',
                "write without quoting: df.to_csv(path, header=False, index=False)",
                row=1,
            )
        ]
    return _header_row(name, line)


def _header_row(name: str, line: str) -> list[Problem]:
    fields = line.split(",")
    if not line.strip() or all(map(is_number, fields)):
        return []
    text = [f for f in fields if f.strip()]
    words = [f for f in text if not is_number(f)]
    if fields[0].strip() == "" or len(words) >= max(1, len(text) // 2):
        shown = ", ".join(fields[:4]) + (", …" if len(fields) > 4 else "")
        return [
            Problem(
                name,
                f"header row present ({shown}); SageMaker reads it as data",
                "write without a header: df.to_csv(path, header=False, index=False)",
                row=1,
            )
        ]
    return []


def _row_width(line: str) -> int:
    return line.count(",") + 1 - line.endswith(",")


def _common_width(lines: list[str]) -> int:
    """The field count most rows agree on (row 1 may be a header or carry a stray comma)."""
    return int(np.bincount([_row_width(ln) for ln in lines[:1000]]).argmax())


def _structure(name: str, first_line: int, lines: list[str], width: int) -> list[Problem]:
    """Empty lines, trailing delimiters and ragged rows, counted without parsing numbers."""
    kinds: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        if line.count(",") + 1 == width and line and line[-1] != ",":
            continue
        if not line.strip():
            kind = "empty"
        elif line.endswith(","):
            kind = "trailing"
        else:
            kind = f"ragged:{line.count(',') + 1}"
        kinds.setdefault(kind, []).append(first_line + i)
    problems = []
    for kind, rows in kinds.items():
        if kind == "empty":
            msg, fix = "empty line", "delete empty lines"
        elif kind == "trailing":
            msg, fix = (
                "row ends with a trailing ',' (an empty extra field)",
                ("remove the trailing delimiter"),
            )
        else:
            msg = (
                f"has {kind.split(':')[1]} fields but the other rows have {width} (SageMaker: "
                f"'different fields than the expected size {width}')"
            )
            fix = "every row needs the label plus the same feature columns"
        problems += [Problem(name, msg, fix, row=r) for r in rows[:3]]
        if len(rows) > 3:
            problems.append(Problem(name, f"... and {len(rows) - 3} more rows like that", fix))
    return problems


def _parse_block(name: str, first_line: int, lines: list[str]):
    """Parse with numpy; on failure, find the offending cells for the message."""
    try:
        block = np.array([ln.split(",") for ln in lines], dtype=np.float64)
    except ValueError:
        return None, _locate_bad_cells(name, first_line, lines)
    bad = ~np.isfinite(block)
    if not bad.any():
        return block, []
    problems = []
    for r, c in np.argwhere(bad)[:3]:
        what = "label" if c == 0 else "feature"
        fix = (
            "drop rows without a valid label"
            if c == 0
            else "impute missing values before writing (python -m training prepare does)"
        )
        problems.append(
            Problem(
                name,
                f"{what} is {block[r, c]}",
                fix,
                row=first_line + int(r),
                column=int(c) + 1,
            )
        )
    return None, problems


def _fits_label(X: np.ndarray, predictor_type: str) -> np.ndarray:
    if predictor_type == "binary_classifier":
        return np.all((X == 0) | (X == 1), axis=0)
    return np.all((np.round(X) == X) & (X >= 0), axis=0)


def _locate_bad_cells(name: str, first_line: int, lines: list[str]) -> list[Problem]:
    problems = []
    for i, line in enumerate(lines):
        for j, cell in enumerate(line.split(",")):
            if is_number(cell):
                continue
            if cell.strip() == "":
                msg, fix = "empty cell", "impute missing values (python -m training prepare does)"
            else:
                msg = f"'{cell}' is not a number"
                fix = (
                    "one-hot encode categorical columns and map string labels to numbers "
                    "(python -m training prepare does both)"
                )
            problems.append(Problem(name, msg, fix, row=first_line + i, column=j + 1))
            if len(problems) >= 3:
                return problems
    return problems


def _index_column(name: str, first: np.ndarray) -> list[Problem]:
    n = first.size
    counts = np.array_equal(first, np.arange(n)) or np.array_equal(first, np.arange(1, n + 1))
    if n >= 10 and counts:
        return [
            Problem(
                name,
                f"column 1 counts {int(first[0])}, {int(first[1])}, {int(first[2])}, …: it looks "
                "like the index pandas writes with to_csv(index=True), not the label",
                "write with df.to_csv(path, header=False, index=False) and the label column first",
                column=1,
            )
        ]
    return []


def _label_elsewhere(name: str, label_like, predictor_type: str) -> list[Problem]:
    """When column 1 cannot be the label, point at a column that could."""
    if predictor_type == "regressor" or label_like is None:
        return []
    candidates = np.flatnonzero(label_like) + 2
    if 0 < candidates.size <= 3:
        cols = ", ".join(map(str, candidates))
        return [
            Problem(
                name,
                f"the label must be the first column; column {cols} holds values that fit "
                f"{predictor_type} labels",
                "move the label column first: df[[label] + features].to_csv(path, header=False, "
                "index=False)",
            )
        ]
    return []


# --------------------------------------------------------------------------- raw CSV


def validate_raw_csv(
    path: str | Path,
    label: str,
    predictor_type: str,
    sample_rows: int | None = None,
    allow_unlabeled: bool = False,
):
    """Check the user's raw CSV (with header) before ``prepare`` reads it for real.

    Reads the first ``sample_rows`` rows for the column checks (by default the rows
    ``prepare`` checks first: fewer the wider the file, so memory stays bounded); ragged rows
    anywhere are caught by the full read in ``prepare``, which reports them through
    :func:`ragged_row_problem`.
    """
    import pandas as pd

    from training import preprocessing  # its sizes; it imports this module

    path = Path(path)
    name = str(path)
    check_raw_file(path, predictor_type)
    rows = sample_rows or preprocessing.check_rows(path)
    with raw_csv_errors(name):
        frame = pd.read_csv(path, nrows=rows, skipinitialspace=True)
    check_raw_sample(path, frame, label, predictor_type, allow_unlabeled)


@contextmanager
def raw_csv_errors(name: str):
    """pandas' errors reading the user's raw CSV, as problems naming the file and the fix
    (here and in ``prepare``'s pandas reader)."""
    import pandas as pd

    try:
        yield
    except pd.errors.ParserError as err:
        raise ValidationError([ragged_row_problem(name, err)]) from None
    except (UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise ValidationError([_unreadable_csv(name, err)]) from None


def _unreadable_csv(name: str, err: Exception) -> Problem:
    return Problem(
        name,
        f"cannot read as CSV: {err}",
        "pass a UTF-8, comma-separated text file with a header row",
    )


def check_raw_file(path: Path, predictor_type: str) -> None:
    """What can be told before parsing: a readable, non-empty file; a known predictor type."""
    unreadable = file_problem(path, "CSV file", "check the --data path")
    if unreadable:
        raise ValidationError([unreadable])
    if path.stat().st_size == 0:
        raise ValidationError([_empty(str(path))])
    _check_predictor_type(predictor_type)


def check_raw_sample(
    path: Path, frame, label: str, predictor_type: str, allow_unlabeled: bool = False
) -> None:
    """The column checks on the first rows of the raw CSV (``frame``, as pandas reads it)."""
    import pandas as pd

    name = str(path)
    problems = _duplicate_columns(path, label)
    if problems:
        raise ValidationError(problems)
    if label not in frame.columns:
        close = difflib.get_close_matches(label, [str(c) for c in frame.columns], n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
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
    if predictor_type == "binary_classifier" and len(classes) != 2:
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
    if predictor_type == "multiclass_classifier" and len(classes) < 3:
        problems.append(
            Problem(
                name,
                f"label '{label}' has {len(classes)} distinct values; multiclass_classifier "
                "needs at least 3",
                "use --predictor-type binary_classifier for two classes",
            )
        )
    if predictor_type == "regressor":
        numeric = pd.to_numeric(present, errors="coerce")
        bad = np.flatnonzero(numeric.isna().to_numpy() | ~np.isfinite(numeric.to_numpy(float)))
        if bad.size:
            problems.append(
                Problem(
                    name,
                    f"label '{label}' has value '{present.iloc[bad[0]]}', not a finite number",
                    "a regressor needs finite numeric labels; use a classifier for categories",
                    row=int(present.index[bad[0]]) + 2,
                )
            )
    if frame.shape[1] < 2:
        problems.append(Problem(name, "only the label column; no features", "add feature columns"))
    if problems:
        raise ValidationError(problems)


def header_cells(path: Path) -> list[str]:
    """The raw CSV's first record as pandas' ``skipinitialspace`` reads it: BOM dropped,
    spaces after commas skipped, quotes removed (raises UnicodeDecodeError, csv.Error)."""
    import csv

    with open(path, encoding="utf-8-sig", newline="") as fh:
        return next(csv.reader(fh, skipinitialspace=True), [])


def _duplicate_columns(path: Path, label: str) -> list[Problem]:
    """Header names that repeat. pandas would rename the second ``y`` to ``y.1`` and use it
    as a feature: a copy of the label among the features (a leak that scores 1.0)."""
    import csv

    try:
        header = header_cells(path)
    except (UnicodeDecodeError, csv.Error) as err:
        return [_unreadable_csv(str(path), err)]
    seen: dict[str, int] = {}
    problems = []
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
        else:
            seen[col] = i
    return problems


def _numeric_header(columns) -> bool:
    names = [str(c) for c in columns]
    return len(names) > 1 and all(is_number(n.split(".")[0]) or is_number(n) for n in names)


def ragged_row_problem(name: str, err: Exception) -> Problem:
    """Turn pandas' 'Expected N fields in line M, saw K' into our message."""
    text = str(err)
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if match:
        want, line, saw = map(int, match.groups())
        return Problem(
            name,
            f"has {saw} fields but the header has {want}",
            "fix the row (a stray comma? quote fields that contain commas)",
            row=line,
        )
    return Problem(name, f"cannot parse as CSV: {text.strip()}", "fix the malformed row")


__all__ = [
    "ChannelFile",
    "Problem",
    "ValidationError",
    "check_content_type",
    "detect_format",
    "file_problem",
    "label_problems",
    "validate_channels",
    "check_raw_file",
    "check_raw_sample",
    "raw_csv_errors",
    "validate_raw_csv",
]

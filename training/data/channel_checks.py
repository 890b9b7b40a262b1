"""The channels' preflight: training data checked before anything is uploaded or trained.

A Linear Learner job that fails on its input bills for minutes first and then says little
("Rows 1-1000 in file /opt/ml/input/data/train/train.csv have different fields than the
expected size 15"). :func:`validate_channels` reads channel files as the container will
(label-first headerless CSV, or Float32 RecordIO-protobuf) and names the file, row, column
(or byte offset) and the fix of every problem; the local trainer and the SageMaker job both
run it first. The user's raw CSV, before ``prepare``, is checked by
:mod:`training.data.raw_checks`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from training import content_types
from training.content_types import CSV, RECORDIO
from training.core import hyperparameters
from training.core.csv_numbers import (
    OTHER_BREAKS,
    has_other_break,
    is_number,
    nonfinite,
    parse_number,
    parse_rows,
)
from training.core.hyperparameters import Hyperparameters
from training.core.losses import BINARY, REGRESSOR
from training.data import recordio
from training.data.channels import channel_files, detect_format
from training.data.labels import label_problems
from training.data.manifest import CHANNELS, MANIFEST_FILE, Manifest
from training.data.raw_checks import check_predictor_type, empty_file
from training.errors import NOTHING_STARTED, Problem, ValidationError
from training.files import file_problem, line_blocks
from training.limits import MAX_ROW_BYTES, column_limits

log = logging.getLogger("training")
MAX_PROBLEMS_PER_FILE = 30  # every kind: each shows 3 rows and counts the rest
_BLOCK_BYTES = 32 << 20


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
    check_predictor_type(predictor_type)
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
        foreign = not_a_channel_file(path)
        if foreign:
            problems.append(foreign)
            continue
        checker = _check_recordio if detect_format(path) == "recordio" else _check_csv
        info, found = checker(path, predictor_type, num_classes, keep_data)
        results.append(info)
        problems += found
    problems += _check_feature_dims(results, feature_dim)
    if problems:
        raise ValidationError(problems, NOTHING_STARTED)  # it only reads
    return results


# files that end up in channel folders and are never channel data (predict's output, a
# transform's .out, a manifest copied in, a report)
NOT_CHANNEL_SUFFIXES = (".json", ".jsonl", ".out", ".html", ".png", ".joblib")


def not_a_channel_file(path: Path) -> Problem | None:
    """A file in a channel folder that is not channel data (JSON, an output, a plot), named as
    such, rather than parsed as CSV and reported as a bad header: SageMaker reads every file
    under a channel's prefix, so it would fail the job too."""
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip()
    if path.suffix.lower() in NOT_CHANNEL_SUFFIXES or head[:1] in (b"{", b"["):
        what = "predictions written by `predict`" if ".predictions." in path.name else (
            "JSON" if head[:1] in (b"{", b"[") else f"a {path.suffix} file"
        )  # fmt: skip
        return Problem(
            str(path),
            f"not a channel file ({what}); SageMaker reads every file under a channel's "
            "prefix as training data",
            "move it out of the channel folder (channels hold only CSV or RecordIO files)",
        )
    return None


@dataclass(frozen=True)
class TrainingData:
    """A prepared folder, checked for training: its manifest (None for channels made by
    hand), the hyperparameters as given (the manifest's, then the user's) and validated, and
    every channel file the preflight read."""

    data_dir: Path
    manifest: Manifest | None
    given: dict[str, str]
    hyperparameters: Hyperparameters
    files: list[ChannelFile]

    def channel_of(self, info: ChannelFile) -> str:
        return info.path.relative_to(self.data_dir).parts[0]

    @property
    def channels(self) -> dict[str, list[ChannelFile]]:
        """The files of each channel present, in split order."""
        out: dict[str, list[ChannelFile]] = {}
        for info in self.files:
            out.setdefault(self.channel_of(info), []).append(info)
        return {c: out[c] for c in CHANNELS if c in out}


def check_training_data(
    data_dir: Path, overrides: Mapping[str, str] | None = None, keep_data: bool = False
) -> TrainingData:
    """The preflight every training run makes first, local or on SageMaker: hyperparameters
    validated (every problem listed before any data is read), then every channel file of
    ``data_dir`` checked against them."""
    data_dir = Path(data_dir)
    manifest = Manifest.read(data_dir)
    asked = (overrides or {}).get("predictor_type")
    if manifest and asked and asked != manifest.label.predictor_type:
        classes = ", ".join(map(str, manifest.label.classes)) or "numbers"
        log.warning(
            "warning: --hyperparameters predictor_type=%s, but %s was prepared for %s "
            "(label '%s': %s); the model will not be what the data was encoded for: "
            "prepare again with --predictor-type %s",
            asked, data_dir / MANIFEST_FILE, manifest.label.predictor_type,
            manifest.label.column, classes, asked,
        )  # fmt: skip
    given = {**(manifest.hyperparameters if manifest else {}), **(overrides or {})}
    hp = hyperparameters.validate(given)
    present = [c for c in CHANNELS if (data_dir / c).exists()]
    if "train" not in present:
        raise ValidationError(
            [
                Problem(
                    str(data_dir),
                    "no train/ channel folder here",
                    "pass the folder `python -m training prepare` wrote (with train/, "
                    "validation/, test/ and manifest.json)",
                )
            ]
        )
    feature_dim = None if hp.feature_dim == hyperparameters.AUTO else int(hp.feature_dim)
    files = validate_channels(
        [data_dir / c for c in present],
        hp.predictor_type,
        feature_dim,
        hp.num_classes,
        keep_data=keep_data,
    )
    return TrainingData(data_dir, manifest, given, hp, files)


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
        return info, [empty_file(name)]
    problems = [
        Problem(name, what, recordio.FLOAT32_FIX, row=1)
        for what in recordio.float32_problems(arrays)
    ]
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
    cell = recordio.first_marked(X, bad)
    if cell is not None:
        row, col, value = cell
        problems.append(
            Problem(
                name,
                f"feature value is {value} ({int(bad.sum())} non-finite values in the file)",
                "impute missing values before writing (python -m training prepare does)",
                row=row + 1,
                column=col + 1,
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


# --------------------------------------------------------------------------- label-first CSV


def _lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Blocks of (first line number, lines without their line endings): rows end at ``\\n``
    (a ``\\r`` before it dropped), as the container splits them; a line over MAX_ROW_BYTES is
    refused after reading that much (raises UnicodeDecodeError for text that is not UTF-8)."""
    fix = "end each row with \\n (a file of lone \\r line ends, or none, is one long line)"
    limit = "validate's row limit"
    for first, block in line_blocks(path, _BLOCK_BYTES, MAX_ROW_BYTES, fix, limit):
        yield first, [line.decode("utf-8").removesuffix("\r") for line in block]


class Findings:
    """A file's problems by kind, in the order first seen: the first ``SHOWN_PER_KIND`` rows
    of each kind, then one line counting the rest, so one run reports every kind of mistake
    (a notebook export's header, index column and empty cells together), not the first."""

    SHOWN_PER_KIND = 3

    def __init__(self):
        self.kinds: dict[str, list[Problem]] = {}
        self.more: dict[str, int] = {}

    def add(self, kind: str, problem: Problem) -> None:
        shown = self.kinds.setdefault(kind, [])
        if len(shown) < self.SHOWN_PER_KIND:
            shown.append(problem)
        else:
            self.more[kind] = self.more.get(kind, 0) + 1

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def problems(self) -> list[Problem]:
        out = []
        for kind, shown in self.kinds.items():
            out += shown
            if self.more.get(kind):
                first = shown[0]
                out.append(
                    Problem(first.file, f"... and {self.more[kind]} more rows like that", first.fix)
                )
        return out


def _check_csv(path: Path, predictor_type: str, num_classes: int | None, keep_data: bool = False):
    """Label-first, headerless, numeric, rectangular, finite; plus label rules.

    Streams the file in blocks; keeps only the label column and per-column summaries (and
    the features, with ``keep_data``). Every kind of problem is reported in one pass: rows
    of the wrong width are left out, unreadable cells read as missing, and the checks go on.
    """
    info = ChannelFile(path, "csv")
    name = str(path)
    findings = Findings()
    width: int | None = None
    labels: list[np.ndarray] = []
    label_rows: list[np.ndarray] = []  # each label's row in the file (rows left out skipped)
    features: list[np.ndarray] = []
    label_like: np.ndarray | None = None  # per feature column: could it be the label?
    try:
        for first_line, lines in _lines(path):
            rows = np.arange(first_line, first_line + len(lines))
            if first_line == 1:
                wide = _too_wide(name, lines)
                if wide:  # before a cell of it is split out or parsed
                    return info, [wide]
                kind, first = _first_line(name, lines[0])
                if kind in ("binary", "quoted"):  # the whole file's cause: nothing more to say
                    return info, first
                for problem in first:
                    findings.add(kind, problem)
                if kind == "bom":
                    lines = [lines[0].removeprefix("\ufeff"), *lines[1:]]
                width = _common_width(lines[1:] if kind == "header" else lines)
                if kind == "header":
                    lines, rows = lines[1:], rows[1:]
            lines, rows = _breaks(findings, name, rows, lines)
            lines, rows = _structure(findings, name, rows, lines, width)
            if not lines:
                continue
            block = _parse_block(findings, name, rows, lines)
            labels.append(block[:, 0])
            label_rows.append(rows)
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
    if width is None or (not labels and not findings):
        return info, [empty_file(name)]
    if width < 2:
        return info, [
            Problem(
                name,
                "rows have a single column: a label but no features",
                "write the label first, then the feature columns",
                row=1,
            )
        ]
    y = np.concatenate(labels) if labels else np.empty(0)
    info.rows, info.feature_dim, info.labels = y.size, width - 1, y
    if keep_data and features:
        info.features = np.vstack(features)
    problems = findings.problems()
    index = _index_column(name, y)
    problems += index
    finite = np.isfinite(y)
    if not index and finite.any():
        # the label checks number rows by position: map them back to the file's rows
        file_rows = np.concatenate(label_rows)[finite]
        found = [
            replace(p, row=int(file_rows[p.row - 1])) if p.row else p
            for p in label_problems(name, y[finite], predictor_type, num_classes)
        ]
        if found:
            problems += found + _label_elsewhere(name, label_like, predictor_type)
    return info, problems[:MAX_PROBLEMS_PER_FILE]


def _too_wide(name: str, lines: list[str]) -> Problem | None:
    """Row 1, or the width most of the first rows share, over MAX_CSV_FEATURES features (a
    wider row later is reported as ragged, counted without parsing it)."""
    most = column_limits()[1]
    first = lines[0].count(",")  # features: the fields after the label
    width = first if first > most else _common_width(lines) - 1
    if width <= most:
        return None
    return Problem(
        name,
        f"rows have {width:,} features, over the limit of {most:,} for a CSV channel "
        "(training.limits.MAX_CSV_FEATURES)",
        "write wide data as RecordIO-protobuf (python -m training prepare --format recordio; "
        "sparse data with write_spmatrix_to_sparse_tensor), or reduce the feature columns",
        row=1 if first > most else None,
    )


def _first_line(name: str, line: str) -> tuple[str | None, list[Problem]]:
    """What is wrong with line 1 of a label-first CSV, by its likeliest cause, and that
    cause's kind: ``binary``, ``bom``, ``quoted``, ``header`` or None."""
    if "\x00" in line:
        return "binary", [
            Problem(
                name,
                "holds NUL bytes: binary data, not CSV text",
                "write the channel as text (or as RecordIO-protobuf)",
                row=1,
            )
        ]
    if "\r" in line:  # the whole file's cause
        return "binary", [
            Problem(
                name,
                "rows end with a lone CR (\\r, old Mac line ends): Linear Learner ends rows "
                "at \\n only, so it reads them as one row",
                "write \\n line ends (\\r\\n works too)",
                row=1,
            )
        ]
    if line.startswith("\ufeff"):
        return "bom", [
            Problem(
                name,
                "starts with a UTF-8 byte-order mark, which Linear Learner reads "
                "as part of the first label",
                "write UTF-8 without a BOM: encoding='utf-8', not 'utf-8-sig'",
                row=1,
            )
        ]
    if '"' in line and all(map(is_number, line.replace('"', "").split(","))):
        return "quoted", [
            Problem(
                name,
                'values are quoted ("1.5"); Linear Learner reads bare numbers',
                "write without quoting: df.to_csv(path, header=False, index=False)",
                row=1,
            )
        ]
    header = _header_row(name, line)
    return ("header" if header else None), header


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


def _breaks(findings: Findings, name: str, rows: np.ndarray, lines: list[str]):
    """Rows holding a line break other than \\n (a lone \\r, a form feed, U+2028): reported
    and left out; the container would not split there, and the endpoint refuses them."""
    if not has_other_break("\n".join(lines)):
        return lines, rows
    odd = [i for i, line in enumerate(lines) if OTHER_BREAKS.search(line)]
    for i in odd:
        char = OTHER_BREAKS.search(lines[i]).group()
        problem = f"holds the line break {char!r} inside the row: rows end at \\n only"
        findings.add("break", Problem(name, problem, "write \\n line ends", row=int(rows[i])))
    keep = np.ones(len(lines), bool)
    keep[odd] = False
    return [line for line, k in zip(lines, keep) if k], rows[keep]


def _row_width(line: str) -> int:
    return line.count(",") + 1 - line.endswith(",")


def _common_width(lines: list[str]) -> int:
    """The field count most rows agree on (row 1 may be a header or carry a stray comma)."""
    return int(np.bincount([_row_width(ln) for ln in lines[:1000]]).argmax())


def _structure(findings: Findings, name: str, rows: np.ndarray, lines: list[str], width: int):
    """Empty lines, trailing delimiters and ragged rows, counted without parsing numbers.
    Returns the lines that can be parsed (a trailing delimiter dropped) and their rows; an
    empty last cell (``1,2,``) is the cell check's to report, not a trailing delimiter."""
    odd = [i for i, line in enumerate(lines) if not line or line.count(",") + 1 != width]
    if not odd:  # the usual block: every row as wide as the rest
        return lines, rows
    keep_lines, keep_rows = [], []
    odd_set = set(odd)
    for i, (row, line) in enumerate(zip(rows.tolist(), lines)):
        fields = line.count(",") + 1
        if i not in odd_set:
            keep_lines.append(line)
        elif not line.strip():
            findings.add("empty", Problem(name, "empty line", "delete empty lines", row=row))
            continue
        elif fields == width + 1 and line.endswith(","):
            findings.add(
                "trailing",
                Problem(
                    name,
                    "row ends with a trailing ',' (an empty extra field)",
                    "remove the trailing delimiter",
                    row=row,
                ),
            )
            keep_lines.append(line[:-1])
        else:
            findings.add(
                f"ragged:{fields}",
                Problem(
                    name,
                    f"has {fields} fields but the other rows have {width} (SageMaker: "
                    f"'different fields than the expected size {width}')",
                    "every row needs the label plus the same feature columns",
                    row=row,
                ),
            )
            continue
        keep_rows.append(row)
    return keep_lines, np.array(keep_rows, np.int64)


def _parse_block(findings: Findings, name: str, rows: np.ndarray, lines: list[str]):
    """Parse by Linear Learner's number rule (:mod:`training.core.csv_numbers`); a cell that is not
    a number is reported and read as missing, so the label checks still see the rest.
    Non-finite values (nan, inf) are reported too."""
    try:
        block = parse_rows(lines)
        unreadable = None
    except ValueError:
        block, unreadable = _read_cells(findings, name, rows, lines)
    bad = nonfinite(block)
    if unreadable is not None:
        bad &= ~unreadable
    for r, c in np.argwhere(bad):
        label = c == 0
        value = block[r, c]
        beyond = ", beyond float32 (+-3.4e38): Linear Learner reads infinity (rescale it)"
        findings.add(
            "nonfinite-label" if label else "nonfinite-feature",
            Problem(
                name,
                f"{'label' if label else 'feature'} is {value}"
                + (beyond if np.isfinite(value) else ""),
                "drop rows without a valid label"
                if label
                else "impute missing values before writing (python -m training prepare does)",
                row=int(rows[r]),
                column=int(c) + 1,
            ),
        )
    return block


def _read_cells(findings: Findings, name: str, rows: np.ndarray, lines: list[str]):
    """The block cell by cell: NaN (and ``True`` in the mask) where a cell is empty or text."""
    block = np.full((len(lines), lines[0].count(",") + 1), np.nan)
    unreadable = np.zeros(block.shape, bool)
    for i, line in enumerate(lines):
        for j, cell in enumerate(line.split(",")):
            if is_number(cell):
                block[i, j] = parse_number(cell)
                continue
            unreadable[i, j] = True
            if cell.strip() == "":
                kind, msg = "empty-cell", "empty cell"
                fix = "impute missing values (python -m training prepare does)"
            else:
                kind, msg = "text-cell", f"'{cell}' is not a number"
                fix = (
                    "one-hot encode categorical columns and map string labels to numbers "
                    "(python -m training prepare does both)"
                )
            findings.add(kind, Problem(name, msg, fix, row=int(rows[i]), column=j + 1))
    return block, unreadable


def _fits_label(X: np.ndarray, predictor_type: str) -> np.ndarray:
    if predictor_type == BINARY:
        return np.all((X == 0) | (X == 1), axis=0)
    return np.all((np.round(X) == X) & (X >= 0), axis=0)


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
    if predictor_type == REGRESSOR or label_like is None:
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

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

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training import content_types
from training.content_types import CSV, RECORDIO
from training.core import hyperparameters
from training.core.hyperparameters import Hyperparameters
from training.core.losses import BINARY, REGRESSOR
from training.data import recordio
from training.data.channels import channel_files, detect_format
from training.data.labels import label_problems
from training.data.manifest import CHANNELS, Manifest
from training.data.raw_checks import check_predictor_type, empty_file, is_number
from training.errors import NOTHING_STARTED, Problem, ValidationError
from training.files import file_problem

MAX_PROBLEMS_PER_FILE = 10
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
    if predictor_type == BINARY:
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

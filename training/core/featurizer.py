"""The fitted preprocessing, portable: ``preprocessing.json``; raw rows -> the model's features.

``prepare`` fits the preprocessing (impute, one-hot, scale) and describes it here, in plain
JSON: every input column in source order with its role (numeric, categorical, dropped and why,
the label), the fill value for a missing cell, the categories in encoded order, the scaling,
and the label's classes. No pickle: the description is read the same way by every Python and
numpy. :class:`Featurizer` turns raw rows into the float32 features the model was trained on,
bit for bit what ``prepare`` wrote to the channels, and a predicted label back into the class
the data spelled.

The same code runs in three places: ``prepare``'s bulk encoding, the local endpoint, and,
copied as it is into ``featurizer.tar.gz``, SageMaker's scikit-learn container at the head of the
serial inference pipeline. So it imports numpy and the standard library only, and keeps to the
Python of that container (3.8 and later).

Raw rows: a CSV row holds the source's columns minus the label, in source order (dropped
columns included, and ignored); a JSON record names its columns. An empty cell, or one of
pandas' missing-value spellings, is a missing value and gets the column's fill value, as in
training; a category not seen in training encodes as all zeros (scikit-learn's
``handle_unknown="ignore"``). Anything else the rows get wrong is a :class:`RowError` that
names the row and the column.
"""

from __future__ import annotations

import csv
import io
import json
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "linear-learner-preprocessing"
VERSION = 1
PREPROCESSING_FILE = "preprocessing.json"
# The largest preprocessing.json read: one-hot vocabularies are its bulk (~100 bytes a category),
# so 64 MiB holds over half a million categories. training.limits.MAX_PREPROCESSING_BYTES is
# this (a test keeps them equal): this module also runs alone in the scikit-learn container.
MAX_DESCRIPTION_BYTES = 64 << 20
NUMERIC, CATEGORICAL, DROPPED, LABEL = "numeric", "categorical", "dropped", "label"
ROLES = (NUMERIC, CATEGORICAL, DROPPED, LABEL)
# pandas' default ``na_values``, what prepare read as missing (tests keep them equal)
NA_VALUES = frozenset(
    ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
     "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
)  # fmt: skip
TRUE_VALUES, FALSE_VALUES = ("True", "TRUE", "true"), ("False", "FALSE", "false")
SPACE = " \t"  # what pandas' skipinitialspace skips before a cell
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")  # ASCII digits only
_INFINITY = re.compile(r"[+-]?(inf|infinity)$", re.IGNORECASE)
UNKNOWN = -1  # a category code: not seen in training (encodes as all zeros)
# what a request may carry: raw rows as CSV, JSON records or JSON lines, or encoded vectors
CSV, JSON, JSONLINES = "text/csv", "application/json", "application/jsonlines"
RECORDIO = "application/x-recordio-protobuf"
RECORDIO_MAGIC = 0xCED7230A


class RowError(ValueError):
    """A raw row the model cannot read; the message names the row and the column."""


class UnsupportedContentTypeError(ValueError):
    """A request body of a content type raw rows do not come in."""


class PreprocessingError(ValueError):
    """A file that is not a preprocessing description this version reads."""


@dataclass(frozen=True)
class Column:
    """One column of the source CSV: its role and what was learned about it."""

    name: str
    role: str
    why: str | None = None  # dropped: the reason
    fill: Any = None  # numeric: the median; categorical: the most frequent value
    mean: float | None = None  # numeric: subtracted ...
    scale: float | None = None  # ... then divided by
    categories: tuple[Any, ...] = ()  # categorical: in encoded order

    def to_json(self) -> dict:
        out: dict[str, Any] = {"name": self.name, "role": self.role}
        if self.role == DROPPED:
            out["why"] = self.why
        if self.role == NUMERIC:
            out.update(fill=self.fill, mean=self.mean, scale=self.scale)
        if self.role == CATEGORICAL:
            out.update(fill=self.fill, categories=list(self.categories))
        return out


@dataclass(frozen=True)
class Featurizer:
    """The fitted preprocessing of one prepared dataset (``preprocessing.json``)."""

    columns: tuple[Column, ...]  # every column of the source, in source order
    predictor_type: str
    classes: tuple[Any, ...] = ()  # classifiers: the label's values, index = encoded value
    # what every request reuses, derived once from the columns (a single-row request is
    # otherwise mostly this bookkeeping)
    _derived: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        d = self._derived
        d["numeric"] = [c for c in self.columns if c.role == NUMERIC]
        d["categorical"] = [c for c in self.columns if c.role == CATEGORICAL]
        d["inputs"] = [c for c in self.columns if c.role != LABEL]
        numeric = d["numeric"]
        for key in ("fill", "mean", "scale"):
            d[key] = np.array([getattr(c, key) for c in numeric], np.float64)
        d["width"] = len(numeric) + sum(len(c.categories) for c in d["categorical"])
        # per categorical column, cell text -> code (the JSON keeps categories as values)
        d["lookups"] = []
        for column in d["categorical"]:
            lookup = {}
            for code, value in enumerate(column.categories):
                if isinstance(value, bool):
                    for spelling in TRUE_VALUES if value else FALSE_VALUES:
                        lookup[spelling] = code
                else:
                    lookup[str(value)] = code
            d["lookups"].append((lookup, lookup.get(_text(column.fill), UNKNOWN)))

    # ------------------------------------------------------------------ layout

    @property
    def numeric(self) -> list[Column]:
        return self._derived["numeric"]

    @property
    def categorical(self) -> list[Column]:
        return self._derived["categorical"]

    @property
    def inputs(self) -> list[Column]:
        """What a raw row holds: every column but the label, in source order."""
        return self._derived["inputs"]

    @property
    def label(self) -> str | None:
        return next((c.name for c in self.columns if c.role == LABEL), None)

    @property
    def feature_names(self) -> list[str]:
        """The model's features in order: the numeric columns, then each category."""
        names = [c.name for c in self.numeric]
        for c in self.categorical:
            names += [f"{c.name}_{value}" for value in c.categories]
        return names

    @property
    def width(self) -> int:
        return self._derived["width"]

    # ------------------------------------------------------------------ the kernel

    def encode(self, X: np.ndarray, codes: Sequence[np.ndarray]) -> np.ndarray:
        """Features as float32 from a float64 matrix of the numeric columns (NaN: missing;
        imputed in place) and, per categorical column, each row's category code (the fill
        value's code where missing; UNKNOWN: all zeros). The same float64 operations in the
        same order as scikit-learn's fitted transformer, so the same bits."""
        d = self._derived
        out = np.zeros((len(X), d["width"]), np.float32)
        k = len(d["numeric"])
        if k:
            missing = np.isnan(X)
            if missing.any():
                X[missing] = np.broadcast_to(d["fill"], X.shape)[missing]
            X -= d["mean"]
            X /= d["scale"]
            out[:, :k] = X
        at = k
        for column, code in zip(d["categorical"], codes):
            known = code >= 0
            out[known, at + code[known]] = 1.0
            at += len(column.categories)
        return out

    # ------------------------------------------------------------------ raw rows

    def features_from_csv(self, text: str) -> np.ndarray:
        """Rows of CSV text (no header; the input columns in source order) -> features."""
        rows = _csv_rows(text)
        if not rows:
            raise RowError("no rows: send one CSV row per line, without a header")
        expected = len(self.inputs)
        for i, row in enumerate(rows):
            if len(row) != expected:
                raise RowError(self._width_message(i + 1, len(row)))
        columns = list(zip(*rows))  # the rows' cells, column by column
        cells = {c.name: cells for c, cells in zip(self.inputs, columns)}
        return self._features(cells, text=True)

    def features_from_records(self, records: Sequence[Any]) -> np.ndarray:
        """JSON records keyed by column name -> features."""
        if not records:
            raise RowError("no records in the request")
        required = {c.name for c in self.numeric + self.categorical}
        known = {c.name for c in self.columns}
        for i, record in enumerate(records, start=1):
            if not isinstance(record, dict):
                raise RowError(f"record {i} is not an object keyed by column name")
            unknown = sorted(set(record) - known)
            if unknown:
                raise RowError(
                    f"record {i}: unknown column '{unknown[0]}' (the columns are "
                    f"{_listing([c.name for c in self.inputs])})"
                )
            missing = [c.name for c in self.inputs if c.name in required - set(record)]
            if missing:
                raise RowError(
                    f"record {i}: column '{missing[0]}' is missing (send null for a missing value)"
                )
        used = self.numeric + self.categorical
        return self._features({c.name: [r.get(c.name) for r in records] for c in used})

    def _features(self, cells: dict[str, Sequence[Any]], text: bool = False) -> np.ndarray:
        """Features from each used column's cells (text, numbers or None), column by column:
        whole columns at C speed where every cell is plain, cell by cell only where one is
        not (missing, spaced, or wrong, which the error then names)."""
        n = len(next(iter(cells.values()))) if cells else 0
        X = np.empty((n, len(self.numeric)), np.float64)
        for j, column in enumerate(self.numeric):
            X[:, j] = _numbers(cells[column.name], column.name, text)
        codes = [
            _categories(cells[column.name], lookup, fill_code, column.name, text)
            for column, (lookup, fill_code) in zip(self.categorical, self._derived["lookups"])
        ]
        return self.encode(X, codes)

    def _width_message(self, row: int, got: int) -> str:
        names = [c.name for c in self.inputs]
        hint = ""
        if self.label is not None and got == len(names) + 1:
            hint = f" (a label column? leave '{self.label}' out)"
        return (
            f"row {row} has {got} fields; the model reads {len(names)} columns in this order: "
            f"{_listing(names)}{hint}"
        )

    def features_from_request(self, body, content_type: str) -> np.ndarray | None:
        """The features of a request's raw rows (``body`` bytes or text); None for encoded
        vectors (RecordIO-protobuf), which go to the model as they are."""
        media = (content_type or CSV).split(";")[0].strip().lower()
        if media == RECORDIO:
            return None
        if media not in (CSV, JSON, JSONLINES):
            raise UnsupportedContentTypeError(
                f"content type '{content_type}' is not one raw rows come in: send {CSV} (rows "
                f"without a header), {JSON} or {JSONLINES} (records keyed by column name), or "
                f"{RECORDIO} (encoded vectors)"
            )
        if isinstance(body, bytes):
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError as err:
                raise RowError(f"the body is not UTF-8 text (byte {err.start})") from None
        if media == CSV:
            return self.features_from_csv(body)
        return self.features_from_records(_records(body, lines=media == JSONLINES))

    # ------------------------------------------------------------------ the file

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "predictor_type": self.predictor_type,
            "classes": list(self.classes),
            "columns": [c.to_json() for c in self.columns],
            "features": self.feature_names,
        }

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path

    @classmethod
    def from_json(cls, doc: Any, source: str = PREPROCESSING_FILE) -> Featurizer:
        try:
            if doc.get("format") != FORMAT or doc.get("version") != VERSION:
                raise ValueError(
                    f"format {doc.get('format')!r} version {doc.get('version')!r}, not "
                    f"{FORMAT!r} version {VERSION}"
                )
            columns = tuple(_column(c) for c in doc["columns"])
            featurizer = cls(columns, str(doc["predictor_type"]), tuple(doc.get("classes", ())))
            if (
                doc.get("features") is not None
                and list(doc["features"]) != featurizer.feature_names
            ):
                raise ValueError("its feature list disagrees with its columns")
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            message = f"{source} is not a preprocessing description ({err})"
            raise PreprocessingError(message) from None
        return featurizer

    @classmethod
    def load(cls, path: Path) -> Featurizer:
        path = Path(path)
        try:
            with open(path, "rb") as fh:  # read to the limit only: a huge file is not one of ours
                raw = fh.read(MAX_DESCRIPTION_BYTES + 1)
            if len(raw) > MAX_DESCRIPTION_BYTES:
                raise PreprocessingError(
                    f"{path} is over {MAX_DESCRIPTION_BYTES >> 20} MiB, more than a "
                    "preprocessing description holds: pass the preprocessing.json prepare wrote"
                )
            return cls.from_text(raw, str(path))
        except OSError as err:
            raise PreprocessingError(f"{path} cannot be read as JSON ({err})") from None

    @classmethod
    def from_text(cls, raw: bytes, source: str = PREPROCESSING_FILE) -> Featurizer:
        """From the bytes of a preprocessing.json; hostile JSON (too deep, numbers Python
        refuses) is a PreprocessingError naming ``source``, not a traceback."""
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as err:
            err = "nested too deep" if isinstance(err, RecursionError) else err
            raise PreprocessingError(f"{source} cannot be read as JSON ({err})") from None
        return cls.from_json(doc, source)


def media_type(header: str | None) -> str:
    return (header or "").split(";")[0].strip().lower()


def negotiate(accept: str | None, answerable: Sequence[str]) -> str | None:
    """The first of ``answerable`` an Accept header asks for (``*/*``, ``application/*`` or
    nothing: JSON); types marked ``q=0`` are refused, other weights keep the client's order.
    None when it asks for nothing answerable."""
    offered, refused = [], []
    for part in (accept or "").split(","):
        media = media_type(part)
        params = [p.strip().replace(" ", "") for p in part.split(";")[1:]]
        if any(p in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params):
            refused.append(media)
        elif media:
            offered.append(media)
    if not offered and not refused:
        return JSON
    for media in offered:
        if media in answerable:
            return media
        if media in ("*/*", "application/*"):
            return JSON
    return None


def with_classes(rows: list, classes: Sequence[Any]) -> list:
    """Linear Learner's answer rows (changed in place), each classifier's with
    ``predicted_class``: the class as the data spelled it."""
    for row in rows if classes else ():
        row["predicted_class"] = classes[int(row["predicted_label"])]
    return rows


def render(rows: list, media: str) -> bytes:
    """Answer rows as Linear Learner renders them: ``{"predictions": [...]}`` or JSON lines."""
    if media == JSONLINES:
        return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()
    return json.dumps({"predictions": rows}).encode()


def recordio_rows(X: np.ndarray) -> bytes:
    """Dense float32 rows as RecordIO-protobuf records (features only), byte for byte what
    SageMaker SDK 2.x's ``write_numpy_to_dense_tensor`` writes: what the featurizer hands
    Linear Learner, exact and a quarter the size of JSON."""
    X = np.ascontiguousarray(X, "<f4")
    packed = X.shape[1] * 4
    tensor = b"\x0a" + varint(packed)  # Float32Tensor.values, packed
    value = b"\x12" + varint(len(tensor) + packed) + tensor  # Value.float32_tensor
    entry = b"\x0a\x06values" + b"\x12" + varint(len(value) + packed) + value
    payload = b"\x0a" + varint(len(entry) + packed) + entry  # Record.features
    size = len(payload) + packed
    frame = struct.pack("<II", RECORDIO_MAGIC, size) + payload
    pad = b"\0" * (-size % 4)
    return b"".join(frame + row.tobytes() + pad for row in X)


def varint(value: int) -> bytes:
    """Protobuf's base-128 varint (RecordIO-protobuf's lengths)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _records(text: str, lines: bool) -> list:
    """JSON records: ``{"instances": [...]}``, a list, or one object; or one per line."""
    try:
        if lines:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise RowError(f"invalid JSON: {err}") from None
    except RecursionError:
        raise RowError("invalid JSON: nested too deeply for a record") from None
    if isinstance(doc, dict) and isinstance(doc.get("instances"), list):
        return doc["instances"]
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        return [doc]
    raise RowError('send records keyed by column name: {"instances": [{"column": value, …}]}')


def _column(doc: dict) -> Column:
    role = doc["role"]
    if role not in ROLES:
        raise ValueError(f"column {doc.get('name')!r} has role {role!r}")
    if role == NUMERIC:
        values = [float(doc[k]) for k in ("fill", "mean", "scale")]
        if not all(np.isfinite(values)) or values[2] == 0:
            raise ValueError(f"column {doc['name']!r} has fill, mean, scale {values}")
        return Column(doc["name"], role, fill=values[0], mean=values[1], scale=values[2])
    if role == CATEGORICAL:
        categories = tuple(doc["categories"])
        if not categories:
            raise ValueError(f"column {doc['name']!r} has no categories")
        return Column(doc["name"], role, fill=doc["fill"], categories=categories)
    return Column(str(doc["name"]), role, why=doc.get("why"))


# a line break other than "\n" or "\r\n" (one CSV row per line); blank lines at the end
_STRAY_BREAK = re.compile("\r(?!\n)|[\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def _csv_rows(text: str) -> list[list[str]]:
    """CSV rows as pandas reads them (quotes, spaces after commas skipped); empty lines at
    the end ignored. Line breaks other than ``\\n`` / ``\\r\\n`` inside a row are errors."""
    text = _without_blank_end(text)
    for stray in _STRAY_BREAK.finditer(text):
        start = text.rfind("\n", 0, stray.start()) + 1
        end = text.find("\n", stray.end())
        if '"' not in text[start : end if end >= 0 else len(text)]:  # not inside a quoted cell
            row = text.count("\n", 0, stray.start()) + 1
            raise RowError(
                f"row {row} contains the line break {stray.group()!r}: separate rows with \\n only"
            )
    try:
        return list(csv.reader(io.StringIO(text), skipinitialspace=True))
    except csv.Error as err:
        raise RowError(f"not CSV: {err}") from None


def _without_blank_end(text: str) -> str:
    """``text`` without the blank lines (and the line break) at its end."""
    end = len(text)
    while end:
        j = end
        while j and text[j - 1] in " \t\r":
            j -= 1
        if j and text[j - 1] == "\n":
            end = j - 1
        elif j == 0:
            return ""
        else:
            break
    if end < len(text) and end and text[end - 1] == "\r":  # the last row's "\r\n"
        end -= 1
    return text[:end]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.lstrip(SPACE) in NA_VALUES)


def _number(value: Any, row: int, column: str) -> float:
    """A numeric cell as prepare read it: NaN when missing or infinite (imputed)."""
    if _missing(value):
        return np.nan
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RowError(f"row {row}, column '{column}': {json.dumps(value)} is not a number")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = value.strip(SPACE)
        if _INFINITY.match(text):
            return np.nan
        if not _NUMBER.match(text):
            raise RowError(f"row {row}, column '{column}': '{value[:40]}' is not a number")
        number = float(text)
    return number if np.isfinite(number) else np.nan


# the characters of plain decimal numbers: a column of only these that float() reads is a
# column of numbers as _NUMBER reads them (no spaces, underscores, other digits or spellings)
_NUMBER_CHARS = re.compile(r"[0-9.eE+\-\n]*")


def _plain_numbers(cells: Sequence[str]) -> np.ndarray | None:
    """Cells that are all plain decimal numbers, as float64 (each exactly as float() reads
    it); None when any is not."""
    if not _NUMBER_CHARS.fullmatch("\n".join(cells)):
        return None
    try:
        return np.array(cells, np.float64)
    except ValueError:  # "1.2.3", "1e", "" …
        return None


def _numbers(cells: Sequence[Any], column: str, text: bool) -> np.ndarray:
    """A numeric column's cells as float64, NaN where missing or infinite (``text``: every
    cell is a string, as CSV's are)."""
    plain = None
    if cells and (text or all(type(c) is str for c in cells)):
        plain = _plain_numbers(cells)
        if plain is None:  # plain numbers but for empty (missing) cells?
            cells_ = np.array(cells, dtype=object)
            present = cells_ != ""
            given = _plain_numbers(cells_[present].tolist())
            if given is not None:
                plain = np.full(len(cells), np.nan)
                plain[present] = given
    elif cells and all(type(c) in (int, float) for c in cells):
        plain = np.array(cells, np.float64)
    if plain is None:
        return np.array([_number(c, i + 1, column) for i, c in enumerate(cells)], np.float64)
    plain[~np.isfinite(plain)] = np.nan  # 1e400: infinite, so missing, as in training
    return plain


def _categories(
    cells: Sequence[Any], lookup: dict, fill_code: int, column: str, text: bool
) -> np.ndarray:
    """A categorical column's cells as codes: the fill value's where missing, UNKNOWN where
    not among the categories."""
    if text or all(type(c) is str for c in cells):
        codes = np.array([lookup.get(c, UNKNOWN) for c in cells], np.int64)
        redo = np.flatnonzero(codes == UNKNOWN)  # missing, spaced, or indeed unknown
    else:
        codes, redo = np.full(len(cells), UNKNOWN, np.int64), range(len(cells))
    for i in redo:
        codes[i] = _category(cells[i], lookup, fill_code, i + 1, column)
    return codes


def _category(value: Any, lookup: dict, fill_code: int, row: int, column: str) -> int:
    if _missing(value):
        return fill_code
    if isinstance(value, bool):
        value = "True" if value else "False"
    elif not isinstance(value, (str, int, float)):
        raise RowError(f"row {row}, column '{column}': {json.dumps(value)} is not a category")
    return lookup.get(_text(value).lstrip(SPACE), UNKNOWN)


def _listing(names: list[str], most: int = 12) -> str:
    shown = ", ".join(names[:most])
    return shown + (f", … ({len(names)} in all)" if len(names) > most else "")

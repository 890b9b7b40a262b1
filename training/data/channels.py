"""Linear Learner channels on disk: written as RecordIO-protobuf (float32) or label-first
headerless CSV, listed as SageMaker lists a channel folder, and read back.

Linear Learner accepts only Float32Tensor in RecordIO, so these writers always produce float32
and say so when they convert. Files are written in chunks, rotated into shards of a target
size for multi-instance training (``ShardedByS3Key``), and described by the manifest
SageMaker expects for a ``ManifestFile`` channel. A channel's format is told from its bytes.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.content_types import CHANNEL
from training.core.model import is_sparse
from training.data import recordio
from training.data.manifest import MANIFEST_FILE, Channel

log = logging.getLogger("training")
EXTENSIONS = {"recordio": ".rec", "csv": ".csv"}
_SKIP_NAMES = {".amazon.manifest", MANIFEST_FILE}  # in a channel folder, not channel files


def detect_format(path: Path) -> str:
    """``recordio`` when the file starts with RecordIO's magic number, else ``csv``."""
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


@dataclass
class ChannelWriter:
    """Appends ``(X, y)`` chunks to ``directory`` as shards ``<name>-00000.rec`` …

    ``shard_bytes`` starts a new file once the current one reaches that size (None: one file).
    """

    directory: Path
    name: str
    fmt: str = "recordio"
    shard_bytes: int | None = None
    classes: int = 0  # classifiers: count the rows of each label 0 .. classes - 1
    rows: int = 0
    files: list[Path] = field(default_factory=list)
    _fh: object = None
    _written: int = 0
    _per_row: int | None = None
    _announced: set = field(default_factory=set)
    _label_counts: np.ndarray | None = None

    def __post_init__(self):
        if self.fmt not in EXTENSIONS:
            raise ValueError(f"unknown channel format '{self.fmt}': use recordio or csv")
        self.directory = Path(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def content_type(self) -> str:
        return CHANNEL[self.fmt]

    def write(self, X, y) -> None:
        X = self._float32(np.asarray(X), "features")
        y = self._float32(np.asarray(y).reshape(-1), "labels")
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"{X.shape[0]} feature rows but {y.shape[0]} labels")
        if self.classes:
            counts = np.bincount(y.astype(np.int64), minlength=self.classes)[: self.classes]
            before = self._label_counts
            self._label_counts = counts if before is None else before + counts
        start, n = 0, X.shape[0]
        while start < n:
            if self._fh is None or (self.shard_bytes and self._written >= self.shard_bytes):
                self._open_next()
            take = n - start
            if self.shard_bytes:
                room = self.shard_bytes - self._written
                take = min(take, max(1, -(-room // self._row_bytes(X[:1], y[:1]))))
            rows = slice(start, start + take)
            if self.fmt == "recordio":
                recordio.write_numpy_to_dense_tensor(self._fh, X[rows], y[rows])
            else:
                _write_csv_rows(self._fh, X[rows], y[rows])
            self._written = self._fh.tell()
            self.rows += take
            start += take

    def _row_bytes(self, X1, y1) -> int:
        """Bytes one row takes in this format (exact for RecordIO, typical for CSV)."""
        if self._per_row is None:
            buf = io.BytesIO()
            if self.fmt == "recordio":
                recordio.write_numpy_to_dense_tensor(buf, X1, y1)
            else:
                _write_csv_rows(buf, X1, y1)
            self._per_row = max(1, len(buf.getvalue()))
        return self._per_row

    def _float32(self, array, what):
        """Linear Learner reads only float32: convert, and say so once per channel."""
        if array.dtype != np.float32 and what not in self._announced:
            self._announced.add(what)
            log.info(
                "%s: converting %s from %s to float32 (Linear Learner reads only Float32Tensor)",
                self.name,
                what,
                array.dtype,
            )
        return array.astype(np.float32, copy=False)

    def _open_next(self):
        self._close_file()
        path = self.directory / f"{self.name}-{len(self.files):05d}{EXTENSIONS[self.fmt]}"
        self._fh = open(path, "wb")  # noqa: SIM115 (closed in close())
        self._written = 0
        self.files.append(path)

    def _close_file(self):
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def close(self) -> Channel:
        self._close_file()
        return Channel(
            rows=self.rows,
            content_type=self.content_type,
            files=[p.name for p in self.files],
            bytes=sum(p.stat().st_size for p in self.files),
            label_counts=None if not self.classes else self._counts(),
        )

    def _counts(self) -> list[int]:
        return [0] * self.classes if self._label_counts is None else self._label_counts.tolist()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._close_file()


def _write_csv_rows(fh, X: np.ndarray, y: np.ndarray) -> None:
    """Label first, no header, no index; '%.9g' round-trips float32 exactly."""
    import pandas as pd

    frame = pd.DataFrame(np.column_stack([y, X]))
    text = frame.to_csv(header=False, index=False, float_format="%.9g", lineterminator="\n")
    fh.write(text.encode())


def sharded_manifest(s3_prefix: str, files: list[str]) -> list:
    """The ``ManifestFile`` body SageMaker expects: a prefix, then object keys under it."""
    if not s3_prefix.startswith("s3://"):
        raise ValueError(f"manifest prefix must be an s3:// URI, got '{s3_prefix}'")
    prefix = s3_prefix if s3_prefix.endswith("/") else s3_prefix + "/"
    return [{"prefix": prefix}, *files]


# --------------------------------------------------------------------------- reading


@dataclass
class Data:
    """Features (dense float32 ndarray or CSR) and float labels of one channel."""

    X: object
    y: np.ndarray

    @property
    def n(self) -> int:
        return self.X.shape[0]


def read_channel(folder: Path) -> Data | None:
    """All files of a channel folder as one dataset (RecordIO or label-first CSV)."""
    import pandas as pd

    files = channel_files([folder]) if folder.exists() else []
    parts = []
    for path in files:
        if detect_format(path) == "recordio":
            arrays = recordio.read_arrays(path)
            parts.append((arrays.X, arrays.y))
        else:
            values = pd.read_csv(path, header=None, dtype=np.float32).to_numpy()
            parts.append((values[:, 1:], values[:, 0]))
    return stack(parts)


def stack(parts: list[tuple]) -> Data | None:
    """(features, labels) of several files as one dataset; sparse if any part is."""
    if not parts:
        return None
    if any(is_sparse(X) for X, _ in parts):
        import scipy.sparse

        X = scipy.sparse.vstack([scipy.sparse.csr_matrix(X) for X, _ in parts]).tocsr()
    else:
        X = np.vstack([X for X, _ in parts]).astype(np.float32, copy=False)
    return Data(X, np.concatenate([y for _, y in parts]).astype(np.float32))

"""``predict``: the same command for the deployed endpoint and the local one.

Reads the rows as the user has them, a raw CSV with a header (the training file's layout;
its label column, if there, is left out of the requests and used for metrics), when the
model has preprocessing; or encoded features (CSV without a label, a label-first CSV with
``--labelled``, or RecordIO, streamed a record at a time and sent as its own records unless
asked otherwise). Sends them in requests under SageMaker's payload limits (6 MB
from the client, 5 MB between a pipeline's containers), writes the predictions beside the
input, or beside a prepared data folder the input is in (:func:`default_output`), in input
order (raw rows: a CSV with one column per class score and the rows' id or number, so it
joins back), and prints the test metrics when the input carries labels.
"""

from __future__ import annotations

import contextlib
import csv
import http.client
import io
import itertools
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.batch_transform import PIPELINE_BYTES, RECORD_OVERHEAD
from training.content_types import CSV, JSON, RECORDIO
from training.core import metrics as lm
from training.core.csv_numbers import OTHER_BREAKS, is_number, nonfinite, parse_number, parse_text
from training.core.featurizer import SPACE, Featurizer
from training.core.losses import BINARY, MULTICLASS
from training.core.metrics import DEFAULT_PARAMS, MetricsParams
from training.core.model import Predictions
from training.data import recordio
from training.data.channels import detect_format
from training.data.manifest import MANIFEST_FILE
from training.data.raw_files import raw_rows
from training.endpoint_payload import REALTIME, PayloadLimits, answer_shape, sized_answers
from training.errors import Problem, ValidationError
from training.files import file_problem, line_blocks
from training.progress import progress

# The longest input line: a row must fit in one request, and no endpoint takes more than a
# real-time one (SageMaker's own limit, less our headroom: training.endpoint_payload).
LIMIT = REALTIME.request_budget
Invoker = Callable[[bytes, str], bytes]  # (body, content type) -> JSON response body
NO_PROGRESS = progress(None, "", enabled=False)  # what a caller that shows none passes


def input_format(path: Path) -> str:
    """``recordio`` or ``csv`` (:func:`training.data.channels.detect_format`), once the input
    is known to be a readable file (a folder is refused by name)."""
    unreadable = file_problem(Path(path), fix="check --input")
    if unreadable:
        raise ValidationError([unreadable])
    return detect_format(Path(path))


def read_input(path: Path, labelled: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Features (and, ``labelled``, the first column's labels) from a headerless numeric CSV,
    one :func:`input_format` found readable and CSV (a RecordIO input is streamed instead:
    :func:`scan_recordio`)."""
    values = read_csv_rows(Path(path))
    if labelled:
        return values[:, 1:], values[:, 0]
    return values, None


_BLOCK_BYTES = 4 << 20  # lines parsed at a time: memory is a few times this, not the file's
_CSV_FIX = "send numeric features only, no header (or --labelled with the label first)"


def read_csv_rows(path: Path) -> np.ndarray:
    """A headerless numeric CSV as float32 rows, streamed in blocks of whole lines: a line
    longer than a request may be (LIMIT) is refused before it is read whole, and each cell
    must be a finite number by Linear Learner's rule (:mod:`training.core.csv_numbers`); the
    first problem is named by row and column."""
    name, parts, width = str(path), [], None
    fix = "one row of features per line; a row must fit in one request (6 MB)"
    for first, block in line_blocks(path, _BLOCK_BYTES, LIMIT, fix, "what one request holds"):
        try:
            text = b"\n".join(block).decode("utf-8").replace("\r\n", "\n").removesuffix("\r")
            values = parse_text(text)
        except (UnicodeDecodeError, ValueError):
            _first_problem(name, first, block, width)
            raise  # pragma: no cover - _first_problem names every way parse_rows fails
        width = width or values.shape[1]
        if values.shape[1] != width:
            problem = f"has {values.shape[1]} fields, the rows above have {width}"
            raise ValidationError([Problem(name, problem, _CSV_FIX, row=first)])
        bad = nonfinite(values)
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            cell = text.split("\n")[i].split(",")[j].strip()
            problem = f"{cell!r} is not a finite number (Linear Learner refuses it)"
            fix = "impute missing values first (python -m training prepare does)"
            if np.isfinite(values[i, j]):  # finite in float64 only
                problem = f"{cell!r} is beyond float32 (+-3.4e38): Linear Learner reads infinity"
                fix = "rescale the feature: Linear Learner's features are float32"
            raise ValidationError([Problem(name, problem, fix, row=first + i, column=j + 1)])
        parts.append(values.astype(np.float32))
    if not parts:
        raise ValidationError([Problem(name, "no rows", "write one row of features per line")])
    return np.vstack(parts)


def _first_problem(name: str, first: int, block: list[bytes], width: int | None) -> None:
    """Raise the first problem of a block that did not parse, by row (and column)."""
    for number, raw in enumerate(block, start=first):
        try:
            line = raw.decode("utf-8").removesuffix("\r")
        except UnicodeDecodeError as err:
            raise ValidationError(
                [Problem(name, f"not UTF-8 text (byte {err.start})", _CSV_FIX, row=number)]
            ) from None
        stray = OTHER_BREAKS.search(line)
        if stray or not line.strip():
            what = f"holds the line break {stray.group()!r}" if stray else "empty line"
            fix = "end rows with \\n (or \\r\\n) only" if stray else "delete empty lines"
            raise ValidationError([Problem(name, what, fix, row=number)])
        cells = line.split(",")
        width = width or len(cells)
        if len(cells) != width:
            problem = f"has {len(cells)} fields, the rows above have {width}"
            raise ValidationError([Problem(name, problem, _CSV_FIX, row=number)])
        bad = next((j for j, cell in enumerate(cells) if not is_number(cell)), None)
        if bad is not None:
            problem = f"{cells[bad][:40]!r} is not a number"
            raise ValidationError([Problem(name, problem, _CSV_FIX, row=number, column=bad + 1)])


@dataclass
class RawRows:
    """A raw CSV's data rows as requests carry them (:mod:`training.data.raw_files`); the labels,
    encoded, when asked for; each row's id (``--id-column``) or number."""

    path: Path
    lines: list[str]
    ids: list[str]
    id_name: str
    label: np.ndarray | None = None
    label_name: str | None = None

    def __len__(self) -> int:
        return len(self.lines)


def read_raw(
    path: Path, featurizer: Featurizer, labelled: bool, id_column: str | None = None
) -> RawRows:
    """The rows of a raw CSV with a header, for a model served behind ``featurizer``."""
    lines, ids, labels = [], [], []
    for row in raw_rows(path, featurizer, id_column, need_label=labelled, max_row=LIMIT):
        lines.append(row.line)
        ids.append(row.id)
        if labelled:
            labels.append(_label(row.label, featurizer, Path(path), row.number + 1))
    if not lines:
        raise ValidationError([Problem(str(path), "no data rows", "add rows under the header")])
    y = np.asarray(labels, np.float64) if labelled else None
    return RawRows(Path(path), lines, ids, id_column or "row", y, featurizer.label)


def _label(cell: str, featurizer: Featurizer, path: Path, row: int) -> float:
    """A label cell as the model encodes it (class index, or the regressor's number)."""
    text = cell.lstrip(SPACE)
    if featurizer.classes:
        for i, value in enumerate(featurizer.classes):
            if text == str(value):
                return float(i)
        shown = ", ".join(map(str, featurizer.classes))
        problem = f"label '{cell}' is not one of the model's classes ({shown})"
        raise ValidationError([Problem(str(path), problem, "fix or drop the row", row=row)])
    try:  # by the rule features follow (not float(): '1_0' is not 10), and finite
        value = parse_number(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        what = "a number" if value is None else "a finite number"
        problem = f"label '{cell}' is not {what}"
        raise ValidationError([Problem(str(path), problem, "fix or drop the row", row=row)])
    return value


def raw_bodies(
    lines: list[str], feature_dim: int, limit: int, most_rows: int | None = None
) -> Iterator[bytes]:
    """Bodies of whole raw CSV rows, each under ``limit`` bytes and ``most_rows`` rows, and
    few enough rows that their features stay under the 5 MB a pipeline's containers may pass
    each other."""
    most = max(1, PIPELINE_BYTES // (4 * feature_dim + RECORD_OVERHEAD))
    most = min(most, most_rows or most)
    batch, size = [], 0
    for line in lines:
        nbytes = len(line.encode()) + 1
        if batch and (size + nbytes > limit or len(batch) >= most):
            yield ("\n".join(batch) + "\n").encode()
            batch, size = [], 0
        batch.append(line)
        size += nbytes
    if batch:
        yield ("\n".join(batch) + "\n").encode()


def request_bodies(
    X: np.ndarray, content_type: str, limit: int, most_rows: int | None = None
) -> Iterator[bytes]:
    """Bodies of whole rows, each under ``limit`` bytes and ``most_rows`` rows."""
    most = most_rows or X.shape[0] or 1
    if content_type == RECORDIO:
        per_row = len(recordio.encode_dense(X[:1].astype(np.float32)))
        step = min(most, max(1, limit // per_row))
        for start in range(0, X.shape[0], step):
            yield recordio.encode_dense(X[start : start + step].astype(np.float32))
        return
    yield from text_bodies(formatted_rows(X, content_type), content_type, limit, most)


def formatted_rows(X: np.ndarray, content_type: str) -> list[str]:
    """Each row formatted once, in the type sent: a CSV line, or a JSON instance."""
    if content_type == JSON:
        return [json.dumps({"features": [float(v) for v in row]}) for row in X]
    return [",".join(f"{v:.9g}" for v in row) for row in X]


_WRAPPER = 64  # bytes kept free in a body beside its rows (the JSON wrapper, with room)


def text_bodies(rows: list[str], content_type: str, limit: int, most: int) -> Iterator[bytes]:
    """Formatted rows joined into bodies under ``limit`` bytes and ``most`` rows each."""
    batch, size = [], 0
    for row in rows:
        if batch and (size + len(row) + _WRAPPER > limit or len(batch) >= most):
            yield _join(batch, content_type)
            batch, size = [], 0
        batch.append(row)
        size += len(row) + 2  # the separator: "\n" for CSV, ", " for JSON
    if batch:
        yield _join(batch, content_type)


def _join(rows: list[str], content_type: str) -> bytes:
    if content_type == JSON:
        return ('{"instances": [' + ", ".join(rows) + "]}").encode()
    return ("\n".join(rows) + "\n").encode()


# --------------------------------------------------------------------------- RecordIO input
#
# A RecordIO input is never read whole nor made dense: it is read a record at a time
# (recordio.iter_frames, as the local batch transform reads it), once to check it and keep its
# labels, once to send it. Requests of type application/x-recordio-protobuf carry the records
# as the file has them, sparse ones sparse: Linear Learner's inference takes RecordIO-protobuf
# (DG "Linear learner algorithm", linear-learner.html: "For inference, the linear learner
# algorithm supports the application/json, application/x-recordio-protobuf, and text/csv
# formats"), in the same Record layout as for training, keys and shape included (DG "Common
# data formats for inference", cdf-inference.html: "Protocol buffers equivalent ... Has the
# same format as the protocol buffers implementation described for training"), and the
# built-in algorithms' containers score labelled sparse records as a test channel holds them
# (aws/sagemaker-python-sdk issue #1023: a batch transform of write_spmatrix_to_sparse_tensor
# records with labels). CSV or JSON requests densify one request's records at a time.


@dataclass(frozen=True)
class RecordIOInput:
    """A RecordIO-protobuf file read through once (:func:`scan_recordio`): how many records
    it holds, their width, and their labels (None when the records carry none); ``version``
    is the file as checked (:func:`_version`), so the pass that sends it sends only that."""

    path: Path
    rows: int
    feature_dim: int
    y: np.ndarray | None
    version: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Frame:
    number: int  # 1 = the file's first record
    offset: int  # its byte offset in the file
    data: bytes  # header, payload and padding, as framed in the file


_RECORDIO_FIX = "rewrite the file (python -m training prepare), or send CSV"


def _corrupt(path: Path, err: Exception, number: int | None = None) -> ValidationError:
    return ValidationError(
        [
            Problem(
                str(path),
                f"corrupt RecordIO-protobuf: {err}",
                _RECORDIO_FIX,
                row=number,
                unit="record",
            )
        ]
    )


def _version(path: Path) -> tuple[int, ...]:
    """The file as ``stat`` sees it (device, inode, size, modification time in ns): what a
    write, an append or a replacement changes."""
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _changed(path: Path) -> ValidationError:
    return ValidationError(
        [
            Problem(
                str(path),
                "changed while predict read it (written, appended to or replaced between "
                "the pass that checks its records and the one that sends them)",
                "run predict again once nothing writes to the file (or predict a copy)",
            )
        ]
    )


def _frames(path: Path, limit: int) -> Iterator[_Frame]:
    """The file's records one at a time; one over ``limit`` bytes (what one request may
    carry) is refused by its header, before it is read."""
    number = 0
    with open(path, "rb") as fh:
        try:
            for offset, data in recordio.iter_frames(fh, limit):
                number += 1
                yield _Frame(number, offset, data)
        except recordio.RecordTooLarge as err:
            raise ValidationError(
                [
                    Problem(
                        str(path),
                        f"{err} bytes, what one request may carry (the endpoint's payload "
                        "limit, less room for headers)",
                        "score this file with a batch transform (python -m training transform "
                        "--max-payload-mb, up to 100), or split the record's features",
                        row=number + 1,
                        unit="record",
                    )
                ]
            ) from None
        except recordio.RecordIOError as err:
            raise _corrupt(path, err, number + 1) from None


def _batches(frames: Iterator[_Frame], limit: int, most: int) -> Iterator[list[_Frame]]:
    """Consecutive records, at most ``most`` and ``limit`` bytes (as framed) a batch."""
    batch, size = [], 0
    for frame in frames:
        if batch and (size + len(frame.data) > limit or len(batch) >= most):
            yield batch
            batch, size = [], 0
        batch.append(frame)
        size += len(frame.data)
    if batch:
        yield batch


def _decode(path: Path, batch: list[_Frame]) -> recordio.Arrays:
    """A batch of records parsed as the endpoint parses a request (sparse stays CSR)."""
    try:
        return recordio.read_arrays(b"".join(f.data for f in batch), batch[0].offset)
    except recordio.RecordIOError as err:
        raise _corrupt(path, err) from None


def scan_recordio(path: Path, labelled: bool, limit: int) -> RecordIOInput:
    """Every record of a RecordIO file parsed, a block at a time (memory: one block, and the
    labels), so a corrupt or oversized record (over ``limit``, one request's bytes) is named
    before anything is sent; the records' labels are kept (``labelled`` requires them)."""
    path = Path(path)
    rows, width, labels, has_label, sparse = 0, None, [], False, False
    version = _version(path)
    for batch in _batches(_frames(path, limit), _BLOCK_BYTES, _BLOCK_BYTES):
        arrays = _decode(path, batch)
        wrong_type = recordio.float32_problems(arrays)
        if wrong_type:  # the endpoint would refuse every request
            raise ValidationError(
                [
                    Problem(
                        str(path), what, recordio.FLOAT32_FIX, row=batch[0].number, unit="record"
                    )
                    for what in wrong_type
                ]
            )
        bad = _first_nonfinite(arrays)
        if bad is not None:  # the endpoint would refuse it, after the records before it
            i, what = bad
            problem = f"{what} is not a finite number (Linear Learner refuses it)"
            fix = (
                "label the record, or leave it out (python -m training prepare --drop-unlabeled)"
                if what.startswith("the label")
                else "impute missing values first (python -m training prepare does)"
            )
            raise ValidationError(
                [Problem(str(path), problem, fix, row=batch[0].number + i, unit="record")]
            )
        d, is_sparse = arrays.X.shape[1], hasattr(arrays.X, "tocsr")
        if width is None:
            width, has_label, sparse = d, arrays.y is not None, is_sparse
        elif d != width or (arrays.y is not None) != has_label or is_sparse != sparse:
            # a request may hold records of two blocks: they must agree as one block does
            label = "has a label" if arrays.y is not None else "has no label"
            layout = "sparse" if is_sparse else "dense"
            what = (
                f"has {d} features, the records above have {width}"
                if d != width
                else f"{label}, unlike the records above"
                if (arrays.y is not None) != has_label
                else f"is {layout}, unlike the records above (one layout per file)"
            )
            raise ValidationError(
                [Problem(str(path), what, _RECORDIO_FIX, row=batch[0].number, unit="record")]
            )
        rows += arrays.X.shape[0]
        if has_label:
            labels.append(arrays.y)
    if width is None:
        raise ValidationError([Problem(str(path), "no records", _RECORDIO_FIX)])
    if _version(path) != version:
        raise _changed(path)
    if labelled and not has_label:
        raise ValidationError(
            [
                Problem(
                    str(path),
                    "--labelled, but the records carry no label",
                    "drop --labelled, or write the labels into the records (python -m "
                    "training prepare does)",
                )
            ]
        )
    y = np.concatenate(labels) if has_label else None
    return RecordIOInput(path, rows, width, y, version)


def _first_nonfinite(arrays: recordio.Arrays) -> tuple[int, str] | None:
    """The first record (index in ``arrays``) holding a NaN or infinite feature or label,
    and what it is, as :func:`read_csv_rows` refuses such a cell in a CSV input."""
    X, found = arrays.X, []
    cell = recordio.first_marked(X, nonfinite(X.data if hasattr(X, "tocsr") else X))
    if cell is not None:
        row, col, value = cell
        found.append((row, f"feature {col + 1} ({value})"))
    if arrays.y is not None:
        bad = np.flatnonzero(nonfinite(arrays.y))
        if bad.size:
            found.append((int(bad[0]), f"the label ({arrays.y[bad[0]]})"))
    return min(found, key=lambda f: f[0]) if found else None


def _least_text_bytes(feature_dim: int, content_type: str) -> int:
    """The shortest a dense row of ``feature_dim`` features can be as CSV (``0,0,…``) or
    as a JSON instance (``{"features": [0.0, 0.0, …]}``)."""
    if content_type == JSON:
        return len('{"features": []}') + 5 * feature_dim - 2
    return 2 * feature_dim - 1


def _dense_too_large(path: Path, number: int, size: str, content_type: str, limit: int):
    return ValidationError(
        [
            Problem(
                str(path),
                f"as {content_type} the record is {size} bytes (a dense row), over the "
                f"{limit:,} bytes one request may carry",
                f"send it as RecordIO: --content-type {RECORDIO} (sparse records stay sparse)",
                row=number,
                unit="record",
            )
        ]
    )


def predict_recordio(
    invoke: Invoker,
    source: RecordIOInput,
    content_type: str = RECORDIO,
    limits: PayloadLimits = REALTIME,
    shape: dict | None = None,
    bar=NO_PROGRESS,
) -> Predictions:
    """Every record of ``source`` sent through ``invoke``, streamed from its file: as the
    records themselves (RecordIO), or each request's records made dense rows (CSV, JSON), in
    requests under the endpoint's ``limits`` both ways (answers sized as :func:`predict`).
    Only the records :func:`scan_recordio` checked are sent: a file changed since (by
    ``stat``) is refused before the first request, and one that changes while it is sent
    stops it, either way naming the file, before any prediction is written."""
    budget, path = limits.request_budget, source.path
    most_dense = None
    if content_type != RECORDIO:
        least = _least_text_bytes(source.feature_dim, content_type) + _WRAPPER
        if least > budget:
            raise _dense_too_large(path, 1, f"at least {least:,}", content_type, budget)
        most_dense = budget // least  # a request's dense rows: a few times its bytes, at most
    if _version(path) != source.version:
        raise _changed(path)
    frames = _checked_frames(source, budget)
    sent = 0

    def ask(rows: slice, most: int) -> list[dict]:
        nonlocal sent
        assert rows.start == sent, "sized_answers asks for consecutive rows"  # one pass
        n, sent = rows.stop - rows.start, rows.stop
        batches = _batches(itertools.islice(frames, n), budget, min(most, most_dense or most))
        bodies = (_body(path, batch, content_type, budget) for batch in batches)
        return _answers(invoke, itertools.chain.from_iterable(bodies), content_type, n, bar)

    with contextlib.closing(frames):
        answers = sized_answers(ask, source.rows, limits, shape)
    if _version(path) != source.version:
        raise _changed(path)
    return Predictions.from_rows(answers)


def _checked_frames(source: RecordIOInput, limit: int) -> Iterator[_Frame]:
    """The records of ``source``'s file, which must hold as many as it did when checked."""
    count = 0
    try:
        for frame in _frames(source.path, limit):
            count += 1
            yield frame
    except ValidationError:  # a record the check passed is cut short or corrupt now
        if _version(source.path) != source.version:
            raise _changed(source.path) from None
        raise
    if count < source.rows:
        raise _changed(source.path)


def _body(path: Path, batch: list[_Frame], content_type: str, limit: int) -> Iterator[bytes]:
    """A batch of records as request bodies: the records as framed, or their dense rows."""
    if content_type == RECORDIO:
        yield b"".join(f.data for f in batch)
        return
    texts = formatted_rows(_decode(path, batch).dense(), content_type)
    for frame, text in zip(batch, texts):
        if len(text) + _WRAPPER > limit:
            raise _dense_too_large(path, frame.number, f"{len(text):,}", content_type, limit)
    yield from text_bodies(texts, content_type, limit, len(texts))


def local_invoker(host: str, port: int) -> Invoker:
    def invoke(body: bytes, content_type: str) -> bytes:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        try:
            conn.request(
                "POST",
                "/invocations",
                body=body,
                headers={"Content-Type": content_type, "Accept": JSON},
            )
            res = conn.getresponse()
            data = res.read()
        finally:
            conn.close()
        if res.status != 200:
            raise ValidationError(
                [
                    Problem(
                        f"local endpoint :{port}",
                        f"answered {res.status}: {data.decode().strip()}",
                        "fix the request it names",
                    )
                ]
            )
        return data

    return invoke


def aws_invoker(sess, endpoint: str) -> Invoker:
    runtime = sess.client("sagemaker-runtime")

    def invoke(body: bytes, content_type: str) -> bytes:
        res = runtime.invoke_endpoint(
            EndpointName=endpoint, Body=body, ContentType=content_type, Accept=JSON
        )
        return res["Body"].read()

    return invoke


def predict(
    invoke: Invoker,
    X: np.ndarray,
    content_type: str = CSV,
    limits: PayloadLimits = REALTIME,
    shape: dict | None = None,
    bar=NO_PROGRESS,
) -> Predictions:
    """Every row of ``X`` sent through ``invoke``, in requests whose bodies and answers stay
    under the endpoint's ``limits``, answers sized by ``shape`` (one row's answer, when known
    beforehand) or by the first answer (:mod:`training.endpoint_payload`)."""

    def ask(rows: slice, most: int) -> list[dict]:
        part = X[rows]
        bodies = request_bodies(part, content_type, limits.request_budget, most)
        return _answers(invoke, bodies, content_type, part.shape[0], bar)

    return Predictions.from_rows(sized_answers(ask, X.shape[0], limits, shape))


def predict_raw(
    invoke: Invoker,
    rows: RawRows,
    featurizer: Featurizer,
    limits: PayloadLimits = REALTIME,
    bar=NO_PROGRESS,
) -> Predictions:
    """Every raw row sent through ``invoke`` as CSV, in requests under the payload limits
    (the endpoint's ``limits`` both ways, answers shaped by the featurizer's predictor type
    and classes, and the pipeline's limit between its containers)."""
    feature_dim = featurizer.width
    shape = answer_shape(featurizer.predictor_type, featurizer.classes)

    def ask(part: slice, most: int) -> list[dict]:
        lines = rows.lines[part]
        bodies = raw_bodies(lines, feature_dim, limits.request_budget, most)
        return _answers(invoke, bodies, CSV, len(lines), bar)

    return Predictions.from_rows(sized_answers(ask, len(rows), limits, shape))


def _answers(
    invoke: Invoker, bodies, content_type: str, expected: int, bar=NO_PROGRESS
) -> list[dict]:
    """Each body's answer, in order (``bar`` counts the rows answered)."""
    out: list[dict] = []
    for body in bodies:
        answer = invoke(body, content_type)
        try:
            got = json.loads(answer)["predictions"]
            out += got
            bar.update(len(got))
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ValidationError(
                [
                    Problem(
                        "endpoint",
                        f"answer is not Linear Learner JSON: {answer[:120]!r}",
                        "check the endpoint name and that it serves a Linear Learner model",
                    )
                ]
            ) from None
    if len(out) != expected:
        raise ValidationError(
            [
                Problem(
                    "endpoint",
                    f"{len(out)} predictions for {expected} rows",
                    "check the endpoint",
                )
            ]
        )
    return out


def metrics_for(
    predictions: Predictions,
    y: np.ndarray,
    params: MetricsParams = DEFAULT_PARAMS,
    source: str | Path = "--input",
    unit: str = "row",
) -> dict:
    """Test metrics (:func:`training.core.metrics.evaluate`), with the predictor type read
    off the response shape; ``params`` are the model's when it is at hand (its F-beta's
    beta, top-k's k). A label the model cannot predict (2 for a binary classifier, 7 for
    three classes) is refused naming its row (or record) of ``source``: it made the metrics
    wrong without a word, or ended in an IndexError."""
    wrong = _impossible_label(predictions, np.asarray(y))
    if wrong is not None:
        row, what = wrong
        fix = "fix the label: Linear Learner's classes are 0 to the number of classes - 1"
        raise ValidationError([Problem(str(source), what, fix, row=row + 1, unit=unit)])
    return lm.evaluate(
        predictions.predictor_type, predictions.score, predictions.predicted_label, y, params
    )


def _impossible_label(predictions: Predictions, y: np.ndarray) -> tuple[int, str] | None:
    """The first label a classifier's answers cannot be scored against, and why: "For binary
    classification problems, the label must be either 0 or 1. For multiclass classification
    problems, the labels must be from 0 to num_classes - 1" (SageMaker DG, "Linear learner
    algorithm", linear-learner.html)."""
    if predictions.predictor_type == BINARY:
        classes, model = 2, "a binary classifier"
    elif predictions.predictor_type == MULTICLASS:
        classes = np.shape(predictions.score)[1]
        model = f"this {classes}-class model"
    else:
        return None  # a regressor's: any finite number
    bad = np.flatnonzero((y != np.round(y)) | (y < 0) | (y >= classes))
    if not bad.size:
        return None
    i = int(bad[0])
    return i, f"label {y[i]:g} is not a class of {model} (0 to {classes - 1})"


PREDICTIONS_DIR = "predictions"  # beside a prepared data folder


def default_output(input_path: Path, extension: str) -> Path:
    """Where predictions go without ``--out``: ``<input>.predictions<extension>`` beside the
    input, except inside a prepared data folder (``manifest.json`` in the input's folder or
    the one above it): ``train`` and SageMaker read every file in a channel folder, so there
    they go to a ``predictions/`` folder beside the data folder."""
    input_path = Path(input_path)
    name = f"{input_path.name}.predictions{extension}"
    for folder in (input_path.parent, input_path.parent.parent):
        if (folder / MANIFEST_FILE).is_file():
            return folder.parent / PREDICTIONS_DIR / name
    return input_path.with_name(name)


def write_predictions(path: Path, predictions: Predictions) -> Path:
    buf = io.StringIO()
    for row in predictions.rows():
        buf.write(json.dumps(row) + "\n")
    path.write_text(buf.getvalue())
    return path


def write_predictions_csv(
    path: Path, predictions: Predictions, ids: list, id_name: str, y=None, label=None, classes=()
) -> Path:
    """``predictions.csv``: one row per input row in input order, its id (or number), the
    label when known, the score (one column per class for multiclass), the predicted label
    and, behind preprocessing, the predicted class."""
    score = np.asarray(predictions.score)
    multiclass = score.ndim == 2
    names = [str(c) for c in classes] or [
        str(i) for i in range(score.shape[1] if multiclass else 0)
    ]
    header = [id_name] + ([label or "label"] if y is not None else [])
    header += [f"score_{n}" for n in names] if multiclass else ["score"]
    if predictions.predicted_label is not None:
        header.append("predicted_label")
    if predictions.predicted_class is not None:
        header.append("predicted_class")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for i in range(len(score)):
        row = [ids[i]]
        if y is not None:
            row.append(classes[int(y[i])] if classes else f"{y[i]:.9g}")
        row += [f"{v:.9g}" for v in np.atleast_1d(score[i])]
        if predictions.predicted_label is not None:
            row.append(int(predictions.predicted_label[i]))
        if predictions.predicted_class is not None:
            row.append(predictions.predicted_class[i])
        writer.writerow(row)
    Path(path).write_text(buf.getvalue())
    return Path(path)
